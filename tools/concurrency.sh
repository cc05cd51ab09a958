#!/usr/bin/env bash
# The long concurrency test (the short one is in Tests/EndToEndTests/CrashSafetyTests.swift).
#
#   tools/concurrency.sh [PROCESSES] [ROUNDS]    defaults: 8 processes, 20 rounds
#
# Each round starts PROCESSES applies of different generated configurations against one state
# database at the same moment. Every apply must exit 0, or exit 1 with a clear 'error: … help: …'
# message (never a raw "database is locked", never a crash), and at least one apply per round must
# succeed. At the end the database must equal exactly one of the configurations (plan
# --detailed-exitcode exits 0 for exactly one), one whose apply succeeded, and the audit chain must
# verify with both 'orgctl audit verify' and tools/verify_audit.py.
# Environment: ORGCTL_BINARY (default .build/debug/orgctl), GEN_CONFIG (default ../shared/tools/gen_config.py).
set -euo pipefail

PROCESSES=${1:-8}
ROUNDS=${2:-20}
# shellcheck source=lib/suite.sh
source "$(dirname "$0")/lib/suite.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/orgctl-concurrency.XXXXXX")
KEEP=0
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept $WORK for inspection" >&2; fi; }
trap cleanup EXIT

export ORGCTL_NOW=2026-11-22T12:00:00Z ORGCTL_ACTOR=concurrency
ORGCTL_STATE_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export ORGCTL_STATE_KEY

# Different tenant counts make every configuration different; --change and --seed vary the rest.
for ((p = 0; p < PROCESSES; p++)); do
    python3 "$GEN" "$WORK/config-$p" $((40 + 5 * p)) --members 4 --teams 1 --change 30 --seed $((p + 1)) >/dev/null
done

# Each configuration deletes the tenants the others have and it has not: the tenant deletion guard
# wants each named (and any share of a tenant may go).
allow=(--max-tenant-delete-percent 100)
for ((t = 0; t < 40 + 5 * (PROCESSES - 1); t++)); do allow+=(--allow-delete-tenant "$(printf 'tenant-%06d' "$t")"); done

db=$WORK/shared.db
failures=0
declare -A won=()
for ((r = 1; r <= ROUNDS; r++)); do
    pids=()
    for ((p = 0; p < PROCESSES; p++)); do
        "$ORGCTL" apply "$WORK/config-$p" --state "$db" --auto-approve --source "round-$r" --quiet --no-color \
            --max-deletes 100000000 "${allow[@]}" >"$WORK/out-$p" 2>"$WORK/err-$p" &
        pids+=($!)
    done
    succeeded=0
    for ((p = 0; p < PROCESSES; p++)); do
        status=0
        wait "${pids[$p]}" || status=$?
        err=$(cat "$WORK/err-$p")
        if [ "$status" -eq 0 ]; then
            succeeded=$((succeeded + 1))
            won[$p]=1
        elif [ "$status" -ne 1 ]; then
            echo "round $r, process $p: exit $status: $err"; failures=$((failures + 1))
        elif [[ "$err" != error:* ]] || [[ "$err" != *$'\nhelp: '* ]] || [[ "$err" == *"database is locked"* ]]; then
            echo "round $r, process $p: unclear failure: $err"; failures=$((failures + 1))
        fi
    done
    if [ "$succeeded" -eq 0 ]; then echo "round $r: no apply succeeded"; failures=$((failures + 1)); fi
    echo "round $r: $succeeded of $PROCESSES applied"
done

matching=()
for ((p = 0; p < PROCESSES; p++)); do
    status=0
    "$ORGCTL" plan "$WORK/config-$p" --state "$db" --detailed-exitcode --quiet >/dev/null 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then matching+=("$p"); elif [ "$status" -ne 2 ]; then echo "plan of config-$p exited $status"; failures=$((failures + 1)); fi
done
if [ "${#matching[@]}" -ne 1 ]; then
    echo "the final state matches ${#matching[@]} configurations (${matching[*]:-none}), not exactly one"; failures=$((failures + 1))
elif [ -z "${won[${matching[0]}]:-}" ]; then
    echo "the final state matches config-${matching[0]}, whose apply never succeeded"; failures=$((failures + 1))
fi
"$ORGCTL" audit verify --state "$db" || failures=$((failures + 1))
python3 "$VERIFY" "$db" || failures=$((failures + 1))

if [ "$failures" -ne 0 ]; then KEEP=1; echo "$failures failures"; exit 1; fi
echo "ok: $ROUNDS rounds of $PROCESSES concurrent applies"
