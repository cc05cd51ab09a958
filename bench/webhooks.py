#!/usr/bin/env python3
"""Webhook delivery measurements (not a test; not run in CI). See bench/README.md.

    bench/webhooks.py [--events N] [--parallel 1,4,8] [--repeats R] [--baseline OLD_ORGCTL]
                      [--sections deliver,receiver,idle,outbox,memory] [--tenants T] [--shared DIR]

deliver   One apply adds N members to one tenant whose webhook subscribes to member.added (N events
          in the outbox); then, on a fresh copy of that database each time, `webhooks deliver --once`
          with each --parallel value (and --baseline's binary, sequential, when given), interleaved,
          R rounds: events per second and peak RSS. The receiver is nginx (Debian package
          nginx-light) on loopback TLS, `return 200`, keep-alive, logging each request's connection
          number and webhook-id: the script checks that every event arrived and counts connections.
          With $ORGCTL_TEST_POSTGRES set (tools/pg-cluster.sh), the same on PostgreSQL.
receiver  The receivers' own ceilings: N POSTs from curl --parallel (8 at a time, keep-alive) to
          nginx and to tools/webhook_receiver.py (Python, standardwebhooks verification), and one
          orgctl pass into the Python receiver (which then is the bottleneck).
idle      A pass with nothing due over the N delivered rows (SQLite and PostgreSQL), and the plan of
          the claim query on each (EXPLAIN QUERY PLAN / EXPLAIN).
outbox    The 1%-change apply of the T-tenant configuration (../shared/tools/gen_config.py T, then
          --change 1 --seed 1), with and without a webhook in every tenant (subscribing to the
          types that change produces), interleaved, R rounds each on a fresh copy of its base.
memory    Peak RSS of the first apply of T tenants (no webhook), this binary and --baseline's.
"""
import argparse
import base64
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOST = "hooks.example.com"
# OutboxSQL.claim's due-events query, with literal values (a due time far in the future: every
# pending row is due, the worst case for a pass).
CLAIM = ("SELECT id FROM orgctl_outbox WHERE status = 'pending' AND next_attempt_at <= 4000000000 "
         "AND (claimed_until IS NULL OR claimed_until <= 4000000000) ORDER BY next_attempt_at, id LIMIT 20")


def run(args, env, timed=False, check=True):
    if timed:
        args = ["/usr/bin/time", "-v"] + args
    started = time.monotonic()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if check and result.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    rss = None
    if timed:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        rss = int(match.group(1)) / 1024 if match else None
    return elapsed, rss, result


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port}")


def certificates(out):
    for step in (["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{out}/ca.key",
                  "-out", f"{out}/ca.pem", "-days", "1", "-subj", "/CN=bench CA"],
                 ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{out}/server.key",
                  "-out", f"{out}/server.csr", "-subj", f"/CN={HOST}"]):
        subprocess.run(["openssl"] + step, check=True, capture_output=True)
    with open(f"{out}/ext.cnf", "w") as handle:
        handle.write(f"subjectAltName=DNS:{HOST}\nbasicConstraints=CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", f"{out}/server.csr", "-CA", f"{out}/ca.pem", "-CAkey", f"{out}/ca.key",
                    "-CAcreateserial", "-out", f"{out}/server.pem", "-days", "1", "-extfile", f"{out}/ext.cnf"], check=True, capture_output=True)


class Nginx:
    """nginx on loopback TLS answering 200 to everything, one worker, keep-alive without a limit."""

    def __init__(self, out):
        self.out = out
        self.port = free_port()
        self.log = f"{out}/nginx/access.log"
        os.makedirs(f"{out}/nginx", exist_ok=True)
        with open(f"{out}/nginx/nginx.conf", "w") as handle:
            handle.write(f"""
worker_processes 1;
daemon off;
pid {out}/nginx/nginx.pid;
error_log {out}/nginx/error.log;
events {{ worker_connections 1024; }}
http {{
    log_format hooks '$connection $connection_requests $http_webhook_id $status';
    access_log {self.log} hooks;
    client_body_temp_path {out}/nginx/body;
    proxy_temp_path {out}/nginx/proxy;
    fastcgi_temp_path {out}/nginx/fastcgi;
    uwsgi_temp_path {out}/nginx/uwsgi;
    scgi_temp_path {out}/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        server_name {HOST};
        ssl_certificate {out}/server.pem;
        ssl_certificate_key {out}/server.key;
        location / {{ return 200 "ok"; }}
    }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-c", f"{out}/nginx/nginx.conf", "-p", f"{out}/nginx"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def reset_log(self):
        open(self.log, "w").close()
        # nginx keeps its file open: truncating is enough (it writes with O_APPEND).

    def seen(self):
        connections, ids, statuses = set(), [], {}
        with open(self.log) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) != 4:
                    continue
                connections.add(parts[0])
                ids.append(parts[2])
                statuses[parts[3]] = statuses.get(parts[3], 0) + 1
        return connections, ids, statuses

    def stop(self):
        self.process.terminate()
        self.process.wait()


class PythonReceiver:
    def __init__(self, out, env):
        self.port_file = f"{out}/python-port"
        self.process = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools/webhook_receiver.py"), "--cert", f"{out}/server.pem",
                                         "--key", f"{out}/server.key", "--secret-env", "BENCH_HOOK_SECRET", "--log", f"{out}/python.jsonl",
                                         "--port-file", self.port_file], env=env)
        for _ in range(200):
            if os.path.exists(self.port_file):
                break
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())

    def stop(self):
        self.process.kill()
        self.process.wait()


def curl_ceiling(out, port, count, body):
    """count POSTs by curl --parallel (8 at a time, keep-alive): the receiver's ceiling with a light client."""
    with open(f"{out}/body.json", "w") as handle:
        handle.write(body)
    with open(f"{out}/urls.cfg", "w") as handle:
        for i in range(count):
            handle.write(f'url = "https://{HOST}:{port}/bench/ok"\n')
    args = ["curl", "-s", "--parallel", "--parallel-max", "8", "--cacert", f"{out}/ca.pem", "--resolve", f"{HOST}:{port}:127.0.0.1",
            "-H", "content-type: application/json", "-H", "webhook-id: msg_ceiling", "-H", "webhook-timestamp: 0",
            "-H", "webhook-signature: v1,AAAA", "--data-binary", f"@{out}/body.json", "-K", f"{out}/urls.cfg"]
    started = time.monotonic()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return count / (time.monotonic() - started)


def pg_env():
    uri = os.environ.get("ORGCTL_TEST_POSTGRES")
    return uri


def psql(uri, sql):
    return subprocess.run(["psql", uri, "-X", "-At", "-c", sql], capture_output=True, text=True, check=True).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--parallel", default="1,4,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=10000)
    parser.add_argument("--sections", default="deliver,receiver,idle,outbox,memory")
    parser.add_argument("--orgctl", default=os.environ.get("ORGCTL", os.path.join(ROOT, ".build/release/orgctl")))
    parser.add_argument("--baseline", help="an older orgctl (sequential delivery) measured beside this one")
    parser.add_argument("--shared", default=os.environ.get("ORGCTL_SHARED", os.path.join(ROOT, "..", "shared")))
    parser.add_argument("--out", default=os.path.join(HERE, "out", "webhooks"))
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out + "/config/tenants")
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    env = dict(os.environ, ORGCTL_STATE_KEY=os.environ.get("ORGCTL_STATE_KEY") or base64.b64encode(os.urandom(32)).decode(),
               BENCH_HOOK_SECRET=secret)
    env.pop("ORGCTL_NOW", None)
    load = lambda: " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at start: {load()}")
    certificates(out)
    nginx = Nginx(out) if {"deliver", "receiver", "idle"} & sections else None
    pg = pg_env()
    results = {}
    try:
        port = nginx.port if nginx else 443
        with open(f"{out}/config/platform.yaml", "w") as handle:
            handle.write("apiVersion: orgctl.dev/v1\nkind: Platform\nplans:\n  pro:\n    quotas: {seats: 1000000, webhooks: 10}\n"
                         "roles:\n  owner: {permissions: [\"*\"]}\n  member: {permissions: []}\npermissions:\n  apps.read: {category: apps}\nevents: [member.added]\n")
        lines = ["apiVersion: orgctl.dev/v1", "kind: Tenant", "slug: bench", "name: Bench", "plan: pro", "members:",
                 "  owner@bench.example.com: owner"]
        lines += [f"  user{i}@bench.example.com: member" for i in range(args.events)]
        lines += ["webhooks:", "  sink:", f"    url: https://{HOST}:{port}/bench/ok", "    events: [member.added]",
                  "    secret: {env: BENCH_HOOK_SECRET}"]
        with open(f"{out}/config/tenants/bench.yaml", "w") as handle:
            handle.write("\n".join(lines) + "\n")
        flags = ["--cacert", f"{out}/ca.pem", "--resolve", f"{HOST}:{port}:127.0.0.1", "--allow-private", "127.0.0.1/32"]
        base = f"{out}/base.db"
        if {"deliver", "idle"} & sections:
            apply_s, apply_rss, _ = run([args.orgctl, "apply", f"{out}/config", "--state", base, "--auto-approve", "--quiet"], env, timed=True)
            events = int(subprocess.run(["sqlite3", base, "SELECT count(*) FROM orgctl_outbox"], capture_output=True, text=True).stdout)
            print(f"apply writing {events} events (SQLite): {apply_s:.2f} s, peak RSS {apply_rss:.0f} MiB")
            backends = [("sqlite", None)]
            if pg:
                schema = "bench_hooks_base"
                psql(pg, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                pg_s, _, _ = run([args.orgctl, "apply", f"{out}/config", "--state", pg, "--state-schema", schema, "--auto-approve", "--quiet"], env)
                print(f"apply writing {events} events (PostgreSQL): {pg_s:.2f} s")
                backends.append(("postgres", schema))

        if "deliver" in sections:
            variants = [(f"parallel {n}", args.orgctl, ["--parallel", n]) for n in args.parallel.split(",")]
            if args.baseline:
                variants.insert(0, ("before (sequential)", args.baseline, []))
            for backend, schema in backends:
                for round_ in range(args.repeats):
                    for label, binary, extra in variants:
                        if backend == "sqlite":
                            state = f"{out}/deliver.db"
                            for suffix in ("", "-wal", "-shm"):
                                if os.path.exists(state + suffix):
                                    os.remove(state + suffix)
                            shutil.copy(base, state)
                            where = ["--state", state]
                        else:
                            copy = "bench_hooks_run"
                            psql(pg, f"DROP SCHEMA IF EXISTS {copy} CASCADE")
                            # A copy of the base schema: its tables, rows and indexes.
                            tables = psql(pg, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'").split()
                            sql = [f"CREATE SCHEMA {copy}"] + [f"CREATE TABLE {copy}.{t} (LIKE {schema}.{t} INCLUDING ALL); "
                                                                f"INSERT INTO {copy}.{t} SELECT * FROM {schema}.{t}" for t in tables]
                            psql(pg, "; ".join(sql))
                            where = ["--state", pg, "--state-schema", copy]
                        nginx.reset_log()
                        elapsed, rss, result = run([binary, "webhooks", "deliver", "--once", "--batch", "100", "--quiet"] + extra + where + flags,
                                                   env, timed=True)
                        connections, ids, statuses = nginx.seen()
                        row = results.setdefault((backend, label), [])
                        row.append({"s": elapsed, "rss": rss, "requests": len(ids), "unique": len(set(ids)), "connections": len(connections),
                                    "statuses": statuses, "summary": result.stdout.strip()})
                        print(f"  {backend} {label} round {round_ + 1}: {result.stdout.strip()} in {elapsed:.2f} s = {events / elapsed:.0f}/s, "
                              f"rss {rss:.0f} MiB, {len(ids)} requests ({len(set(ids))} ids) on {len(connections)} connections; load {load()}")
            print(f"\n| backend | deliverer | events/s (median of {args.repeats}) | wall s | peak RSS MiB | requests / distinct ids | connections |")
            print("|---|---|---|---|---|---|---|")
            for (backend, label), rows in results.items():
                wall = statistics.median(r["s"] for r in rows)
                print(f"| {backend} | {label} | {events / wall:.0f} | {wall:.2f} | {max(r['rss'] for r in rows):.0f} | "
                      f"{rows[0]['requests']} / {rows[0]['unique']} | {max(r['connections'] for r in rows)} |")

        if "receiver" in sections:
            body = json.dumps({"type": "member.added", "data": {"x": "y" * 300}})
            ceiling = curl_ceiling(out, nginx.port, args.events, body)
            print(f"\nnginx ceiling: {ceiling:.0f} requests/s (curl --parallel-max 8, keep-alive); load {load()}")
            python = PythonReceiver(out, env)
            try:
                ceiling_py = curl_ceiling(out, python.port, min(args.events, 3000), body)
                print(f"python receiver (standardwebhooks) ceiling: {ceiling_py:.0f} requests/s; load {load()}")
                state = f"{out}/python.db"
                shutil.copy(base, state)
                # The webhook's URL names nginx's port: this copy points it at the Python receiver.
                subprocess.run(["sqlite3", state, f"UPDATE webhooks SET url = 'https://{HOST}:{python.port}/bench/ok'"], check=True)
                py_flags = ["--cacert", f"{out}/ca.pem", "--resolve", f"{HOST}:{python.port}:127.0.0.1", "--allow-private", "127.0.0.1/32"]
                elapsed, rss, result = run([args.orgctl, "webhooks", "deliver", "--once", "--batch", "100", "--quiet", "--parallel", "4",
                                            "--state", state] + py_flags, env, timed=True)
                print(f"orgctl --parallel 4 into the python receiver: {result.stdout.strip()} in {elapsed:.2f} s = {events / elapsed:.0f}/s")
            finally:
                python.stop()

        if "idle" in sections:
            state = f"{out}/idle.db"
            shutil.copy(base, state)
            run([args.orgctl, "webhooks", "deliver", "--once", "--quiet", "--parallel", "8", "--state", state] + flags, env)
            times = [run([args.orgctl, "webhooks", "deliver", "--once", "--quiet", "--state", state] + flags, env)[0] for _ in range(5)]
            version = [run([args.orgctl, "version"], env)[0] for _ in range(5)]
            print(f"\nidle pass (SQLite, {events} delivered rows): median {statistics.median(times) * 1000:.0f} ms "
                  f"(process start-up alone, `orgctl version`: {statistics.median(version) * 1000:.0f} ms)")
            plan = subprocess.run(["sqlite3", state, "EXPLAIN QUERY PLAN " + CLAIM], capture_output=True, text=True).stdout
            print("SQLite EXPLAIN QUERY PLAN:\n" + plan)
            if pg:
                schema = "bench_hooks_base"
                where = ["--state", pg, "--state-schema", schema]
                run([args.orgctl, "webhooks", "deliver", "--once", "--quiet", "--parallel", "8"] + where + flags, env)
                psql(pg, f"ANALYZE {schema}.orgctl_outbox")
                times = [run([args.orgctl, "webhooks", "deliver", "--once", "--quiet"] + where + flags, env)[0] for _ in range(5)]
                print(f"idle pass (PostgreSQL, {events} delivered rows): median {statistics.median(times) * 1000:.0f} ms")
                print("PostgreSQL EXPLAIN ANALYZE:\n" + psql(pg, f"SET search_path = {schema}; EXPLAIN (ANALYZE, COSTS OFF) {CLAIM} FOR UPDATE SKIP LOCKED"))

        if "outbox" in sections or "memory" in sections:
            gen = os.path.join(args.shared, "tools", "gen_config.py")
            cache = os.path.join(HERE, "out")
            plain, changed = f"{cache}/gen-{args.tenants}", f"{cache}/gen-{args.tenants}-change1"
            if not os.path.isdir(plain):
                subprocess.run([sys.executable, gen, plain, str(args.tenants)], check=True, capture_output=True)
            if not os.path.isdir(changed):
                subprocess.run([sys.executable, gen, changed, str(args.tenants), "--change", "1", "--seed", "1"], check=True, capture_output=True)

        if "memory" in sections:
            binaries = [("now", args.orgctl)] + ([("before", args.baseline)] if args.baseline else [])
            print(f"\nfirst apply of {args.tenants} tenants, no webhook (peak RSS):")
            for round_ in range(2):
                for label, binary in binaries:
                    state = f"{out}/first-{label}.db"
                    for suffix in ("", "-wal", "-shm"):
                        if os.path.exists(state + suffix):
                            os.remove(state + suffix)
                    elapsed, rss, _ = run([binary, "apply", plain, "--state", state, "--auto-approve", "--quiet"], env, timed=True)
                    print(f"  {label}: {elapsed:.1f} s, peak RSS {rss:.0f} MiB; load {load()}")

        if "outbox" in sections:
            hooked, hooked_changed = f"{out}/gen-hooked", f"{out}/gen-hooked-change1"
            for source, target in ((plain, hooked), (changed, hooked_changed)):
                shutil.copytree(source, target)
                for folder, _, files in os.walk(target):
                    for name in files:
                        path = os.path.join(folder, name)
                        text = open(path).read()
                        if "kind: Tenant" not in text:
                            continue
                        hook = ("webhooks:\n  sink:\n    url: https://hooks.example.com/events\n"
                                "    events: [organization.updated, team.updated, member.removed]\n    secret: {env: BENCH_HOOK_SECRET}\n")
                        docs = text.split("\n---\n")
                        docs = [d.rstrip("\n") + "\n" + hook if "kind: Tenant" in d else d for d in docs]
                        with open(path, "w") as handle:
                            handle.write("\n---\n".join(docs))
            bases = {}
            for label, config in (("without webhooks", plain), ("with webhooks", hooked)):
                state = f"{out}/outbox-base-{label.split()[0]}.db"
                elapsed, rss, _ = run([args.orgctl, "apply", config, "--state", state, "--auto-approve", "--quiet"], env, timed=True)
                run(["sqlite3", state, "PRAGMA wal_checkpoint(TRUNCATE);"], env)
                bases[label] = state
                print(f"base apply {label}: {elapsed:.1f} s, {rss:.0f} MiB")
            timings = {label: [] for label in bases}
            for round_ in range(args.repeats):
                for label, change in (("without webhooks", changed), ("with webhooks", hooked_changed)):
                    state = f"{out}/outbox-run.db"
                    for suffix in ("", "-wal", "-shm"):
                        if os.path.exists(state + suffix):
                            os.remove(state + suffix)
                    shutil.copy(bases[label], state)
                    elapsed, rss, _ = run([args.orgctl, "apply", change, "--state", state, "--auto-approve", "--quiet"], env, timed=True)
                    events = subprocess.run(["sqlite3", state, "SELECT count(*) FROM orgctl_outbox"], capture_output=True, text=True).stdout.strip()
                    timings[label].append((elapsed, rss, events))
                    print(f"  1% apply {label}: {elapsed:.2f} s, {rss:.0f} MiB, {events} events in the outbox; load {load()}")
            without = statistics.median(t[0] for t in timings["without webhooks"])
            with_ = statistics.median(t[0] for t in timings["with webhooks"])
            print(f"1% apply: without webhooks {without:.2f} s, with {with_:.2f} s: {with_ / without:.3f}x (target 1.10x)")
    finally:
        if nginx:
            nginx.stop()
        print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
