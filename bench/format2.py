#!/usr/bin/env python3
"""What audit entry format 2 costs (issue 16): NEW against a format 1 BASELINE, side by side.

Usage: bench/format2.py --orgctl NEW --baseline OLD --config DIR [--changed DIR] [--repeats 3]
                        [--instructions DIR] [--out DIR]

NEW writes format 2 (pseudonymous subject tokens and the subject tables); OLD is a build of the
last format 1 release with NEW's shared speedups cherry-picked onto it (bench/README.md says
which), so that the difference is the format and nothing else. Both read the same --config.

Row "first apply": the whole configuration into an empty SQLite database, OLD, NEW, OLD, NEW, ...
--repeats rounds. Medians of CPU (user+system, all threads), wall and peak RSS, and the database's
size; NEW / OLD for each.
Row "1% apply" (with --changed, e.g. gen_config.py --change 1 --seed 1 of the same config): the
changed configuration applied to a fresh copy of each binary's own first-apply database, same
interleaving.
With --instructions DIR (a smaller configuration, e.g. 500 tenants): the first apply of each under
`valgrind --tool=callgrind`, whose instruction counts repeat whatever else the machine runs.

Standard library only; reuses bench.py's measurement (GNU time around a spawned command).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import execute, log  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgctl", required=True, help="the binary writing format 2")
    parser.add_argument("--baseline", required=True, help="the binary writing format 1")
    parser.add_argument("--config", required=True, help="the configuration of the first apply")
    parser.add_argument("--changed", help="the configuration of the 1%% apply (optional)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instructions", help="a small configuration to count instructions of (optional)")
    parser.add_argument("--out", default="bench/out/format2")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("ORGCTL_STATE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    env.setdefault("ORGCTL_ACTOR", "bench")
    binaries = [("format 1", os.path.abspath(args.baseline)), ("format 2", os.path.abspath(args.orgctl))]

    def database(label):
        return os.path.join(args.out, label.replace(" ", "") + ".db")

    def fresh(path):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)

    first = {label: [] for label, _ in binaries}
    sizes = {}
    for round_ in range(args.repeats):
        for label, binary in binaries:
            path = database(label)
            fresh(path)
            run = execute([binary, "apply", "--auto-approve", "--state", path, args.config], env,
                          os.path.join(args.out, "first.log"))
            first[label].append(run)
            sizes[label] = os.path.getsize(path)
            log(f"first apply, round {round_ + 1}, {label}: {run.cpu:.2f} s CPU, {run.wall:.2f} s wall")
    change = {label: [] for label, _ in binaries}
    if args.changed:
        for round_ in range(args.repeats):
            for label, binary in binaries:
                copy = database(label) + ".copy"
                fresh(copy)
                shutil.copyfile(database(label), copy)
                run = execute([binary, "apply", "--auto-approve", "--state", copy, args.changed], env,
                              os.path.join(args.out, "change.log"))
                change[label].append(run)
                log(f"1% apply, round {round_ + 1}, {label}: {run.cpu:.2f} s CPU, {run.wall:.2f} s wall")
    counts = {}
    if args.instructions:
        for label, binary in binaries:
            path = database(label) + ".small"
            fresh(path)
            result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                                     binary, "apply", "--auto-approve", "--state", path, args.instructions],
                                    env=env, capture_output=True, text=True)
            found = re.search(r"Collected : (\d+)", result.stderr)
            if result.returncode != 0 or not found:
                sys.exit(f"callgrind of {label} failed:\n{result.stderr[-2000:]}")
            counts[label] = int(found.group(1))

    def medians(runs):
        return (statistics.median(r.cpu for r in runs), statistics.median(r.wall for r in runs),
                statistics.median(r.rss_kib for r in runs) / 1024)

    print("| row | binary | cpu s | wall s | rss MiB | database MB | x (cpu) |")
    print("|---|---|---|---|---|---|---|")
    base = medians(first["format 1"])
    for label, _ in binaries:
        cpu, wall, rss = medians(first[label])
        each = ", ".join(f"{r.cpu:.2f}" for r in first[label])
        print(f"| first apply | {label} | {cpu:.2f} ({each}) | {wall:.2f} | {rss:.0f} | {sizes[label] / 1e6:.0f} | {cpu / base[0]:.3f} |")
    if args.changed:
        base = medians(change["format 1"])
        for label, _ in binaries:
            cpu, wall, rss = medians(change[label])
            each = ", ".join(f"{r.cpu:.2f}" for r in change[label])
            print(f"| 1% apply | {label} | {cpu:.2f} ({each}) | {wall:.2f} | {rss:.0f} | | {cpu / base[0]:.3f} |")
    if counts:
        print(f"\ninstructions of the first apply of {args.instructions}: format 1 {counts['format 1'] / 1e9:.3f} G, "
              f"format 2 {counts['format 2'] / 1e9:.3f} G, x {counts['format 2'] / counts['format 1']:.3f}")


if __name__ == "__main__":
    main()
