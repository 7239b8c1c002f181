<?php
/**
 * The few WordPress functions and classes the glue (Banhammer_Plugin) calls,
 * with a hook registry that runs callbacks in WordPress's order (priority,
 * then registration) and passes accepted_args arguments, as core does.
 * Tests set the globals below to stage a request.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

// phpcs:disable WordPress.NamingConventions.PrefixAllGlobals -- WordPress's own names.

// In XML-RPC requests core defines this; with it set, multicall detection
// depends only on $GLOBALS['wp_xmlrpc_server'], which the tests stage.
define( 'XMLRPC_REQUEST', true );
define( 'ABSPATH', '/nonexistent/' );

/**
 * Staged WordPress state.
 */
final class Banhammer_Test_WP {
	/**
	 * Hooks: name => list of array( priority, seq, callback, accepted_args ).
	 *
	 * @var array
	 */
	public static $hooks = array();
	/**
	 * Registration counter.
	 *
	 * @var int
	 */
	public static $seq = 0;
	/**
	 * Whether a user is logged in.
	 *
	 * @var bool
	 */
	public static $logged_in = false;
	/**
	 * Options.
	 *
	 * @var array
	 */
	public static $options = array( 'permalink_structure' => '/%postname%/' );
	/**
	 * Login names of the accounts.
	 *
	 * @var string[]
	 */
	public static $users = array( 'alice' );
	/**
	 * Home URL.
	 *
	 * @var string
	 */
	public static $home = 'https://blog.example.org';

	/**
	 * Back to a fresh site.
	 */
	public static function reset() {
		self::$hooks     = array();
		self::$seq       = 0;
		self::$logged_in = false;
		self::$options   = array( 'permalink_structure' => '/%postname%/' );
		self::$users     = array( 'alice' );
		self::$home      = 'https://blog.example.org';
		unset( $GLOBALS['wp_xmlrpc_server'] );
	}

	/**
	 * Run the callbacks of $hook; a filter's value is the first argument.
	 *
	 * @param string $hook Hook name.
	 * @param array  $args Arguments.
	 * @return mixed The filtered value (first argument).
	 */
	public static function run( $hook, array $args ) {
		$callbacks = isset( self::$hooks[ $hook ] ) ? self::$hooks[ $hook ] : array();
		usort(
			$callbacks,
			static function ( $a, $b ) {
				return array( $a[0], $a[1] ) <=> array( $b[0], $b[1] );
			}
		);
		$value = isset( $args[0] ) ? $args[0] : null;
		foreach ( $callbacks as $cb ) {
			$args[0] = $value;
			$result  = call_user_func_array( $cb[2], array_slice( $args, 0, $cb[3] ) );
			if ( $cb[4] ) {
				$value = $result;
			}
		}
		return $value;
	}
}

/**
 * Stub of add_filter().
 *
 * @param string   $hook          Hook.
 * @param callable $callback      Callback.
 * @param int      $priority      Priority.
 * @param int      $accepted_args Arguments passed.
 * @return true
 */
function add_filter( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
	Banhammer_Test_WP::$hooks[ $hook ][] = array( $priority, ++Banhammer_Test_WP::$seq, $callback, $accepted_args, true );
	return true;
}

/**
 * Stub of add_action().
 *
 * @param string   $hook          Hook.
 * @param callable $callback      Callback.
 * @param int      $priority      Priority.
 * @param int      $accepted_args Arguments passed.
 * @return true
 */
function add_action( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
	Banhammer_Test_WP::$hooks[ $hook ][] = array( $priority, ++Banhammer_Test_WP::$seq, $callback, $accepted_args, false );
	return true;
}

/**
 * Stub of do_action().
 *
 * @param string $hook    Hook.
 * @param mixed  ...$args Arguments.
 */
function do_action( $hook, ...$args ) {
	Banhammer_Test_WP::run( $hook, $args );
}

/**
 * Stub of apply_filters().
 *
 * @param string $hook    Hook.
 * @param mixed  ...$args Value and arguments.
 * @return mixed
 */
function apply_filters( $hook, ...$args ) {
	return Banhammer_Test_WP::run( $hook, $args );
}

/**
 * Stub of is_user_logged_in().
 *
 * @return bool
 */
function is_user_logged_in() {
	return Banhammer_Test_WP::$logged_in;
}

/**
 * Stub of get_option().
 *
 * @param string $name    Option.
 * @param mixed  $default Default.
 * @return mixed
 */
function get_option( $name, $default = false ) {
	return array_key_exists( $name, Banhammer_Test_WP::$options ) ? Banhammer_Test_WP::$options[ $name ] : $default;
}

/**
 * Stub of username_exists() (case-insensitive, like MySQL's collation).
 *
 * @param string $name Login name.
 * @return int|false
 */
function username_exists( $name ) {
	foreach ( Banhammer_Test_WP::$users as $i => $user ) {
		if ( strtolower( $user ) === strtolower( $name ) ) {
			return $i + 1;
		}
	}
	return false;
}

/**
 * Stub of current_user_can(): administrators are the logged-in users here.
 *
 * @param string $capability Capability.
 * @return bool
 */
function current_user_can( $capability ) {
	return Banhammer_Test_WP::$logged_in && '' !== $capability;
}

/**
 * Stub of esc_html().
 *
 * @param string $text Text.
 * @return string
 */
function esc_html( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

/**
 * Stub of home_url().
 *
 * @return string
 */
function home_url() {
	return Banhammer_Test_WP::$home;
}

/**
 * Stub of wp_parse_url().
 *
 * @param string $url       URL.
 * @param int    $component Component.
 * @return mixed
 */
function wp_parse_url( $url, $component = -1 ) {
	return parse_url( $url, $component ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url
}

/**
 * Core's IXR_Error, as far as the plugin looks at it.
 */
class IXR_Error {
	/**
	 * Code.
	 *
	 * @var int
	 */
	public $code;
	/**
	 * Message.
	 *
	 * @var string
	 */
	public $message;

	/**
	 * Constructor.
	 *
	 * @param int    $code    Code.
	 * @param string $message Message.
	 */
	public function __construct( $code, $message ) {
		$this->code    = $code;
		$this->message = $message;
	}
}

/**
 * Core's default xmlrpc_pingback_error filter (wp-includes/comment.php).
 *
 * @param IXR_Error $ixr_error Error.
 * @return IXR_Error
 */
function xmlrpc_pingback_error( $ixr_error ) {
	if ( 48 === $ixr_error->code ) {
		return $ixr_error;
	}
	return new IXR_Error( 0, '' );
}

/**
 * A REST request, as far as the plugin looks at it.
 */
final class Banhammer_Test_Rest_Request {
	/**
	 * Route.
	 *
	 * @var string
	 */
	private $route;

	/**
	 * Constructor.
	 *
	 * @param string $route Route.
	 */
	public function __construct( $route ) {
		$this->route = $route;
	}

	/**
	 * The route.
	 *
	 * @return string
	 */
	public function get_route() {
		return $this->route;
	}
}

/**
 * A logger that keeps the lines.
 */
final class Banhammer_Test_Logger extends Banhammer_Logger {
	/**
	 * Lines logged.
	 *
	 * @var string[]
	 */
	public $lines = array();

	/**
	 * Constructor.
	 */
	public function __construct() {
		parent::__construct( 'wordpress(test)', LOG_AUTHPRIV );
	}

	/**
	 * Keep the line.
	 *
	 * @param string|null $message Line.
	 * @return bool
	 */
	public function log( $message ) {
		$this->lines[] = $message;
		return true;
	}
}
