#!/usr/bin/env bash
# Side-by-side measurements of orgctl against a floor (not tests; not run in CI).
# See bench/README.md. Usage:
#   bench/run.sh [--tenants N] [--repeats R] [--rows validate,plan,apply-noop,apply-first,apply-change]
# Environment:
#   ORGCTL=/path/to/orgctl   measure this binary instead of building `swift build -c release`
#   ORGCTL_SHARED=DIR        the folder holding tools/gen_config.py (default: <repo>/../shared)
#   BENCH_OUT=DIR            where inputs, databases and logs go (default: bench/out)
#   ORGCTL_STATE_KEY=...     state key for plan/apply (default: 32 fresh random bytes, base64)
#   BENCH_POSTGRES=0         skip the PostgreSQL rows; otherwise a throwaway server is started
#                            (tools/pg-cluster.sh, with fsync turned back on) and stopped at the end
#   BENCH_PG_CLUSTER=DIR     where that server lives (default /tmp/orgctl-bench-pg; give each
#                            concurrent bench run its own)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
shared=${ORGCTL_SHARED:-$root/../shared}
out=${BENCH_OUT:-$here/out}
tenants=10000
repeats=5
rows=

usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }
while [ $# -gt 0 ]; do
    case $1 in
        --tenants) tenants=${2:?--tenants needs a number}; shift 2 ;;
        --tenants=*) tenants=${1#*=}; shift ;;
        --repeats) repeats=${2:?--repeats needs a number}; shift 2 ;;
        --repeats=*) repeats=${1#*=}; shift ;;
        --rows) rows=${2:?--rows needs a list}; shift 2 ;;
        --rows=*) rows=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown argument '$1'" >&2; usage >&2; exit 64 ;;
    esac
done
case $tenants$repeats in *[!0-9]*) echo "bench/run.sh: --tenants and --repeats take whole numbers" >&2; exit 64 ;; esac

mkdir -p "$out"

if [ -z "${ORGCTL:-}" ]; then
    echo "building orgctl (release)" >&2
    (cd "$root" && swift build -c release --product orgctl >&2)
    ORGCTL=$(cd "$root" && swift build -c release --show-bin-path)/orgctl
fi
[ -x "$ORGCTL" ] || { echo "bench/run.sh: $ORGCTL is not an executable" >&2; exit 1; }

floor=$out/yaml_floor
if [ ! -x "$floor" ] || [ "$here/yaml_floor.c" -nt "$floor" ]; then
    echo "compiling $floor" >&2
    flags=$(pkg-config --cflags --libs yaml-0.1 sqlite3 2>/dev/null || echo "-lyaml -lsqlite3")
    # shellcheck disable=SC2086 # flags are words
    cc -O2 -o "$floor" "$here/yaml_floor.c" $flags
fi

pg=()
if [ "${BENCH_POSTGRES:-1}" != 0 ]; then
    cluster=${BENCH_PG_CLUSTER:-/tmp/orgctl-bench-pg}
    eval "$("$root/tools/pg-cluster.sh" start "$cluster")"
    trap '"$root/tools/pg-cluster.sh" stop "$cluster" >/dev/null 2>&1 || true' EXIT
    # The test cluster runs with fsync=off; measured writes pay for durability, as SQLite's do.
    psql "$ORGCTL_TEST_POSTGRES" -X -q -c "ALTER SYSTEM SET fsync = on" -c "SELECT pg_reload_conf()" >/dev/null
    port=$(cat "$cluster/port")
    pg=(--pg-host "$cluster" --pg-port "$port" --pg-user postgres)
fi

python3 "$here/bench.py" --orgctl "$ORGCTL" --floor "$floor" --shared "$shared" --out "$out" \
    --tenants "$tenants" --repeats "$repeats" ${rows:+--rows "$rows"} "${pg[@]}"
