#!/usr/bin/env bash
# The long crash-safety test (the short one is Tests/EndToEndTests/CrashSafetyTests.swift).
#
#   tools/crash-loop.sh [KILLS] [TENANTS] [SEED]   defaults: 200 kills, 1000 tenants, seed 1
#
# Builds a state database from a generated configuration (../shared/tools/gen_config.py),
# then applies a second configuration (10% of the tenants deleted, 10% new, half of the rest
# changed) KILLS times, each time from a fresh copy of that database, and SIGKILLs the apply
# at moments spread over the length of one uninterrupted apply. After every kill:
#   - 'orgctl audit verify' and tools/verify_audit.py must pass, and
#   - the database must hold exactly the state before or exactly the state after (compared as
#     `sqlite3 .dump`, with secret ciphertexts masked: their nonces are random; the audit log as
#     'audit log --format json' resolves it, since its subject tokens are random too).
# Exit status 0 when every kill passed, 1 otherwise (failing databases are kept and named).
# Environment: ORGCTL_BINARY (default .build/debug/orgctl), GEN_CONFIG (default ../shared/tools/gen_config.py).
set -euo pipefail

KILLS=${1:-200}
TENANTS=${2:-1000}
SEED=${3:-1}
# shellcheck source=lib/suite.sh
source "$(dirname "$0")/lib/suite.sh"
command -v sqlite3 >/dev/null || { echo "error: the sqlite3 command-line tool is needed" >&2; exit 2; }
[ "$KILLS" -ge 2 ] || { echo "error: KILLS must be at least 2" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/orgctl-crash-loop.XXXXXX")
KEEP=0
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept $WORK for inspection" >&2; fi; }
trap cleanup EXIT

export ORGCTL_NOW=2026-11-22T12:00:00Z ORGCTL_ACTOR=crash-loop
ORGCTL_STATE_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export ORGCTL_STATE_KEY

echo "generating $TENANTS tenants..."
python3 "$GEN" "$WORK/before" "$TENANTS" --members 4 --teams 1 --per-file 1 >/dev/null
python3 "$GEN" "$WORK/after" $((TENANTS + TENANTS / 10)) --members 4 --teams 1 --per-file 1 --change 50 --seed 7 >/dev/null
for ((t = 0; t < TENANTS / 10; t++)); do rm "$WORK/after/tenants/$(printf 'batch-%05d.yaml' "$t")"; done

APPLY=(apply "$WORK/after" --auto-approve --source crash-loop --quiet --no-color --max-deletes 100000000)
# The tenants whose files were removed are deleted whole: the tenant deletion guard wants each named.
for ((t = 0; t < TENANTS / 10; t++)); do APPLY+=(--allow-delete-tenant "$(printf 'tenant-%06d' "$t")"); done
# The state as a kill must leave it, comparable across two databases (as CrashSafetyTests.swift does): the dump
# with secret ciphertexts masked, without the rows that depend on the random subject ids of audit entry format 2
# (the entries, their Merkle tree, the subject tables), and instead the log as 'audit log --format json' resolves it.
# The chain itself is checked by 'orgctl audit verify' and tools/verify_audit.py.
canon() {
    sqlite3 "$1" .dump | sed -E "/^INSERT INTO (webhooks|sso_providers) /s/X'[0-9a-fA-F]*'/X'(ciphertext)'/g" \
        | grep -Ev "^INSERT INTO '?(orgctl_audit|orgctl_merkle|orgctl_subjects|orgctl_subject_values)'? "
    "$ORGCTL" audit log --format json --state "$1"
}

"$ORGCTL" apply "$WORK/before" --state "$WORK/base.db" --auto-approve --source crash-loop --quiet >/dev/null
sqlite3 "$WORK/base.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
canon "$WORK/base.db" >"$WORK/before.sql"

cp "$WORK/base.db" "$WORK/reference.db"
start=$(date +%s%N)
"$ORGCTL" "${APPLY[@]}" --state "$WORK/reference.db" >/dev/null
duration_ns=$(($(date +%s%N) - start))
canon "$WORK/reference.db" >"$WORK/after.sql"
python3 "$VERIFY" "$WORK/reference.db" >/dev/null
echo "one apply takes $((duration_ns / 1000000)) ms; killing it $KILLS times"

before=0 after=0 failures=0 killed=0 midwrite=0
delays=()
for ((i = 0; i < KILLS; i++)); do
    db=$WORK/killed.db
    rm -f "$db" "$db-wal" "$db-shm"
    cp "$WORK/base.db" "$db"
    # Kill i lands at a random moment inside the i-th of KILLS slices of the apply (lib/suite.sh).
    delay=$(kill_moment "$duration_ns" "$i" "$KILLS" "$SEED" "$i")
    delays+=("$delay")
    run_killed "$delay" "$WORK/apply.err" "$ORGCTL" "${APPLY[@]}" --state "$db"
    status=$KILL_STATUS
    if [ "$status" -eq 137 ]; then
        killed=$((killed + 1))
        if [ -s "$db-wal" ]; then midwrite=$((midwrite + 1)); fi
    fi
    problem=""
    if [ "$status" -ne 0 ] && [ "$status" -ne 137 ]; then problem="apply exited $status: $(head -c 300 "$WORK/apply.err")"; fi
    if ! out=$("$ORGCTL" audit verify --state "$db" 2>&1); then problem="$problem audit verify: $out"; fi
    if ! out=$(python3 "$VERIFY" "$db" 2>&1); then problem="$problem verify_audit.py: $out"; fi
    canon "$db" >"$WORK/killed.sql"
    if cmp -s "$WORK/killed.sql" "$WORK/before.sql"; then
        before=$((before + 1))
    elif cmp -s "$WORK/killed.sql" "$WORK/after.sql"; then
        after=$((after + 1))
    else
        problem="$problem state is neither before nor after"
    fi
    if [ -n "$problem" ]; then
        failures=$((failures + 1))
        KEEP=1
        cp "$db" "$WORK/failed-$i.db"
        echo "kill $i after ${delay}s: FAILED:$problem (kept failed-$i.db)"
    fi
done

distinct=$(printf '%s\n' "${delays[@]}" | awk '{ printf "%d\n", $1 * 1000 }' | sort -u | wc -l)
echo "$KILLS kills ($distinct distinct moments at 1 ms, from ${delays[0]} s to ${delays[$((KILLS - 1))]} s; $killed killed before finishing, $midwrite of them with a non-empty WAL): $before left the state before, $after after, $failures failed"
[ "$failures" -eq 0 ]
