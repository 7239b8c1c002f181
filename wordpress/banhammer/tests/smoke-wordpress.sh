#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Smoke test of the plugin in a real WordPress: Debian's WordPress tree, MariaDB
# and rsyslog, all private (own mount namespace with its own /dev/log, own
# database directory, php -S on a loopback port), attacked from 127.0.0.X
# clients with curl. Checks that every signal writes its line, that forged user
# names and forwarding headers never put another address at the end of a line,
# that socket mode sends RFC 3164 datagrams and falls back to syslog().
#
# Not part of phpunit (needs root and packages):
#   apt-get install -y --no-install-recommends php-cli php-mysql php-xml mariadb-server rsyslog curl
#   bash wordpress/banhammer/tests/smoke-wordpress.sh
# WordPress comes from the `wordpress` package if installed, else its .deb is
# fetched with `apt-get download` and unpacked into the work directory.
# Environment: PORT (default 18080), SRC_PORT (default 18081), KEEP=1 keeps
# the work directory.
set -euo pipefail

PLUGIN="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${PORT:-18080}"
SRC_PORT="${SRC_PORT:-18081}"
DEAD_PORT=$((SRC_PORT + 1))

if [ "${BANHAMMER_SMOKE_INNER:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "smoke-wordpress: needs root" >&2; exit 2; }
  exec env BANHAMMER_SMOKE_INNER=1 unshare --mount --propagation private bash "$0" "$@"
fi

W="$(mktemp -d /tmp/banhammer-wp-smoke.XXXXXX)"
chmod 755 "$W"
PIDS=()
PHPPID=
stop_server() {
  [ -n "$PHPPID" ] || return 0
  # php -S workers outlive their master: stop them by id first.
  for c in $(pgrep -P "$PHPPID" || true); do kill "$c" 2>/dev/null || true; done
  kill "$PHPPID" 2>/dev/null || true
  wait "$PHPPID" 2>/dev/null || true
  PHPPID=
  for _ in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$PORT " || break; sleep 0.1; done
}
cleanup() {
  stop_server
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The bind mounts live in this namespace only, but rm runs in it too.
  for d in null zero urandom random tty full; do umount "/dev/$d" 2>/dev/null || true; done
  umount /dev 2>/dev/null || true
  for d in "$W"/devsave/*; do umount "$d" 2>/dev/null || true; done
  if [ "${KEEP:-}" = 1 ]; then echo "work directory: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
cd "$W"

# --- a private /dev, so rsyslog's /dev/log is ours alone -------------------------------
mkdir devsave
for d in null zero urandom random tty full; do touch devsave/$d; mount --bind /dev/$d devsave/$d; done
mount -t tmpfs tmpfs /dev
for d in null zero urandom random tty full; do touch /dev/$d; mount --bind "$W/devsave/$d" /dev/$d; done
mkdir -p /dev/shm /dev/pts

cat > rsyslog.conf <<EOF
module(load="imuxsock" SysSock.Name="/dev/log")
\$WorkDirectory $W
authpriv.* action(type="omfile" file="$W/auth.log" template="RSYSLOG_TraditionalFileFormat")
EOF
rsyslogd -n -f rsyslog.conf -i "$W/rsyslog.pid" & PIDS+=($!)

# --- MariaDB ---------------------------------------------------------------------------
mariadb-install-db --no-defaults --datadir="$W/db" --user=root --auth-root-authentication-method=socket --skip-test-db > db-install.log 2>&1
mariadbd --no-defaults --datadir="$W/db" --socket="$W/db.sock" --skip-networking --user=root > db.log 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -S "$W/db.sock" ] && break; sleep 0.1; done
mariadb --socket="$W/db.sock" -e "CREATE DATABASE wp; CREATE USER wp@localhost IDENTIFIED BY 'wp'; GRANT ALL ON wp.* TO wp@localhost;"

# --- WordPress with the plugin as a must-use plugin -----------------------------------
if [ -f /usr/share/wordpress/wp-settings.php ]; then
  cp -a /usr/share/wordpress "$W/wordpress"
else
  # apt drops to user _apt for downloads: give it a directory it may write to.
  mkdir "$W/dl" && chown _apt "$W/dl" 2>/dev/null || true
  (cd "$W/dl" && apt-get download wordpress > /dev/null && dpkg-deb -x wordpress_*.deb "$W/deb")
  cp -a "$W/deb/usr/share/wordpress" "$W/wordpress"
fi
MU="$W/wordpress/wp-content/mu-plugins"
mkdir -p "$MU"
cp -a "$PLUGIN" "$MU/banhammer"
cp "$PLUGIN/mu-loader.php" "$MU/banhammer.php"
cat > "$W/wordpress/wp-config.php" <<EOF
<?php
define( 'DB_NAME', 'wp' ); define( 'DB_USER', 'wp' ); define( 'DB_PASSWORD', 'wp' );
define( 'DB_HOST', 'localhost:$W/db.sock' ); define( 'DB_CHARSET', 'utf8mb4' ); define( 'DB_COLLATE', '' );
\$table_prefix = 'wp_';
define( 'WP_CONTENT_DIR', __DIR__ . '/wp-content' );
define( 'WP_HOME', 'http://blog.example.org:$PORT' ); define( 'WP_SITEURL', 'http://blog.example.org:$PORT' );
if ( getenv( 'BH_SOCKET' ) ) { define( 'BANHAMMER_SOCKET', getenv( 'BH_SOCKET' ) ); }
if ( getenv( 'BH_PROXIES' ) ) { define( 'BANHAMMER_TRUSTED_PROXIES', getenv( 'BH_PROXIES' ) ); }
if ( ! defined( 'ABSPATH' ) ) { define( 'ABSPATH', __DIR__ . '/' ); }
require_once ABSPATH . 'wp-settings.php';
EOF

serve() {
  env "$@" PHP_CLI_SERVER_WORKERS=2 php -S "127.0.0.1:$PORT" -t "$W/wordpress" >> php-server.log 2>&1 &
  PHPPID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/wp-login.php" && return 0; sleep 0.1; done
  echo "php -S did not start" >&2; exit 1
}
C=(curl -s --resolve "blog.example.org:$PORT:127.0.0.1")
X="http://blog.example.org:$PORT/xmlrpc.php"
xml() { "${C[@]}" --interface "$1" -o /dev/null -H 'Content-Type: text/xml' --data-binary "$2" "$X"; }
users_blogs() { echo "<?xml version=\"1.0\"?><methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value><string>$1</string></value></param><param><value><string>wrong</string></value></param></params></methodCall>"; }
ping_xml() { echo "<?xml version=\"1.0\"?><methodCall><methodName>pingback.ping</methodName><params><param><value><string>$1</string></value></param><param><value><string>http://blog.example.org:$PORT/?p=1</string></value></param></params></methodCall>"; }
login() { "${C[@]}" --interface "$1" -o /dev/null "http://blog.example.org:$PORT/wp-login.php" --data "$2" -b 'wordpress_test_cookie=WP%20Cookie%20check'; }

serve
"${C[@]}" -o /dev/null "http://blog.example.org:$PORT/wp-admin/install.php?step=2" \
  -d weblog_title=Smoke -d user_name=boss -d admin_password=Secret-pass-1 -d admin_password2=Secret-pass-1 \
  -d pw_weak=1 -d admin_email=boss@example.org -d blog_public=0
mariadb --socket="$W/db.sock" wp -e "UPDATE wp_options SET option_value='/%postname%/' WHERE option_name='permalink_structure'"

# --- attacks, one client address per case ------------------------------------------------
xml 127.0.0.5 "$(users_blogs boss)"                     # auth
xml 127.0.0.5 "$(users_blogs admin)"                    # auth + blocked username
xml 127.0.0.6 '<?xml version="1.0"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>
<value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member><member><name>params</name><value><array><data><value><string>boss</string></value><value><string>guess1</string></value></data></array></value></member></struct></value>
<value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member><member><name>params</name><value><array><data><value><string>boss</string></value><value><string>guess2</string></value></data></array></value></member></struct></value>
</data></array></value></param></params></methodCall>'
xml 127.0.0.7 "$(ping_xml http://victim.example.net/page)"   # pingback requested + error 0
"${C[@]}" --interface 127.0.0.8 -o /dev/null "http://blog.example.org:$PORT/?author=1"
"${C[@]}" --interface 127.0.0.8 -o /dev/null "http://blog.example.org:$PORT/?rest_route=/wp/v2/users"
"${C[@]}" --interface 127.0.0.8 -o /dev/null "http://blog.example.org:$PORT/wp-json/wp/v2/users"
login 127.0.0.9 'log=admin+from+127.0.0.99%00&pwd=x'    # NUL after a fake address
login 127.0.0.9 'log=x%0AAug+14+11:00:00+web1+wordpress[1]:+Authentication+failure+for+x+from+127.0.0.98&pwd=x'
"${C[@]}" --interface 127.0.0.10 -o /dev/null -H 'X-Forwarded-For: 127.0.0.97' -H 'CF-Connecting-IP: 127.0.0.96' \
  -H 'Content-Type: text/xml' --data-binary "$(users_blogs boss)" "$X"
stop_server

# --- behind a trusted proxy (127.0.0.20): the forwarded client is reported ---------------
serve BH_PROXIES=127.0.0.20
"${C[@]}" --interface 127.0.0.20 -o /dev/null -H 'X-Forwarded-For: 127.0.0.95, 127.0.0.21' \
  -H 'Content-Type: text/xml' --data-binary "$(users_blogs boss)" "$X"
stop_server

# --- forged pingbacks that reach the fetch (test-only filters allow loopback sources) ----
cat > "$MU/zz-test-pingback.php" <<EOF
<?php
add_filter( 'http_request_host_is_external', '__return_true' );
add_filter( 'http_allowed_safe_ports', function ( \$ports ) { \$ports[] = $SRC_PORT; \$ports[] = $DEAD_PORT; return \$ports; } );
EOF
mkdir -p src && echo '<html><head><title>Victim</title></head><body>no link here</body></html>' > src/page.html
php -S "127.0.0.1:$SRC_PORT" -t "$W/src" > src-server.log 2>&1 & PIDS+=($!)
serve
xml 127.0.0.13 "$(ping_xml "http://127.0.0.1:$SRC_PORT/page.html")"   # 17: no link to us
xml 127.0.0.14 "$(ping_xml "http://127.0.0.1:$DEAD_PORT/gone.html")"  # 16: source unreachable
stop_server
rm "$MU/zz-test-pingback.php"

# --- socket mode, then socket mode with no listener (fallback to syslog) -----------------
php -r '$s = socket_create( AF_UNIX, SOCK_DGRAM, 0 ); socket_bind( $s, $argv[1] ); $f = fopen( $argv[2], "a" );
  while ( false !== socket_recvfrom( $s, $b, 65536, 0, $from ) ) { fwrite( $f, $b . "\n" ); fflush( $f ); }' \
  "$W/bh.sock" "$W/socket.log" & PIDS+=($!)
for _ in $(seq 50); do [ -S "$W/bh.sock" ] && break; sleep 0.1; done
serve BH_SOCKET="$W/bh.sock"
xml 127.0.0.11 "$(users_blogs admin)"
stop_server
serve BH_SOCKET="$W/missing.sock"
xml 127.0.0.12 "$(users_blogs boss)"
stop_server
sleep 1   # let rsyslog write

# --- checks -----------------------------------------------------------------------------------
pass=0
fail=0
expect() { # FILE REGEX (one matching line)
  if grep -qE -- "$2" "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "MISSING in $(basename "$1"): $2"; fi
}
P='^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [^ ]+ wordpress\(blog\.example\.org\)\[[0-9]+\]: '
expect auth.log "${P}Authentication failure for boss from 127\.0\.0\.5$"
expect auth.log "${P}Authentication failure for admin from 127\.0\.0\.5$"
expect auth.log "${P}Login attempt with blocked username admin from 127\.0\.0\.5$"
expect auth.log "${P}Authentication failure for boss from 127\.0\.0\.6$"
expect auth.log "${P}XML-RPC multicall authentication failure for boss from 127\.0\.0\.6$"
expect auth.log "${P}Pingback requested from 127\.0\.0\.7$"
expect auth.log "${P}Pingback error 0 generated from 127\.0\.0\.7$"
expect auth.log "${P}User enumeration \(author=1\) from 127\.0\.0\.8$"
expect auth.log "${P}User enumeration \(REST /wp/v2/users\) from 127\.0\.0\.8$"
expect auth.log "${P}Authentication failure for admin from 127\.0\.0\.99 from 127\.0\.0\.9$"
expect auth.log "${P}Authentication failure for .* from 127\.0\.0\.98 from 127\.0\.0\.9$"
expect auth.log "${P}Authentication failure for boss from 127\.0\.0\.10$"
expect auth.log "${P}Authentication failure for boss from 127\.0\.0\.21$"
expect auth.log "${P}Pingback error 17 generated from 127\.0\.0\.13$"
expect auth.log "${P}Pingback error 16 generated from 127\.0\.0\.14$"
expect auth.log "${P}Authentication failure for boss from 127\.0\.0\.12$"
expect socket.log '^<85>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} wordpress\(blog\.example\.org\)\[[0-9]+\]: Authentication failure for admin from 127\.0\.0\.11$'
expect socket.log '^<85>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} wordpress\(blog\.example\.org\)\[[0-9]+\]: Login attempt with blocked username admin from 127\.0\.0\.11$'
# Forged addresses (127.0.0.95-99) and the trusted proxy (.20) never end a line;
# 127.0.0.11 went to the socket only.
if grep -E 'from 127\.0\.0\.(9[5-9]|20|11)$' auth.log || grep -E 'from 127\.0\.0\.(9[5-9]|20)$' socket.log; then
  fail=$((fail + 1)); echo "FORGED or misplaced address at the end of the lines above"
else pass=$((pass + 1)); fi
if [ "$fail" != 0 ] || [ "${VERBOSE:-}" = 1 ]; then
  echo "--- auth.log"; cat auth.log; echo "--- socket.log"; cat socket.log
fi
echo "smoke-wordpress: $pass passed, $fail failed"
[ "$fail" = 0 ]
