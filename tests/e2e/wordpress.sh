#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# End-to-end suite against a real WordPress (issue 5): Debian's `wordpress` package on
# MariaDB and `php -S`, our plugin as a must-use plugin, rsyslog writing authpriv to a temp
# auth.log, and `banhammer run` with the seed recipe's filter and jail.local, all inside a
# network namespace and a private mount namespace this script creates. Clients on
# 127.0.0.X attack WordPress with curl; every scenario asserts what a client sees: its new
# connections to ports 80 and 443 refused after the ban, an innocent neighbour still
# getting HTTP 200, the banned client getting through again after `bantime`.
#
# Phases (one daemon each, fresh config dir, database and log; one WordPress throughout):
#   1. the recipe's Ubuntu jail (jail.local.ubuntu: our default banaction, the native
#      nftables backend), recipe times: XML-RPC wp.getUsersBlogs, system.multicall,
#      wp-login.php, forged pingbacks (and duplicates that must not count), user names
#      crafted to frame another address, a trusted proxy passing on a client's own
#      CF-Connecting-IP, the plugin pointed at a missing socket (syslog() fallback to the
#      file jail, the admin notice in wp-admin);
#   2. the recipe's CentOS jail (jail.local.centos: iptables-multiport through /bin/sh),
#      bantime 5 s: ban, crafted names, expiry;
#   3. the Ubuntu jail reading banhammer's syslog socket, the plugin sending to it, no
#      rsyslog running, bantime 5 s: ban and expiry.
#
# Run by scripts/test (root; it installs the packages). By hand, as root:
#   apt-get install -y --no-install-recommends wordpress mariadb-server php-cli php-mysql \
#       php-xml rsyslog nftables iptables iproute2 curl procps
#   tests/e2e/wordpress.sh
# Without root or a package: skipped loudly (exit 0); under CI=true that is a failure.
# Environment: BANHAMMER_BIN (default: built with `cargo build --bin banhammer`),
#   BANHAMMER_RECIPE_DIR (default: ../shared/seed/recipe beside the repository),
#   KEEP=1 keeps the work directory, E2E_TIME_LIMIT (seconds, default 180),
#   E2E_PHASES="1 3" runs only those phases.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

# =========================================================================================
# Outer part: checks, the binary, the namespace; runs the inner part inside it, then checks
# that nothing is left behind.
# =========================================================================================
if [ "${BH_E2E_INNER:-}" != 1 ]; then
  ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }
  skip() { # WHAT [HINT]
    local hint="${2:-run scripts/test as root: it installs the packages}"
    if ci; then
      echo "e2e-wordpress: $1, and CI=true ($hint)" >&2
      exit 1
    fi
    echo "" >&2
    echo "!!! SKIPPED: WordPress end-to-end suite: $1 ($hint) !!!" >&2
    echo "" >&2
    exit 0
  }
  [ "$(id -u)" = 0 ] || skip "not root (network namespaces, nftables, mounts)" "run scripts/test as root"
  for c in ip nft iptables unshare mount curl pgrep php mariadbd mariadb-install-db mariadb rsyslogd; do
    command -v "$c" > /dev/null 2>&1 || skip "command $c is missing"
  done
  [ -f /usr/share/wordpress/wp-settings.php ] || skip "Debian package wordpress is missing"
  php -r 'exit( extension_loaded( "mysqli" ) && extension_loaded( "xml" ) ? 0 : 1 );' \
    || skip "PHP's mysqli or xml extension is missing (php-mysql, php-xml)"
  RECIPE="${BANHAMMER_RECIPE_DIR:-$REPO/../shared/seed/recipe}"
  for f in filter.d/wordpress.conf jail.local.ubuntu jail.local.centos; do
    [ -f "$RECIPE/$f" ] || skip "the seed recipe ($RECIPE/$f) is missing" \
      "the project's shared folder must sit beside the repository, or set BANHAMMER_RECIPE_DIR"
  done
  RECIPE="$(cd "$RECIPE" && pwd)"

  if [ -z "${BANHAMMER_BIN:-}" ]; then
    BANHAMMER_BIN="$(cd "$REPO" && cargo build --quiet --bin banhammer --message-format=json-render-diagnostics \
      | sed -n 's/.*"executable":"\([^"]*\/banhammer\)".*/\1/p' | tail -n 1)"
  fi
  [ -x "${BANHAMMER_BIN:-}" ] || { echo "e2e-wordpress: no banhammer binary (${BANHAMMER_BIN:-})" >&2; exit 1; }

  START="$(date +%s.%N)"
  NS="bh-e2e-$$"
  W="$(mktemp -d /tmp/banhammer-e2e.XXXXXX)"
  chmod 755 "$W"
  outer_cleanup() {
    local rc=$? leaked
    if ip netns list | grep -qw "$NS"; then
      # Everything the suite started lives in this namespace: kill what is left by PID.
      leaked="$(ip netns pids "$NS" 2> /dev/null || true)"
      if [ -n "$leaked" ]; then
        echo "e2e-wordpress: processes left in $NS:" >&2
        for p in $leaked; do ps -o pid=,args= -p "$p" >&2 || true; done
        for p in $leaked; do kill -9 "$p" 2> /dev/null || true; done
        [ "$rc" = 0 ] && rc=1
      fi
      ip netns del "$NS"
    fi
    # The inner part's mounts lived in its own mount namespace only.
    if awk '{ print $4, $5 }' /proc/self/mountinfo | grep -q -e "^$W" -e ' /etc/wordpress$' -e ' /var/lib/wordpress/wp-content$'; then
      echo "e2e-wordpress: mounts under $W are visible outside the suite's namespace" >&2
      [ "$rc" = 0 ] && rc=1
    fi
    if [ "${KEEP:-}" = 1 ]; then echo "e2e-wordpress: work directory kept: $W" >&2; else rm -rf "$W"; fi
    exit "$rc"
  }
  trap outer_cleanup EXIT
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  echo "e2e-wordpress: namespace $NS, work directory $W, banhammer $BANHAMMER_BIN"
  rc=0
  # ip netns exec, unshare and env each exec the next: $! is the inner bash.
  ip netns exec "$NS" unshare --mount --propagation private \
    env BH_E2E_INNER=1 E2E_PHASES="${E2E_PHASES:-1 2 3}" W="$W" RECIPE="$RECIPE" BH="$BANHAMMER_BIN" PLUGIN="$REPO/wordpress/banhammer" \
    bash "$0" &
  INNER=$!
  # Interrupted: let the inner part clean up, then outer_cleanup sweeps the namespace.
  trap 'kill -TERM "$INNER" 2> /dev/null; wait "$INNER"; exit 130' INT
  trap 'kill -TERM "$INNER" 2> /dev/null; wait "$INNER"; exit 143' TERM
  wait "$INNER" || rc=$?
  END="$(date +%s.%N)"
  secs="$(awk -v a="$START" -v b="$END" 'BEGIN { printf "%.1f", b - a }')"
  limit="${E2E_TIME_LIMIT:-180}"
  if [ "$rc" = 0 ] && awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s > l) }'; then
    echo "e2e-wordpress: FAILED: took ${secs}s, over the ${limit}s limit" >&2
    rc=1
  fi
  echo "e2e-wordpress: finished in ${secs}s (rc=$rc)"
  exit "$rc"
fi

# =========================================================================================
# Inner part: in the namespace $NS and a private mount namespace.
# =========================================================================================
H=127.0.0.1                       # WordPress listens here on 80 and 443, the source page on 8080
MARK="$W/pwned"                   # created if a crafted user name is ever executed
PIDS=()                           # processes started here, killed by PID at the end
PHP_MASTERS=()                    # php -S masters: their workers are found and killed too
DAEMON=

pass=0
fail=0
# E2E_PHASES="1 3" runs only those phases (while working on one); default: all.
phase() { [[ " ${E2E_PHASES:-1 2 3} " == *" $1 "* ]]; }
ok() { pass=$((pass + 1)); echo "  ok   $*"; }
bad() { fail=$((fail + 1)); echo "  FAIL $*"; }
section() { echo; echo "== $*"; }

# Waits (up to 5 s) for our child PID to exit, kills it if it does not, and reaps it.
reap() { # PID
  for _ in $(seq 100); do
    [ -r "/proc/$1/stat" ] || break
    [ "$(awk '{ print $3 }' "/proc/$1/stat" 2> /dev/null)" = Z ] && break
    sleep 0.05
  done
  kill -9 "$1" 2> /dev/null
  wait "$1" 2> /dev/null
}

inner_cleanup() {
  local rc=$?
  set +e
  [ -n "$DAEMON" ] && kill "$DAEMON" 2> /dev/null
  # php -S workers outlive their master: stop them by id, then the master with SIGINT, on
  # which it reaps its workers and exits (killed outright, it would leave them to init).
  for m in "${PHP_MASTERS[@]}"; do
    for c in $(pgrep -P "$m"); do kill "$c" 2> /dev/null; done
  done
  for m in "${PHP_MASTERS[@]}"; do kill -INT "$m" 2> /dev/null; done
  for m in "${PHP_MASTERS[@]}"; do reap "$m"; done
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null; done
  wait 2> /dev/null
  if [ "$rc" != 0 ] || [ "$fail" != 0 ]; then
    for f in "$W"/p*/daemon.log "$W"/p*/auth.log "$W"/php-*.log "$W"/db.log; do
      [ -s "$f" ] && { echo "--- $f"; tail -n 60 "$f"; }
    done
  fi
}
trap inner_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$W"

# --- a private /dev (rsyslog's /dev/log), /etc/wordpress and wp-content --------------------
mkdir devsave
DEVS="null zero urandom random tty full"
for d in $DEVS; do touch "devsave/$d"; mount --bind "/dev/$d" "devsave/$d"; done
mount -t tmpfs -o mode=755 tmpfs /dev
for d in $DEVS; do touch "/dev/$d"; mount --bind "$W/devsave/$d" "/dev/$d"; done
mkdir -p /dev/shm /dev/pts
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr

mkdir etc-wordpress
mount --bind "$W/etc-wordpress" /etc/wordpress
cp -a /var/lib/wordpress/wp-content "$W/wp-content"
mount --bind "$W/wp-content" /var/lib/wordpress/wp-content

# The plugin, as a must-use plugin (docs/wordpress.md).
MU=/var/lib/wordpress/wp-content/mu-plugins
mkdir -p "$MU"
cp -a "$PLUGIN" "$MU/banhammer"
cp "$PLUGIN/mu-loader.php" "$MU/banhammer.php"

# Debian's /usr/share/wordpress/wp-config.php reads /etc/wordpress/config-HOST.php.
# $1: the plugin's BANHAMMER_SOCKET, or empty for none; $2: more PHP lines (plugin settings).
write_wp_config() {
  local socket_line=
  [ -n "${1:-}" ] && socket_line="define( 'BANHAMMER_SOCKET', '$1' );"
  socket_line+=$'\n'"${2:-}"
  cat > "$W/etc-wordpress/config-$H.php.new" << EOF
<?php
define( 'DB_NAME', 'wp' ); define( 'DB_USER', 'wp' ); define( 'DB_PASSWORD', 'wp' );
define( 'DB_HOST', 'localhost:$W/db.sock' );
define( 'DISABLE_WP_CRON', true ); define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );   // no update checks; the site's own host is allowed
$socket_line
EOF
  mv "$W/etc-wordpress/config-$H.php.new" "$W/etc-wordpress/config-$H.php"
}
write_wp_config ""

# --- MariaDB: own datadir, socket only -------------------------------------------------------
mariadb-install-db --no-defaults --datadir="$W/db" --user=root --auth-root-authentication-method=socket \
  --skip-test-db > db-install.log 2>&1
mariadbd --no-defaults --datadir="$W/db" --socket="$W/db.sock" --skip-networking --user=root > db.log 2>&1 &
PIDS+=($!)

# --- rsyslog: authpriv to a temp auth.log (restarted per phase with that phase's log) -------
RSYSLOG=
start_rsyslog() { # LOGFILE
  cat > "$W/rsyslog.conf" << EOF
module(load="imuxsock" SysSock.Name="/dev/log")
\$WorkDirectory $W
authpriv.* action(type="omfile" file="$1" template="RSYSLOG_TraditionalFileFormat")
EOF
  rsyslogd -n -f "$W/rsyslog.conf" -i "$W/rsyslog.pid" &
  RSYSLOG=$!
  PIDS+=("$RSYSLOG")
  for _ in $(seq 100); do [ -S /dev/log ] && return 0; sleep 0.05; done
  echo "rsyslogd did not create /dev/log" >&2
  exit 1
}
stop_rsyslog() {
  [ -n "$RSYSLOG" ] || return 0
  kill "$RSYSLOG"
  wait "$RSYSLOG" 2> /dev/null || true
  RSYSLOG=
  rm -f /dev/log
}

for _ in $(seq 200); do [ -S "$W/db.sock" ] && break; sleep 0.05; done
mariadb --socket="$W/db.sock" -e "CREATE DATABASE wp; CREATE USER wp@localhost IDENTIFIED BY 'wp'; GRANT ALL ON wp.* TO wp@localhost;"

# --- PHP: WordPress on 80 and 443 (plain HTTP), the pingback source pages on 8080 -----------
# OPcache is on in php -S (Debian's php.ini) and rechecks a file's time stamp only every
# revalidate_freq (2) seconds: phase 3 rewrites the site's config, so check at every request.
serve() { # PORT DOCROOT LOG
  PHP_CLI_SERVER_WORKERS=3 php -d opcache.revalidate_freq=0 -S "$H:$1" -t "$2" >> "$3" 2>&1 &
  PHP_MASTERS+=($!)
}
mkdir src
serve 80 /usr/share/wordpress php-80.log
serve 443 /usr/share/wordpress php-443.log
serve 8080 "$W/src" php-8080.log
for port in 80 443 8080; do
  for _ in $(seq 200); do curl -s -o /dev/null "http://$H:$port/" && break; sleep 0.05; done
done

# --- install WordPress by HTTP ----------------------------------------------------------------
curl -s -o install.html -w '%{http_code}' "http://$H/wp-admin/install.php?step=2" \
  -d weblog_title=E2E -d user_name=boss -d admin_password=Secret-pass-1 -d admin_password2=Secret-pass-1 \
  -d pw_weak=1 -d admin_email=boss@example.org -d blog_public=0 > install.code
grep -q 'Success' install.html || { echo "WordPress install failed ($(cat install.code))" >&2; cat install.html >&2; exit 1; }
echo "WordPress installed: $(mariadb --socket="$W/db.sock" -N wp -e "SELECT option_value FROM wp_options WHERE option_name='siteurl'")"

TARGET="http://$H/?p=1"           # "Hello world!", open to pingbacks
printf '<html><head><title>Links</title></head><body><p>A post worth reading: <a href="%s">hello</a>, really.</p></body></html>\n' \
  "$TARGET" > src/links.html
printf '<html><head><title>Victim</title></head><body><p>No link to anybody here.</p></body></html>\n' > src/victim.html

# --- clients --------------------------------------------------------------------------------
# curl from SRC; prints the HTTP code ("000": no connection); returns curl's exit status.
get() { # SRC PORT PATH
  curl -s -o /dev/null -w '%{http_code}' --interface "$1" --connect-timeout 2 -m 20 "http://$H:$2$3"
}
xmlrpc() { # SRC BODY -> response body on stdout
  curl -s --interface "$1" --connect-timeout 2 -m 30 -H 'Content-Type: text/xml' --data-binary "$2" "http://$H/xmlrpc.php"
}
shopt -u patsub_replacement 2> /dev/null || true   # bash 5.2: "&" in ${x//a/b} is literal
xesc() { local s="${1//&/&amp;}"; s="${s//</&lt;}"; s="${s//>/&gt;}"; s="${s//$'\n'/&#10;}"; printf '%s' "$s"; }
users_blogs() { # USER PASSWORD
  printf '<?xml version="1.0"?><methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value><string>%s</string></value></param><param><value><string>%s</string></value></param></params></methodCall>' \
    "$(xesc "$1")" "$(xesc "$2")"
}
multicall() { # USER PASSWORD... (one wp.getUsersBlogs call per password)
  local u="$1" calls="" p
  shift
  for p in "$@"; do
    calls+="<value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member><member><name>params</name><value><array><data><value><string>$u</string></value><value><string>$p</string></value></data></array></value></member></struct></value>"
  done
  printf '<?xml version="1.0"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>%s</data></array></value></param></params></methodCall>' "$calls"
}
ping_xml() { # SOURCE TARGET
  printf '<?xml version="1.0"?><methodCall><methodName>pingback.ping</methodName><params><param><value><string>%s</string></value></param><param><value><string>%s</string></value></param></params></methodCall>' "$1" "$2"
}
fault_code() { # RESPONSE -> faultCode, or "none"
  local c
  c="$(printf '%s' "$1" | tr -d '\n\t ' | sed -n 's/.*<name>faultCode<\/name><value><int>\([0-9-]*\)<\/int>.*/\1/p')"
  echo "${c:-none}"
}
login_post() { # SRC USER -> HTTP code (wrong password on wp-login.php)
  curl -s -o /dev/null -w '%{http_code}' --interface "$1" --connect-timeout 2 -m 20 \
    -b 'wordpress_test_cookie=WP%20Cookie%20check' --data-urlencode "log=$2" -d 'pwd=wrong-password' \
    -d testcookie=1 "http://$H/wp-login.php"
}

login_raw() { # SRC URLENCODED_LOG -> HTTP code (wrong password on wp-login.php)
  curl -s -o /dev/null -w '%{http_code}' --interface "$1" --connect-timeout 2 -m 20 \
    -b 'wordpress_test_cookie=WP%20Cookie%20check' --data "$2&pwd=wrong-password&testcookie=1" \
    "http://$H/wp-login.php"
}

# A wrong password through XML-RPC; the answer must be WordPress's fault 403.
guess_xmlrpc() { # SRC USER
  local r
  r="$(xmlrpc "$1" "$(users_blogs "$2" "wrong-password")")" || true
  [ "$(fault_code "$r")" = 403 ] || bad "wp.getUsersBlogs from $1 answered $(fault_code "$r"), not fault 403: ${r:0:200}"
}

# --- what a client sees -----------------------------------------------------------------------
# The client's new connections to PORT are refused/dropped.
expect_blocked() { # SRC PORT WHAT
  local code rc=0
  code="$(get "$1" "$2" /wp-login.php)" || rc=$?
  if [ "$rc" = 7 ] || [ "$rc" = 28 ]; then
    ok "$3: $1 -> :$2 no connection ($([ "$rc" = 7 ] && echo refused || echo dropped))"
  else
    bad "$3: $1 -> :$2 got through (curl exit $rc, HTTP $code)"
  fi
}
expect_200() { # SRC PORT WHAT
  local code rc=0
  code="$(get "$1" "$2" /wp-login.php)" || rc=$?
  if [ "$code" = 200 ]; then ok "$3: $1 -> :$2 HTTP 200"; else bad "$3: $1 -> :$2 HTTP $code (curl exit $rc)"; fi
}
# Waits (up to LIMIT s) until SRC's connections to port 80 fail; prints when (epoch s).
wait_blocked() { # SRC LIMIT
  local end=$(($(date +%s) + $2)) rc
  while [ "$(date +%s)" -le "$end" ]; do
    rc=0
    get "$1" 80 /wp-login.php > /dev/null || rc=$?
    if [ "$rc" = 7 ] || [ "$rc" = 28 ]; then date +%s.%N; return 0; fi
    sleep 0.1
  done
  return 1
}
# Waits (up to LIMIT s) until SRC gets HTTP 200 on port 80 again; prints when.
wait_200() { # SRC LIMIT
  local end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -le "$end" ]; do
    if [ "$(get "$1" 80 /wp-login.php || true)" = 200 ]; then date +%s.%N; return 0; fi
    sleep 0.2
  done
  return 1
}
banned_now() { # SRC WHAT: banned within 15 s of its last failure, on 80 and 443
  if wait_blocked "$1" 15 > /dev/null; then
    expect_blocked "$1" 80 "$2"
    expect_blocked "$1" 443 "$2"
  else
    bad "$2: $1 still connects to :80 15 s after its last failure"
  fi
}

# --- the daemon ---------------------------------------------------------------------------------
P=                                # the current phase's directory
bh() { "$BH" "$1" --socket "$P/bh.sock" "${@:2}"; }
# jail.local = [sshd] off + the recipe's file with only logpath and times changed ($2: sed
# script), plus $3 appended to the [wordpress] section (the syslog-socket phase's backend).
start_daemon() { # RECIPE_JAIL SED [EXTRA_LINE]
  mkdir -p "$P/conf/filter.d"
  cp "$RECIPE/filter.d/wordpress.conf" "$P/conf/filter.d/wordpress.conf"
  printf '[Definition]\nsocket = %s/bh.sock\npidfile = %s/bh.pid\ndbfile = %s/bh.sqlite3\nlogtarget = STDERR\nloglevel = INFO\n' \
    "$P" "$P" "$P" > "$P/conf/fail2ban.local"
  { printf '[sshd]\nenabled = false\n\n'; sed -e "$2" "$RECIPE/$1"; [ -n "${3:-}" ] && printf '%s\n' "$3"; } > "$P/conf/jail.local"
  echo "jail.local:"; sed 's/^/    /' "$P/conf/jail.local"
  "$BH" run --config-dir "$P/conf" > /dev/null 2> "$P/daemon.log" &
  DAEMON=$!
  for _ in $(seq 200); do bh ping > /dev/null 2>&1 && return 0; sleep 0.05; done
  echo "banhammer did not start" >&2
  cat "$P/daemon.log" >&2
  exit 1
}
stop_daemon() {
  local rc=0
  kill -TERM "$DAEMON"
  wait "$DAEMON" || rc=$?
  DAEMON=
  if [ "$rc" = 0 ]; then ok "daemon stopped cleanly on SIGTERM"; else bad "daemon exited $rc on SIGTERM"; fi
  # Each phase starts from an empty firewall (bans outlive the daemon in the kernel).
  nft flush ruleset
}
total_failed() { bh status wordpress 2> /dev/null | sed -n 's/.*Total failed:[[:space:]]*\([0-9]*\).*/\1/p'; }
COUNTED=0
# Waits until the jail has counted N more failures (so that "not banned yet" means something).
counted() { # N
  COUNTED=$((COUNTED + $1))
  for _ in $(seq 300); do [ "$(total_failed)" = "$COUNTED" ] && return 0; sleep 0.05; done
  bad "the jail counted $(total_failed) failures, expected $COUNTED"
  return 0
}
not_banned_yet() { # SRC WHAT
  expect_200 "$1" 80 "$2 (before maxretry)"
}

# ============================================================================================
section "phase 1: the recipe's Ubuntu jail (default banaction: native nftables), recipe times"
# ============================================================================================
if phase 1; then
P="$W/p1"; mkdir -p "$P"; : > "$P/auth.log"; COUNTED=0
start_rsyslog "$P/auth.log"
start_daemon jail.local.ubuntu "s|^logpath *=.*|logpath = $P/auth.log|"

echo "-- XML-RPC wp.getUsersBlogs from 127.0.0.23"
expect_200 127.0.0.23 80 "xmlrpc"
guess_xmlrpc 127.0.0.23 boss
guess_xmlrpc 127.0.0.23 boss
counted 2
not_banned_yet 127.0.0.23 "xmlrpc"
guess_xmlrpc 127.0.0.23 boss
counted 1
banned_now 127.0.0.23 "xmlrpc"
expect_200 127.0.0.24 80 "xmlrpc, innocent neighbour"
expect_200 127.0.0.24 443 "xmlrpc, innocent neighbour"

echo "-- XML-RPC system.multicall from 127.0.0.25 (4 guesses per request)"
for i in 1 2 3; do
  r="$(xmlrpc 127.0.0.25 "$(multicall boss "a$i" "b$i" "c$i" "d$i")")" || true
  # WordPress answers every call of the batch with fault 403.
  [ "$(printf '%s' "$r" | grep -o '<int>403</int>' | wc -l)" = 4 ] || bad "multicall $i: not four faults 403: ${r:0:300}"
  if [ "$i" = 2 ]; then
    counted 2          # one failure per request: WordPress stops checking after the first
    not_banned_yet 127.0.0.25 "multicall"
  fi
done
counted 1
banned_now 127.0.0.25 "multicall"
expect_200 127.0.0.24 80 "multicall, innocent neighbour"

echo "-- wp-login.php from 127.0.0.26"
for i in 1 2 3; do
  code="$(login_post 127.0.0.26 boss)" || true
  [ "$code" = 200 ] || bad "wp-login.php failure $i: HTTP $code"
  if [ "$i" = 2 ]; then counted 2; not_banned_yet 127.0.0.26 "wp-login"; fi
done
counted 1
banned_now 127.0.0.26 "wp-login"
expect_200 127.0.0.24 443 "wp-login, innocent neighbour"

echo "-- pingback.ping from 127.0.0.27: a real one, three duplicates (48), forged ones (17)"
r="$(xmlrpc 127.0.0.27 "$(ping_xml "http://$H:8080/links.html" "$TARGET")")" || true
if [ "$(fault_code "$r")" = none ] && printf '%s' "$r" | grep -q 'registered'; then
  ok "pingback: a real pingback is registered"
else
  bad "pingback: the real pingback was not registered: ${r:0:300}"
fi
for i in 1 2 3; do
  r="$(xmlrpc 127.0.0.27 "$(ping_xml "http://$H:8080/links.html" "$TARGET")")" || true
  [ "$(fault_code "$r")" = 48 ] || bad "pingback duplicate $i: fault $(fault_code "$r"), not 48"
done
# Forged: the source page does not link to the post. WordPress logs code 17 and (its own
# filter) answers fault 0.
forged() {
  local r
  r="$(xmlrpc "$1" "$(ping_xml "http://$H:8080/victim.html" "$TARGET")")" || true
  [ "$(fault_code "$r")" = 0 ] || bad "forged pingback from $1: fault $(fault_code "$r"), not 0"
}
forged 127.0.0.27
forged 127.0.0.27
counted 2
expect_200 127.0.0.27 80 "pingback: 3 duplicates (48) + 2 forged do not ban"
forged 127.0.0.27
counted 1
banned_now 127.0.0.27 "pingback (forged, error 17)"
grep -q "Pingback error 17 generated from 127.0.0.27\$" "$P/auth.log" || bad "pingback: no 'Pingback error 17' line in auth.log"
grep -q "Pingback error 48" "$P/auth.log" && bad "pingback: a duplicate (48) was logged"
expect_200 127.0.0.24 80 "pingback, innocent neighbour"

echo "-- user names crafted to frame 127.0.0.97/98/99, sent from 127.0.0.28"

code="$(login_post 127.0.0.28 "admin from 127.0.0.99")" || true
guess_xmlrpc 127.0.0.28 $'x\nNov 25 10:00:00 web1 wordpress(127.0.0.1)[1]: Authentication failure for x from 127.0.0.98'
code="$(login_post 127.0.0.28 "\$(touch $MARK) from 127.0.0.97")" || true
counted 3
banned_now 127.0.0.28 "crafted names"
for framed in 127.0.0.99 127.0.0.98 127.0.0.97; do
  expect_200 "$framed" 80 "crafted names, framed address"
  expect_200 "$framed" 443 "crafted names, framed address"
done
if [ -e "$MARK" ]; then bad "crafted names: a user name was executed"; else ok "crafted names: nothing executed"; fi
# What the daemon says it banned: exactly the five attackers, nobody they tried to frame.
list="$(bh status wordpress | sed -n 's/.*Banned IP list:[[:space:]]*//p' | tr ' ' '\n' | sort -V | xargs)"
want="127.0.0.23 127.0.0.25 127.0.0.26 127.0.0.27 127.0.0.28"
[ "$list" = "$want" ] && ok "status: banned exactly $want" || bad "status: banned '$list', expected '$want'"
set4="$(nft list table inet banhammer 2> /dev/null || true)"
[[ "$set4" == *127.0.0.23* && "$set4" != *127.0.0.99* ]] && ok "the bans are in nftables table inet banhammer" \
  || bad "nftables table inet banhammer does not hold the bans: $set4"

echo "-- a trusted proxy (127.0.0.50) forwarding a client's own CF-Connecting-IP (127.0.0.52)"
# 127.0.0.50 plays a local nginx: it appends the address it saw (127.0.0.51) to
# X-Forwarded-For and passes the client's CF-Connecting-IP on. The CDN's ranges do not
# hold 127.0.0.51, so the header is the client's own text and must never be logged.
write_wp_config "" "define( 'BANHAMMER_TRUSTED_PROXIES', '127.0.0.50' ); define( 'BANHAMMER_PROXY_HEADER', 'CF-Connecting-IP' ); define( 'BANHAMMER_CDN_RANGES', '127.0.0.60/30' );"
proxied_guess() { # CF-CONNECTING-IP
  curl -s -o /dev/null --interface 127.0.0.50 --connect-timeout 2 -m 30 -H 'Content-Type: text/xml' \
    -H 'X-Forwarded-For: 127.0.0.53, 127.0.0.51' -H "CF-Connecting-IP: $1" \
    --data-binary "$(users_blogs boss wrong-password)" "http://$H/xmlrpc.php" || true
}
proxied_guess 127.0.0.52
proxied_guess 0.0.0.0
proxied_guess 127.0.0.52
counted 3
banned_now 127.0.0.51 "trusted proxy: the address the proxy saw"
if grep -q -e 'from 127\.0\.0\.52$' -e 'from 0\.0\.0\.0$' -e 'from 127\.0\.0\.5[03]$' "$P/auth.log"; then
  bad "trusted proxy: a line names the client's CF-Connecting-IP, its forged X-Forwarded-For entry or the proxy"
else
  ok "trusted proxy: the lines name 127.0.0.51, the address the proxy saw ($(grep -c 'from 127\.0\.0\.51$' "$P/auth.log") lines)"
fi
expect_200 127.0.0.50 80 "trusted proxy: the proxy itself"
expect_200 127.0.0.52 80 "trusted proxy: the address in the client's CF-Connecting-IP"

echo "-- the plugin pointed at a missing socket: syslog() instead, and an admin notice"
write_wp_config "$W/missing.sock"
guess_xmlrpc 127.0.0.29 boss
guess_xmlrpc 127.0.0.29 boss
counted 2
not_banned_yet 127.0.0.29 "missing socket"
guess_xmlrpc 127.0.0.29 boss
counted 1
banned_now 127.0.0.29 "missing socket, syslog() fallback to the file jail"
[ "$(grep -c 'Authentication failure for boss from 127\.0\.0\.29$' "$P/auth.log")" = 3 ] \
  && ok "missing socket: the three records reached rsyslog's auth.log" || bad "missing socket: records missing from auth.log"
# The administrator logs in (from the innocent neighbour) and sees the notice.
code="$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.24 -c "$W/cookies" -b 'wordpress_test_cookie=WP%20Cookie%20check' \
  -d log=boss -d pwd=Secret-pass-1 -d testcookie=1 "http://$H/wp-login.php")" || true
page="$(curl -s --interface 127.0.0.24 -b "$W/cookies" -m 20 "http://$H/wp-admin/")" || true
if [[ "$page" == *"banhammer could not send to its syslog socket"* && "$page" == *"<code>$W/missing.sock</code>: No such file or directory (errno 2)"* \
  && "$page" == *"Each record went to syslog() instead"* ]]; then
  ok "missing socket: wp-admin shows the notice (path, errno, fallback)"
else
  bad "missing socket: no notice in wp-admin (login HTTP $code): $(printf '%s' "$page" | grep -o 'banhammer[^<]*' | head -3)"
fi
write_wp_config ""
stop_daemon
stop_rsyslog
fi

# ============================================================================================
section "phase 2: the recipe's CentOS jail (iptables-multiport), bantime 5 s"
# ============================================================================================
BANTIME=5
if phase 2; then
P="$W/p2"; mkdir -p "$P"; : > "$P/auth.log"; COUNTED=0
start_rsyslog "$P/auth.log"
start_daemon jail.local.centos "s|^logpath *=.*|logpath = $P/auth.log|; s|^bantime *=.*|bantime = $BANTIME|"

echo "-- XML-RPC wp.getUsersBlogs from 127.0.0.30"
guess_xmlrpc 127.0.0.30 boss
guess_xmlrpc 127.0.0.30 boss
counted 2
not_banned_yet 127.0.0.30 "centos"
guess_xmlrpc 127.0.0.30 boss
counted 1
if t_ban="$(wait_blocked 127.0.0.30 15)"; then
  expect_blocked 127.0.0.30 80 "centos"
  expect_blocked 127.0.0.30 443 "centos"
  expect_200 127.0.0.31 80 "centos, innocent neighbour"
  expect_200 127.0.0.31 443 "centos, innocent neighbour"
  if iptables -S 2> /dev/null | grep -q -- '-A f2b-wordpress -s 127.0.0.30/32 -j REJECT'; then
    ok "centos: the ban is an iptables rule (f2b-wordpress)"
  else
    bad "centos: no iptables rule for 127.0.0.30"
  fi
  echo "-- crafted names through the shell action, from 127.0.0.32"
  code="$(login_post 127.0.0.32 "\`touch $MARK\`;touch $MARK from 127.0.0.96")" || true
  # A NUL after a fake address: C's syslog() would end the line there.
  code="$(login_raw 127.0.0.32 'log=admin+from+127.0.0.95%00')" || true
  guess_xmlrpc 127.0.0.32 "'\"; touch $MARK; \$(touch $MARK)"
  counted 3
  banned_now 127.0.0.32 "centos, crafted names"
  for framed in 127.0.0.96 127.0.0.95; do
    expect_200 "$framed" 80 "centos, crafted names, framed address"
    expect_200 "$framed" 443 "centos, crafted names, framed address"
  done
  if [ -e "$MARK" ]; then bad "centos, crafted names: a user name was executed"; else ok "centos, crafted names: nothing executed"; fi
  echo "-- expiry: 127.0.0.30 gets through again after bantime ($BANTIME s)"
  if t_back="$(wait_200 127.0.0.30 $((BANTIME + 20)))"; then
    after="$(awk -v a="$t_ban" -v b="$t_back" 'BEGIN { printf "%.1f", b - a }')"
    if awk -v s="$after" -v b="$BANTIME" 'BEGIN { exit !(s >= b - 2) }'; then
      ok "centos: ban expired, 127.0.0.30 gets HTTP 200 again ${after}s after the ban"
      expect_200 127.0.0.30 443 "centos, after expiry"
    else
      bad "centos: 127.0.0.30 got through ${after}s after the ban, before bantime"
    fi
  else
    bad "centos: 127.0.0.30 still blocked $((BANTIME + 20))s after its ban"
  fi
else
  bad "centos: 127.0.0.30 still connects 15 s after its third failure"
fi
stop_daemon
stop_rsyslog
fi

# ============================================================================================
section "phase 3: plugin -> banhammer's syslog socket, no rsyslog; Ubuntu jail, bantime 5 s"
# ============================================================================================
if phase 3; then
P="$W/p3"; mkdir -p "$P"; COUNTED=0
[ -z "$RSYSLOG" ] && [ ! -e /dev/log ] || { echo "rsyslog still running" >&2; exit 1; }
write_wp_config "$P/syslog.sock"
start_daemon jail.local.ubuntu "s|^logpath *=.*|logpath = $P/auth.log|; s|^bantime *=.*|bantime = $BANTIME|" \
  "backend = syslog[socket=$P/syslog.sock]"
[ -S "$P/syslog.sock" ] && ok "socket: banhammer listens on $P/syslog.sock" || bad "socket: no $P/syslog.sock"

echo "-- XML-RPC wp.getUsersBlogs from 127.0.0.40"
guess_xmlrpc 127.0.0.40 boss
guess_xmlrpc 127.0.0.40 boss
counted 2
not_banned_yet 127.0.0.40 "socket"
guess_xmlrpc 127.0.0.40 boss
counted 1
if t_ban="$(wait_blocked 127.0.0.40 15)"; then
  expect_blocked 127.0.0.40 80 "socket"
  expect_blocked 127.0.0.40 443 "socket"
  expect_200 127.0.0.41 80 "socket, innocent neighbour"
  expect_200 127.0.0.41 443 "socket, innocent neighbour"
  echo "-- expiry: 127.0.0.40 gets through again after bantime ($BANTIME s)"
  if t_back="$(wait_200 127.0.0.40 $((BANTIME + 20)))"; then
    after="$(awk -v a="$t_ban" -v b="$t_back" 'BEGIN { printf "%.1f", b - a }')"
    if awk -v s="$after" -v b="$BANTIME" 'BEGIN { exit !(s >= b - 2) }'; then
      ok "socket/nftables: ban expired, 127.0.0.40 gets HTTP 200 again ${after}s after the ban"
      expect_200 127.0.0.40 443 "socket, after expiry"
    else
      bad "socket/nftables: 127.0.0.40 got through ${after}s after the ban, before bantime"
    fi
  else
    bad "socket/nftables: 127.0.0.40 still blocked $((BANTIME + 20))s after its ban"
  fi
else
  bad "socket: 127.0.0.40 still connects 15 s after its third failure"
fi
[ -e "$P/auth.log" ] && bad "socket: an auth.log was written" || true
stop_daemon
fi

echo
echo "e2e-wordpress: $pass passed, $fail failed"
[ "$fail" = 0 ]
