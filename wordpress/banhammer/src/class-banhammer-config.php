<?php
/**
 * The plugin's settings, read from wp-config.php constants (and one WordPress
 * option).
 *
 * Receives a lookup function (constant name => value, null when undefined) so
 * tests need no constants, and one for options; emits validated settings with
 * defaults filled in. A value that cannot be used falls back to its default
 * and is listed in problems(), never half-applied.
 *
 *   BANHAMMER_SIGNALS            signals to log: all (default), or a list such
 *                                as 'auth, pingback_error', or removals only:
 *                                '-pingback_request'
 *   BANHAMMER_SYSLOG_FACILITY    LOG_AUTHPRIV (default), a LOG_* constant or a
 *                                name: 'auth', 'authpriv', 'daemon', 'user',
 *                                'local0' ... 'local7'
 *   BANHAMMER_SYSLOG_IDENT       the whole ident; default "wordpress(HOST)"
 *   BANHAMMER_HOST               HOST in the default ident; default the host
 *                                of the site's home URL
 *   BANHAMMER_TRUSTED_PROXIES    addresses/CIDR blocks of the site's own
 *                                reverse proxies and load balancers (default
 *                                none)
 *   BANHAMMER_CDN_RANGES         the CDN's published ranges (default: the
 *                                option banhammer_cdn_ranges, edited on
 *                                Settings > banhammer; else none)
 *   BANHAMMER_PROXY_HEADER       header naming the client: 'X-Forwarded-For'
 *                                (default) or a CDN's single-address one such
 *                                as 'CF-Connecting-IP', read only from
 *                                addresses in the CDN's ranges
 *   BANHAMMER_BLOCKED_USERNAMES  login names attackers try and no account has,
 *                                separated by commas (default 'admin,
 *                                administrator, root, test, user'); false for
 *                                none
 *   BANHAMMER_SOCKET             true for /run/banhammer/syslog.sock, or a
 *                                path: send to banhammer's syslog socket
 *                                instead of syslog() (default off)
 *
 * Lists are arrays or strings separated by commas (or blanks, except user
 * names); address lists may carry "#" comments.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Validated settings.
 */
final class Banhammer_Config {

	/**
	 * Every signal the plugin knows.
	 */
	const SIGNALS = array( 'auth', 'pingback_error', 'multicall', 'pingback_request', 'enumeration', 'blocked_username' );

	/**
	 * Blocked user names unless the site sets its own.
	 */
	const DEFAULT_BLOCKED_USERNAMES = array( 'admin', 'administrator', 'root', 'test', 'user' );

	/**
	 * banhammer's syslog socket.
	 */
	const DEFAULT_SOCKET = '/run/banhammer/syslog.sock';

	/**
	 * The ident's program name; the shipped filters expect it (_daemon).
	 */
	const PROGRAM = 'wordpress';

	/**
	 * Syslog facilities by name, as PHP's LOG_* values (Linux numbering; PHP
	 * only defines LOG_AUTHPRIV where the system has it).
	 */
	const FACILITIES = array(
		'kern'     => 0,
		'user'     => 8,
		'mail'     => 16,
		'daemon'   => 24,
		'auth'     => 32,
		'syslog'   => 40,
		'authpriv' => 80,
		'local0'   => 128,
		'local1'   => 136,
		'local2'   => 144,
		'local3'   => 152,
		'local4'   => 160,
		'local5'   => 168,
		'local6'   => 176,
		'local7'   => 184,
	);

	/**
	 * Enabled signals, as a set (name => true).
	 *
	 * @var array<string, bool>
	 */
	public $signals;

	/**
	 * Facility, a LOG_* value.
	 *
	 * @var int
	 */
	public $facility;

	/**
	 * The ident set by the site, already sanitised; null for the default.
	 *
	 * @var string|null
	 */
	public $ident;

	/**
	 * HOST for the default ident set by the site, sanitised; null for the
	 * home URL's host.
	 *
	 * @var string|null
	 */
	public $host;

	/**
	 * Trusted proxies.
	 *
	 * @var Banhammer_Network_Set
	 */
	public $trusted_proxies;

	/**
	 * Client address header: X-Forwarded-For or a CDN's.
	 *
	 * @var string
	 */
	public $proxy_header;

	/**
	 * The CDN's ranges as entries (addresses, CIDR blocks; unchecked: the
	 * plugin runs them through the banhammer_cdn_ranges filter first).
	 *
	 * @var string[]
	 */
	public $cdn_ranges;

	/**
	 * Where $cdn_ranges came from: 'constant', 'option' or 'none'.
	 *
	 * @var string
	 */
	public $cdn_ranges_source;

	/**
	 * Blocked user names, lower case.
	 *
	 * @var string[]
	 */
	public $blocked_usernames;

	/**
	 * Path of banhammer's syslog socket, or null to use syslog().
	 *
	 * @var string|null
	 */
	public $socket_path;

	/**
	 * What could not be used, one sentence each.
	 *
	 * @var string[]
	 */
	private $problems = array();

	/**
	 * The option that holds the CDN's ranges (Settings > banhammer).
	 */
	const CDN_RANGES_OPTION = 'banhammer_cdn_ranges';

	/**
	 * Settings from wp-config.php's constants and the site's options.
	 *
	 * @return Banhammer_Config
	 */
	public static function from_constants() {
		return new self(
			static function ( $name ) {
				return defined( $name ) ? constant( $name ) : null;
			},
			static function ( $name ) {
				return function_exists( 'get_option' ) ? get_option( $name, null ) : null;
			}
		);
	}

	/**
	 * Constructor.
	 *
	 * @param callable      $lookup Constant name => value, or null when not set.
	 * @param callable|null $option Option name => value, or null when not set.
	 */
	public function __construct( callable $lookup, $option = null ) {
		$this->signals           = $this->read_signals( $lookup( 'BANHAMMER_SIGNALS' ) );
		$this->facility          = $this->read_facility( $lookup( 'BANHAMMER_SYSLOG_FACILITY' ) );
		$this->ident             = $this->read_ident( $lookup( 'BANHAMMER_SYSLOG_IDENT' ) );
		$this->host              = $this->read_host( $lookup( 'BANHAMMER_HOST' ) );
		$this->trusted_proxies   = $this->read_proxies( $lookup( 'BANHAMMER_TRUSTED_PROXIES' ) );
		$this->proxy_header      = $this->read_proxy_header( $lookup( 'BANHAMMER_PROXY_HEADER' ) );
		$this->read_cdn_ranges( $lookup( 'BANHAMMER_CDN_RANGES' ), null !== $option ? $option( self::CDN_RANGES_OPTION ) : null );
		$this->blocked_usernames = $this->read_blocked( $lookup( 'BANHAMMER_BLOCKED_USERNAMES' ) );
		$this->socket_path       = $this->read_socket( $lookup( 'BANHAMMER_SOCKET' ) );
	}

	/**
	 * Whether a signal is on.
	 *
	 * @param string $signal One of SIGNALS.
	 * @return bool
	 */
	public function enabled( $signal ) {
		return isset( $this->signals[ $signal ] );
	}

	/**
	 * The syslog ident: the site's, or "wordpress(HOST)", or "wordpress".
	 *
	 * @param string|null $home_host Host of the site's home URL (unsanitised).
	 * @return string
	 */
	public function ident_for( $home_host ) {
		if ( null !== $this->ident ) {
			return $this->ident;
		}
		$host = null !== $this->host ? $this->host : Banhammer_Sanitizer::host( $home_host );
		return '' === $host ? self::PROGRAM : self::PROGRAM . '(' . $host . ')';
	}

	/**
	 * What could not be used, one sentence each.
	 *
	 * @return string[]
	 */
	public function problems() {
		return $this->problems;
	}

	/**
	 * BANHAMMER_SIGNALS.
	 *
	 * @param mixed $value Setting.
	 * @return array<string, bool>
	 */
	private function read_signals( $value ) {
		$all = array_fill_keys( self::SIGNALS, true );
		if ( null === $value || 'all' === $value ) {
			return $all;
		}
		if ( false === $value ) {
			return array();
		}
		$items    = Banhammer_Network_Set::split_list( $value );
		$adds     = array();
		$removals = array();
		foreach ( $items as $item ) {
			$remove = '-' === $item[0];
			$name   = strtolower( ltrim( $item, '-' ) );
			if ( 'all' === $name ) {
				$adds = $all;
				continue;
			}
			if ( ! isset( $all[ $name ] ) ) {
				$this->problems[] = "BANHAMMER_SIGNALS: unknown signal '$item' (known: " . implode( ', ', self::SIGNALS ) . ')';
				continue;
			}
			if ( $remove ) {
				$removals[ $name ] = true;
			} else {
				$adds[ $name ] = true;
			}
		}
		// Removals alone start from everything: '-pingback_request'.
		if ( array() === $adds && array() !== $removals ) {
			$adds = $all;
		}
		return array_diff_key( $adds, $removals );
	}

	/**
	 * BANHAMMER_SYSLOG_FACILITY.
	 *
	 * @param mixed $value Setting.
	 * @return int
	 */
	private function read_facility( $value ) {
		$default = defined( 'LOG_AUTHPRIV' ) ? LOG_AUTHPRIV : LOG_AUTH;
		if ( null === $value ) {
			return $default;
		}
		if ( is_int( $value ) && in_array( $value, self::FACILITIES, true ) ) {
			return $value;
		}
		if ( is_string( $value ) ) {
			$name = strtolower( trim( $value ) );
			if ( 0 === strpos( $name, 'log_' ) ) {
				$name = substr( $name, 4 );
			}
			if ( isset( self::FACILITIES[ $name ] ) ) {
				$constant = 'LOG_' . strtoupper( $name );
				return defined( $constant ) ? (int) constant( $constant ) : self::FACILITIES[ $name ];
			}
		}
		$this->problems[] = 'BANHAMMER_SYSLOG_FACILITY: not a syslog facility (expected LOG_AUTHPRIV, \'auth\', \'local0\' ...)';
		return $default;
	}

	/**
	 * BANHAMMER_SYSLOG_IDENT.
	 *
	 * @param mixed $value Setting.
	 * @return string|null
	 */
	private function read_ident( $value ) {
		if ( null === $value ) {
			return null;
		}
		$ident = Banhammer_Sanitizer::ident( $value );
		if ( '' === $ident || ! is_string( $value ) || $ident !== $value ) {
			$this->problems[] = 'BANHAMMER_SYSLOG_IDENT: only letters, digits and . _ - ( ) may be used';
		}
		return '' === $ident ? null : $ident;
	}

	/**
	 * BANHAMMER_HOST.
	 *
	 * @param mixed $value Setting.
	 * @return string|null
	 */
	private function read_host( $value ) {
		if ( null === $value ) {
			return null;
		}
		$host = Banhammer_Sanitizer::host( $value );
		if ( '' === $host ) {
			$this->problems[] = 'BANHAMMER_HOST: not a host name';
			return null;
		}
		return $host;
	}

	/**
	 * BANHAMMER_TRUSTED_PROXIES.
	 *
	 * @param mixed $value Setting.
	 * @return Banhammer_Network_Set
	 */
	private function read_proxies( $value ) {
		$set = new Banhammer_Network_Set( null === $value ? array() : $value );
		foreach ( $set->invalid_entries() as $entry ) {
			$this->problems[] = "BANHAMMER_TRUSTED_PROXIES: '$entry' is not an address or CIDR block (ignored)";
		}
		return $set;
	}

	/**
	 * BANHAMMER_PROXY_HEADER.
	 *
	 * @param mixed $value Setting.
	 * @return string
	 */
	private function read_proxy_header( $value ) {
		if ( null === $value ) {
			return Banhammer_Address_Resolver::FORWARDED_FOR;
		}
		if ( ! Banhammer_Address_Resolver::is_header_name( $value ) ) {
			$this->problems[] = 'BANHAMMER_PROXY_HEADER: not a header name (expected X-Forwarded-For, CF-Connecting-IP ...)';
			return Banhammer_Address_Resolver::FORWARDED_FOR;
		}
		if ( Banhammer_Address_Resolver::is_unsupported( $value ) ) {
			$this->problems[] = 'BANHAMMER_PROXY_HEADER: the Forwarded header (RFC 7239) is not supported; X-Forwarded-For is read';
			return Banhammer_Address_Resolver::FORWARDED_FOR;
		}
		return $value;
	}

	/**
	 * BANHAMMER_CDN_RANGES, else the option banhammer_cdn_ranges: a list or
	 * text (one range a line, or separated by commas or blanks, "#" comments).
	 * Entries are checked when the plugin builds the set.
	 *
	 * @param mixed $constant The constant's value.
	 * @param mixed $option   The option's value.
	 */
	private function read_cdn_ranges( $constant, $option ) {
		$this->cdn_ranges_source = 'none';
		$this->cdn_ranges        = array();
		if ( null !== $constant && false !== $constant ) {
			if ( ! is_string( $constant ) && ! is_array( $constant ) ) {
				$this->problems[] = 'BANHAMMER_CDN_RANGES: expected a string or an array of ranges';
				return;
			}
			$this->cdn_ranges_source = 'constant';
			$this->cdn_ranges        = Banhammer_Network_Set::entries( $constant );
			return;
		}
		if ( is_string( $option ) && '' !== trim( $option ) ) {
			$this->cdn_ranges_source = 'option';
			$this->cdn_ranges        = Banhammer_Network_Set::entries( $option );
		}
	}

	/**
	 * BANHAMMER_BLOCKED_USERNAMES.
	 *
	 * @param mixed $value Setting.
	 * @return string[]
	 */
	private function read_blocked( $value ) {
		if ( null === $value ) {
			return self::DEFAULT_BLOCKED_USERNAMES;
		}
		if ( false === $value ) {
			return array();
		}
		// Commas only: a login name may contain blanks.
		$names = array();
		foreach ( Banhammer_Network_Set::split_list( $value, '/[,\r\n]+/' ) as $name ) {
			$names[] = self::fold_case( $name );
		}
		return array_values( array_unique( $names ) );
	}

	/**
	 * $name in lower case, for comparing login names (WordPress's database
	 * compares them case-insensitively).
	 *
	 * @param string $name Name.
	 * @return string
	 */
	public static function fold_case( $name ) {
		return function_exists( 'mb_strtolower' ) ? mb_strtolower( $name, 'UTF-8' ) : strtolower( $name );
	}

	/**
	 * BANHAMMER_SOCKET.
	 *
	 * @param mixed $value Setting.
	 * @return string|null
	 */
	private function read_socket( $value ) {
		if ( null === $value || false === $value || '' === $value ) {
			return null;
		}
		if ( true === $value ) {
			return self::DEFAULT_SOCKET;
		}
		// sun_path holds 108 bytes on Linux, the terminating NUL included.
		if ( is_string( $value ) && '/' === $value[0] && strlen( $value ) < 108 && false === strpos( $value, "\0" ) ) {
			return $value;
		}
		$this->problems[] = 'BANHAMMER_SOCKET: expected true or an absolute socket path (shorter than 108 bytes)';
		return null;
	}
}
