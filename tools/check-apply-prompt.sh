#!/usr/bin/env bash
# Drives `orgctl apply`'s confirmation prompt in a real terminal (a tmux pane) and checks
# what a person at a terminal relies on:
#   1. the plan is coloured on a terminal, and NO_COLOR turns colour off;
#   2. answering anything but `yes` aborts: exit 1, "Apply cancelled", no database written;
#   3. answering `yes` applies: exit 0, the database exists and its audit chain verifies.
#
# Usage: tools/check-apply-prompt.sh [path/to/orgctl]   (default: .build/debug/orgctl)
# Needs tmux (apt-get install tmux). Exit status 0 when every check passes, 1 otherwise,
# 2 when tmux or orgctl is missing. The end-to-end tests run it when tmux is installed.
set -euo pipefail

orgctl="$(realpath "${1:-.build/debug/orgctl}")"
command -v tmux >/dev/null || { echo "check-apply-prompt: tmux is not installed (apt-get install tmux)" >&2; exit 2; }
[ -x "$orgctl" ] || { echo "check-apply-prompt: no orgctl at $orgctl (run swift build)" >&2; exit 2; }

work="$(mktemp -d)"
sockets=()
stop_server() {
    local pid
    pid="$(tmux -L "$1" display-message -p '#{pid}' 2>/dev/null || true)"
    tmux -L "$1" kill-server 2>/dev/null || true
    # A parent that ignores SIGHUP (some test runners) leaves the server waiting for its panes.
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
}
cleanup() {
    for socket in "${sockets[@]}"; do stop_server "$socket"; done
    rm -rf "$work"
}
# Start tmux with default signal handling even when this script inherited ignored signals.
launch=(env)
if env --default-signal true 2>/dev/null; then launch=(env --default-signal); fi
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

"$orgctl" init "$work/config" >/dev/null 2>&1
# Keep a pane on screen after its command exits, so it can be read.
echo "set -g remain-on-exit on" > "$work/tmux.conf"

# Runs orgctl apply in a fresh tmux pane, answers the prompt with $2, and leaves the pane's
# text (with escape sequences) in $work/$1.pane and the exit status in $work/$1.status.
run_apply() {
    local name="$1" answer="$2" extra_env="${3:-}"
    local status="$work/$name.status"
    # A tmux server of its own per run: reusing one just killed races with its exit.
    local socket="orgctl-prompt-$$-$name"
    sockets+=("$socket")
    "${launch[@]}" tmux -L "$socket" -f "$work/tmux.conf" new-session -d -x 120 -y 200 -c "$work" \
        "env -u NO_COLOR TERM=xterm-256color $extra_env '$orgctl' apply config --state '$work/orgctl.db'; echo \$? > '$status'"
    # Wait for the question (at most 20 s), then answer it.
    for _ in $(seq 200); do
        if tmux -L "$socket" capture-pane -p | grep -q "Only 'yes' is accepted"; then break; fi
        sleep 0.1
    done
    tmux -L "$socket" send-keys "$answer" Enter
    for _ in $(seq 200); do
        [ -s "$status" ] && break
        sleep 0.1
    done
    tmux -L "$socket" capture-pane -p -e -S - > "$work/$name.pane"
    stop_server "$socket"
}

# 1 and 2: decline with "no", then with "YES" (only the exact word counts).
for answer in no YES y; do
    run_apply "decline-$answer" "$answer"
    if [ "$(cat "$work/decline-$answer.status" 2>/dev/null)" != 1 ]; then
        fail "answering '$answer' should exit 1, got '$(cat "$work/decline-$answer.status" 2>/dev/null)'"
    elif ! grep -q "Apply cancelled; nothing was applied." "$work/decline-$answer.pane"; then
        fail "answering '$answer' did not say the apply was cancelled"
    elif [ -e "$work/orgctl.db" ]; then
        fail "answering '$answer' wrote the database"
    else
        pass "answering '$answer' aborts and writes nothing"
    fi
done
if grep -q $'\e\\[' "$work/decline-no.pane"; then
    pass "the plan is coloured on a terminal"
else
    fail "no colour in the plan on a terminal"
fi

run_apply "no-color" "no" "NO_COLOR=1"
if grep -q $'\e\\[[0-9;]*m' "$work/no-color.pane"; then
    fail "NO_COLOR=1 still printed colour"
else
    pass "NO_COLOR=1 turns colour off"
fi

# 3: accept.
run_apply accept yes
if [ "$(cat "$work/accept.status" 2>/dev/null)" != 0 ]; then
    fail "answering 'yes' should exit 0, got '$(cat "$work/accept.status" 2>/dev/null)'"
elif ! grep -q "Apply complete:" "$work/accept.pane"; then
    fail "answering 'yes' did not report the apply"
elif ! "$orgctl" audit verify --state "$work/orgctl.db" >/dev/null; then
    fail "the audit chain written after 'yes' does not verify"
else
    pass "answering 'yes' applies"
fi

if [ "$failures" -gt 0 ]; then
    echo "check-apply-prompt: $failures check(s) failed; panes kept in $work" >&2
    trap - EXIT
    exit 1
fi
echo "check-apply-prompt: all checks passed"
