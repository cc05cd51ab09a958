#!/usr/bin/env bash
# The long fault test on PostgreSQL (the short one is Tests/EndToEndTests/PostgresFaultTests.swift).
#
#   tools/pg-crash-loop.sh [KILLS] [STOPS] [TERMINATIONS] [TENANTS] [SEED]
#                          defaults: 50 SIGKILLs, 10 server stops, 10 terminated backends, 300 tenants, seed 1
#
# Starts a PostgreSQL cluster of its own (tools/pg-cluster.sh, removed at the end: the server stops
# would cut any other user's connections), applies a generated configuration A
# (../shared/tools/gen_config.py), then applies A and B (half of the tenants changed) in turn and
# interrupts each apply at a moment spread over the length of one uninterrupted apply:
#   kill:      SIGKILL of orgctl (KILLS times);
#   terminate: pg_terminate_backend of orgctl's backend (TERMINATIONS times);
#   stop:      pg_ctl stop -m immediate, then start again (STOPS times).
# After every interruption:
#   - the state is exactly before or exactly after: 'orgctl plan --detailed-exitcode' shows no
#     changes for exactly the configuration before or the one after, and the audit log holds
#     exactly the entries before, or those plus the one apply's;
#   - 'orgctl audit verify' and tools/verify_audit.py (reading through psql) pass.
# Exit status 0 when every interruption passed, 1 otherwise (the cluster is kept for inspection).
# Environment: ORGCTL_BINARY (default .build/debug/orgctl), GEN_CONFIG (default ../shared/tools/gen_config.py),
# PG_CLUSTER (default tools/pg-cluster.sh).
set -euo pipefail

KILLS=${1:-50}
STOPS=${2:-10}
TERMINATIONS=${3:-10}
TENANTS=${4:-300}
SEED=${5:-1}
# shellcheck source=lib/suite.sh
source "$(dirname "$0")/lib/suite.sh"
# shellcheck source=lib/pg-suite.sh
source "$(dirname "$0")/lib/pg-suite.sh"
pg_suite_start pg-crash
PGCTL=("$ORGCTL_TEST_PGCTL" -D "$ORGCTL_TEST_PGDATA")
read -r -a RUNAS <<<"${ORGCTL_TEST_PGUSER_RUN:-}"
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$SERVER" -c "$1"; }
export ORGCTL_ACTOR=pg-crash-loop

echo "generating $TENANTS tenants..."
python3 "$GEN" "$WORK/A" "$TENANTS" --members 4 --teams 1 --per-file 1 >/dev/null
python3 "$GEN" "$WORK/B" "$TENANTS" --members 4 --teams 1 --per-file 1 --change 50 --seed 7 >/dev/null

APPLY=("${STATE[@]}" --auto-approve --source pg-crash-loop --quiet --no-color --lock-timeout 1m)
apply() { "$ORGCTL" apply "$WORK/$1" "${APPLY[@]}"; }
entries() { sql "SELECT count(*) FROM orgctl.orgctl_audit"; }
now_ns() { date +%s%N; }

apply A >/dev/null
declare -A added=()
start=$(now_ns)
base=$(entries); apply B >/dev/null; added[B]=$(($(entries) - base))
duration_ns=$(($(now_ns) - start))
base=$(entries); apply A >/dev/null; added[A]=$(($(entries) - base))
echo "one apply takes $((duration_ns / 1000000)) ms and writes ${added[B]} entries (A -> B) or ${added[A]} (B -> A)"

current=A failures=0 before=0 after=0 missed=0 total=0
interrupt() { # MODE INDEX COUNT
    local mode=$1 i=$2 n=$3 target delay pid status problem="" count backend
    if [ "$current" = A ]; then target=B; else target=A; fi
    count=$(entries)
    delay=$(awk -v d="$duration_ns" -v i="$i" -v n="$n" -v s="$SEED" -v m="${#mode}" 'BEGIN { srand(s * 100003 + i * 7 + m); printf "%.4f", d / 1e9 * sqrt((i + rand()) / n) }')
    "$ORGCTL" apply "$WORK/$target" "${APPLY[@]}" >/dev/null 2>"$WORK/apply.err" & # not through a function: $! must be orgctl
    pid=$!
    sleep "$delay"
    case $mode in
        kill) kill -9 "$pid" 2>/dev/null || missed=$((missed + 1)) ;;
        terminate)
            backend=$(sql "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'orgctl apply by pg-crash-loop %' LIMIT 1")
            if [ -n "$backend" ]; then sql "SELECT pg_terminate_backend($backend)" >/dev/null 2>&1; else missed=$((missed + 1)); fi
            ;;
        stop)
            "${RUNAS[@]}" "${PGCTL[@]}" -m immediate -w stop >/dev/null
            "${RUNAS[@]}" "${PGCTL[@]}" -w -t 60 -l "$WORK/pg/log/restart.log" start >/dev/null
            ;;
    esac
    status=0
    wait "$pid" 2>/dev/null || status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 137 ]; then
        # Exit 1 is expected when the backend or the server went away: one clear error with a fix.
        if [ "$status" -ne 1 ] || ! grep -q '^error: ' "$WORK/apply.err" || ! grep -q '^help: ' "$WORK/apply.err"; then
            problem="apply exited $status: $(head -c 300 "$WORK/apply.err")"
        fi
    fi
    local matches=()
    for config in A B; do
        local plan=0
        "$ORGCTL" plan "$WORK/$config" "${STATE[@]}" --detailed-exitcode --quiet >/dev/null 2>"$WORK/plan.err" || plan=$?
        if [ "$plan" -eq 0 ]; then matches+=("$config"); elif [ "$plan" -ne 2 ]; then problem="$problem plan $config exited $plan: $(head -c 200 "$WORK/plan.err")"; fi
    done
    if [ "${matches[*]:-}" = "$current" ] && [ "$(entries)" -eq "$count" ]; then
        before=$((before + 1))
    elif [ "${matches[*]:-}" = "$target" ] && [ "$(entries)" -eq $((count + added[$target])) ]; then
        after=$((after + 1)); current=$target
    else
        problem="$problem the state is neither before nor after (matches: ${matches[*]:-none}; entries $count -> $(entries))"
    fi
    if ! out=$("$ORGCTL" audit verify "${STATE[@]}" 2>&1); then problem="$problem audit verify: $out"; fi
    if ! out=$(PSQL=psql python3 "$VERIFY" "$SERVER" --schema orgctl 2>&1); then problem="$problem verify_audit.py: $out"; fi
    total=$((total + 1))
    if [ -n "$problem" ]; then
        failures=$((failures + 1)); KEEP=1
        echo "$mode $i after ${delay}s: FAILED:$problem"
    fi
}

for ((i = 0; i < KILLS; i++)); do interrupt kill "$i" "$KILLS"; done
echo "SIGKILL: $KILLS"
for ((i = 0; i < TERMINATIONS; i++)); do interrupt terminate "$i" "$TERMINATIONS"; done
echo "pg_terminate_backend: $TERMINATIONS"
for ((i = 0; i < STOPS; i++)); do interrupt stop "$i" "$STOPS"; done
echo "pg_ctl stop -m immediate: $STOPS"

echo "$total interruptions ($KILLS SIGKILLs, $TERMINATIONS terminated backends, $STOPS immediate server stops; $missed found the apply already finished or not yet connected): $before left the state before, $after after, $failures failed"
[ "$failures" -eq 0 ]
