#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""How fast does a running daemon read a busy log? Side by side, in one run: banhammer,
fail2ban-server (Debian package), and fail2ban-rs when $FAIL2BAN_RS names its binary.

Each daemon tails a log file with the WordPress jail (our filter.d/wordpress.conf, the
recipe's two failregexes). Once it is ready, N lines that match nothing (cron, sudo,
sshd, kernel and postfix lines, as a busy server writes them) are appended to the file in
one go (copy_file_range from a prepared file), followed by one failure line, the
sentinel. The time from the start of the append to the daemon counting the sentinel's
failure is the time it took to read N + 1 lines: lines/s = (N + 1) / time. The sentinel
comes after every other line, so counting it means every line before it was read and
matched (all three daemons read a file in order).

    bench/ingest_bench.py [--lines 10000000] [--ref-lines 1000000] [--runs 3]

fail2ban gets fewer lines (--ref-lines): at ~0.1M lines/s, 10M would take minutes. Rates
are per second, so the ratio holds. Prints one JSON line per run and a table of medians.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BH = os.path.join(ROOT, "target", "release", "banhammer")
FILTER = os.path.join(ROOT, "config", "filter.d", "wordpress.conf")

NOISE = [
    "{ts} web1 CRON[{n}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    "{ts} web1 CRON[{n}]: pam_unix(cron:session): session closed for user root",
    "{ts} web1 sudo[{n}]:    admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/usr/bin/systemctl status nginx",
    "{ts} web1 sshd[{n}]: Accepted publickey for deploy from 198.51.100.{m} port {p} ssh2: ED25519 SHA256:q8vXf0pJ",
    "{ts} web1 sshd[{n}]: Received disconnect from 198.51.100.{m} port {p}:11: disconnected by user",
    "{ts} web1 kernel: [{n}.{m}] IPv4: martian source 10.0.0.{m} from 10.0.0.1, on dev eth0",
    "{ts} web1 postfix/smtpd[{n}]: connect from mail.example.org[203.0.113.{m}]",
    "{ts} web1 systemd[1]: Started Session {n} of user admin.",
]
FAIL = "{ts} web1 wordpress(example.com)[4242]: Authentication failure for admin from 192.0.2.77\n"


def make_noise(path, n):
    ts = time.strftime("%b %e %H:%M:%S")
    with open(path, "w") as f:
        chunk = []
        for i in range(n):
            chunk.append(NOISE[i % len(NOISE)].format(ts=ts, n=10000 + i % 50000, m=i % 250 + 1,
                                                     p=40000 + i % 20000))
            if len(chunk) == 100000:
                f.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            f.write("\n".join(chunk) + "\n")


def append(noise, log):
    """Appends the prepared lines, then the sentinel; returns when the append started."""
    t0 = time.perf_counter()
    # copy_file_range refuses an O_APPEND target: write at the end by position instead.
    dst = os.open(log, os.O_WRONLY)
    try:
        os.lseek(dst, 0, os.SEEK_END)
        with open(noise, "rb") as src:
            left = os.fstat(src.fileno()).st_size
            while left > 0:
                done = os.copy_file_range(src.fileno(), dst, left)
                if done == 0:
                    break
                left -= done
        os.write(dst, FAIL.format(ts=time.strftime("%b %e %H:%M:%S")).encode())
    finally:
        os.close(dst)
    return t0


def wait(cond, limit, what):
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > limit:
            sys.exit("timed out waiting for %s" % what)
        time.sleep(0.01)
    return time.perf_counter()


def ctl(path, req):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall((json.dumps(req) + "\n").encode())
        f = s.makefile("rb")
        return json.loads(f.readline() or b"{}")


class Banhammer:
    name = "banhammer"

    def __init__(self, tmp, log):
        conf = os.path.join(tmp, "bh")
        os.makedirs(conf, exist_ok=True)
        self.sock = os.path.join(tmp, "bh.sock")
        with open(os.path.join(conf, "fail2ban.local"), "w") as f:
            f.write("[Definition]\nsocket = %s\npidfile = %s/bh.pid\ndbfile = :memory:\n"
                    "logtarget = %s/bh.log\nloglevel = WARNING\n" % (self.sock, tmp, tmp))
        with open(os.path.join(conf, "jail.local"), "w") as f:
            f.write("[sshd]\nenabled = false\n[wordpress]\nenabled = true\nlogpath = %s\n"
                    "banaction = dummy\nmaxretry = 1000\n" % log)
        self.p = subprocess.Popen([BH, "run", "--config-dir", conf], stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(tmp, "bh.stderr"), "w"),
                                  preexec_fn=os.setsid)
        wait(self.ready, 60, "banhammer to answer")

    def ready(self):
        try:
            return ctl(self.sock, {"cmd": "ping"}).get("ok", False)
        except OSError:
            return False

    def failed(self):
        r = ctl(self.sock, {"cmd": "status", "jail": "wordpress"})
        return r.get("result", {}).get("total_failed", 0)

    def stop(self):
        os.killpg(self.p.pid, signal.SIGTERM)
        self.p.wait(60)


class Fail2ban:
    name = "fail2ban"

    def __init__(self, tmp, log):
        conf = os.path.join(tmp, "f2b")
        shutil.copytree("/etc/fail2ban", conf,
                        ignore=shutil.ignore_patterns("jail.d", "jail.local", "*.local"))
        os.makedirs(os.path.join(conf, "jail.d"), exist_ok=True)
        shutil.copy(FILTER, os.path.join(conf, "filter.d", "wordpress.conf"))
        self.sock = os.path.join(tmp, "f2b.sock")
        with open(os.path.join(conf, "fail2ban.local"), "w") as f:
            f.write("[Definition]\nsocket = %s\npidfile = %s/f2b.pid\ndbfile = :memory:\n"
                    "logtarget = %s/f2b.log\nloglevel = WARNING\n" % (self.sock, tmp, tmp))
        with open(os.path.join(conf, "jail.local"), "w") as f:
            f.write("[sshd]\nenabled = false\n[wordpress]\nenabled = true\nfilter = wordpress\n"
                    "logpath = %s\nbackend = pyinotify\nbanaction = dummy\nmaxretry = 1000\n" % log)
        self.conf = conf
        self.p = subprocess.Popen(["fail2ban-server", "-c", conf, "-s", self.sock, "-p",
                                   os.path.join(tmp, "f2b.pid"), "-x", "-f"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=os.setsid)
        wait(lambda: self.client("ping").returncode == 0, 120, "fail2ban to answer")

    def client(self, *words):
        return subprocess.run(["fail2ban-client", "-c", self.conf, "-s", self.sock, *words],
                              capture_output=True, text=True)

    def failed(self):
        out = self.client("status", "wordpress").stdout
        for line in out.splitlines():
            if "Total failed:" in line:
                return int(line.split(":")[1])
        return 0

    def stop(self):
        self.client("stop")
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)


class Fail2banRs:
    name = "fail2ban-rs"
    TOML = """[global]
state_file = "%(state)s"
socket_path = "%(sock)s"

[jail.wordpress]
log_path = "%(log)s"
date_format = "syslog"
filter = [
  'wordpress(\\(\\S+\\))?\\[\\d+\\]: Authentication failure for .* from <HOST>$',
  'wordpress(\\(\\S+\\))?\\[\\d+\\]: Pingback error .* generated from <HOST>$',
]
max_retry = 1000
find_time = 3600
ban_time = 600
backend = "script"
ban_cmd = "true"
unban_cmd = "true"
"""

    def __init__(self, tmp, log):
        self.bin = os.environ["FAIL2BAN_RS"]
        self.sock = os.path.join(tmp, "f2brs.sock")
        toml = os.path.join(tmp, "f2brs.toml")
        with open(toml, "w") as f:
            f.write(self.TOML % {"state": os.path.join(tmp, "f2brs.state"), "sock": self.sock,
                                 "log": log})
        self.toml = toml
        self.p = subprocess.Popen([self.bin, "-c", toml, "run"], stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(tmp, "f2brs.stderr"), "w"),
                                  preexec_fn=os.setsid)
        wait(lambda: os.path.exists(self.sock), 60, "fail2ban-rs to listen")
        time.sleep(0.5)

    def failed(self):
        out = subprocess.run([self.bin, "-c", self.toml, "status"], capture_output=True,
                             text=True).stdout
        digits = [int(w) for w in out.replace(":", " ").split() if w.isdigit()]
        return max(digits) if digits else 0

    def stop(self):
        os.killpg(self.p.pid, signal.SIGTERM)
        self.p.wait(30)


def run_one(cls, noise, n):
    tmp = tempfile.mkdtemp(prefix="bh-ingest-")
    log = os.path.join(tmp, "auth.log")
    open(log, "w").close()
    d = cls(tmp, log)
    try:
        t0 = append(noise, log)
        t1 = wait(lambda: d.failed() >= 1, 900, "%s to count the sentinel" % cls.name)
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    secs = t1 - t0
    out = {"daemon": cls.name, "lines": n + 1, "seconds": round(secs, 3),
           "lines_per_s": round((n + 1) / secs)}
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--ref-lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-fail2ban", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(BH):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="bh-ingest-noise-")
    big, small = os.path.join(work, "big"), os.path.join(work, "small")
    make_noise(big, a.lines)
    make_noise(small, a.ref_lines)
    daemons = [(Banhammer, big, a.lines)]
    if not a.no_fail2ban and shutil.which("fail2ban-server"):
        daemons.append((Fail2ban, small, a.ref_lines))
    if os.environ.get("FAIL2BAN_RS"):
        daemons.append((Fail2banRs, big, a.lines))
    results = {}
    try:
        for _ in range(a.runs):  # round-robin: the machine's speed drifts
            for cls, noise, n in daemons:
                results.setdefault(cls.name, []).append(run_one(cls, noise, n)["lines_per_s"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| daemon | lines | median lines/s | runs |")
    print("|---|---|---|---|")
    med = {k: statistics.median(v) for k, v in results.items()}
    for cls, _, n in daemons:
        print("| %s | %d | %.2fM | %s |" % (cls.name, n + 1, med[cls.name] / 1e6,
                                           ", ".join("%.2fM" % (x / 1e6) for x in results[cls.name])))
    for other in ("fail2ban", "fail2ban-rs"):
        if other in med:
            print("\nbanhammer / %s: %.1fx" % (other, med["banhammer"] / med[other]))


if __name__ == "__main__":
    main()
