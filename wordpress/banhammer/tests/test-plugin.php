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
		$config = new Banhammer_Config(
			static function ( $name ) use ( $constants ) {
				return array_key_exists( $name, $constants ) ? $constants[ $name ] : null;
			}
		);
		$plugin = new Banhammer_Plugin( $config, $server, $this->logger );
		$plugin->register();
		return $plugin;
	}

	/**
	 * Hook names and priorities.
	 */
	public function test_hooks_registered() {
		$this->plugin();
		$seen = array();
		foreach ( Banhammer_Test_WP::$hooks as $hook => $callbacks ) {
			foreach ( $callbacks as $cb ) {
				$seen[] = $hook . '@' . $cb[0] . '/' . $cb[3];
			}
		}
		sort( $seen );
		$this->assertSame(
			array( 'rest_pre_dispatch@10/3', 'template_redirect@1/0', 'wp_login_failed@10/1', 'xmlrpc_call@10/1', 'xmlrpc_pingback_error@1/1' ),
			$seen
		);
	}

	/**
	 * Signals that are off add no hooks.
	 */
	public function test_signals_off() {
		$this->plugin( array( 'BANHAMMER_SIGNALS' => 'pingback_error' ) );
		$this->assertSame( array( 'xmlrpc_pingback_error' ), array_keys( Banhammer_Test_WP::$hooks ) );
		Banhammer_Test_WP::reset();
		$this->plugin( array( 'BANHAMMER_SIGNALS' => false ) );
		$this->assertSame( array(), Banhammer_Test_WP::$hooks );
	}

	/**
	 * Ignored settings are shown to administrators, escaped.
	 */
	public function test_admin_notice() {
		$this->plugin( array( 'BANHAMMER_TRUSTED_PROXIES' => '<b>proxy</b>' ) );
		$this->assertArrayHasKey( 'admin_notices', Banhammer_Test_WP::$hooks );
		ob_start();
		do_action( 'admin_notices' );
		$this->assertSame( '', ob_get_clean(), 'not for visitors' );
		Banhammer_Test_WP::$logged_in = true;
		ob_start();
		do_action( 'admin_notices' );
		$html = ob_get_clean();
		$this->assertStringContainsString( '&lt;b&gt;proxy&lt;/b&gt;', $html );
		$this->assertStringNotContainsString( '<b>proxy', $html );
		Banhammer_Test_WP::reset();
		$this->plugin();
		$this->assertArrayNotHasKey( 'admin_notices', Banhammer_Test_WP::$hooks );
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
}
