<?php
/**
 * The WordPress glue: hooks in, log lines out.
 *
 * Receives WordPress's actions and filters; for each signal that is on it
 * asks Banhammer_Detector whether this request is one to report, resolves the
 * client's address once (Banhammer_Address_Resolver) and hands the line from
 * Banhammer_Messages to Banhammer_Logger. It changes nothing in WordPress's
 * behaviour: filters return what they were given, nothing is blocked here,
 * banning is banhammer's (or fail2ban's) job.
 *
 *   signal            hook                                    fires on
 *   auth              wp_login_failed                         every failed login (wp-login.php, XML-RPC, ...)
 *   multicall         wp_login_failed in an XML-RPC request   the first failed login of a system.multicall
 *   blocked_username  wp_login_failed                         a failed login with a blocked name no user has
 *   pingback_error    xmlrpc_pingback_error, priority 1       every pingback error but 48 (duplicate), before
 *                                                             core's own filter replaces the code with 0
 *   pingback_request  xmlrpc_call                             pingback.ping
 *   enumeration       template_redirect, priority 1           anonymous /?author=N (before the redirect)
 *                     rest_pre_dispatch                       anonymous REST /wp/v2/users
 *
 * Administrators (manage_options) see, in admin_notices, the settings that
 * could not be used and failed sends to banhammer's socket
 * (Banhammer_Socket_Alert, dismissed through admin_init); Settings > banhammer
 * (Banhammer_Settings_Page) holds the CDN's ranges, which the
 * banhammer_cdn_ranges filter may change.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Hooks.
 */
final class Banhammer_Plugin {

	/**
	 * Settings.
	 *
	 * @var Banhammer_Config
	 */
	private $config;

	/**
	 * Client address resolution, made on first use (the CDN ranges go through
	 * a filter other plugins may add after this one is loaded).
	 *
	 * @var Banhammer_Address_Resolver|null
	 */
	private $resolver = null;

	/**
	 * The CDN's ranges in use, made on first use.
	 *
	 * @var Banhammer_Network_Set|null
	 */
	private $cdn = null;

	/**
	 * Failed sends to the socket, for administrators.
	 *
	 * @var Banhammer_Socket_Alert
	 */
	private $alert;

	/**
	 * Message sink, made on first use (it needs home_url()).
	 *
	 * @var Banhammer_Logger|null
	 */
	private $logger;

	/**
	 * The request's $_SERVER.
	 *
	 * @var array
	 */
	private $server;

	/**
	 * The client's address, once resolved.
	 *
	 * @var string|null
	 */
	private $address = null;

	/**
	 * Whether $address has been resolved.
	 *
	 * @var bool
	 */
	private $address_resolved = false;

	/**
	 * Whether this request's multicall line was written.
	 *
	 * @var bool
	 */
	private $multicall_logged = false;

	/**
	 * Constructor.
	 *
	 * @param Banhammer_Config            $config Settings.
	 * @param array                       $server The request's $_SERVER.
	 * @param Banhammer_Logger|null       $logger Sink (default: made from $config on first use).
	 * @param Banhammer_Socket_Alert|null $alert  Failed sends (default: a new one).
	 */
	public function __construct( Banhammer_Config $config, array $server, $logger = null, $alert = null ) {
		$this->config = $config;
		$this->server = $server;
		$this->logger = $logger;
		$this->alert  = $alert instanceof Banhammer_Socket_Alert ? $alert : new Banhammer_Socket_Alert();
		if ( $logger instanceof Banhammer_Logger ) {
			$logger->set_failure_handler( array( $this->alert, 'record' ) );
		}
	}

	/**
	 * Set the plugin up for this request (once).
	 *
	 * @return Banhammer_Plugin
	 */
	public static function boot() {
		static $instance = null;
		if ( null === $instance ) {
			$instance = new self( Banhammer_Config::from_constants(), $_SERVER );
			$instance->register();
		}
		return $instance;
	}

	/**
	 * Add the hooks of the signals that are on.
	 */
	public function register() {
		$config = $this->config;
		add_action( 'admin_notices', array( $this, 'on_admin_notices' ), 10, 0 );
		add_action( 'admin_init', array( $this, 'on_admin_init' ), 10, 0 );
		( new Banhammer_Settings_Page( $config, array( $this, 'cdn_ranges' ) ) )->register();
		if ( $config->enabled( 'auth' ) || $config->enabled( 'multicall' ) || $config->enabled( 'blocked_username' ) ) {
			add_action( 'wp_login_failed', array( $this, 'on_login_failed' ), 10, 1 );
		}
		if ( $config->enabled( 'pingback_error' ) ) {
			// Priority 1: core's xmlrpc_pingback_error (priority 10) turns every
			// code but 48 into 0.
			add_filter( 'xmlrpc_pingback_error', array( $this, 'on_pingback_error' ), 1, 1 );
		}
		if ( $config->enabled( 'pingback_request' ) ) {
			add_action( 'xmlrpc_call', array( $this, 'on_xmlrpc_call' ), 10, 1 );
		}
		if ( $config->enabled( 'enumeration' ) ) {
			// Priority 1: redirect_canonical (priority 10) answers and exits.
			add_action( 'template_redirect', array( $this, 'on_template_redirect' ), 1, 0 );
			add_filter( 'rest_pre_dispatch', array( $this, 'on_rest_pre_dispatch' ), 10, 3 );
		}
	}

	/**
	 * Action wp_login_failed.
	 *
	 * @param string $username The name typed (after WordPress's sanitize_user()).
	 */
	public function on_login_failed( $username ) {
		$address = $this->client_address();
		if ( null === $address ) {
			return;
		}
		if ( $this->config->enabled( 'auth' ) ) {
			$this->log( Banhammer_Messages::auth_failure( $username, $address ) );
		}
		if ( $this->config->enabled( 'multicall' ) && ! $this->multicall_logged && $this->in_multicall() ) {
			$this->multicall_logged = true;
			$this->log( Banhammer_Messages::multicall_failure( $username, $address ) );
		}
		if ( $this->config->enabled( 'blocked_username' ) && Banhammer_Detector::blocked_username( $username, $this->config->blocked_usernames, array( $this, 'user_exists' ) ) ) {
			$this->log( Banhammer_Messages::blocked_username( $username, $address ) );
		}
	}

	/**
	 * Filter xmlrpc_pingback_error: log, and return the error unchanged.
	 *
	 * @param IXR_Error $error The error about to be returned to the client.
	 * @return IXR_Error
	 */
	public function on_pingback_error( $error ) {
		if ( is_object( $error ) && isset( $error->code ) && 48 !== (int) $error->code ) {
			$address = $this->client_address();
			if ( null !== $address ) {
				$this->log( Banhammer_Messages::pingback_error( (int) $error->code, $address ) );
			}
		}
		return $error;
	}

	/**
	 * Action xmlrpc_call.
	 *
	 * @param string $method XML-RPC method being served.
	 */
	public function on_xmlrpc_call( $method ) {
		if ( 'pingback.ping' !== $method ) {
			return;
		}
		$address = $this->client_address();
		if ( null !== $address ) {
			$this->log( Banhammer_Messages::pingback_requested( $address ) );
		}
	}

	/**
	 * Action template_redirect (front-end requests only).
	 */
	public function on_template_redirect() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only look at a public query argument.
		$query = $_GET;
		$id    = Banhammer_Detector::author_enumeration( $query, is_user_logged_in(), '' !== (string) get_option( 'permalink_structure' ) );
		if ( null === $id ) {
			return;
		}
		$address = $this->client_address();
		if ( null !== $address ) {
			$this->log( Banhammer_Messages::author_enumeration( $id, $address ) );
		}
	}

	/**
	 * Filter rest_pre_dispatch: log, and return the result unchanged.
	 *
	 * @param mixed           $result  Response to use instead of dispatching (usually null).
	 * @param WP_REST_Server  $server  Server.
	 * @param WP_REST_Request $request Request.
	 * @return mixed
	 */
	public function on_rest_pre_dispatch( $result, $server, $request ) {
		if ( is_object( $request ) && method_exists( $request, 'get_route' )
			&& Banhammer_Detector::rest_enumeration( $request->get_route(), is_user_logged_in() ) ) {
			$address = $this->client_address();
			if ( null !== $address ) {
				$this->log( Banhammer_Messages::rest_enumeration( $address ) );
			}
		}
		return $result;
	}

	/**
	 * Action admin_notices: tell administrators which settings were ignored,
	 * and that sends to banhammer's socket failed.
	 */
	public function on_admin_notices() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$problems = $this->problems();
		if ( array() !== $problems ) {
			echo '<div class="notice notice-warning"><p><strong>banhammer:</strong> settings that were ignored or need attention:</p><ul>';
			foreach ( $problems as $problem ) {
				echo '<li>' . esc_html( $problem ) . '</li>';
			}
			echo '</ul></div>';
		}
		$failure = $this->alert->current();
		if ( null !== $failure ) {
			$dismiss = wp_nonce_url( add_query_arg( Banhammer_Socket_Alert::DISMISS_ARG, '1' ), Banhammer_Socket_Alert::NONCE_ACTION );
			echo Banhammer_Socket_Alert::render( $failure, $dismiss ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- render() escapes every part.
		}
	}

	/**
	 * Action admin_init: the socket notice's dismiss link.
	 */
	public function on_admin_init() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- the nonce is verified here.
		if ( ! isset( $_GET[ Banhammer_Socket_Alert::DISMISS_ARG ], $_GET['_wpnonce'] ) || ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$nonce = sanitize_text_field( wp_unslash( $_GET['_wpnonce'] ) );
		// phpcs:enable
		if ( wp_verify_nonce( $nonce, Banhammer_Socket_Alert::NONCE_ACTION ) ) {
			$this->alert->dismiss();
		}
	}

	/**
	 * Settings that could not be used, and settings that do not fit together,
	 * one sentence each.
	 *
	 * @return string[]
	 */
	public function problems() {
		$problems = $this->config->problems();
		$cdn      = $this->cdn_ranges();
		$source   = 'constant' === $this->config->cdn_ranges_source ? 'BANHAMMER_CDN_RANGES' : 'CDN ranges';
		foreach ( $cdn->invalid_entries() as $entry ) {
			$problems[] = "$source: '$entry' is not an address or CIDR block (ignored)";
		}
		$header = $this->config->proxy_header;
		if ( Banhammer_Address_Resolver::is_single_address( $header ) && 0 === $cdn->count() ) {
			$problems[] = "BANHAMMER_PROXY_HEADER: $header is only read from your CDN's addresses, and no CDN ranges are set (Settings > banhammer, or BANHAMMER_CDN_RANGES): X-Forwarded-For is read instead";
		}
		return $problems;
	}

	/**
	 * The CDN's ranges in use: the configured ones (constant, else option)
	 * through the banhammer_cdn_ranges filter, which receives and may return
	 * a list of ranges (or text).
	 *
	 * @return Banhammer_Network_Set
	 */
	public function cdn_ranges() {
		if ( null === $this->cdn ) {
			$ranges    = function_exists( 'apply_filters' ) ? apply_filters( 'banhammer_cdn_ranges', $this->config->cdn_ranges ) : $this->config->cdn_ranges;
			$this->cdn = new Banhammer_Network_Set( is_string( $ranges ) || is_array( $ranges ) ? $ranges : array() );
		}
		return $this->cdn;
	}

	/**
	 * Whether an account has the login name $name.
	 *
	 * @param string $name Login name.
	 * @return bool
	 */
	public function user_exists( $name ) {
		return (bool) username_exists( $name );
	}

	/**
	 * Whether this is an XML-RPC system.multicall request.
	 *
	 * @return bool
	 */
	private function in_multicall() {
		if ( ! defined( 'XMLRPC_REQUEST' ) || ! XMLRPC_REQUEST || ! isset( $GLOBALS['wp_xmlrpc_server'] ) ) {
			return false;
		}
		$server = $GLOBALS['wp_xmlrpc_server'];
		return is_object( $server ) && isset( $server->message ) && is_object( $server->message )
			&& isset( $server->message->methodName )
			&& Banhammer_Detector::is_multicall( $server->message->methodName ); // phpcs:ignore WordPress.NamingConventions.ValidVariableName.UsedPropertyNotSnakeCase -- IXR's name.
	}

	/**
	 * The client's address for this request (resolved once).
	 *
	 * @return string|null
	 */
	private function client_address() {
		if ( ! $this->address_resolved ) {
			if ( null === $this->resolver ) {
				$this->resolver = new Banhammer_Address_Resolver( $this->config->trusted_proxies, $this->config->proxy_header, $this->cdn_ranges() );
			}
			$this->address          = $this->resolver->resolve( $this->server );
			$this->address_resolved = true;
		}
		return $this->address;
	}

	/**
	 * Send a line (if there is one).
	 *
	 * @param string|null $message Line.
	 */
	private function log( $message ) {
		if ( null === $message ) {
			return;
		}
		if ( ! $this->logger instanceof Banhammer_Logger ) {
			$home         = function_exists( 'home_url' ) ? wp_parse_url( home_url(), PHP_URL_HOST ) : null;
			$this->logger = new Banhammer_Logger(
				$this->config->ident_for( is_string( $home ) ? $home : null ),
				$this->config->facility,
				$this->config->socket_path
			);
			$this->logger->set_failure_handler( array( $this->alert, 'record' ) );
		}
		$this->logger->log( $message );
	}
}
