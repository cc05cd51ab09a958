#!/usr/bin/env python3
"""The audit Merkle tree's cost and speed (measurements, not tests; see bench/README.md).

Usage: bench/merkle.py --orgctl NEW --baseline OLD [--tenants 210] [--entries 1000000] [--repeats 5]

Row 1, "apply with tree": the first apply of gen_config.py's configuration of --tenants tenants
(210 tenants give 10,081 changes, one audit entry each) into an empty database, by NEW (which
maintains the Merkle tree) and by OLD (a build of the commit before the tree), interleaved
OLD, NEW, OLD, NEW, ... R times. Reports median wall time and NEW / OLD.

Row 2, "proofs on a large log": a database whose log holds --entries synthetic entries (valid
canonical entries with valid chain hashes, written straight into orgctl_audit by this script),
then migrated by NEW (which computes the tree once); times `audit checkpoint`, `audit prove`,
`audit consistency` (from a checkpoint taken 10 entries earlier) and `audit verify`, with peak
RSS, and `audit verify` of a log a tenth the size for comparison (bounded memory).
"""

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time


def run(argv, env):
    """(wall seconds, peak RSS MiB, stdout, user+system CPU seconds) of one run, RSS and CPU from GNU time."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S"] + argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(argv), proc.stdout, proc.stderr))
    rss, user, system = proc.stderr.strip().splitlines()[-1].split()
    return wall, int(rss) / 1024, proc.stdout, float(user) + float(system)


def append_entries(db_path, count):
    """Appends `count` canonical entries with valid chain hashes (no tree rows)."""
    db = sqlite3.connect(db_path)
    row = db.execute("SELECT seq, hash FROM orgctl_audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, head = (row[0], row[1]) if row else (0, bytes(32))
    batch = []
    for _ in range(count):
        seq += 1
        entry = {"action": "create", "actor": "bench", "address": "tenant/t%d" % seq, "after": {"name": "Tenant %d" % seq},
                 "before": None, "planId": "bench", "seq": seq, "source": "bench", "time": "2026-11-22T12:00:00Z", "v": 1}
        data = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()  # ASCII only: this is RFC 8785
        leaf = hashlib.sha256(b"\x00" + data).digest()
        digest = hashlib.sha256(head + leaf).digest()
        batch.append((seq, data, head, digest))
        head = digest
        if len(batch) == 100000:
            db.executemany("INSERT INTO orgctl_audit VALUES (?, ?, ?, ?)", batch)
            batch = []
    db.executemany("INSERT INTO orgctl_audit VALUES (?, ?, ?, ?)", batch)
    db.commit()
    db.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--orgctl", required=True)
    parser.add_argument("--baseline", required=True, help="orgctl built from the commit before the Merkle tree")
    parser.add_argument("--tenants", type=int, default=210)
    parser.add_argument("--entries", type=int, default=1000000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--apply-only", action="store_true", help="only the first row")
    parser.add_argument("--large-only", action="store_true", help="only the second row")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the instructions of one apply of each under valgrind (deterministic, load-independent)")
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="orgctl-merkle-bench-")
    env = dict(os.environ, ORGCTL_STATE_KEY=os.environ.get("ORGCTL_STATE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
               ORGCTL_NOW="2026-11-22T12:00:00Z", ORGCTL_ACTOR="bench", ORGCTL_AUDIT_ORIGIN="bench.example/log")
    try:
        config = os.path.join(work, "config")
        subprocess.run([sys.executable, os.path.join(args.shared, "tools", "gen_config.py"), config, str(args.tenants)],
                       check=True, capture_output=True)
        db = os.path.join(work, "apply.db")
        if not args.large_only:
            walls = {"old": [], "new": []}
            cpus = {"old": [], "new": []}
            changes = None
            for _ in range(args.repeats):
                for name, binary in (("old", args.baseline), ("new", args.orgctl)):
                    for suffix in ("", "-wal", "-shm"):
                        if os.path.exists(db + suffix):
                            os.remove(db + suffix)
                    wall, _, out, cpu = run([binary, "apply", config, "--auto-approve", "--source", "bench", "--state", db, "-q"], env)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
                    changes = out.strip().splitlines()[-1]
            old, new = statistics.median(walls["old"]), statistics.median(walls["new"])
            print("apply with tree: %s" % changes)
            print("  wall: without tree (baseline) %.3f s, with tree %.3f s, ratio %.3f (%+.1f%%); spread old %.0f%% new %.0f%%" % (
                old, new, new / old, (new / old - 1) * 100, (max(walls["old"]) - min(walls["old"])) / old * 100,
                (max(walls["new"]) - min(walls["new"])) / new * 100))
            old_cpu, new_cpu = statistics.median(cpus["old"]), statistics.median(cpus["new"])
            print("  cpu:  without tree (baseline) %.2f s, with tree %.2f s, ratio %.3f (%+.1f%%)  [user+sys, 10 ms steps, median of %d]" % (
                old_cpu, new_cpu, new_cpu / old_cpu, (new_cpu / old_cpu - 1) * 100, args.repeats))

            if args.instructions:
                counts = {}
                for name, binary in (("old", args.baseline), ("new", args.orgctl)):
                    for suffix in ("", "-wal", "-shm"):
                        if os.path.exists(db + suffix):
                            os.remove(db + suffix)
                    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary, "apply", config,
                                           "--auto-approve", "--source", "bench", "--state", db, "-q"], env=env, capture_output=True, text=True)
                    counts[name] = int([line for line in proc.stderr.splitlines() if "Collected :" in line][-1].split()[-1])
                print("  instructions (callgrind): without tree %.1f M, with tree %.1f M, ratio %.3f (%+.1f%%)" % (
                    counts["old"] / 1e6, counts["new"] / 1e6, counts["new"] / counts["old"], (counts["new"] / counts["old"] - 1) * 100))
        if args.apply_only:
            return
        # A large log: schema from a small apply, then synthetic entries, then the one-time tree migration.
        big = os.path.join(work, "big.db")
        small = os.path.join(work, "small")
        os.makedirs(small)
        shutil.copy(os.path.join(config, "platform.yaml"), small)
        run([args.orgctl, "apply", small, "--auto-approve", "--source", "bench", "--state", big, "-q"], env)
        tenth = os.path.join(work, "tenth.db")
        shutil.copy(big, tenth)
        append_entries(tenth, args.entries // 10)
        append_entries(big, args.entries - 10)
        connection = sqlite3.connect(big)
        connection.executescript("DROP TABLE orgctl_merkle; PRAGMA user_version = 1;")
        connection.close()
        wall, rss, out, _ = run([args.orgctl, "audit", "checkpoint", "--state", big], env)
        migrated_size = int(out.splitlines()[1])
        print("large log: %d entries" % migrated_size)
        print("  one-time migration computing the tree, then checkpoint: %.2f s, %.0f MiB" % (wall, rss))
        with open(os.path.join(work, "old.checkpoint"), "w") as handle:
            handle.write(out)
        append_entries(big, 10)
        # Entries written behind orgctl's back have no tree rows: let the migration compute them again (untimed).
        connection = sqlite3.connect(big)
        connection.executescript("DROP TABLE orgctl_merkle; PRAGMA user_version = 1;")
        connection.close()
        run([args.orgctl, "audit", "checkpoint", "--state", big], env)
        size = migrated_size + 10
        for label, argv in (
                ("checkpoint", ["audit", "checkpoint"]),
                ("prove 1", ["audit", "prove", "1"]),
                ("prove %d" % (size // 2), ["audit", "prove", str(size // 2)]),
                ("prove %d" % size, ["audit", "prove", str(size)]),
                ("consistency %d -> %d" % (size - 10, size), ["audit", "consistency", os.path.join(work, "old.checkpoint")])):
            samples = [run([args.orgctl] + argv + ["--state", big], env) for _ in range(args.repeats)]
            print("  %-28s %6.1f ms (median of %d, whole process), %.0f MiB" % (
                label, statistics.median(s[0] for s in samples) * 1000, args.repeats, max(s[1] for s in samples)))
        for label, path, count in (("verify", big, size), ("verify (a tenth)", tenth, args.entries // 10 + migrated_size - args.entries + 10)):
            wall, rss, out, _ = run([args.orgctl, "audit", "verify", "--checkpoint", os.path.join(work, "old.checkpoint"), "--state", path]
                                 if path == big else [args.orgctl, "audit", "verify", "--state", path], env)
            print("  %-28s %6.2f s for %d entries, peak RSS %.0f MiB" % (label, wall, count, rss))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
