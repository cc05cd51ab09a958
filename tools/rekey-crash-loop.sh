#!/usr/bin/env bash
# The long crash-safety test of 'orgctl state rekey' (the short one is Tests/EndToEndTests/RekeyTests.swift).
#
#   tools/rekey-crash-loop.sh [KILLS] [TENANTS] [BACKEND] [SEED]   defaults: 30 kills, 1000 tenants, sqlite, seed 1
#
# BACKEND is sqlite or postgres (a cluster of the script's own, tools/pg-cluster.sh). Builds a state
# from a generated configuration (../shared/tools/gen_config.py), every tenant given a webhook with a
# signing secret and one in ten moved to the business plan with an OIDC provider with a client secret, then rekeys it
# until KILLS of them were SIGKILLed while running, each at a moment spread over the length of one rekey
# (SQLite: each time from a copy of the same database, from key A to key B; PostgreSQL: one schema,
# from whichever key works to the other). After every kill:
#   - exactly one of the two keys works, and every secret opens with it, is named by its key id and
#     has its fingerprint (tools/check_state_key.py, Python's cryptography, not orgctl's code);
#   - 'orgctl plan --detailed-exitcode' with that key shows no changes (every row digest and
#     fingerprint is that key's), and the other key is refused;
#   - 'orgctl audit verify' with that key and tools/verify_audit.py pass, with the audit log one
#     'rekey' entry longer exactly when the new key works.
# Exit status 0 when every kill passed, 1 otherwise (the work folder is kept).
# Environment: ORGCTL_BINARY (default .build/debug/orgctl; a release build makes the run quicker),
# GEN_CONFIG (default ../shared/tools/gen_config.py), PG_CLUSTER (default tools/pg-cluster.sh).
set -euo pipefail

KILLS=${1:-30}
TENANTS=${2:-1000}
BACKEND=${3:-sqlite}
SEED=${4:-1}
# shellcheck source=lib/suite.sh
source "$(dirname "$0")/lib/suite.sh"
CHECK=$ROOT/tools/check_state_key.py
[ "$KILLS" -ge 2 ] || { echo "error: KILLS must be at least 2" >&2; exit 2; }
newkey() { python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'; }

case "$BACKEND" in
sqlite)
    command -v sqlite3 >/dev/null || { echo "error: the sqlite3 command-line tool is needed" >&2; exit 2; }
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/orgctl-rekey-crash.XXXXXX")
    KEEP=0
    cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept $WORK for inspection" >&2; fi; }
    trap cleanup EXIT
    ;;
postgres)
    # shellcheck source=lib/pg-suite.sh
    source "$(dirname "$0")/lib/pg-suite.sh"
    pg_suite_start rekey-crash
    ;;
*) echo "error: BACKEND must be sqlite or postgres" >&2; exit 2 ;;
esac
export ORGCTL_NOW=2026-11-22T12:00:00Z ORGCTL_ACTOR=rekey-crash-loop
KEYS=("$(newkey)" "$(newkey)")
for i in 0 1 2 3; do export "REKEY_HOOK_SECRET_$i=rekey-loop-hook-$i-$(newkey)"; done
REKEY_OIDC_SECRET="rekey-loop-oidc-$(newkey)"
export REKEY_OIDC_SECRET

echo "generating $TENANTS tenants with webhooks and OIDC providers..."
python3 "$GEN" "$WORK/config" "$TENANTS" --members 4 --teams 1 --per-file 1 >/dev/null
python3 - "$WORK/config/tenants" <<'EOF'
import os, re, sys
folder = sys.argv[1]
for index, name in enumerate(sorted(os.listdir(folder))):
    path = os.path.join(folder, name)
    text = open(path).read()
    slug = re.search(r"^slug: (\S+)$", text, re.M).group(1)
    text += (f"webhooks:\n  events:\n    url: https://hooks.{slug}.example.com/orgctl\n    events: [member.*]\n"
             f"    secret: {{env: REKEY_HOOK_SECRET_{index % 4}}}\n")
    if index % 10 == 0:  # one tenant in ten on the business plan, with an OIDC provider
        text = text.replace("\nplan: professional\n", "\nplan: business\n")
        text += (f"sso:\n  providers:\n    idp:\n      type: oidc\n      issuer: https://idp.{slug}.example.com\n"
                 f"      clientId: client-{slug}\n      clientSecret: {{env: REKEY_OIDC_SECRET}}\n")
    open(path, "w").write(text)
EOF

BASE=$WORK/base.db # SQLite: what every kill starts from
state_args() { if [ "$BACKEND" = sqlite ]; then echo "--state" "$WORK/killed.db"; else echo "${STATE[@]}"; fi; }
check_target() { if [ "$BACKEND" = sqlite ]; then echo "$WORK/killed.db"; else echo "$SERVER --schema orgctl"; fi; }
audit_file() { # the SQLite file tools/verify_audit.py reads
    if [ "$BACKEND" = sqlite ]; then echo "$WORK/killed.db"; return; fi
    rm -f "$WORK/audit.db"
    {
        echo "CREATE TABLE orgctl_audit (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);"
        echo "CREATE TABLE orgctl_merkle (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL);"
        echo "BEGIN;"
        psql -X -q -A -t -d "$SERVER" -c "SELECT format('INSERT INTO orgctl_audit VALUES (%s, X''%s'', X''%s'', X''%s'');', seq, encode(entry, 'hex'), encode(prev_hash, 'hex'), encode(hash, 'hex')) FROM orgctl.orgctl_audit ORDER BY seq"
        psql -X -q -A -t -d "$SERVER" -c "SELECT format('INSERT INTO orgctl_merkle VALUES (%s, %s, X''%s'');', level, idx, encode(hash, 'hex')) FROM orgctl.orgctl_merkle ORDER BY level, idx"
        echo "COMMIT;"
    } | sqlite3 "$WORK/audit.db"
    echo "$WORK/audit.db"
}
entries() {
    if [ "$BACKEND" = sqlite ]; then sqlite3 "$WORK/killed.db" 'SELECT count(*) FROM orgctl_audit'
    else psql -X -q -A -t -d "$SERVER" -c 'SELECT count(*) FROM orgctl.orgctl_audit'; fi
}
prepare() { # a fresh copy of the base database (SQLite); the one schema (PostgreSQL)
    if [ "$BACKEND" = sqlite ]; then rm -f "$WORK/killed.db" "$WORK/killed.db-wal" "$WORK/killed.db-shm"; cp "$BASE" "$WORK/killed.db"; fi
}

# The first apply, with key A.
if [ "$BACKEND" = sqlite ]; then
    ORGCTL_STATE_KEY=${KEYS[0]} "$ORGCTL" apply "$WORK/config" --state "$BASE" --auto-approve --source rekey-crash-loop --quiet >/dev/null
    sqlite3 "$BASE" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
else
    # shellcheck disable=SC2046
    ORGCTL_STATE_KEY=${KEYS[0]} "$ORGCTL" apply "$WORK/config" $(state_args) --auto-approve --source rekey-crash-loop --quiet >/dev/null
fi
# shellcheck disable=SC2046
secrets=$(prepare && python3 "$CHECK" $(check_target) "${KEYS[0]}" | head -1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["secrets"])')

current=0 # the key that works now (SQLite: always A before a rekey)
rekey() { # from the current key to the other; exec, so that `rekey &` gives orgctl's own pid to kill (run it in a subshell)
    # shellcheck disable=SC2046
    ORGCTL_STATE_KEY=${KEYS[$current]} ORGCTL_NEW_STATE_KEY=${KEYS[$((1 - current))]} exec "$ORGCTL" state rekey $(state_args) --quiet --no-color
}
prepare
start=$(date +%s%N)
(rekey) >/dev/null
duration_ns=$(($(date +%s%N) - start))
[ "$BACKEND" = postgres ] && current=1
echo "$TENANTS tenants, $secrets secrets: one rekey takes $((duration_ns / 1000000)) ms; killing it $KILLS times"

old=0 new=0 failures=0 killed=0 midwrite=0 finished=0 attempt=0
delays=()
# Until KILLS rekeys were killed while running (at most 4 * KILLS attempts): a rekey that finishes before
# its kill is checked like the others, and the next moments are spread over its shorter length, as the
# machine's load (and with it a rekey's length) varies.
while [ "$killed" -lt "$KILLS" ] && [ "$attempt" -lt $((4 * KILLS)) ]; do
    i=$attempt
    attempt=$((attempt + 1))
    prepare
    count=$(entries)
    # The kill lands at a random moment inside the k-th of KILLS slices of one rekey (k = kills so far; lib/suite.sh).
    delay=$(kill_moment "$duration_ns" "$killed" "$KILLS" "$SEED" "$i")
    delays+=("$delay")
    launched=$(date +%s%N)
    run_killed "$delay" "$WORK/rekey.err" rekey
    status=$KILL_STATUS
    if [ "$status" -eq 0 ]; then
        finished=$((finished + 1))
        elapsed=$(($(date +%s%N) - launched))
        [ "$elapsed" -lt "$duration_ns" ] && duration_ns=$elapsed
    fi
    problem=""
    if [ "$status" -eq 137 ]; then
        killed=$((killed + 1))
        if [ "$BACKEND" = sqlite ] && [ -s "$WORK/killed.db-wal" ]; then midwrite=$((midwrite + 1)); fi
    elif [ "$status" -ne 0 ]; then
        problem="rekey exited $status: $(head -c 300 "$WORK/rekey.err")"
    fi
    # shellcheck disable=SC2046
    if ! report=$(python3 "$CHECK" $(check_target) "${KEYS[$current]}" "${KEYS[$((1 - current))]}"); then
        problem="$problem check_state_key.py: $report"
    fi
    working=$(printf '%s\n' "$report" | python3 -c 'import json, sys; r = [json.loads(l) for l in sys.stdin if l.strip()]; print(next((i for i, x in enumerate(r) if x["matches"]), -1))')
    if [ "$working" = 0 ]; then
        w=$current; old=$((old + 1)); expected=$count
    elif [ "$working" = 1 ]; then
        w=$((1 - current)); new=$((new + 1)); expected=$((count + 1))
    else
        w=$current; problem="$problem no key matches"
    fi
    # shellcheck disable=SC2046
    if ! out=$(ORGCTL_STATE_KEY=${KEYS[$w]} "$ORGCTL" plan "$WORK/config" $(state_args) --detailed-exitcode --quiet --no-color 2>&1 >/dev/null); then
        problem="$problem plan with the working key: $(printf '%s' "$out" | head -c 300)"
    fi
    # shellcheck disable=SC2046
    if out=$(ORGCTL_STATE_KEY=${KEYS[$((1 - w))]} "$ORGCTL" audit verify $(state_args) 2>&1); then
        problem="$problem the other key was not refused: $out"
    fi
    # shellcheck disable=SC2046
    if ! out=$(ORGCTL_STATE_KEY=${KEYS[$w]} "$ORGCTL" audit verify $(state_args) 2>&1); then problem="$problem audit verify: $out"; fi
    if ! out=$(python3 "$VERIFY" "$(audit_file)" 2>&1); then problem="$problem verify_audit.py: $out"; fi
    if [ "$(entries)" != "${expected:-x}" ]; then problem="$problem $(entries) audit entries, expected $expected"; fi
    if [ -n "$problem" ]; then
        failures=$((failures + 1))
        KEEP=1
        [ "$BACKEND" = sqlite ] && cp "$WORK/killed.db" "$WORK/failed-$i.db"
        echo "kill $i after ${delay}s: FAILED:$problem"
    fi
    [ "$BACKEND" = postgres ] && current=$w
done

distinct=$(printf '%s\n' "${delays[@]}" | awk '{ printf "%d\n", $1 * 1000 }' | sort -u | wc -l)
range=$(printf '%s\n' "${delays[@]}" | sort -n | sed -n '1p;$p' | paste -sd ' ')
echo "$BACKEND: $attempt rekeys, $killed killed while running$([ "$BACKEND" = sqlite ] && echo " ($midwrite of them with a non-empty WAL)"), $finished finished first ($distinct distinct kill moments at 1 ms, ${range/ / s to } s): the old key worked after $old, the new key after $new, $failures failed"
[ "$failures" -eq 0 ] && [ "$killed" -ge "$KILLS" ]
