#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""banhammer's daemon against fail2ban-server, side by side, in one run.

Runs ../shared/bench/live_bench.py for both daemons inside a private network namespace
(same log format, same recipe jail: 3 failures / 1 h -> 1 d, nftables set backend for
both: fail2ban's stock nftables-multiport action, banhammer's native backend), then
measures banhammer alone on what fail2ban has no equivalent for: restoring 100,000
bans at start, idle RSS/CPU, and memory with 1,000,000 tracked addresses.

Needs root, nft, ip, fail2ban (Debian package) and a release build
(cargo build --release). Prints JSON lines and a markdown table of ratios.

    sudo bench/daemon_bench.py [--storm 10000] [--reps 30] [--skip-fail2ban]
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
LIVE = os.path.join(SHARED, "bench", "live_bench.py")
SEED_FILTER = os.path.join(SHARED, "seed", "recipe")
BH = os.path.join(ROOT, "target", "release", "banhammer")
PY = "/usr/bin/python3"


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def recipe_filter():
    for dirpath, _, files in os.walk(SEED_FILTER):
        if "wordpress.conf" in files and "filter" in dirpath:
            return os.path.join(dirpath, "wordpress.conf")
    for dirpath, _, files in os.walk(SEED_FILTER):
        if "wordpress.conf" in files:
            return os.path.join(dirpath, "wordpress.conf")
    sys.exit("recipe filter wordpress.conf not found under %s" % SEED_FILTER)


def fail2ban_setup(tmp, log):
    conf = os.path.join(tmp, "f2b")
    shutil.copytree("/etc/fail2ban", conf, ignore=shutil.ignore_patterns("jail.d", "jail.local", "*.local"))
    os.makedirs(os.path.join(conf, "jail.d"), exist_ok=True)
    shutil.copy(recipe_filter(), os.path.join(conf, "filter.d", "wordpress.conf"))
    with open(os.path.join(conf, "fail2ban.local"), "w") as f:
        f.write("[Definition]\nsocket = %s/f2b.sock\npidfile = %s/f2b.pid\ndbfile = %s/f2b.sqlite3\n"
                "logtarget = %s/f2b.log\nloglevel = INFO\n" % (tmp, tmp, tmp, tmp))
    with open(os.path.join(conf, "jail.local"), "w") as f:
        f.write("[DEFAULT]\nbanaction = nftables-multiport\nbackend = auto\n\n"
                "[sshd]\nenabled = false\n\n"
                "[wordpress]\nenabled = true\nfilter = wordpress\nlogpath = %s\nport = http,https\n"
                "maxretry = 3\nfindtime = 3600\nbantime = 86400\n" % log)
    return "exec fail2ban-server -c %s -s %s/f2b.sock -p %s/f2b.pid -x -f" % (conf, tmp, tmp)


def banhammer_config(tmp, log, db="bh.sqlite3"):
    conf = os.path.join(tmp, "bh")
    os.makedirs(os.path.join(conf, "filter.d"), exist_ok=True)
    shutil.copy(recipe_filter(), os.path.join(conf, "filter.d", "wordpress.conf"))
    with open(os.path.join(conf, "fail2ban.local"), "w") as f:
        f.write("[Definition]\nsocket = %s/bh.sock\npidfile = %s/bh.pid\ndbfile = %s/%s\n"
                "logtarget = %s/bh.log\nloglevel = NOTICE\n" % (tmp, tmp, tmp, db, tmp))
    with open(os.path.join(conf, "jail.local"), "w") as f:
        f.write("[sshd]\nenabled = false\n\n"
                "[wordpress]\nenabled = true\nlogpath = %s\nport = http,https\n"
                "maxretry = 3\nfindtime = 3600\nbantime = 86400\n" % log)
    return conf


def live(ns, label, start, log, reps, storm):
    open(log, "w").close()
    out = subprocess.run(["ip", "netns", "exec", ns, PY, LIVE, "--label", label, "--start", start,
                          "--log", log, "--reps", str(reps), "--storm", str(storm),
                          "--storm-timeout", "600"], capture_output=True, text=True)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else json.dumps(
        {"label": label, "error": out.stderr[-400:]})
    print(line, flush=True)
    return json.loads(line)


def client(ns, tmp, *words):
    return subprocess.run(["ip", "netns", "exec", ns, BH, *words[:1], "--socket", "%s/bh.sock" % tmp,
                           *words[1:]], capture_output=True, text=True)


def start_bh(ns, conf, tmp):
    err = open(os.path.join(tmp, "bh.stderr"), "w")
    p = subprocess.Popen(["ip", "netns", "exec", ns, BH, "run", "--config-dir", conf],
                         stdout=subprocess.DEVNULL, stderr=err, preexec_fn=os.setsid)
    t0 = time.perf_counter()
    while client(ns, tmp, "ping").returncode != 0:
        if p.poll() is not None:
            with open(os.path.join(tmp, "bh.stderr")) as f:
                sys.exit("banhammer exited:\n" + f.read()[-2000:])
        if time.perf_counter() - t0 > 120:
            sys.exit("banhammer did not answer within 120 s")
        time.sleep(0.01)
    return p, t0


def stop(p):
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def set_count(ns):
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "set", "inet", "banhammer",
                          "addr-set-wordpress"], capture_output=True, text=True).stdout
    return out.count(" expires ")


def rss_kib(pid):
    # The daemon is the child of `ip netns exec` (which execs, so it is the same pid).
    try:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1])
    except OSError:
        return 0
    return 0


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def restore_100k(ns, tmp):
    """100,000 bans in the store; time from start to all of them in the kernel set."""
    log = os.path.join(tmp, "restore.log")
    open(log, "w").close()
    conf = banhammer_config(tmp, log, db="restore.sqlite3")
    p, _ = start_bh(ns, conf, tmp)
    ips = ["10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(1, 100001)]
    for i in range(0, len(ips), 5000):
        r = client(ns, tmp, "ban", "wordpress", *ips[i:i + 5000])
        if r.returncode != 0:
            sys.exit("ban failed: " + r.stderr)
    stop(p)
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "banhammer"])
    # The control socket answers once the restore batch is in the kernel (the main loop
    # starts after it), so time-to-ping is the restore time; the set is counted after.
    p, t0 = start_bh(ns, conf, tmp)
    took = time.perf_counter() - t0
    n = set_count(ns)
    stop(p)
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "banhammer"])
    return {"label": "banhammer restore", "bans": n, "restore_s": round(took, 3)}


def idle_and_tracked(ns, tmp, tracked):
    """Idle RSS and CPU over 10 s; then RSS with `tracked` addresses each failing once."""
    log = os.path.join(tmp, "tracked.log")
    open(log, "w").close()
    conf = banhammer_config(tmp, log, db="tracked.sqlite3")
    p, _ = start_bh(ns, conf, tmp)
    time.sleep(2)
    t = cpu_ticks(p.pid)
    time.sleep(10)
    idle_cpu = (cpu_ticks(p.pid) - t) / os.sysconf("SC_CLK_TCK") / 10 * 100
    idle_rss = rss_kib(p.pid)
    ts = time.strftime("%b %e %H:%M:%S")
    with open(log, "a") as f:
        for i in range(tracked):
            f.write("%s web1 wordpress(example.com)[4242]: Authentication failure for admin from 10.%d.%d.%d\n"
                    % (ts, 100 + (i >> 16), (i >> 8) & 255, i & 255))
    t0 = time.perf_counter()
    while True:
        out = client(ns, tmp, "status", "wordpress").stdout
        if "Currently failed:\t%d" % tracked in out or time.perf_counter() - t0 > 300:
            break
        time.sleep(0.5)
    took = time.perf_counter() - t0
    rss = rss_kib(p.pid)
    stop(p)
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "banhammer"])
    return {"label": "banhammer idle/tracked", "idle_rss_kib": idle_rss, "idle_cpu_pct": round(idle_cpu, 3),
            "tracked": tracked, "tracked_rss_kib": rss, "tracked_ingest_s": round(took, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--storm", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--tracked", type=int, default=1000000)
    ap.add_argument("--skip-fail2ban", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (network namespace, nftables)")
    if not os.path.exists(BH):
        sys.exit("build first: cargo build --release")
    ns = "bh-bench-%d" % os.getpid()
    sh("ip", "netns", "add", ns)
    tmp = tempfile.mkdtemp(prefix="bh-bench-")
    results = {}
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        log = os.path.join(tmp, "auth.log")
        conf = banhammer_config(tmp, log)
        results["bh"] = live(ns, "banhammer", "exec %s run --config-dir %s" % (BH, conf), log, a.reps, a.storm)
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "banhammer"])
        if not a.skip_fail2ban:
            start = fail2ban_setup(tmp, log)
            results["f2b"] = live(ns, "fail2ban", start, log, a.reps, a.storm)
        results["restore"] = restore_100k(ns, tmp)
        print(json.dumps(results["restore"]), flush=True)
        results["idle"] = idle_and_tracked(ns, tmp, a.tracked)
        print(json.dumps(results["idle"]), flush=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns])
        shutil.rmtree(tmp, ignore_errors=True)
    bh, f2b = results.get("bh", {}), results.get("f2b", {})
    print("\n| measure | banhammer | fail2ban | ratio |\n|---|---|---|---|")
    for key, name in (("p50_ms", "ban latency p50 (ms)"), ("p99_ms", "ban latency p99 (ms)"),
                      ("storm_s", "storm %d IPs (s)" % a.storm), ("rss_kib", "RSS after storm (KiB)")):
        b, f = bh.get(key), f2b.get(key)
        ratio = "%.1f×" % (f / b) if b and f else "–"
        print("| %s | %s | %s | %s |" % (name, b, f, ratio))
    r, i = results["restore"], results["idle"]
    print("| restore 100,000 bans (s) | %s | – | – |" % r["restore_s"])
    print("| idle RSS (KiB) / CPU (%%) | %s / %s | – | – |" % (i["idle_rss_kib"], i["idle_cpu_pct"]))
    print("| RSS with %d tracked IPs (KiB) | %s | – | – |" % (i["tracked"], i["tracked_rss_kib"]))


if __name__ == "__main__":
    main()
