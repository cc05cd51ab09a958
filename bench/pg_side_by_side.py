#!/usr/bin/env python3
"""Two orgctl binaries side by side on the PostgreSQL rows of bench.py, interleaved in one run.

    bench/pg_side_by_side.py --before OLD/orgctl --after NEW/orgctl --config DIR --changed DIR1 \
        --pg-host SOCKETDIR --pg-port PORT [--repeats 3] [--rows first,plan,noop,change]

Each round runs, in turn: the floor (pg_dump -n orgctl of the base database restored with psql
into an empty one, as bench.py's `pg apply (first, empty)` row), then each binary. Rows:

- first:  apply into an empty database (dropped and created before every run), held to the floor.
- plan:   `plan` of the base database (no changes).
- noop:   apply of what the database holds, on a copy of the base (held to that binary's plan).
- change: apply of DIR1 (`gen_config.py --change 1 --seed 1`) into a fresh copy of the base.

For each run: wall time, orgctl's user+system CPU and peak RSS (GNU time), and the server's CPU
(the postmaster's reaped children plus its living ones, from /proc: the backends of the run
exit before it is read). Prints medians and the load average; raw runs go to --json.
The server must be local (its postmaster.pid under --pg-data, default SOCKETDIR/data).
"""
import argparse, base64, json, os, statistics, subprocess, sys, tempfile, time

CLK = os.sysconf("SC_CLK_TCK")


def server_cpu(postmaster):
    def fields(pid):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    own = fields(postmaster)
    total = sum(int(x) for x in own[11:15])  # utime, stime, cutime, cstime
    for child in subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split():
        try:
            f = fields(child)
            total += int(f[11]) + int(f[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / CLK


class Bench:
    def __init__(self, a):
        self.a = a
        self.env = dict(os.environ)
        self.env.setdefault("ORGCTL_STATE_KEY", base64.b64encode(os.urandom(32)).decode())
        self.env["NO_COLOR"] = "1"
        with open(os.path.join(a.pg_data or os.path.join(a.pg_host, "data"), "postmaster.pid")) as f:
            self.postmaster = int(f.readline())
        self.results = {}

    def uri(self, db):
        a = self.a
        return f"postgresql:///{db}?host={a.pg_host}&port={a.pg_port}&user={a.pg_user}"

    def psql(self, *sql, db="postgres"):
        argv = ["psql", self.uri(db), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        for s in sql:
            argv += ["-c", s]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)

    def recreate(self, db, template=None):
        self.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', f'CREATE DATABASE "{db}"' + (f' TEMPLATE "{template}"' if template else ""))

    def timed(self, argv, ok=(0,)):
        with tempfile.NamedTemporaryFile("r") as t:
            before = server_cpu(self.postmaster)
            start = time.monotonic()
            p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", t.name] + argv, env=self.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            wall = time.monotonic() - start
            time.sleep(0.2)  # the backend exits and is reaped
            server = server_cpu(self.postmaster) - before
            if p.returncode not in ok:
                sys.exit(f"{argv[:3]} failed ({p.returncode}): {p.stderr[-2000:]}")
            user, system, rss = t.read().split()[-3:]
        return {"wall": wall, "cpu": float(user) + float(system), "server": server, "rss_mib": int(rss) / 1024}

    def record(self, row, who, run):
        self.results.setdefault(row, {}).setdefault(who, []).append(run)

    def run(self):
        a, binaries = self.a, [("before", self.a.before), ("after", self.a.after)]
        rows = a.rows.split(",")
        # The base database, applied once (untimed) by the new binary.
        self.recreate("side_base")
        self.timed([a.after, "apply", "--auto-approve", "--quiet", "--state", self.uri("side_base"), a.config])
        for r in range(a.repeats):
            if "first" in rows:
                self.recreate("side_floor")
                dump = (f"pg_dump '{self.uri('side_base')}' -n orgctl --no-owner | "
                        f"psql '{self.uri('side_floor')}' -X -q -v ON_ERROR_STOP=1 > /dev/null")
                self.record("first", "floor", self.timed(["sh", "-c", dump]))
                for who, binary in binaries:
                    self.recreate("side_first")
                    self.record("first", who, self.timed([binary, "apply", "--auto-approve", "--quiet", "--state", self.uri("side_first"), a.config]))
            for who, binary in binaries:
                plan = [binary, "plan", "--state", self.uri("side_base"), a.config]
                if "plan" in rows or "noop" in rows or "change" in rows:
                    self.record("plan", who, self.timed(plan))
                if "noop" in rows:
                    if r == 0:
                        self.recreate(f"side_noop_{who}", "side_base")
                    self.record("noop", who, self.timed([binary, "apply", "--auto-approve", "--quiet", "--state", self.uri(f"side_noop_{who}"), a.config]))
                if "change" in rows:
                    self.recreate("side_change", "side_base")
                    self.record("change", who, self.timed([binary, "apply", "--auto-approve", "--quiet", "--state", self.uri("side_change"), a.changed]))
            print(f"round {r + 1}/{a.repeats} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        self.report()

    def report(self):
        med = lambda runs, k: statistics.median(x[k] for x in runs)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'row':8s} {'who':7s} {'wall s (runs)':32s} {'cpu s':>6s} {'server s':>8s} {'rss MiB':>7s} {'x':>6s}")
        for row, sides in self.results.items():
            reference = sides.get("floor") if row == "first" else None
            for who, runs in sides.items():
                ratio = ""
                if who != "floor":
                    ref = reference if reference else (self.results["plan"][who] if row in ("noop", "change") else None)
                    if ref:
                        ratio = f"{med(runs, 'wall') / med(ref, 'wall'):.2f}x"
                walls = ", ".join(f"{x['wall']:.1f}" for x in runs)
                print(f"{row:8s} {who:7s} {med(runs, 'wall'):6.2f} ({walls})".ljust(49) +
                      f" {med(runs, 'cpu'):6.2f} {med(runs, 'server'):8.2f} {med(runs, 'rss_mib'):7.0f} {ratio:>6s}")
        if self.a.json:
            with open(self.a.json, "w") as f:
                json.dump(self.results, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--changed")
    p.add_argument("--pg-host", required=True)
    p.add_argument("--pg-port", required=True)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--pg-data")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rows", default="first,plan,noop,change")
    p.add_argument("--json")
    a = p.parse_args()
    if "change" in a.rows and not a.changed:
        p.error("--rows change needs --changed")
    Bench(a).run()


if __name__ == "__main__":
    main()
