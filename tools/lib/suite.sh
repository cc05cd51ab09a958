# Shared preamble of the long suites (crash-loop.sh, concurrency.sh, …): locate the repository,
# the orgctl binary, the configuration generator and the Python verifier, and check they exist.
# Environment: ORGCTL_BINARY (default .build/debug/orgctl), GEN_CONFIG (default ../shared/tools/gen_config.py).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ORGCTL=${ORGCTL_BINARY:-$ROOT/.build/debug/orgctl}
GEN=${GEN_CONFIG:-$ROOT/../shared/tools/gen_config.py}
VERIFY=$ROOT/tools/verify_audit.py

[ -x "$ORGCTL" ] || { echo "error: $ORGCTL is not built: run 'swift build' or set ORGCTL_BINARY" >&2; exit 2; }
[ -f "$GEN" ] || { echo "error: the configuration generator $GEN is missing: set GEN_CONFIG" >&2; exit 2; }

# The kill step of the SIGKILL loops (crash-loop.sh, rekey-crash-loop.sh).
#
# kill_moment DURATION_NS SLICE SLICES SEED SALT: a moment, in seconds, at random inside the SLICE-th of
# SLICES equal slices of sqrt-warped time over DURATION_NS (denser towards the end, where the write
# transaction runs): stratified and randomised, so the moments are distinct and spread over the whole
# run rather than a fixed grid. SALT (with SEED) picks the random number: the same arguments give the
# same moment.
kill_moment() {
    awk -v d="$1" -v k="$2" -v n="$3" -v s="$4" -v i="$5" 'BEGIN { srand(s * 100003 + i); printf "%.4f", d / 1e9 * sqrt((k + rand()) / n) }'
}

# run_killed DELAY ERRFILE COMMAND...: starts COMMAND in the background (standard output discarded,
# standard error to ERRFILE), SIGKILLs it after DELAY seconds and waits for it. Sets KILL_STATUS to its
# exit status: 137 when the kill landed while it ran, its own status when it finished first. COMMAND
# must be the program itself, or a function that execs it: the kill must reach orgctl, not a subshell.
run_killed() {
    local delay=$1 err=$2 pid
    shift 2
    "$@" >/dev/null 2>"$err" &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    KILL_STATUS=0
    wait "$pid" 2>/dev/null || KILL_STATUS=$?
}
