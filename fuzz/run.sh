#!/usr/bin/env bash
# Builds and runs one libFuzzer target (see fuzz/README.md): TARGET is yaml (FuzzYAMLLoader, the
# default), plan (FuzzPlanFile, the saved-plan decoder) or audit (FuzzAuditChain, the chain verifier).
#
#   fuzz/run.sh [TARGET] [SECONDS] [libFuzzer flags...]  fuzz for SECONDS (default 600)
#   fuzz/run.sh [TARGET|all] --smoke                     build, then 20000 runs from the committed corpus (CI)
#   fuzz/run.sh [TARGET] --merge                         fold what runs found into fuzz/corpus/TARGET (a few hundred files)
#
# New inputs go to fuzz/.build/corpus-work (yaml) or fuzz/.build/corpus-work-TARGET, never straight
# into the committed corpus; crashes, leaks and timeouts go to fuzz/artifacts/ (prefixed with the
# target for plan and audit). Exits non-zero when libFuzzer found a problem.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target=yaml
case "${1:-}" in
yaml|plan|audit) target="$1"; shift ;;
all)
    shift
    [[ "${1:-}" == --smoke ]] || { echo "usage: $0 all --smoke" >&2; exit 2; }
    for t in yaml plan audit; do "$0" "$t" "$@"; done
    exit 0
    ;;
esac
seeds="$here/corpus/$target"
work="$here/.build/corpus-work"
artifacts="$here/artifacts"
prefix="$artifacts/"
if [[ "$target" != yaml ]]; then work="$work-$target"; prefix="$artifacts/$target-"; fi
mode="${1:-600}"
[[ $# -gt 0 ]] && shift

binary="$("$here/build.sh" "$target" 2> >(grep -v 'ld.lld: warning\|^$' >&2))"
mkdir -p "$work" "$artifacts"

flags=(-dict="$here/$target.dict" -max_len=65536 -timeout=5 -rss_limit_mb=2048
       -artifact_prefix="$prefix" -print_final_stats=1)

case "$mode" in
--smoke)
    # A fresh scratch corpus each time, so the result depends on the committed corpus only.
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    exec_start=$SECONDS
    "$binary" "${flags[@]}" -runs=20000 -seed=1 "$scratch" "$seeds" "$@"
    echo "run.sh: $target smoke passed ($((SECONDS - exec_start)) s of fuzzing)"
    ;;
--merge)
    # A set-cover merge into a fresh folder keeps the fewest inputs that reach every feature the
    # committed corpus and the work corpus reach, counting edges only (-use_counters=0: hit-count
    # buckets would keep ~750 files after a 10-minute run); the hand-written seeds stay as they are.
    fresh="$(mktemp -d)"
    trap 'rm -rf "$fresh"' EXIT
    "$binary" "${flags[@]}" -merge=1 -set_cover_merge=1 -use_counters=0 "$fresh" "$seeds" "$work" "$@"
    # Named seeds (anything not named by its SHA-1) stay; earlier merged inputs are replaced.
    find "$seeds" -type f -regextype posix-egrep -regex '.*/[0-9a-f]{40}' -delete
    for f in "$fresh"/*; do
        sum="$(sha1sum "$f" | cut -d' ' -f1)"
        # Named seeds are kept already; do not add a second copy of one.
        grep -qlF "$sum" <(sha1sum "$seeds"/* | cut -d' ' -f1) || cp "$f" "$seeds/$sum"
    done
    echo "run.sh: committed corpus now holds $(ls "$seeds" | wc -l) files ($(du -sh "$seeds" | cut -f1))"
    ;;
*)
    [[ "$mode" =~ ^[0-9]+$ ]] || { echo "usage: $0 [yaml|plan|audit] [SECONDS|--smoke|--merge] [libFuzzer flags...]" >&2; exit 2; }
    "$binary" "${flags[@]}" -max_total_time="$mode" "$work" "$seeds" "$@"
    ;;
esac
