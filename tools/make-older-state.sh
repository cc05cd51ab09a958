#!/bin/sh
# Writes Tests/OlderStates/schema6: a state made by the last release before schema 7 (commit
# f16cb7d), on both backends (or, with `tools/make-older-state.sh f181db8 Tests/OlderStates/schema7`,
# schema7: the last release before schema 8, with its config copied from schema6; schema8 likewise from 1da1025, the last
# commit of schema 8, with ORGCTL_OLD_BINARY set to its release build), for the end-to-end tests of opening and migrating an older state
# (Tests/EndToEndTests/OlderStateTests.swift). The state must come from the old release itself:
# one made by the current code and marked older proves nothing.
#
#   eval "$(tools/pg-cluster.sh start /tmp/orgctl-pg)"    # a server for the PostgreSQL state
#   tools/make-older-state.sh [COMMIT [OUT]]
#
# It builds COMMIT in a git worktree of its own (its own scratch path; a few minutes; or set
# ORGCTL_OLD_BINARY to a binary built from it), applies
# OUT/config (kept as it is) with that binary to a SQLite file and to the PostgreSQL schema
# orgctl_schemaN_fixture (N from OUT's name), signs a checkpoint of each log with a new key, and writes:
#   sqlite.sql                      `sqlite3 .dump` of the file, with its application_id and user_version
#   postgres.sql                    `pg_dump --no-owner --no-privileges` of the schema (restore it
#                                   into another schema by replacing the name orgctl_schemaN_fixture)
#   checkpoint-sqlite.txt, checkpoint-postgres.txt   the signed checkpoints
#   checkpoint.pub                  their verifier key (the private key is thrown away)
# The state key and the webhook secret are the end-to-end tests' (Tests/EndToEndTests/Support.swift).
set -eu
commit=${1:-f16cb7d}
root=$(git rev-parse --show-toplevel)
out=${2:-$root/Tests/OlderStates/schema6}
: "${ORGCTL_TEST_POSTGRES:?start a server first: eval \"\$(tools/pg-cluster.sh start /tmp/orgctl-pg)\"}"
schema=orgctl_$(basename "$out")_fixture   # orgctl_schema6_fixture, orgctl_schema7_fixture
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

old=${ORGCTL_OLD_BINARY:-}   # a binary already built from COMMIT, to skip the build
if [ -z "$old" ]; then
    git -C "$root" worktree add --detach "$work/src" "$commit" >/dev/null
    swift build --package-path "$work/src" --product orgctl --scratch-path "$work/build" >/dev/null
    old=$work/build/debug/orgctl
fi

export ORGCTL_STATE_KEY=CzBVep/E6Q4zWH2ix+wRNluApcrvFDleg6jN8hc8YYY=
export INITECH_WEBHOOK_SECRET=e2e-leakcheck-initech-hook-Ys5Fg0
export ORGCTL_NOW=2026-11-22T12:00:00Z ORGCTL_ACTOR=e2e TZ=UTC

export PGOPTIONS="-c client_min_messages=warning"
psql "$ORGCTL_TEST_POSTGRES" -X -q -c "DROP SCHEMA IF EXISTS $schema CASCADE"
"$old" apply "$out/config" --state "$work/state.db" --auto-approve >/dev/null
"$old" apply "$out/config" --state "$ORGCTL_TEST_POSTGRES" --state-schema "$schema" --auto-approve >/dev/null

"$old" audit keygen "orgctl.example/$(basename "$out")" --out "$work/checkpoint.key" >/dev/null
cp "$work/checkpoint.key.pub" "$out/checkpoint.pub"
"$old" audit checkpoint --state "$work/state.db" --key "$work/checkpoint.key" > "$out/checkpoint-sqlite.txt"
"$old" audit checkpoint --state "$ORGCTL_TEST_POSTGRES" --state-schema "$schema" --key "$work/checkpoint.key" > "$out/checkpoint-postgres.txt"

{
    sqlite3 "$work/state.db" .dump
    echo "PRAGMA application_id = $(sqlite3 "$work/state.db" 'PRAGMA application_id');"
    echo "PRAGMA user_version = $(sqlite3 "$work/state.db" 'PRAGMA user_version');"
} > "$out/sqlite.sql"
# \restrict and \unrestrict (pg_dump 15.14 and later) carry a random token and are for psql only.
pg_dump "$ORGCTL_TEST_POSTGRES" --no-owner --no-privileges -n "$schema" | grep -v '^\\\(un\)\{0,1\}restrict ' > "$out/postgres.sql"
psql "$ORGCTL_TEST_POSTGRES" -X -q -c "DROP SCHEMA $schema CASCADE"
echo "wrote $out from $(git -C "$root" rev-parse --short "$commit")"
