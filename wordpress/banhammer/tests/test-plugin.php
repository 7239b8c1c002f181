<?php
/**
 * Banhammer_Plugin: the hooks, driven through stubbed WordPress hooks in the
 * order core runs them.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Plugin.
 */
final class Test_Banhammer_Plugin extends TestCase {

	/**
	 * Lines the plugin logged.
	 *
	 * @var Banhammer_Test_Logger
	 */
	private $logger;

	/**
	 * Fresh WordPress for each test.
	 */
	protected function setUp(): void {
		Banhammer_Test_WP::reset();
		$this->logger = new Banhammer_Test_Logger();
	}

	/**
	 * A registered plugin for a request from $server.
	 *
	 * @param array $constants wp-config.php constants.
	 * @param array $server    $_SERVER.
	 * @return Banhammer_Plugin
	 */
	private function plugin( array $constants = array(), array $server = array( 'REMOTE_ADDR' => '203.0.113.9' ) ) {
		$plugin = new Banhammer_Plugin( self::config( $constants ), $server, $this->logger );
		$plugin->register();
		return $plugin;
	}

	/**
	 * Settings from these constants and the stubbed options.
	 *
	 * @param array $constants wp-config.php constants.
	 * @return Banhammer_Config
	 */
	private static function config( array $constants = array() ) {
		return new Banhammer_Config(
			static function ( $name ) use ( $constants ) {
				return array_key_exists( $name, $constants ) ? $constants[ $name ] : null;
			},
			static function ( $name ) {
				return get_option( $name, null );
			}
		);
	}

	/**
	 * The hooks added, as "hook@priority/args", sorted; without the admin
	 * screens' hooks when $signals_only.
	 *
	 * @param bool $signals_only Leave out admin_*.
	 * @return string[]
	 */
	private static function hooks( $signals_only = false ) {
		$seen = array();
		foreach ( Banhammer_Test_WP::$hooks as $hook => $callbacks ) {
			foreach ( $callbacks as $cb ) {
				if ( ! $signals_only || 0 !== strpos( $hook, 'admin_' ) ) {
					$seen[] = $hook . '@' . $cb[0] . '/' . $cb[3];
				}
			}
		}
		sort( $seen );
		return $seen;
	}

	/**
	 * What admin_notices prints.
	 *
	 * @return string
	 */
	private static function notices() {
		ob_start();
		do_action( 'admin_notices' );
		return (string) ob_get_clean();
	}

	/**
	 * Hook names and priorities.
	 */
	public function test_hooks_registered() {
		$this->plugin();
		$this->assertSame(
			array(
				'admin_init@10/0',
				'admin_init@10/0',
				'admin_menu@10/0',
				'admin_notices@10/0',
				'rest_pre_dispatch@10/3',
				'template_redirect@1/0',
				'wp_login_failed@10/1',
				'xmlrpc_call@10/1',
				'xmlrpc_pingback_error@1/1',
			),
			self::hooks()
		);
	}

	/**
	 * Signals that are off add no hooks.
	 */
	public function test_signals_off() {
		$this->plugin( array( 'BANHAMMER_SIGNALS' => 'pingback_error' ) );
		$this->assertSame( array( 'xmlrpc_pingback_error@1/1' ), self::hooks( true ) );
		Banhammer_Test_WP::reset();
		$this->plugin( array( 'BANHAMMER_SIGNALS' => false ) );
		$this->assertSame( array(), self::hooks( true ) );
	}

	/**
	 * Ignored settings are shown to administrators, escaped.
	 */
	public function test_admin_notice() {
		$this->plugin( array( 'BANHAMMER_TRUSTED_PROXIES' => '<b>proxy</b>' ) );
		$this->assertSame( '', self::notices(), 'not for visitors' );
		Banhammer_Test_WP::$logged_in = true;
		Banhammer_Test_WP::$caps      = array( 'edit_posts' );
		$this->assertSame( '', self::notices(), 'not for users who cannot manage options' );
		Banhammer_Test_WP::$caps = array( 'manage_options' );
		$html                    = self::notices();
		$this->assertStringContainsString( '&lt;b&gt;proxy&lt;/b&gt;', $html );
		$this->assertStringNotContainsString( '<b>proxy', $html );
		Banhammer_Test_WP::reset();
		$this->plugin();
		Banhammer_Test_WP::$logged_in = true;
		$this->assertSame( '', self::notices(), 'nothing to say' );
	}

	/**
	 * wp_login_failed: the recipe's line.
	 */
	public function test_login_failed() {
		$this->plugin();
		do_action( 'wp_login_failed', 'alice', new stdClass() );
		$this->assertSame( array( 'Authentication failure for alice from 203.0.113.9' ), $this->logger->lines );
	}

	/**
	 * A blocked name no account has: a second line.
	 */
	public function test_blocked_username() {
		$this->plugin();
		do_action( 'wp_login_failed', 'Admin' );
		Banhammer_Test_WP::$users[] = 'root';
		do_action( 'wp_login_failed', 'root' );
		$this->assertSame(
			array(
				'Authentication failure for Admin from 203.0.113.9',
				'Login attempt with blocked username Admin from 203.0.113.9',
				'Authentication failure for root from 203.0.113.9',
			),
			$this->logger->lines
		);
	}

	/**
	 * Inside system.multicall: one multicall line per request.
	 */
	public function test_multicall() {
		$GLOBALS['wp_xmlrpc_server'] = (object) array( 'message' => (object) array( 'methodName' => 'system.multicall' ) );
		$this->plugin( array( 'BANHAMMER_BLOCKED_USERNAMES' => false ) );
		do_action( 'wp_login_failed', 'alice' );
		do_action( 'wp_login_failed', 'bob' );
		$this->assertSame(
			array(
				'Authentication failure for alice from 203.0.113.9',
				'XML-RPC multicall authentication failure for alice from 203.0.113.9',
				'Authentication failure for bob from 203.0.113.9',
			),
			$this->logger->lines
		);
	}

	/**
	 * Other XML-RPC methods are not multicall.
	 */
	public function test_not_multicall() {
		$GLOBALS['wp_xmlrpc_server'] = (object) array( 'message' => (object) array( 'methodName' => 'wp.getUsersBlogs' ) );
		$this->plugin();
		do_action( 'wp_login_failed', 'alice' );
		$this->assertSame( array( 'Authentication failure for alice from 203.0.113.9' ), $this->logger->lines );
	}

	/**
	 * xmlrpc_pingback_error: logged with the real code before core's filter
	 * zeroes it; 48 is not logged; the error goes on unchanged.
	 */
	public function test_pingback_error() {
		add_filter( 'xmlrpc_pingback_error', 'xmlrpc_pingback_error' );
		$this->plugin();
		$error = new IXR_Error( 17, 'The source URL does not contain a link to the target URL' );
		$seen  = null;
		add_filter(
			'xmlrpc_pingback_error',
			static function ( $e ) use ( &$seen ) {
				$seen = $e;
				return $e;
			},
			0
		);
		$out = apply_filters( 'xmlrpc_pingback_error', $error );
		$this->assertSame( $error, $seen, 'our filter returns the very object it got' );
		$this->assertSame( 0, $out->code, "core's filter still runs after ours" );
		apply_filters( 'xmlrpc_pingback_error', new IXR_Error( 48, 'The pingback has already been registered.' ) );
		apply_filters( 'xmlrpc_pingback_error', new IXR_Error( 33, 'The specified target URL cannot be used as a target.' ) );
		$this->assertSame(
			array(
				'Pingback error 17 generated from 203.0.113.9',
				'Pingback error 33 generated from 203.0.113.9',
			),
			$this->logger->lines
		);

		$plugin = $this->plugin();
		$this->assertSame( 'not an error', $plugin->on_pingback_error( 'not an error' ) );
	}

	/**
	 * xmlrpc_call: pingback.ping only.
	 */
	public function test_pingback_requested() {
		$this->plugin();
		do_action( 'xmlrpc_call', 'wp.getUsersBlogs', array(), null );
		do_action( 'xmlrpc_call', 'pingback.ping', array(), null );
		$this->assertSame( array( 'Pingback requested from 203.0.113.9' ), $this->logger->lines );
	}

	/**
	 * template_redirect: anonymous ?author=N with pretty permalinks.
	 */
	public function test_author_enumeration() {
		$this->plugin();
		$_GET = array( 'author' => '2' );
		do_action( 'template_redirect' );
		Banhammer_Test_WP::$logged_in = true;
		do_action( 'template_redirect' );
		Banhammer_Test_WP::$logged_in                      = false;
		Banhammer_Test_WP::$options['permalink_structure'] = '';
		do_action( 'template_redirect' );
		$_GET = array();
		$this->assertSame( array( 'User enumeration (author=2) from 203.0.113.9' ), $this->logger->lines );
	}

	/**
	 * rest_pre_dispatch: anonymous users route; the result passes through.
	 */
	public function test_rest_enumeration() {
		$this->plugin();
		$this->assertNull( apply_filters( 'rest_pre_dispatch', null, null, new Banhammer_Test_Rest_Request( '/wp/v2/users' ) ) );
		$this->assertSame( 'kept', apply_filters( 'rest_pre_dispatch', 'kept', null, new Banhammer_Test_Rest_Request( '/wp/v2/posts' ) ) );
		Banhammer_Test_WP::$logged_in = true;
		apply_filters( 'rest_pre_dispatch', null, null, new Banhammer_Test_Rest_Request( '/wp/v2/users/me' ) );
		$this->assertSame( array( 'User enumeration (REST /wp/v2/users) from 203.0.113.9' ), $this->logger->lines );
	}

	/**
	 * Behind a trusted proxy the forwarded client is reported; a forged header
	 * from a direct client is not.
	 */
	public function test_proxy_resolution() {
		$this->plugin(
			array( 'BANHAMMER_TRUSTED_PROXIES' => '127.0.0.1' ),
			array(
				'REMOTE_ADDR'          => '127.0.0.1',
				'HTTP_X_FORWARDED_FOR' => '127.0.0.99, 198.51.100.4',
			)
		);
		do_action( 'wp_login_failed', 'alice' );
		Banhammer_Test_WP::reset();
		$this->plugin(
			array( 'BANHAMMER_TRUSTED_PROXIES' => '127.0.0.1' ),
			array(
				'REMOTE_ADDR'          => '198.51.100.5',
				'HTTP_X_FORWARDED_FOR' => '127.0.0.99',
			)
		);
		do_action( 'wp_login_failed', 'alice' );
		$this->assertSame(
			array(
				'Authentication failure for alice from 198.51.100.4',
				'Authentication failure for alice from 198.51.100.5',
			),
			$this->logger->lines
		);
	}

	/**
	 * No client address: nothing is logged at all.
	 */
	public function test_no_address_nothing_logged() {
		$this->plugin( array( 'BANHAMMER_TRUSTED_PROXIES' => '127.0.0.1' ), array( 'REMOTE_ADDR' => '127.0.0.1' ) );
		do_action( 'wp_login_failed', 'admin' );
		apply_filters( 'xmlrpc_pingback_error', new IXR_Error( 17, '' ) );
		do_action( 'xmlrpc_call', 'pingback.ping' );
		$this->assertSame( array(), $this->logger->lines );
	}

	/**
	 * The real logger is made on first use with the home URL's host as ident.
	 */
	public function test_default_logger_ident() {
		$dir  = sys_get_temp_dir() . '/banhammer-plugin-' . getmypid() . '-' . mt_rand();
		$path = $dir . '/s.sock';
		mkdir( $dir, 0700 );
		$server = socket_create( AF_UNIX, SOCK_DGRAM, 0 );
		socket_bind( $server, $path );
		socket_set_option( $server, SOL_SOCKET, SO_RCVTIMEO, array( 'sec' => 2, 'usec' => 0 ) );
		Banhammer_Test_WP::$home = 'http://Shop.Example.org:8080/blog';
		$config                  = new Banhammer_Config(
			static function ( $name ) use ( $path ) {
				return 'BANHAMMER_SOCKET' === $name ? $path : null;
			}
		);
		$plugin = new Banhammer_Plugin( $config, array( 'REMOTE_ADDR' => '192.0.2.1' ) );
		$plugin->register();
		do_action( 'wp_login_failed', 'alice' );
		$buf  = '';
		$from = '';
		socket_recvfrom( $server, $buf, 4096, 0, $from );
		socket_close( $server );
		unlink( $path );
		rmdir( $dir );
		$this->assertMatchesRegularExpression( '/^<85>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d wordpress\(shop\.example\.org\)\[\d+\]: Authentication failure for alice from 192\.0\.2\.1$/', $buf );
	}

	/**
	 * The finding through the plugin: behind a trusted local nginx, a
	 * CF-Connecting-IP the client wrote itself is not logged; the CDN's ranges
	 * come from the constant, else the option (Settings > banhammer), through
	 * the banhammer_cdn_ranges filter.
	 */
	public function test_cf_connecting_ip_from_a_client_behind_a_trusted_proxy_is_ignored() {
		$constants = array(
			'BANHAMMER_TRUSTED_PROXIES' => '127.0.0.1',
			'BANHAMMER_PROXY_HEADER'    => 'CF-Connecting-IP',
		);
		$spoofed   = array(
			'REMOTE_ADDR'           => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR'  => '203.0.113.9',
			'HTTP_CF_CONNECTING_IP' => '6.6.6.6',
		);
		$via_cdn   = array(
			'REMOTE_ADDR'           => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR'  => '198.51.100.1, 173.245.48.7',
			'HTTP_CF_CONNECTING_IP' => '198.51.100.2',
		);
		$cases     = array(
			// Without ranges the CDN's edge is just the client nginx saw.
			'no ranges'       => array( array(), array(), '173.245.48.7' ),
			'constant'        => array( array( 'BANHAMMER_CDN_RANGES' => "# Cloudflare\n173.245.48.0/20\n2400:cb00::/32" ), array(), '198.51.100.2' ),
			'option'          => array( array(), array( 'banhammer_cdn_ranges' => "173.245.48.0/20\r\n" ), '198.51.100.2' ),
			'constant wins'   => array( array( 'BANHAMMER_CDN_RANGES' => '192.0.2.0/24' ), array( 'banhammer_cdn_ranges' => '173.245.48.0/20' ), '173.245.48.7' ),
			'constant, array' => array( array( 'BANHAMMER_CDN_RANGES' => array( '173.245.48.0/20' ) ), array(), '198.51.100.2' ),
		);
		foreach ( $cases as $name => $case ) {
			foreach ( array( array( $spoofed, '203.0.113.9' ), array( $via_cdn, $case[2] ) ) as $request ) {
				Banhammer_Test_WP::reset();
				Banhammer_Test_WP::$options = $case[1];
				$this->logger->lines        = array();
				$this->plugin( $constants + $case[0], $request[0] );
				do_action( 'wp_login_failed', 'alice' );
				$this->assertSame( array( 'Authentication failure for alice from ' . $request[1] ), $this->logger->lines, $name );
			}
		}
		// The filter sees the configured list and may replace it.
		Banhammer_Test_WP::reset();
		$this->logger->lines = array();
		$seen                = null;
		add_filter(
			'banhammer_cdn_ranges',
			static function ( $ranges ) use ( &$seen ) {
				$seen = $ranges;
				return array_merge( $ranges, array( '173.245.48.0/20' ) );
			}
		);
		$this->plugin( $constants + array( 'BANHAMMER_CDN_RANGES' => '192.0.2.0/24 # a note' ), $via_cdn );
		do_action( 'wp_login_failed', 'alice' );
		$this->assertSame( array( '192.0.2.0/24' ), $seen );
		$this->assertSame( array( 'Authentication failure for alice from 198.51.100.2' ), $this->logger->lines );
	}

	/**
	 * A CDN header without CDN ranges, and ranges that cannot be read, are
	 * told to administrators.
	 */
	public function test_cdn_header_without_ranges_is_told_to_administrators() {
		$this->plugin( array( 'BANHAMMER_PROXY_HEADER' => 'CF-Connecting-IP' ) );
		Banhammer_Test_WP::$logged_in = true;
		$this->assertStringContainsString( 'CF-Connecting-IP is only read from your CDN&#039;s addresses, and no CDN ranges are set', self::notices() );
		Banhammer_Test_WP::reset();
		Banhammer_Test_WP::$options = array( 'banhammer_cdn_ranges' => "173.245.48.0/20\n<script>/8" );
		$this->plugin( array( 'BANHAMMER_PROXY_HEADER' => 'CF-Connecting-IP' ) );
		Banhammer_Test_WP::$logged_in = true;
		$html                         = self::notices();
		$this->assertStringNotContainsString( 'no CDN ranges are set', $html );
		$this->assertStringContainsString( 'CDN ranges: &#039;&lt;script&gt;/8&#039; is not an address or CIDR block', $html );
		Banhammer_Test_WP::reset();
		$this->plugin( array( 'BANHAMMER_PROXY_HEADER' => 'Forwarded' ) );
		Banhammer_Test_WP::$logged_in = true;
		$this->assertStringContainsString( 'Forwarded header (RFC 7239) is not supported', self::notices() );
	}

	/**
	 * A logger sending to $path, its syslog() fallback kept in $syslogged.
	 *
	 * @param string $path       Socket path.
	 * @param array  $syslogged  Receives the fallback's messages.
	 * @return Banhammer_Logger
	 */
	private static function socket_logger( $path, array &$syslogged ) {
		return new Banhammer_Logger(
			'wordpress(test)',
			LOG_AUTHPRIV,
			$path,
			static function ( $ident, $facility, $message ) use ( &$syslogged ) {
				$syslogged[] = $message;
				return true;
			},
			static function () {
				return new DateTimeImmutable( '2005-08-14 11:58:01' );
			},
			function_exists( 'socket_create' )
		);
	}

	/**
	 * The finding: a failed send to banhammer's socket was silent. Now the
	 * record goes to syslog() and administrators see a notice with the path,
	 * the error, the fallback and the fix, until they dismiss it.
	 */
	public function test_a_failed_socket_send_is_told_to_administrators() {
		$path      = sys_get_temp_dir() . '/banhammer-missing-' . getmypid() . '-' . mt_rand() . '/syslog.sock';
		$syslogged = array();
		$now       = 1700000000;
		$alert     = new Banhammer_Socket_Alert(
			static function () use ( &$now ) {
				return $now;
			},
			static function () {
				return array(
					'user'   => 'www-data',
					'groups' => 'www-data',
				);
			}
		);
		$plugin    = new Banhammer_Plugin( self::config( array( 'BANHAMMER_SOCKET' => $path ) ), array( 'REMOTE_ADDR' => '203.0.113.9' ), self::socket_logger( $path, $syslogged ), $alert );
		$plugin->register();
		do_action( 'wp_login_failed', 'alice' );
		$this->assertSame( array( 'Authentication failure for alice from 203.0.113.9' ), $syslogged, 'the record went to syslog()' );
		$record = get_transient( Banhammer_Socket_Alert::TRANSIENT );
		$this->assertSame( $path, $record['path'] );
		$this->assertSame( 2, $record['errno'] );
		$this->assertSame( 'No such file or directory', $record['error'] );
		$this->assertTrue( $record['fallback'] );
		$this->assertSame( 1, $record['count'] );
		$this->assertSame( Banhammer_Socket_Alert::LIFETIME, Banhammer_Test_WP::$transient_writes[0][2] );

		// Visitors and editors see nothing.
		$this->assertSame( '', self::notices() );
		Banhammer_Test_WP::$logged_in = true;
		Banhammer_Test_WP::$caps      = array( 'edit_posts' );
		$this->assertSame( '', self::notices() );
		Banhammer_Test_WP::$caps = array( 'manage_options' );
		$html                    = self::notices();
		$this->assertStringContainsString( 'banhammer could not send to its syslog socket', $html );
		$this->assertStringContainsString( '<code>' . $path . '</code>: No such file or directory (errno 2)', $html );
		$this->assertStringContainsString( 'once since', $html );
		$this->assertStringContainsString( 'Each record went to syslog() instead', $html );
		$this->assertStringContainsString( 'The socket does not exist: banhammer is not running', $html );
		$this->assertStringContainsString( 'backend = syslog[socket=' . $path . ']', $html );
		$this->assertStringContainsString( 'banhammer-dismiss-socket-alert=1&amp;_wpnonce=nonce-banhammer-dismiss-socket-alert', $html );

		// A wrong nonce, or a user who cannot manage options, dismisses nothing.
		$_GET = array(
			Banhammer_Socket_Alert::DISMISS_ARG => '1',
			'_wpnonce'                          => 'nonce-other',
		);
		do_action( 'admin_init' );
		$this->assertNotFalse( get_transient( Banhammer_Socket_Alert::TRANSIENT ) );
		$_GET['_wpnonce']        = 'nonce-' . Banhammer_Socket_Alert::NONCE_ACTION;
		Banhammer_Test_WP::$caps = array( 'edit_posts' );
		do_action( 'admin_init' );
		$this->assertNotFalse( get_transient( Banhammer_Socket_Alert::TRANSIENT ) );
		// The administrator dismisses it.
		Banhammer_Test_WP::$caps = array( 'manage_options' );
		do_action( 'admin_init' );
		$this->assertFalse( get_transient( Banhammer_Socket_Alert::TRANSIENT ) );
		$this->assertSame( '', self::notices() );
		$_GET = array();

		// The next failure brings it back.
		$now += 5;
		do_action( 'wp_login_failed', 'alice' );
		$this->assertStringContainsString( 'banhammer could not send to its syslog socket', self::notices() );
	}

	/**
	 * Without the socket's permission: the notice names the user, its groups
	 * and the socket's group requirement.
	 */
	public function test_a_socket_without_permission_is_told_with_the_group_to_join() {
		$record = array(
			'path'     => '/run/banhammer/syslog.sock',
			'errno'    => 13,
			'error'    => 'Permission denied',
			'fallback' => true,
			'first'    => 1700000000,
			'last'     => 1700000100,
			'written'  => 1700000100,
			'count'    => 42,
			'facts'    => array(
				'user'      => 'www-data',
				'groups'    => 'www-data',
				'directory' => 'mode 0700, group root',
			),
		);
		$html   = Banhammer_Socket_Alert::render( $record, '/wp-admin/?x=1' );
		$this->assertStringContainsString( 'Permission denied (errno 13) &mdash; at least 42 times', $html );
		$this->assertStringContainsString( 'PHP runs as www-data (groups: www-data).', $html );
		$this->assertStringContainsString( 'the web server&#039;s user must be in the socket&#039;s group (banhammer&#039;s default: www-data)', $html );
		$this->assertStringContainsString( 'The directory has mode 0700, group root. PHP cannot see into the directory.', $html );
		// Lost records are said to be lost; everything is escaped.
		$record['fallback'] = false;
		$record['path']     = '/run/<b>x</b>.sock';
		$record['error']    = '<i>boom</i>';
		$html               = Banhammer_Socket_Alert::render( $record, '/wp-admin/?x=1&y="' );
		$this->assertStringContainsString( 'syslog() did not take the records either: they were lost.', $html );
		$this->assertStringNotContainsString( '<b>x', $html );
		$this->assertStringNotContainsString( '<i>boom', $html );
		$this->assertStringNotContainsString( 'y="', $html );
	}

	/**
	 * Failed sends under attack cost at most one database write a minute
	 * while the error stays the same; a new error is written at once.
	 */
	public function test_socket_failures_are_written_at_most_once_a_minute() {
		$now     = 1700000000;
		$clock   = static function () use ( &$now ) {
			return $now;
		};
		$facts   = static function () {
			return array();
		};
		$failure = array(
			'path'     => '/run/banhammer/syslog.sock',
			'errno'    => 13,
			'error'    => 'Permission denied',
			'fallback' => true,
		);
		$alert   = new Banhammer_Socket_Alert( $clock, $facts );
		for ( $i = 0; $i < 1000; $i++ ) {
			$alert->record( $failure );
		}
		$this->assertCount( 1, Banhammer_Test_WP::$transient_writes );
		$now += 61;
		$alert->record( $failure );
		$this->assertCount( 2, Banhammer_Test_WP::$transient_writes );
		$this->assertSame( 1001, get_transient( Banhammer_Socket_Alert::TRANSIENT )['count'], 'one request: every failure counted' );
		// Other requests (new instances) within the minute: no write, the count a lower bound.
		for ( $i = 0; $i < 100; $i++ ) {
			( new Banhammer_Socket_Alert( $clock, $facts ) )->record( $failure );
		}
		$this->assertCount( 2, Banhammer_Test_WP::$transient_writes );
		$now += 60;
		( new Banhammer_Socket_Alert( $clock, $facts ) )->record( $failure );
		$record = get_transient( Banhammer_Socket_Alert::TRANSIENT );
		$this->assertSame( 1002, $record['count'] );
		$this->assertSame( 1700000000, $record['first'] );
		$this->assertSame( $now, $record['last'] );
		// Another error: written at once, counted from one.
		( new Banhammer_Socket_Alert( $clock, $facts ) )->record( array( 'errno' => 2, 'error' => 'No such file or directory' ) + $failure );
		$record = get_transient( Banhammer_Socket_Alert::TRANSIENT );
		$this->assertCount( 4, Banhammer_Test_WP::$transient_writes );
		$this->assertSame( 2, $record['errno'] );
		$this->assertSame( 1, $record['count'] );
		$this->assertSame( $now, $record['first'] );
		// Something else in the transient is not a record.
		set_transient( Banhammer_Socket_Alert::TRANSIENT, array( 'path' => 5 ) );
		$this->assertNull( ( new Banhammer_Socket_Alert( $clock, $facts ) )->current() );
	}

	/**
	 * Settings > banhammer: the page, its option and its sanitiser.
	 */
	public function test_settings_page() {
		Banhammer_Test_WP::$options = array( 'banhammer_cdn_ranges' => "# Cloudflare\n173.245.48.0/20\nnot-a-range" );
		$this->plugin( array( 'BANHAMMER_PROXY_HEADER' => 'CF-Connecting-IP' ) );
		do_action( 'admin_menu' );
		do_action( 'admin_init' );
		$this->assertSame( array( 'page', 'manage_options', 'banhammer' ), array_slice( Banhammer_Test_WP::$registered[0], 0, 3 ) );
		$this->assertSame( array( 'setting', 'banhammer', 'banhammer_cdn_ranges' ), array_slice( Banhammer_Test_WP::$registered[1], 0, 3 ) );
		$render   = Banhammer_Test_WP::$registered[0][3];
		$sanitize = Banhammer_Test_WP::$registered[1][3]['sanitize_callback'];

		ob_start();
		call_user_func( $render );
		$this->assertSame( '', ob_get_clean(), 'not for visitors' );
		Banhammer_Test_WP::$logged_in = true;
		ob_start();
		call_user_func( $render );
		$html = (string) ob_get_clean();
		$this->assertStringContainsString( 'https://www.cloudflare.com/ips-v4', $html );
		$this->assertStringContainsString( '<textarea name="banhammer_cdn_ranges"', $html );
		$this->assertStringContainsString( "# Cloudflare\n173.245.48.0/20\nnot-a-range</textarea>", $html );
		$this->assertStringContainsString( '1 CDN range(s), from this page', $html );
		$this->assertStringContainsString( 'Ignored: &#039;not-a-range&#039;', $html );
		$this->assertStringContainsString( 'Header: CF-Connecting-IP, read when the request came from the CDN&#039;s ranges', $html );

		// The sanitiser keeps the text, drops controls, lists what it cannot read.
		$this->assertSame( "173.245.48.0/20\n2400:cb00::/32 # v6", call_user_func( $sanitize, " 173.245.48.0/20\r\n2400:cb00::/32 # v6\0\x1b\n" ) );
		$this->assertSame( array(), Banhammer_Test_WP::$settings_errors );
		$this->assertSame( "x\n</textarea>", call_user_func( $sanitize, "x\n</textarea>" ) );
		$this->assertCount( 2, Banhammer_Test_WP::$settings_errors );
		$this->assertSame( '', call_user_func( $sanitize, array( '1.2.3.4' ) ) );
		// Too long: the old value stays.
		$this->assertSame( Banhammer_Test_WP::$options['banhammer_cdn_ranges'], call_user_func( $sanitize, str_repeat( '1.2.3.4 ', 10000 ) ) );

		// The constant overrides the option: the box is read-only.
		Banhammer_Test_WP::reset();
		Banhammer_Test_WP::$logged_in = true;
		Banhammer_Test_WP::$options   = array( 'banhammer_cdn_ranges' => '</textarea><script>' );
		$this->plugin( array( 'BANHAMMER_CDN_RANGES' => '173.245.48.0/20, 2400:cb00::/32' ) );
		do_action( 'admin_menu' );
		ob_start();
		call_user_func( Banhammer_Test_WP::$registered[0][3] );
		$html = (string) ob_get_clean();
		$this->assertStringContainsString( 'BANHAMMER_CDN_RANGES in wp-config.php sets the ranges', $html );
		$this->assertStringContainsString( ' readonly>&lt;/textarea&gt;&lt;script&gt;</textarea>', $html );
		$this->assertStringNotContainsString( 'type="submit"', $html );
		$this->assertStringContainsString( '2 CDN range(s), from BANHAMMER_CDN_RANGES', $html );
		$this->assertStringContainsString( 'Header: X-Forwarded-For', $html );
	}

	/**
	 * The facts the notice shows: the process's user and groups, the socket's
	 * and its directory's mode and group when they can be seen.
	 */
	public function test_socket_facts() {
		if ( ! function_exists( 'posix_geteuid' ) || ! function_exists( 'socket_create' ) ) {
			$this->markTestSkipped( 'needs the posix and sockets extensions' );
		}
		$dir = sys_get_temp_dir() . '/banhammer-facts-' . getmypid() . '-' . mt_rand();
		mkdir( $dir, 0750 );
		chmod( $dir, 0750 );
		$path   = $dir . '/syslog.sock';
		$server = socket_create( AF_UNIX, SOCK_DGRAM, 0 );
		socket_bind( $server, $path );
		chmod( $path, 0660 );
		$facts = Banhammer_Socket_Alert::facts( $path );
		$group = posix_getgrgid( posix_getegid() )['name'];
		socket_close( $server );
		unlink( $path );
		rmdir( $dir );
		$this->assertSame( posix_getpwuid( posix_geteuid() )['name'], $facts['user'] );
		$this->assertStringContainsString( $group, $facts['groups'] );
		$this->assertSame( "mode 0660, group $group", $facts['socket'] );
		$this->assertSame( "mode 0750, group $group", $facts['directory'] );
		$this->assertArrayNotHasKey( 'socket', Banhammer_Socket_Alert::facts( $dir . '/gone/syslog.sock' ) );
	}
}
