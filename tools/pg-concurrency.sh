#!/usr/bin/env bash
# The long concurrency test on PostgreSQL (the short one is in Tests/EndToEndTests/PostgresFaultTests.swift).
#
#   tools/pg-concurrency.sh [PROCESSES] [ROUNDS] [LOCK_TIMEOUT]    defaults: 8 processes, 20 rounds, 2s
#
# Starts a PostgreSQL cluster of its own (tools/pg-cluster.sh, removed at the end). Each round
# starts PROCESSES applies of different generated configurations against one schema at the same
# moment, each as its own actor (runner-P), waiting up to LOCK_TIMEOUT for the lock. Every apply
# must exit 0, or exit 1 refused because another apply holds the lock, naming it
# ("is locked by another apply: 'orgctl apply by runner-Q on HOST' (server process …, since …)"),
# or exit 1 because, once it had the lock, the state was no longer the one it planned against
# ("the plan is stale": another apply committed while it waited; as on SQLite, an apply never
# writes a plan it did not show); any other failure counts. At least one apply per round must succeed. At the end:
#   - nothing lost: the audit log holds exactly one entry per change the successful applies reported;
#   - the state equals exactly one configuration (plan --detailed-exitcode exits 0 for exactly
#     one), one whose apply succeeded;
#   - 'orgctl audit verify' and tools/verify_audit.py (reading through psql) pass.
# Environment: ORGCTL_BINARY (default .build/debug/orgctl), GEN_CONFIG (default ../shared/tools/gen_config.py),
# PG_CLUSTER (default tools/pg-cluster.sh).
set -euo pipefail

PROCESSES=${1:-8}
ROUNDS=${2:-20}
LOCK_TIMEOUT=${3:-2s}
# shellcheck source=lib/suite.sh
source "$(dirname "$0")/lib/suite.sh"
# shellcheck source=lib/pg-suite.sh
source "$(dirname "$0")/lib/pg-suite.sh"
pg_suite_start pg-concurrency

# Different tenant counts make every configuration different; --change and --seed vary the rest.
for ((p = 0; p < PROCESSES; p++)); do
    python3 "$GEN" "$WORK/config-$p" $((40 + 5 * p)) --members 4 --teams 1 --change 30 --seed $((p + 1)) >/dev/null
done
# Each configuration deletes the tenants the others have and it has not: the tenant deletion guard
# wants each named (and any share of a tenant may go).
allow=(--max-tenant-delete-percent 100)
for ((t = 0; t < 40 + 5 * (PROCESSES - 1); t++)); do allow+=(--allow-delete-tenant "$(printf 'tenant-%06d' "$t")"); done

failures=0 changes=0 refusals=0 stale=0 applied=0
declare -A won=()
for ((r = 1; r <= ROUNDS; r++)); do
    pids=()
    for ((p = 0; p < PROCESSES; p++)); do
        ORGCTL_ACTOR="runner-$p" "$ORGCTL" apply "$WORK/config-$p" "${STATE[@]}" --auto-approve --source "round-$r" --no-color \
            --lock-timeout "$LOCK_TIMEOUT" --max-deletes 100000000 "${allow[@]}" >"$WORK/out-$p" 2>"$WORK/err-$p" &
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
            summary=$(grep -oE 'Apply complete: [0-9]+ added, [0-9]+ changed, [0-9]+ destroyed' "$WORK/out-$p" || true)
            if [ -n "$summary" ]; then
                read -r a c d <<<"$(echo "$summary" | grep -oE '[0-9]+' | tr '\n' ' ')"
                changes=$((changes + a + c + d))
            fi
        elif [ "$status" -eq 1 ] && [[ "$err" == *"error: "*"is locked by another apply: 'orgctl apply by runner-"*"' (server process "*", since "*$'\nhelp: '* ]]; then
            refusals=$((refusals + 1))
        elif [ "$status" -eq 1 ] && [[ "$err" == *"error: the plan is stale: the state changed since it was planned"*$'\nhelp: '* ]]; then
            stale=$((stale + 1))
        else
            echo "round $r, process $p: exit $status, not a refusal naming the holder: $err"; failures=$((failures + 1))
        fi
    done
    applied=$((applied + succeeded))
    if [ "$succeeded" -eq 0 ]; then echo "round $r: no apply succeeded"; failures=$((failures + 1)); fi
    echo "round $r: $succeeded of $PROCESSES applied"
done

entries=$(psql -X -q -A -t -d "$SERVER" -c "SELECT count(*) FROM orgctl.orgctl_audit")
if [ "$entries" -ne "$changes" ]; then echo "the audit log holds $entries entries; the successful applies reported $changes changes"; failures=$((failures + 1)); fi
matching=()
for ((p = 0; p < PROCESSES; p++)); do
    status=0
    "$ORGCTL" plan "$WORK/config-$p" "${STATE[@]}" --detailed-exitcode --quiet >/dev/null 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then matching+=("$p"); elif [ "$status" -ne 2 ]; then echo "plan of config-$p exited $status"; failures=$((failures + 1)); fi
done
if [ "${#matching[@]}" -ne 1 ]; then
    echo "the final state matches ${#matching[@]} configurations (${matching[*]:-none}), not exactly one"; failures=$((failures + 1))
elif [ -z "${won[${matching[0]}]:-}" ]; then
    echo "the final state matches config-${matching[0]}, whose apply never succeeded"; failures=$((failures + 1))
fi
"$ORGCTL" audit verify "${STATE[@]}" || failures=$((failures + 1))
PSQL=psql python3 "$VERIFY" "$SERVER" --schema orgctl || failures=$((failures + 1))

if [ "$failures" -ne 0 ]; then KEEP=1; echo "$failures failures"; exit 1; fi
echo "ok: $ROUNDS rounds of $PROCESSES concurrent applies: $applied applied ($changes changes, $entries audit entries), $refusals refused naming the holder, $stale refused as stale after waiting"
