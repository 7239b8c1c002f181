#!/usr/bin/env python3
"""Side-by-side benchmark of `banhammer regex` against fail2ban-regex, grep, ripgrep and
(when installed) fail2ban-rs, on one deterministic log, in one run.

Usage:
    bench/regex_bench.py [--lines 1000000] [--runs 5] [--ref-runs 1] [--out bench/out]

fail2ban-rs is measured when it is on PATH or named by $FAIL2BAN_RS (its dry-run, with
a generated config holding the recipe's two regexes).

It generates the log with the project's shared generator (../shared/bench/genlog.py,
seed 1, 20 % attack lines, 5000 attacker addresses), builds one config dir (fail2ban's
installed tree plus the seed recipe's wordpress filter) that every tool reads, and times
each command as a whole process, round-robin (run k of every command, then run k+1: the
machine's speed drifts, interleaving keeps ratios fair): median wall time over the runs and
peak RSS (from wait4). Ratios are against banhammer's summary run. Prints a Markdown table
and the issue's targets as ratios of medians.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GENLOG = os.path.join(ROOT, "..", "shared", "bench", "genlog.py")
RECIPE_FILTER = os.path.join(ROOT, "..", "shared", "seed", "recipe", "filter.d", "wordpress.conf")
# The recipe's two failregexes as one ERE (from ../shared/bench/README.md).
ERE = (r"wordpress(\([^)]*\))?(\[[0-9]+\])?:? (Authentication failure for .* from "
       r"[0-9A-Fa-f.:]+|Pingback error .* generated from [0-9A-Fa-f.:]+)$")


# fail2ban-rs's own config format: the recipe's two regexes, same jail numbers.
F2BRS_CONFIG = """[global]
state_dir = "%(state)s"
socket_path = "%(sock)s"

[jail.wordpress]
log_path = "%(log)s"
date_format = "syslog"
max_retry = 3
find_time = 3600
ban_time = 86400
filter = [
    'wordpress(?:\\([^)]*\\))?(?:\\[\\d+\\])?:? Authentication failure for .* from <HOST>$',
    'wordpress(?:\\([^)]*\\))?(?:\\[\\d+\\])?:? Pingback error .* generated from <HOST>$',
]
"""


def run_once(cmd):
    """Run cmd (list), output read and dropped; return (wall s, peak RSS KiB, exit code)."""
    t0 = time.perf_counter()
    # Output goes through a pipe that is read to the end: with stdout on /dev/null GNU grep
    # stops at the first match (it acts as if -q), which would not be a fair comparison.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while proc.stdout.read(1 << 16):
        pass
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    return wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def measure_all(jobs):
    """Time every job (name, cmd, runs, warmup) round-robin: round k runs each job that wants a
    k-th run, one after the other. The machine's speed drifts (±30 % over minutes here), so
    interleaving keeps the ratios between jobs meaningful; a slow reference with one run sits
    in the middle round, among the runs of the others. Returns one result dict per job, in order."""
    for _, cmd, _, warmup in jobs:
        for _ in range(warmup):
            run_once(cmd)
    samples = [{"walls": [], "rss": [], "codes": set()} for _ in jobs]
    rounds = max(runs for _, _, runs, _ in jobs)
    for k in range(rounds):
        for (_, cmd, runs, _), sample in zip(jobs, samples):
            # a job with fewer runs takes the middle rounds
            first = (rounds - runs) // 2
            if first <= k < first + runs:
                w, r, c = run_once(cmd)
                sample["walls"].append(w)
                sample["rss"].append(r)
                sample["codes"].add(c)
    return [{"name": name, "cmd": cmd, "median": statistics.median(s["walls"]),
             "min": min(s["walls"]), "max": max(s["walls"]), "rss_kib": max(s["rss"]),
             "codes": sorted(s["codes"]), "runs": runs}
            for (name, cmd, runs, _), s in zip(jobs, samples)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ref-runs", type=int, default=1,
                    help="runs of fail2ban-regex (slow; 0 leaves it out)")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--banhammer", default=os.path.join(ROOT, "target", "release", "banhammer"))
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    log = os.path.join(a.out, "auth-%d.log" % a.lines)
    if not os.path.exists(log):
        with open(log, "wb") as f:
            subprocess.run([sys.executable, GENLOG, "--lines", str(a.lines), "--attack-ratio", "0.2",
                            "--ips", "5000", "--seed", "1"], stdout=f, check=True)
    if not os.path.exists(a.banhammer):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)

    conf = tempfile.mkdtemp(prefix="bh-bench-")
    shutil.copytree("/etc/fail2ban", os.path.join(conf, "f2b"))
    conf = os.path.join(conf, "f2b")
    shutil.copy(RECIPE_FILTER, os.path.join(conf, "filter.d", "wordpress.conf"))

    bh = a.banhammer
    jobs = [
        ("banhammer regex (wordpress, report)", [bh, "regex", "-c", conf, log, "wordpress"], a.runs, 1),
        ("banhammer regex -o '<ip> <time>' (wordpress)",
         [bh, "regex", "-c", conf, "-o", "<ip> <time>", log, "wordpress"], a.runs, 1),
        ("banhammer regex (sshd, report)", [bh, "regex", "-c", conf, log, "sshd"], a.runs, 1),
    ]
    if shutil.which("rg"):
        jobs.append(("rg -c ERE", ["rg", "-c", ERE, log], a.runs, 1))
    if shutil.which("grep"):
        jobs.append(("grep -cE ERE", ["grep", "-cE", ERE, log], a.runs, 1))
    f2brs = os.environ.get("FAIL2BAN_RS") or shutil.which("fail2ban-rs")
    if f2brs:
        toml = os.path.join(a.out, "fail2ban-rs.toml")
        with open(toml, "w") as f:
            f.write(F2BRS_CONFIG % {"state": os.path.join(a.out, "f2brs-state"),
                                    "sock": os.path.join(a.out, "f2brs.sock"), "log": log})
        jobs.append(("fail2ban-rs dry-run (wordpress)", [f2brs, "-c", toml, "dry-run", log], a.runs, 1))
    if shutil.which("fail2ban-regex") and a.ref_runs > 0:
        jobs.append(("fail2ban-regex (wordpress)", ["fail2ban-regex", "-c", conf, log, "wordpress"],
                     a.ref_runs, 0))
        jobs.append(("fail2ban-regex (sshd)", ["fail2ban-regex", "-c", conf, log, "sshd"],
                     a.ref_runs, 0))
    rows = measure_all(jobs)

    base = {"wordpress": rows[0]["median"], "sshd": rows[2]["median"]}
    print("log: %s (%d lines, %.1f MiB)" % (log, a.lines, os.path.getsize(log) / 2**20))
    print()
    print("| command | runs | median s | min–max s | peak RSS MiB | ÷ banhammer report |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ref = base["sshd"] if "sshd" in r["name"] else base["wordpress"]
        print("| %s | %d | %.3f | %.3f–%.3f | %.1f | %.1f× |" % (
            r["name"], r["runs"], r["median"], r["min"], r["max"], r["rss_kib"] / 1024,
            r["median"] / ref))
        if r["codes"] != [0] and not r["name"].startswith(("grep", "rg")):
            print("  (exit codes %s)" % r["codes"])

    # the targets, as ratios of medians from this run
    med = {r["name"]: r["median"] for r in rows}
    report_wp = med["banhammer regex (wordpress, report)"]
    out_wp = med["banhammer regex -o '<ip> <time>' (wordpress)"]
    report_sshd = med["banhammer regex (sshd, report)"]
    print()
    targets = [
        ("fail2ban-regex (wordpress) ÷ banhammer report", "fail2ban-regex (wordpress)", report_wp, "≥ 100"),
        ("fail2ban-regex (sshd) ÷ banhammer report", "fail2ban-regex (sshd)", report_sshd, "≥ 50"),
        ("fail2ban-rs dry-run ÷ banhammer -o", "fail2ban-rs dry-run (wordpress)", out_wp, "≥ 3"),
        ("banhammer -o ÷ rg -c", None, out_wp, "≤ 2"),
    ]
    for label, ref, ours, goal in targets:
        if ref is None:
            if "rg -c ERE" in med:
                print("- %s: %.2f× (target %s)" % (label, ours / med["rg -c ERE"], goal))
        elif ref in med:
            print("- %s: %.1f× (target %s)" % (label, med[ref] / ours, goal))


if __name__ == "__main__":
    main()
