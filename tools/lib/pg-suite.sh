# shellcheck shell=bash
# Shared preamble of the long PostgreSQL suites (pg-crash-loop.sh, pg-concurrency.sh), after
# suite.sh: a work folder and a PostgreSQL cluster of the suite's own in it (tools/pg-cluster.sh:
# the server stops would cut any other user's connections), both removed at exit unless KEEP=1,
# and the cluster's environment exported (ORGCTL_TEST_POSTGRES, ORGCTL_TEST_PGDATA, …).
# Usage: pg_suite_start NAME; then SERVER and STATE (the orgctl arguments) are set.
# Environment: PG_CLUSTER (default tools/pg-cluster.sh).
PG_CLUSTER=${PG_CLUSTER:-$ROOT/tools/pg-cluster.sh}
[ -f "$PG_CLUSTER" ] || { echo "error: $PG_CLUSTER is missing: set PG_CLUSTER" >&2; exit 2; }
command -v psql >/dev/null || { echo "error: psql is needed (Debian: apt-get install postgresql-client)" >&2; exit 2; }

pg_suite_cleanup() {
    if [ "$KEEP" = 0 ]; then
        bash "$PG_CLUSTER" stop "$WORK/pg" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    else
        echo "kept $WORK for inspection (stop its cluster with: $PG_CLUSTER stop $WORK/pg)" >&2
    fi
}

pg_suite_start() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/orgctl-$1.XXXXXX")
    chmod 755 "$WORK" # the cluster's owner enters it
    KEEP=0 # set to 1 by the suite to keep WORK and the cluster
    trap pg_suite_cleanup EXIT
    eval "$(bash "$PG_CLUSTER" start "$WORK/pg")"
    SERVER=$ORGCTL_TEST_POSTGRES
    # shellcheck disable=SC2034 # used by the suites that source this file
    STATE=(--state "$SERVER" --state-schema orgctl)
    ORGCTL_STATE_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
    export ORGCTL_NOW=2026-11-22T12:00:00Z ORGCTL_STATE_KEY
}
