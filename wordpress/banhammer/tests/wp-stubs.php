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
	 * Capabilities of the logged-in user.
	 *
	 * @var string[]
	 */
	public static $caps = array( 'manage_options' );
	/**
	 * Transients: name => value.
	 *
	 * @var array
	 */
	public static $transients = array();
	/**
	 * Calls to set_transient(): array( name, value, expiration ).
	 *
	 * @var array
	 */
	public static $transient_writes = array();
	/**
	 * Calls to add_settings_error(): array( setting, code, message ).
	 *
	 * @var array
	 */
	public static $settings_errors = array();
	/**
	 * Calls to register_setting() and add_options_page().
	 *
	 * @var array
	 */
	public static $registered = array();

	/**
	 * Back to a fresh site.
	 */
	public static function reset() {
		self::$hooks            = array();
		self::$seq              = 0;
		self::$logged_in        = false;
		self::$options          = array( 'permalink_structure' => '/%postname%/' );
		self::$users            = array( 'alice' );
		self::$home             = 'https://blog.example.org';
		self::$caps             = array( 'manage_options' );
		self::$transients       = array();
		self::$transient_writes = array();
		self::$settings_errors  = array();
		self::$registered       = array();
		$_GET                   = array();
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
 * Stub of current_user_can(): the logged-in user has Banhammer_Test_WP::$caps.
 *
 * @param string $capability Capability.
 * @return bool
 */
function current_user_can( $capability ) {
	return Banhammer_Test_WP::$logged_in && in_array( $capability, Banhammer_Test_WP::$caps, true );
}

/**
 * Stub of get_transient().
 *
 * @param string $name Name.
 * @return mixed
 */
function get_transient( $name ) {
	return array_key_exists( $name, Banhammer_Test_WP::$transients ) ? Banhammer_Test_WP::$transients[ $name ] : false;
}

/**
 * Stub of set_transient().
 *
 * @param string $name       Name.
 * @param mixed  $value      Value.
 * @param int    $expiration Seconds.
 * @return true
 */
function set_transient( $name, $value, $expiration = 0 ) {
	Banhammer_Test_WP::$transients[ $name ] = $value;
	Banhammer_Test_WP::$transient_writes[]  = array( $name, $value, $expiration );
	return true;
}

/**
 * Stub of delete_transient().
 *
 * @param string $name Name.
 * @return bool
 */
function delete_transient( $name ) {
	$had = array_key_exists( $name, Banhammer_Test_WP::$transients );
	unset( Banhammer_Test_WP::$transients[ $name ] );
	return $had;
}

/**
 * Stub of wp_nonce_url(): the nonce is "nonce-" and the action.
 *
 * @param string $url    URL.
 * @param string $action Action.
 * @return string
 */
function wp_nonce_url( $url, $action ) {
	return $url . ( false === strpos( $url, '?' ) ? '?' : '&amp;' ) . '_wpnonce=' . rawurlencode( 'nonce-' . $action );
}

/**
 * Stub of wp_verify_nonce().
 *
 * @param string $nonce  Nonce.
 * @param string $action Action.
 * @return int|false
 */
function wp_verify_nonce( $nonce, $action ) {
	return Banhammer_Test_WP::$logged_in && 'nonce-' . $action === $nonce ? 1 : false;
}

/**
 * Stub of add_query_arg( key, value ) on the current page.
 *
 * @param string $key   Key.
 * @param string $value Value.
 * @return string
 */
function add_query_arg( $key, $value ) {
	return '/wp-admin/index.php?' . rawurlencode( $key ) . '=' . rawurlencode( $value );
}

/**
 * Stub of sanitize_text_field().
 *
 * @param string $text Text.
 * @return string
 */
function sanitize_text_field( $text ) {
	return trim( (string) preg_replace( '/[\x00-\x1f<>]/', '', (string) $text ) );
}

/**
 * Stub of wp_unslash().
 *
 * @param string $text Text.
 * @return string
 */
function wp_unslash( $text ) {
	return stripslashes( (string) $text );
}

/**
 * Stub of esc_attr().
 *
 * @param string $text Text.
 * @return string
 */
function esc_attr( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

/**
 * Stub of esc_textarea().
 *
 * @param string $text Text.
 * @return string
 */
function esc_textarea( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

/**
 * Stub of esc_url() (no scheme check; the tests' URLs are relative).
 *
 * @param string $url URL.
 * @return string
 */
function esc_url( $url ) {
	return htmlspecialchars( (string) $url, ENT_QUOTES, 'UTF-8', false );
}

/**
 * Stub of add_settings_error().
 *
 * @param string $setting Setting.
 * @param string $code    Code.
 * @param string $message Message.
 */
function add_settings_error( $setting, $code, $message ) {
	Banhammer_Test_WP::$settings_errors[] = array( $setting, $code, $message );
}

/**
 * Stub of register_setting().
 *
 * @param string $group Group.
 * @param string $name  Option.
 * @param array  $args  Arguments.
 */
function register_setting( $group, $name, $args = array() ) {
	Banhammer_Test_WP::$registered[] = array( 'setting', $group, $name, $args );
}

/**
 * Stub of add_options_page().
 *
 * @param string   $page_title Title.
 * @param string   $menu_title Menu title.
 * @param string   $capability Capability.
 * @param string   $slug       Slug.
 * @param callable $callback   Renders the page.
 * @return string
 */
function add_options_page( $page_title, $menu_title, $capability, $slug, $callback ) {
	Banhammer_Test_WP::$registered[] = array( 'page', $capability, $slug, $callback );
	return 'settings_page_' . $slug;
}

/**
 * Stub of settings_fields().
 *
 * @param string $group Group.
 */
function settings_fields( $group ) {
	echo '<input type="hidden" name="option_page" value="' . esc_attr( $group ) . '">';
}

/**
 * Stub of submit_button().
 */
function submit_button() {
	echo '<input type="submit" value="Save Changes">';
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
