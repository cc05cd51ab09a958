#!/usr/bin/env python3
"""Webhook delivery measurements (not a test; not run in CI). See bench/README.md.

    bench/webhooks.py [--events N] [--orgctl PATH] [--out DIR]

One apply adds N members to one tenant whose webhook subscribes to member.added, so the apply
writes N events; then `orgctl webhooks deliver --once --batch 100` sends them to the test
receiver on loopback (tools/webhook_receiver.py, which verifies every request with the
standardwebhooks package: the receiver's own cost is part of what is measured). Reports the
apply's time, events per second delivered, the deliverer's peak RSS, and the time of a delivery
pass over an outbox where nothing is due.
"""
import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(args, env, timed=False):
    if timed:
        args = ["/usr/bin/time", "-v"] + args
    started = time.monotonic()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    rss = None
    if timed:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        rss = int(match.group(1)) / 1024 if match else None
    return elapsed, rss, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--orgctl", default=os.environ.get("ORGCTL", os.path.join(ROOT, ".build/release/orgctl")))
    parser.add_argument("--out", default=os.path.join(HERE, "out", "webhooks"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out + "/config/tenants")
    out = args.out
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    env = dict(os.environ, ORGCTL_STATE_KEY=base64.b64encode(os.urandom(32)).decode(), BENCH_HOOK_SECRET=secret)
    env.pop("ORGCTL_NOW", None)

    host = "hooks.example.com"
    for step in (["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{out}/ca.key",
                  "-out", f"{out}/ca.pem", "-days", "1", "-subj", "/CN=bench CA"],
                 ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{out}/server.key",
                  "-out", f"{out}/server.csr", "-subj", f"/CN={host}"]):
        subprocess.run(["openssl"] + step, check=True, capture_output=True)
    with open(f"{out}/ext.cnf", "w") as handle:
        handle.write(f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", f"{out}/server.csr", "-CA", f"{out}/ca.pem", "-CAkey", f"{out}/ca.key",
                    "-CAcreateserial", "-out", f"{out}/server.pem", "-days", "1", "-extfile", f"{out}/ext.cnf"], check=True, capture_output=True)
    receiver = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools/webhook_receiver.py"), "--cert", f"{out}/server.pem",
                                 "--key", f"{out}/server.key", "--secret-env", "BENCH_HOOK_SECRET", "--log", f"{out}/log.jsonl",
                                 "--port-file", f"{out}/port"], env=env)
    try:
        for _ in range(200):
            if os.path.exists(f"{out}/port"):
                break
            time.sleep(0.05)
        port = int(open(f"{out}/port").read())
        with open(f"{out}/config/platform.yaml", "w") as handle:
            handle.write("apiVersion: orgctl.dev/v1\nkind: Platform\nplans:\n  pro:\n    quotas: {seats: 1000000, webhooks: 10}\n"
                         "roles:\n  owner: {permissions: [\"*\"]}\n  member: {permissions: []}\npermissions:\n  apps.read: {category: apps}\nevents: [member.added]\n")
        lines = ["apiVersion: orgctl.dev/v1", "kind: Tenant", "slug: bench", "name: Bench", "plan: pro", "members:",
                 "  owner@bench.example.com: owner"]
        lines += [f"  user{i}@bench.example.com: member" for i in range(args.events)]
        lines += ["webhooks:", "  sink:", f"    url: https://{host}:{port}/bench/ok", "    events: [member.added]",
                  "    secret: {env: BENCH_HOOK_SECRET}"]
        with open(f"{out}/config/tenants/bench.yaml", "w") as handle:
            handle.write("\n".join(lines) + "\n")
        state = f"{out}/state.db"
        flags = ["--cacert", f"{out}/ca.pem", "--resolve", f"{host}:{port}:127.0.0.1", "--allow-private", "127.0.0.1/32"]
        apply_s, _, _ = run([args.orgctl, "apply", f"{out}/config", "--state", state, "--auto-approve", "--quiet"], env)
        events = int(subprocess.run(["sqlite3", state, "SELECT count(*) FROM orgctl_outbox"], capture_output=True, text=True).stdout)
        deliver_s, rss, result = run([args.orgctl, "webhooks", "deliver", "--once", "--batch", "100", "--quiet", "--state", state] + flags,
                                     env, timed=True)
        idle_s, _, _ = run([args.orgctl, "webhooks", "deliver", "--once", "--quiet", "--state", state] + flags, env)
        print(f"apply writing {events} events: {apply_s:.2f} s")
        print(f"deliver --once: {result.stdout.strip()} in {deliver_s:.2f} s = {events / deliver_s:.0f} events/s, peak RSS {rss:.0f} MiB")
        print(f"deliver --once with nothing due, {events} delivered rows in the outbox: {idle_s * 1000:.0f} ms")
    finally:
        receiver.kill()


if __name__ == "__main__":
    main()
