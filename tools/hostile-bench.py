#!/usr/bin/env python3
"""The timed version of the hostile-configuration suite (Tests/EndToEndTests/HostileConfigTests.swift).

    tools/hostile-bench.py [ORGCTL]      default: .build/release/orgctl, else .build/debug/orgctl

Runs validate, plan and apply of every case in Tests/Hostile/cases (laid over Tests/Hostile/base, with the
same links, pipes and generated inputs as the test) against a copy of a state database that holds the base
configuration, and reports each command's wall time and peak resident memory (getrusage of the child).
The test asserts behaviour only; the time and memory figures of docs/reliability.md come from here.
Exit status 1 when a command did not exit 1, took 1 s or more, or peaked at 256 MiB or more.
"""
import json, os, resource, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, 'Tests', 'Hostile')
HEADER = ("apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: evil\nname: Evil\nplan: enterprise\n"
          "domains: [evil.example.com]\nmembers:\n  owner@evil.example.com: owner\n")
LIMIT_SECONDS, LIMIT_KIB = 1.0, 256 << 10


def generate(path, kind, n):
    """The same inputs as HostileConfigTests.generate."""
    with open(path, 'w') as f:
        if kind == 'deep-flow': f.write(HEADER + "x: " + "[" * n + "]" * n + "\n")
        elif kind == 'deep-block':
            f.write(HEADER + "x:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(n)) + " " * (n + 1) + "v: 1\n")
        elif kind == 'long-name': f.write(HEADER.replace('name: Evil', 'name: ' + 'E' * n))
        elif kind == 'many-members':
            f.write(HEADER.replace('plan: enterprise', 'plan: business') + "".join(f"  u{i}@evil.example.com: member\n" for i in range(n)))
        elif kind == 'huge-file': f.write(HEADER); f.truncate(n)
        else: raise SystemExit(f"unknown generated kind {kind}")


def run(binary, args, cwd, env):
    """(exit status, seconds, peak RSS in KiB) of one child."""
    start = time.monotonic()
    child = subprocess.Popen([binary] + args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, elapsed, usage.ru_maxrss


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else next(
        (p for p in (os.path.join(ROOT, '.build/release/orgctl'), os.path.join(ROOT, '.build/debug/orgctl')) if os.access(p, os.X_OK)), None)
    if not binary: raise SystemExit("build orgctl first (swift build -c release)")
    binary = os.path.abspath(binary)
    env = dict(PATH=os.environ.get('PATH', '/usr/bin:/bin'), LANG='C.UTF-8', ORGCTL_NOW='2026-11-22T12:00:00Z',
               ORGCTL_STATE_KEY='AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
               HOSTILE_WEBHOOK_SECRET='hostile-bench-hook', HOSTILE_OIDC_SECRET='hostile-bench-oidc')
    work = tempfile.mkdtemp(prefix='orgctl-hostile-bench.')
    try:
        shutil.copytree(os.path.join(CORPUS, 'base'), os.path.join(work, 'base'))
        template = os.path.join(work, 'template.db')
        status, _, _ = run(binary, ['apply', 'base', '--state', template, '--auto-approve', '--quiet'], work, env)
        if status != 0: raise SystemExit("applying the base configuration failed")
        subprocess.run(['sqlite3', template, 'PRAGMA wal_checkpoint(TRUNCATE);'], check=True, stdout=subprocess.DEVNULL)
        results, failures = [], 0
        for name in sorted(os.listdir(os.path.join(CORPUS, 'cases'))):
            case = json.load(open(os.path.join(CORPUS, 'cases', name, 'case.json')))
            folder = os.path.join(work, 'case')
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(os.path.join(CORPUS, 'base'), os.path.join(folder, 'config'))
            shutil.copytree(os.path.join(CORPUS, 'cases', name, 'config'), os.path.join(folder, 'config'), dirs_exist_ok=True)
            for link, target in case.get('symlinks', {}).items(): os.symlink(target, os.path.join(folder, 'config', link))
            for fifo in case.get('fifos', []): os.mkfifo(os.path.join(folder, 'config', fifo))
            if 'generate' in case:
                g = case['generate']; generate(os.path.join(folder, 'config', g['file']), g['kind'], g['count'])
            shutil.copy(template, os.path.join(folder, 'state.db'))
            for command in (['validate', 'config'], ['plan', 'config', '--state', 'state.db'],
                            ['apply', 'config', '--state', 'state.db', '--auto-approve']):
                status, seconds, kib = run(binary, command, folder, env)
                results.append((seconds, kib, name, command[0]))
                if status != 1 or seconds >= LIMIT_SECONDS or kib >= LIMIT_KIB:
                    failures += 1
                    print(f"FAIL {name} {command[0]}: exit {status}, {seconds:.3f} s, {kib} KiB")
        slowest = max(results)
        biggest = max(results, key=lambda r: r[1])
        total = sum(r[0] for r in results)
        for r in sorted(results, reverse=True)[:5]: print(f"  {r[0]:.3f} s {r[1] / 1024:.1f} MiB {r[2]} {r[3]}")
        print(f"{len(results) // 3} cases x 3 commands with {binary}: "
              f"slowest {slowest[0]:.3f} s ({slowest[2]}, {slowest[3]}), mean {total / len(results) * 1000:.0f} ms, "
              f"peak RSS {biggest[1] / 1024:.1f} MiB ({biggest[2]}, {biggest[3]}); {failures} over the limits")
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
