<?php
/**
 * Where the lines go: syslog(), or banhammer's syslog socket.
 *
 * Receives finished messages (Banhammer_Messages); sends each one at
 * LOG_NOTICE, either through PHP's openlog()/syslog() with the recipe's
 * options (LOG_NDELAY | LOG_PID, the configured facility) or, when a socket
 * path is configured, as an RFC 3164 datagram straight to banhammer, so a
 * site without rsyslog needs no log file. If the socket cannot take the
 * datagram (daemon not running, buffer full, permission denied) the message
 * goes to syslog() instead: it is never dropped because of the socket. The
 * failure is not silent either: it is handed, with the socket path and the
 * system's error, to the failure handler (the plugin's Banhammer_Socket_Alert,
 * which tells the site's administrators).
 *
 * Nothing here may break a login: no PHP warning reaches the page, and a
 * failure handler that throws is ignored.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Message sink.
 */
class Banhammer_Logger {

	/**
	 * Ident (sanitised).
	 *
	 * @var string
	 */
	private $ident;

	/**
	 * LOG_* facility.
	 *
	 * @var int
	 */
	private $facility;

	/**
	 * banhammer's socket, or null.
	 *
	 * @var string|null
	 */
	private $socket_path;

	/**
	 * Receives (ident, facility, message) when syslog() is to be used.
	 *
	 * @var callable
	 */
	private $syslog;

	/**
	 * Returns the DateTimeInterface to stamp a datagram with.
	 *
	 * @var callable
	 */
	private $clock;

	/**
	 * Whether to use the sockets extension (else stream_socket_client() with
	 * PHP's udg:// transport).
	 *
	 * @var bool
	 */
	private $use_sockets_extension;

	/**
	 * Receives one array per failed send: path, errno (0 when there is none),
	 * error (the system's text), fallback (whether syslog() took the message).
	 *
	 * @var callable|null
	 */
	private $failure_handler = null;

	/**
	 * Constructor.
	 *
	 * @param string        $ident                 Syslog ident, sanitised.
	 * @param int           $facility              LOG_* facility.
	 * @param string|null   $socket_path           banhammer's socket, or null for syslog().
	 * @param callable|null $syslog                Test seam: replaces openlog/syslog/closelog.
	 * @param callable|null $clock                 Test seam: the time stamp of a datagram.
	 * @param bool|null     $use_sockets_extension Test seam: null picks by availability.
	 */
	public function __construct( $ident, $facility, $socket_path = null, $syslog = null, $clock = null, $use_sockets_extension = null ) {
		$this->ident                 = $ident;
		$this->facility              = (int) $facility;
		$this->socket_path           = $socket_path;
		$this->syslog                = null !== $syslog ? $syslog : array( __CLASS__, 'system_syslog' );
		$this->clock                 = null !== $clock ? $clock : array( __CLASS__, 'system_now' );
		$this->use_sockets_extension = null !== $use_sockets_extension ? (bool) $use_sockets_extension : function_exists( 'socket_create' );
	}

	/**
	 * Who hears of failed sends to the socket.
	 *
	 * @param callable|null $handler Receives array( path, errno, error, fallback ).
	 */
	public function set_failure_handler( $handler ) {
		$this->failure_handler = $handler;
	}

	/**
	 * Log one message at LOG_NOTICE. Returns false if it went nowhere.
	 *
	 * @param string|null $message A Banhammer_Messages line (null: nothing to do).
	 * @return bool
	 */
	public function log( $message ) {
		if ( null === $message || '' === $message ) {
			return false;
		}
		if ( null !== $this->socket_path ) {
			$datagram = Banhammer_Syslog_Datagram::format(
				$this->facility,
				LOG_NOTICE,
				call_user_func( $this->clock ),
				$this->ident,
				(int) getmypid(),
				$message
			);
			$error = $this->send_datagram( $datagram );
			if ( null === $error ) {
				return true;
			}
			$fallback = (bool) call_user_func( $this->syslog, $this->ident, $this->facility, $message );
			$this->report_failure( $error + array( 'fallback' => $fallback ) );
			return $fallback;
		}
		return (bool) call_user_func( $this->syslog, $this->ident, $this->facility, $message );
	}

	/**
	 * Hand a failed send to the failure handler, which must not break the
	 * request whatever it does.
	 *
	 * @param array $failure path, errno, error, fallback.
	 */
	private function report_failure( array $failure ) {
		if ( null === $this->failure_handler ) {
			return;
		}
		try {
			call_user_func( $this->failure_handler, $failure );
		} catch ( Throwable $e ) { // phpcs:ignore Generic.CodeAnalysis.EmptyStatement.DetectedCatch -- a login must not fail because the notice could not be stored.
		}
	}

	/**
	 * Send one datagram to the socket, without blocking.
	 *
	 * @param string $datagram Bytes.
	 * @return array|null Null when all of it was sent; else path, errno
	 *                    (0 if the system gave none) and error text.
	 */
	private function send_datagram( $datagram ) {
		// A missing daemon must not become a PHP warning on the site, hence the @s.
		// phpcs:disable WordPress.PHP.NoSilencedErrors.Discouraged, WordPress.WP.AlternativeFunctions
		if ( $this->use_sockets_extension ) {
			$socket = @socket_create( AF_UNIX, SOCK_DGRAM, 0 );
			if ( false === $socket ) {
				return $this->failure( socket_last_error(), socket_strerror( socket_last_error() ) );
			}
			$flags = defined( 'MSG_DONTWAIT' ) ? MSG_DONTWAIT : 0;
			$sent  = @socket_sendto( $socket, $datagram, strlen( $datagram ), $flags, $this->socket_path );
			$errno = false === $sent ? socket_last_error( $socket ) : 0;
			socket_close( $socket );
			if ( false === $sent ) {
				return $this->failure( $errno, socket_strerror( $errno ) );
			}
			return strlen( $datagram ) === $sent ? null : $this->failure( 0, 'sent ' . (int) $sent . ' of ' . strlen( $datagram ) . ' bytes' );
		}
		// PHP's name for a Unix datagram socket ("unixgram" elsewhere) is "udg".
		if ( ! in_array( 'udg', stream_get_transports(), true ) ) {
			return $this->failure( 0, 'this PHP has neither the sockets extension nor the udg:// stream transport' );
		}
		$errno  = 0;
		$errstr = '';
		$stream = @stream_socket_client( 'udg://' . $this->socket_path, $errno, $errstr, 1 );
		if ( false === $stream ) {
			return $this->failure( (int) $errno, '' !== (string) $errstr ? (string) $errstr : 'cannot connect' );
		}
		stream_set_blocking( $stream, false );
		error_clear_last();
		$sent = @fwrite( $stream, $datagram );
		fclose( $stream );
		// phpcs:enable
		if ( strlen( $datagram ) === $sent ) {
			return null;
		}
		$last = error_get_last();
		return $this->failure( 0, null !== $last ? (string) $last['message'] : 'sent ' . (int) $sent . ' of ' . strlen( $datagram ) . ' bytes' );
	}

	/**
	 * A failed send, as handed to the failure handler.
	 *
	 * @param int    $errno System error number, or 0.
	 * @param string $error What went wrong.
	 * @return array
	 */
	private function failure( $errno, $error ) {
		return array(
			'path'  => (string) $this->socket_path,
			'errno' => (int) $errno,
			'error' => (string) $error,
		);
	}

	/**
	 * The recipe's openlog()/syslog(), then closelog() so that other code's
	 * later syslog() calls do not go out under our ident.
	 *
	 * @param string $ident    Ident.
	 * @param int    $facility Facility.
	 * @param string $message  Message.
	 * @return bool
	 */
	public static function system_syslog( $ident, $facility, $message ) {
		if ( ! function_exists( 'openlog' ) ) {
			return false;
		}
		openlog( $ident, LOG_NDELAY | LOG_PID, $facility );
		$ok = syslog( LOG_NOTICE, $message );
		closelog();
		return $ok;
	}

	/**
	 * Now, in the system's zone.
	 *
	 * @return DateTimeImmutable
	 */
	public static function system_now() {
		return new DateTimeImmutable( 'now', Banhammer_Syslog_Datagram::system_zone() );
	}
}
