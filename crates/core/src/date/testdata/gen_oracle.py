import sys, os, glob, math
os.environ['TZ'] = 'CET-1CEST,M3.5.0,M10.5.0/3'
import time; time.tzset()
from fail2ban.server.mytime import MyTime
NOW = 1124013600
MyTime.setAlternateNow(NOW); MyTime.setTime(NOW)
from fail2ban.server.datedetector import DateDetector

LOGS = '/usr/lib/python3/dist-packages/fail2ban/tests/files/logs'
files = sorted(f for f in glob.glob(LOGS + '/*') + glob.glob(LOGS + '/bsd/*') if os.path.isfile(f))

def lines_of(f):
    with open(f, 'rb') as fh:
        data = fh.read().decode('utf-8', 'replace')
    out = []
    for l in data.split('\n'):
        l = l.rstrip('\r\n')
        if l.startswith('#') or '\r' in l or not l:
            continue
        out.append(l)
    return out

def run(dp, lines, out, only_hits=False, cap=None):
    dd = DateDetector()
    if dp is not None:
        for p in [p.strip() for p in dp.split('\n') if p.strip()]:
            dd.appendTemplate(p)
    res = []
    for l in lines:
        try:
            m, t = dd.matchTime(l)
        except Exception:
            res.append((l, 'X')); break
        if not m:
            res.append((l, '-')); continue
        s, e = m.start(1), m.end(1)
        if s == e:
            tm = float(NOW)
        else:
            try:
                d = dd.getTime(l, (m, t))
                tm = d[0] if d is not None else float('nan')
            except Exception:
                tm = float('nan')
        bs = len(l[:s].encode()); be = len(l[:e].encode())
        res.append((l, '%d %d %r %s' % (bs, be, float(tm), t.name)))
    if only_hits and not any(r[1] not in '-X' for r in res):
        return
    if cap: res = res[:cap]
    out.write('@dp %s\n' % ('-' if dp is None else dp.replace('\n', '\\n')))
    for l, r in res:
        if r == 'X': break
        out.write('L %s\nE %s\n' % (l, r))

out = open(sys.argv[1], 'w')
allfiles = [(f, lines_of(f)) for f in files]
for f, ls in allfiles:
    run(None, ls, out, cap=40)
for f, ls in allfiles:
    run("{^LN-BEG}", ls, out, cap=40)
customs = [l.strip() for l in open(os.path.join(os.path.dirname(__file__), 'customs.txt')) if l.strip()]
for dp in customs:
    for f, ls in allfiles:
        run(dp, ls, out, only_hits=True, cap=15)
