#!/usr/bin/env python3
"""Side-by-side measurements of orgctl against a floor (the least work the same job needs).

Called by bench/run.sh, which builds orgctl and the C floor program; see bench/README.md.
Every row runs a floor command and an orgctl command on the same input, R times each,
interleaved (floor, orgctl, floor, orgctl, ...) so that machine noise hits both, and reports
the medians of wall time, CPU time (user+sys, all threads) and peak RSS, and the ratio
orgctl/floor. Rows whose orgctl command does not exist yet are printed as skipped.

Standard library only.
"""
import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

TARGET = 2.0  # orgctl may take at most this many times the floor's wall time.
PG_TABLES = ["plans", "permissions", "events", "tenants", "roles", "role_permissions", "quotas", "security_policies",
             "members", "teams", "team_members", "sso_settings", "sso_providers", "webhooks", "api_keys",
             "orgctl_meta", "orgctl_resources", "orgctl_audit", "orgctl_merkle", "orgctl_lock"]
PG_ROWS = ["pg-plan", "pg-vs-sqlite", "pg-apply-noop", "pg-apply-first", "pg-apply-change", "pg-migrate"]


def log(message):
    print(message, file=sys.stderr, flush=True)


class Failure(Exception):
    """A measured command exited with an unexpected status."""


class Run:
    """One execution of one command: wall seconds, CPU seconds, peak RSS in KiB."""

    def __init__(self, wall, cpu, rss_kib):
        self.wall, self.cpu, self.rss_kib = wall, cpu, rss_kib


TIME = "/usr/bin/time"  # GNU time: reports the measured command's own peak RSS and CPU time


def execute(argv, env, log_path, ok=(0,)):
    """Runs argv to completion with stdout and stderr in log_path and returns its Run.

    Peak RSS and CPU time (user+sys, all threads) come from GNU time wrapped around the
    command: Linux carries the spawning process's peak RSS over exec, so measuring a child of
    this Python process directly would report Python's ~15 MiB as the floor's peak. Wall time
    is measured here, around spawn and wait (GNU time's own is rounded to 10 ms)."""
    stats = log_path + ".time"
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    command = [TIME, "-f", "%M %U %S", "-o", stats, "--"] + argv
    start = time.perf_counter()
    pid = os.posix_spawn(TIME, command, env, file_actions=actions)
    _, status, _ = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)  # GNU time exits with the command's status
    if code not in ok:
        with open(log_path, errors="replace") as f:
            tail = f.read().strip().splitlines()[-3:]
        raise Failure(f"exit {code}: {' | '.join(tail) or 'no output'} (full output in {log_path})")
    with open(stats) as f:
        # The format line is the last one (a failing command gets a line before it).
        rss_kib, user, system = f.read().strip().splitlines()[-1].split()
    return Run(wall, float(user) + float(system), int(rss_kib))


class Command:
    """A measured command: argv, the exit statuses that count as success, and an optional
    untimed step run before every execution (for example resetting a database file)."""

    def __init__(self, label, argv, ok=(0,), before=None, warm_up=True):
        self.label, self.argv, self.ok, self.before, self.warm_up = label, argv, ok, before, warm_up
        self.runs = []

    def once(self, env, log_path, timed=True):
        if self.before:
            self.before()
        run = execute(self.argv, env, log_path, self.ok)
        if timed:
            self.runs.append(run)
        return run

    def median(self, attribute):
        return statistics.median(getattr(r, attribute) for r in self.runs)

    def spread(self):
        walls = [r.wall for r in self.runs]
        return (max(walls) - min(walls)) / statistics.median(walls) if walls else 0.0


class Row:
    """One line pair of the table: a floor and an orgctl command on the same input."""

    def __init__(self, name, floor, subject, target=TARGET, skipped=None):
        self.name, self.floor, self.subject, self.target, self.skipped = name, floor, subject, target, skipped
        self.failed = None


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.orgctl = os.path.abspath(args.orgctl)
        self.floor = os.path.abspath(args.floor)
        self.config = os.path.join(self.out, f"gen-{args.tenants}")
        self.changed = os.path.join(self.out, f"gen-{args.tenants}-change1")
        self.env = dict(os.environ)
        # plan/apply read the state key from the environment; any fixed key will do for a
        # benchmark, so a fresh one is made per run unless the caller gives one.
        self.env.setdefault("ORGCTL_STATE_KEY", base64.b64encode(os.urandom(32)).decode())
        self.env["NO_COLOR"] = "1"
        self.commands = self.subcommands()
        self.facts = {}

    # MARK: inputs

    def subcommands(self):
        """The subcommands `orgctl --help` lists under SUBCOMMANDS."""
        text = subprocess.run([self.orgctl, "--help"], capture_output=True, text=True, env=self.env).stdout
        section = text.split("SUBCOMMANDS:", 1)[1] if "SUBCOMMANDS:" in text else ""
        return set(re.findall(r"^ {2}([a-z][a-z0-9-]*)\b", section, re.M))

    def has(self, command):
        return command in self.commands

    def generate(self, directory, extra):
        if os.path.isfile(os.path.join(directory, "platform.yaml")):
            return
        tool = os.path.join(self.args.shared, "tools", "gen_config.py")
        if not os.path.isfile(tool):
            sys.exit(f"bench: {tool} not found; set ORGCTL_SHARED to the folder that holds tools/gen_config.py")
        log(f"generating {directory}")
        partial = directory + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, tool, partial, str(self.args.tenants)] + extra, check=True,
                       stdout=subprocess.DEVNULL)
        os.rename(partial, directory)

    def state(self, name):
        return os.path.join(self.out, f"state-{self.args.tenants}-{name}.db")

    @staticmethod
    def remove_database(path):
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass

    @classmethod
    def copy_database(cls, source, destination):
        cls.remove_database(destination)
        for suffix in ("", "-wal"):
            if os.path.exists(source + suffix):
                shutil.copyfile(source + suffix, destination + suffix)

    # MARK: rows

    def floor_command(self, config, state=None, label=None):
        argv = [self.floor, config] + (["--state", state] if state else [])
        if label is None:
            label = "floor: libyaml parse" + (" + SELECT every state row" if state else "")
        return Command(label, argv)

    def orgctl_command(self, label, arguments, **options):
        return Command(label, [self.orgctl] + arguments, **options)

    def validate_row(self):
        return Row("validate", self.floor_command(self.config),
                   self.orgctl_command("orgctl validate", ["validate", self.config]))

    def missing(self, *commands):
        for command in commands:
            if not self.has(command):
                return f"skipped: orgctl has no {command} command yet"
        return None

    def first_apply_row(self):
        """apply of the whole configuration into an empty database (deleted before every run).
        The floor has no state to read; it is the parse alone."""
        database = self.state("first")
        return Row("apply (first, empty db)",
                   self.floor_command(self.config, label="floor: libyaml parse (the state is empty)"),
                   self.orgctl_command("orgctl apply --auto-approve", self.apply_arguments(database, self.config),
                                       before=lambda: self.remove_database(database), warm_up=False),
                   target=None, skipped=self.missing("apply"))

    def plan_row(self):
        """plan with no changes, against a database that holds the configuration."""
        database = self.state("plan")
        return Row("plan (no changes)", self.floor_command(self.config, self.state("base")),
                   self.orgctl_command("orgctl plan", ["plan", "--state", database, self.config],
                                       before=lambda: self.ensure_copy(database)),
                   target=2.5, skipped=self.missing("plan", "apply"))

    def no_change_plan(self):
        """The reference of the apply rows: orgctl plan of the configuration against an
        unchanged copy of the database holding it (the issue's targets for apply are relative to
        this plan), measured interleaved with the apply it is compared with."""
        database = self.state("plan")
        return self.orgctl_command("orgctl plan (no changes)", ["plan", "--state", database, self.config],
                                   before=lambda: self.ensure_copy(database))

    def noop_apply_row(self):
        """apply of the configuration the database already holds: nothing to write. Target:
        within 10% of the no-change plan."""
        database = self.state("noop")
        return Row("apply (no-op)", self.no_change_plan(),
                   self.orgctl_command("orgctl apply --auto-approve", self.apply_arguments(database, self.config),
                                       before=lambda: self.ensure_copy(database)),
                   target=1.1, skipped=self.missing("apply"))

    def change_apply_row(self):
        """apply of a configuration with 1% of tenants changed (gen_config.py --change 1
        --seed 1) to a fresh copy of the database holding the base configuration. Target: at
        most 1.2x the no-change plan."""
        database = self.state("change")
        return Row("apply (1% changed)", self.no_change_plan(),
                   self.orgctl_command("orgctl apply --auto-approve", self.apply_arguments(database, self.changed),
                                       before=lambda: self.copy_database(self.state("base"), database),
                                       warm_up=False),
                   target=1.2, skipped=self.missing("apply"))

    def drift_row(self):
        """drift on a copy of the base database with 1% of tenants changed behind orgctl's back
        (a member's role, a team's name and the seats quota of every 100th tenant, written with
        Python's sqlite3 module), next to the no-change plan of the same configuration: here the
        "floor" is orgctl plan itself, and the target is 1.2x."""
        plan_db, drift_db = self.state("drift-plan"), self.state("drift")
        return Row("drift (1% changed outside)",
                   self.orgctl_command("orgctl plan (no changes), same configuration", ["plan", "--state", plan_db, self.config],
                                       before=lambda: self.ensure_copy(plan_db)),
                   self.orgctl_command("orgctl drift", ["drift", "--state", drift_db, self.config], ok=(3,),
                                       before=lambda: self.ensure_drifted(drift_db)),
                   target=1.2, skipped=self.missing("drift", "apply"))

    def ensure_drifted(self, database):
        """A copy of the base database with 1% of tenants changed outside orgctl, made once."""
        if os.path.exists(database):
            return
        import sqlite3
        self.copy_database(self.state("base"), database)
        db = sqlite3.connect(database)
        with db:
            db.execute("UPDATE members SET role = CASE role WHEN 'viewer' THEN 'member' ELSE 'viewer' END "
                       "WHERE email LIKE 'user000@%' AND tenant_id % 100 = 0")
            db.execute("UPDATE teams SET name = name || ' (outside)' WHERE slug = 'team-00' AND tenant_id % 100 = 0")
            db.execute("UPDATE quotas SET value = value + 1 WHERE scope = 'tenant' AND name = 'seats' AND scope_id % 100 = 0")
        db.close()

    @staticmethod
    def apply_arguments(database, config):
        return ["apply", "--auto-approve", "--state", database, config]

    # MARK: PostgreSQL rows (a server of bench/run.sh's own, or --pg-host/--pg-port)

    def pg_uri(self, database):
        a = self.args
        return f"postgresql:///{database}?host={a.pg_host}&port={a.pg_port}&user={a.pg_user}"

    def psql(self, database, *sql):
        argv = ["psql", self.pg_uri(database), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        for statement in sql:
            argv += ["-c", statement]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=self.env)

    def pg_recreate(self, database, template=None):
        """Drops and creates `database` (from `template`: a file-level copy, fast whatever its size)."""
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                  f'CREATE DATABASE "{database}"' + (f' TEMPLATE "{template}"' if template else ""))

    def pg_copy_floor(self):
        """The PostgreSQL plan floor: libyaml's parse of the same files, then COPY … TO STDOUT of
        every orgctl table through psql (one process, one connection)."""
        copies = " ".join(f"-c 'COPY orgctl.{t} TO STDOUT'" for t in PG_TABLES)
        script = f"{self.floor} {self.config} > /dev/null && psql '{self.pg_uri('bench_base')}' -X -q {copies} > /dev/null"
        return Command("floor: libyaml parse + COPY every table (psql)", ["sh", "-c", script])

    def pg_plan_command(self, label="orgctl plan (PostgreSQL)"):
        return self.orgctl_command(label, ["plan", "--state", self.pg_uri("bench_base"), self.config])

    def pg_plan_row(self):
        return Row("pg plan (no changes)", self.pg_copy_floor(), self.pg_plan_command(), target=2.5,
                   skipped=self.missing("plan", "apply"))

    def pg_vs_sqlite_row(self):
        database = self.state("plan")
        return Row("pg plan vs sqlite plan",
                   self.orgctl_command("orgctl plan (SQLite)", ["plan", "--state", database, self.config],
                                       before=lambda: self.ensure_copy(database)),
                   self.pg_plan_command(), target=1.5, skipped=self.missing("plan", "apply"))

    def pg_first_apply_row(self):
        """apply into an empty database, next to pg_dump of the applied schema restored into an
        empty database with psql."""
        script = (f"pg_dump '{self.pg_uri('bench_base')}' -n orgctl --no-owner | "
                  f"psql '{self.pg_uri('bench_floor')}' -X -q -v ON_ERROR_STOP=1 > /dev/null")
        return Row("pg apply (first, empty)",
                   Command("floor: pg_dump | psql restore", ["sh", "-c", script],
                           before=lambda: self.pg_recreate("bench_floor"), warm_up=False),
                   self.orgctl_command("orgctl apply --auto-approve", self.apply_arguments(self.pg_uri("bench_first"), self.config),
                                       before=lambda: self.pg_recreate("bench_first"), warm_up=False),
                   target=3.0, skipped=self.missing("apply"))

    def pg_noop_apply_row(self):
        return Row("pg apply (no-op)", self.pg_plan_command("orgctl plan (PostgreSQL, no changes)"),
                   self.orgctl_command("orgctl apply --auto-approve", self.apply_arguments(self.pg_uri("bench_noop"), self.config),
                                       before=lambda: self.ensure_pg_copy("bench_noop")),
                   target=1.1, skipped=self.missing("apply"))

    def ensure_pg_copy(self, database):
        """A copy of bench_base, made once: a no-op apply does not change it."""
        made = getattr(self, "pg_copies", set())
        if database not in made:
            self.pg_recreate(database, "bench_base")
            made.add(database)
            self.pg_copies = made

    def pg_change_apply_row(self):
        return Row("pg apply (1% changed)", self.pg_plan_command("orgctl plan (PostgreSQL, no changes)"),
                   self.orgctl_command("orgctl apply --auto-approve", self.apply_arguments(self.pg_uri("bench_change"), self.changed),
                                       before=lambda: self.pg_recreate("bench_change", "bench_base"), warm_up=False),
                   target=1.2, skipped=self.missing("apply"))

    def pg_migrate_row(self):
        """state migrate of the SQLite base state into an empty PostgreSQL database, next to the
        pg_dump | psql restore of the same rows; reported, no target."""
        script = (f"pg_dump '{self.pg_uri('bench_base')}' -n orgctl --no-owner | "
                  f"psql '{self.pg_uri('bench_floor')}' -X -q -v ON_ERROR_STOP=1 > /dev/null")
        return Row("state migrate sqlite->pg",
                   Command("floor: pg_dump | psql restore", ["sh", "-c", script],
                           before=lambda: self.pg_recreate("bench_floor"), warm_up=False),
                   self.orgctl_command("orgctl state migrate", ["state", "migrate", "--state", self.state("base"),
                                                                "--to", self.pg_uri("bench_migrate")],
                                       before=lambda: self.pg_recreate("bench_migrate"), warm_up=False),
                   target=None, skipped=self.missing("state"))

    def prepare_pg_base(self):
        """bench_base: a PostgreSQL database holding the configuration (an untimed apply)."""
        self.pg_recreate("bench_base")
        try:
            execute([self.orgctl] + self.apply_arguments(self.pg_uri("bench_base"), self.config), self.env,
                    os.path.join(self.logs, "pg-base-apply.log"))
        except Failure as failure:
            return f"failed: no PostgreSQL database holding the configuration: orgctl apply {failure}"
        return True

    def ensure_copy(self, database):
        """A copy of the base database, made once: the commands using it must not change it."""
        if not os.path.exists(database):
            self.copy_database(self.state("base"), database)

    # MARK: measuring

    def measure(self, row):
        slug = re.sub(r"[^a-z0-9]+", "-", row.name.lower()).strip("-")
        pair = [(row.floor, f"{slug}-floor"), (row.subject, f"{slug}-orgctl")]
        def once(command, name, timed=True):
            try:
                command.once(self.env, os.path.join(self.logs, name + ".log"), timed)
            except Failure as failure:
                raise Failure(f"{command.label}: {failure}") from None

        for command, name in pair:
            if command.warm_up:
                once(command, name, timed=False)
        for index in range(self.args.repeats):
            for command, name in pair:
                once(command, name)
            log(f"  {row.name}: run {index + 1}/{self.args.repeats}"
                f"  floor {row.floor.runs[-1].wall:.2f}s  orgctl {row.subject.runs[-1].wall:.2f}s")

    def record_facts(self):
        """What the input was, from the floor's and validate's own output."""
        execute([self.floor, self.config], self.env, os.path.join(self.logs, "facts-floor.log"))
        with open(os.path.join(self.logs, "facts-floor.log")) as f:
            words = f.read().split()
        self.facts.update(dict(zip(words[0::2], (int(w) for w in words[1::2]))))
        log_path = os.path.join(self.logs, "facts-validate.log")
        try:
            execute([self.orgctl, "validate", self.config], self.env, log_path)
        except Failure as failure:
            self.facts["validate"] = f"failed: {failure}"
            return
        with open(log_path) as f:
            summary = f.read().strip().splitlines()
        self.facts["validate"] = summary[-1] if summary else ""

    def run(self):
        self.generate(self.config, [])
        if self.has("apply"):
            self.generate(self.changed, ["--change", "1", "--seed", "1"])
        self.record_facts()
        load_before = os.getloadavg()
        wanted = set(self.args.rows.split(",")) if self.args.rows else None
        # Execution order: the first apply leaves the database that plan and the other applies read.
        rows = {
            "validate": self.validate_row(),
            "apply-first": self.first_apply_row(),
            "plan": self.plan_row(),
            "apply-noop": self.noop_apply_row(),
            "apply-change": self.change_apply_row(),
            "drift": self.drift_row(),
        }
        if self.args.pg_host:
            rows.update({
                "pg-apply-first": self.pg_first_apply_row(),
                "pg-plan": self.pg_plan_row(),
                "pg-vs-sqlite": self.pg_vs_sqlite_row(),
                "pg-apply-noop": self.pg_noop_apply_row(),
                "pg-apply-change": self.pg_change_apply_row(),
                "pg-migrate": self.pg_migrate_row(),
            })
        pg_base = None
        base = None  # True once a database holds the configuration; a message if that failed
        for key, row in rows.items():
            if wanted is not None and key not in wanted:
                row.skipped = row.skipped or "skipped: not selected with --rows"
            if key in ("plan", "apply-noop", "apply-change", "drift") and not row.skipped and base is not True:
                base = self.prepare_base() if base is None else base
                if base is not True:
                    row.failed = base
            # Every PostgreSQL row needs bench_base (the first apply's floor dumps it).
            if key.startswith("pg-") and not row.skipped and pg_base is not True:
                pg_base = self.prepare_pg_base() if pg_base is None else pg_base
                if pg_base is not True:
                    row.failed = pg_base
            if key in ("pg-vs-sqlite", "pg-migrate") and not row.skipped and base is not True:
                base = self.prepare_base() if base is None else base
                if base is not True:
                    row.failed = base
            if row.skipped or row.failed:
                continue
            log(f"measuring {row.name}")
            try:
                self.measure(row)
            except Failure as failure:
                row.failed = f"failed: {failure}"
                if key == "apply-first":
                    base = "failed: no database holding the configuration (the first apply failed)"
                continue
            if key == "apply-first":
                self.copy_database(self.state("first"), self.state("base"))
                for name in ("plan", "noop", "drift-plan", "drift"):
                    self.remove_database(self.state(name))
                base = True
        # The table keeps the order the rows are usually read in.
        order = ["validate", "plan", "apply-noop", "apply-first", "apply-change", "drift"]
        order += [k for k in ["pg-plan", "pg-vs-sqlite", "pg-apply-noop", "pg-apply-first", "pg-apply-change", "pg-migrate"] if k in rows]
        self.report([rows[k] for k in order], load_before, os.getloadavg())

    def prepare_base(self):
        """Fills the base database with an untimed apply when the first-apply row did not run
        (deselected with --rows); returns True, or the message saying why that failed."""
        database = self.state("base")
        log(f"filling {database} (untimed apply)")
        self.remove_database(database)
        for name in ("plan", "noop", "drift-plan", "drift"):
            self.remove_database(self.state(name))
        try:
            execute([self.orgctl] + self.apply_arguments(database, self.config), self.env,
                    os.path.join(self.logs, "base-apply.log"))
        except Failure as failure:
            return f"failed: no database holding the configuration: orgctl apply {failure}"
        return True

    # MARK: reporting

    def report(self, rows, load_before, load_after):
        f = self.facts
        mib = f.get("bytes", 0) / (1 << 20)
        print()
        print(f"orgctl bench — {self.args.tenants} tenants: {f.get('files', '?')} files, {mib:.1f} MiB of YAML, "
              f"{f.get('documents', '?')} documents, {f.get('events', '?')} libyaml events")
        print(f"  validate says: {f.get('validate', '?')}")
        print(f"  orgctl: {self.orgctl}")
        print(f"  medians of {self.args.repeats} interleaved runs (floor, orgctl, floor, orgctl, ...) after one "
              f"untimed warm-up of each read-only command")
        print(f"  {os.cpu_count()} CPUs; load average {self.loads(load_before)} before, {self.loads(load_after)} after")
        print("  orgctl parses files on 2 threads (DispatchQueue.concurrentPerform): its CPU time is summed over")
        print("  threads and can exceed its wall time; the floor is single-threaded. Ratios are orgctl / floor;")
        print("  the apply and drift rows are compared with orgctl plan (no changes) instead, as their targets are.")
        print()
        header = f"{'row':<24} {'command':<46} {'wall s':>7} {'spread':>6} {'cpu s':>7} {'rss MiB':>8} " \
                 f"{'wall x':>7} {'cpu x':>6} {'target':>7}"
        print(header)
        print("-" * len(header))
        results = []
        for row in rows:
            if row.skipped or row.failed:
                print(f"{row.name:<24} {row.skipped or row.failed}")
                results.append({"row": row.name, "status": row.skipped or row.failed})
                continue
            for command in (row.floor, row.subject):
                wall, cpu, rss = command.median("wall"), command.median("cpu"), command.median("rss_kib") / 1024
                line = f"{row.name if command is row.floor else '':<24} {command.label:<46} {wall:>7.2f} " \
                       f"{command.spread() * 100:>5.0f}% {cpu:>7.2f} {rss:>8.1f}"
                if command is row.subject:
                    wall_ratio = wall / row.floor.median("wall")
                    floor_cpu = row.floor.median("cpu")  # GNU time rounds CPU time to 10 ms
                    cpu_ratio = f"{cpu / floor_cpu:.2f}x" if floor_cpu > 0 else "-"
                    target = "-" if row.target is None else \
                        f"{row.target:.1f}x {'ok' if wall_ratio <= row.target else 'OVER'}"
                    line += f" {wall_ratio:>6.2f}x {cpu_ratio:>6} {target:>7}"
                print(line)
            results.append({"row": row.name, "status": "measured", "target": row.target,
                            **{side: {"command": c.argv, "wall": [r.wall for r in c.runs],
                                      "cpu": [r.cpu for r in c.runs], "rss_kib": [r.rss_kib for r in c.runs]}
                               for side, c in (("floor", row.floor), ("orgctl", row.subject))}})
        print()
        print("spread = (slowest - fastest) / median wall time over the runs; a large spread means a noisy machine.")
        path = os.path.join(self.out, "results.json")
        with open(path, "w") as fh:
            json.dump({"tenants": self.args.tenants, "repeats": self.args.repeats, "facts": self.facts,
                       "load_before": load_before, "load_after": load_after, "rows": results}, fh, indent=2)
        print(f"raw runs: {path}; command output: {self.logs}/")

    @staticmethod
    def loads(load):
        return " ".join(f"{x:.2f}" for x in load)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgctl", required=True)
    parser.add_argument("--floor", required=True)
    parser.add_argument("--shared", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tenants", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", help="comma-separated: validate,plan,apply-noop,apply-first,apply-change,drift, "
                                       "and with --pg-host " + ",".join(PG_ROWS))
    parser.add_argument("--pg-host", help="PostgreSQL socket folder or host for the pg-* rows (bench/run.sh starts a server)")
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--pg-user", default="postgres")
    args = parser.parse_args()
    if args.repeats < 1 or args.tenants < 1:
        parser.error("--repeats and --tenants must be at least 1")
    known = {"validate", "plan", "apply-noop", "apply-first", "apply-change", "drift"} | set(PG_ROWS)
    unknown = set(args.rows.split(",")) - known if args.rows else set()
    if unknown:
        parser.error(f"unknown row(s) {', '.join(sorted(unknown))}; rows are {', '.join(sorted(known))}")
    if not os.access(TIME, os.X_OK):
        sys.exit(f"bench: {TIME} (GNU time) is needed to read peak RSS and CPU time; apt-get install time")
    sys.stdout.reconfigure(line_buffering=True)
    Bench(args).run()


if __name__ == "__main__":
    main()
