# Shared preamble of the long suites (crash-loop.sh, concurrency.sh): locate the repository,
# the orgctl binary, the configuration generator and the Python verifier, and check they exist.
# Environment: ORGCTL_BINARY (default .build/debug/orgctl), GEN_CONFIG (default ../shared/tools/gen_config.py).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ORGCTL=${ORGCTL_BINARY:-$ROOT/.build/debug/orgctl}
GEN=${GEN_CONFIG:-$ROOT/../shared/tools/gen_config.py}
VERIFY=$ROOT/tools/verify_audit.py

[ -x "$ORGCTL" ] || { echo "error: $ORGCTL is not built: run 'swift build' or set ORGCTL_BINARY" >&2; exit 2; }
[ -f "$GEN" ] || { echo "error: the configuration generator $GEN is missing: set GEN_CONFIG" >&2; exit 2; }
