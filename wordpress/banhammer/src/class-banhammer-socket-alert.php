<?php
/**
 * Failed sends to banhammer's syslog socket, told to the site's
 * administrators.
 *
 * Receives the failures Banhammer_Logger reports (socket path, errno, the
 * system's error text, whether syslog() took the record instead); keeps one
 * record of them in a transient (banhammer_socket_failure: the error, the
 * process's user and groups, the socket's and its directory's owner group and
 * mode where they can be read, first and last time, a count); emits the
 * admin notice that says what failed, where the records went instead and how
 * to fix it. The notice is dismissible: dismissing deletes the record, and
 * the next failure brings it back.
 *
 * Writing a transient costs a database write, and the requests that fail to
 * send are an attacker's: the record is rewritten at most once every
 * WRITE_EVERY seconds while the error stays the same, so its count is a
 * lower bound ("at least N").
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * The socket failure record and its notice.
 */
final class Banhammer_Socket_Alert {

	/**
	 * Name of the transient holding the record.
	 */
	const TRANSIENT = 'banhammer_socket_failure';

	/**
	 * How long a record is kept without a new failure (a week, so an
	 * administrator who logs in weekly still sees it).
	 */
	const LIFETIME = 604800;

	/**
	 * Least seconds between two writes of an unchanged record.
	 */
	const WRITE_EVERY = 60;

	/**
	 * Query argument of the dismiss link.
	 */
	const DISMISS_ARG = 'banhammer-dismiss-socket-alert';

	/**
	 * Nonce action of the dismiss link.
	 */
	const NONCE_ACTION = 'banhammer-dismiss-socket-alert';

	/**
	 * Returns the time (Unix seconds).
	 *
	 * @var callable
	 */
	private $clock;

	/**
	 * Returns facts about the process and the socket (see facts()).
	 *
	 * @var callable
	 */
	private $facts;

	/**
	 * Failures seen in this request and not yet counted in the record.
	 *
	 * @var int
	 */
	private $pending = 0;

	/**
	 * The record as last read or written in this request (false: not read yet).
	 *
	 * @var array|null|false
	 */
	private $record = false;

	/**
	 * Constructor.
	 *
	 * @param callable|null $clock Test seam: returns the time.
	 * @param callable|null $facts Test seam: path => facts about the process and socket.
	 */
	public function __construct( $clock = null, $facts = null ) {
		$this->clock = null !== $clock ? $clock : 'time';
		$this->facts = null !== $facts ? $facts : array( __CLASS__, 'facts' );
	}

	/**
	 * Remember one failed send (Banhammer_Logger's failure handler).
	 *
	 * @param array $failure path, errno, error, fallback.
	 */
	public function record( array $failure ) {
		if ( ! function_exists( 'set_transient' ) ) {
			return;
		}
		$now    = (int) call_user_func( $this->clock );
		$stored = $this->current();
		$same   = null !== $stored
			&& $stored['path'] === (string) $failure['path']
			&& $stored['errno'] === (int) $failure['errno']
			&& $stored['error'] === (string) $failure['error']
			&& $stored['fallback'] === (bool) $failure['fallback'];
		++$this->pending;
		if ( $same && $now - $stored['written'] < self::WRITE_EVERY ) {
			return;
		}
		$record = array(
			'path'     => (string) $failure['path'],
			'errno'    => (int) $failure['errno'],
			'error'    => (string) $failure['error'],
			'fallback' => (bool) $failure['fallback'],
			'first'    => $same ? $stored['first'] : $now,
			'last'     => $now,
			'written'  => $now,
			'count'    => ( $same ? $stored['count'] : 0 ) + $this->pending,
			'facts'    => (array) call_user_func( $this->facts, (string) $failure['path'] ),
		);
		set_transient( self::TRANSIENT, $record, self::LIFETIME );
		$this->record  = $record;
		$this->pending = 0;
	}

	/**
	 * The stored record, or null.
	 *
	 * @return array|null
	 */
	public function current() {
		if ( false === $this->record ) {
			$value        = function_exists( 'get_transient' ) ? get_transient( self::TRANSIENT ) : false;
			$this->record = self::is_record( $value ) ? $value : null;
		}
		return $this->record;
	}

	/**
	 * Forget the record (the administrator dismissed the notice).
	 */
	public function dismiss() {
		if ( function_exists( 'delete_transient' ) ) {
			delete_transient( self::TRANSIENT );
		}
		$this->record  = null;
		$this->pending = 0;
	}

	/**
	 * Whether $value has the shape record() writes (a transient can hold
	 * anything another plugin or an old version put there).
	 *
	 * @param mixed $value Candidate.
	 * @return bool
	 */
	private static function is_record( $value ) {
		return is_array( $value )
			&& isset( $value['path'], $value['errno'], $value['error'], $value['fallback'], $value['first'], $value['last'], $value['written'], $value['count'] )
			&& is_string( $value['path'] ) && is_int( $value['errno'] ) && is_string( $value['error'] ) && is_bool( $value['fallback'] )
			&& is_int( $value['first'] ) && is_int( $value['last'] ) && is_int( $value['written'] ) && is_int( $value['count'] );
	}

	/**
	 * What the system says about the process and the socket: the user PHP
	 * runs as and its groups, and the owner group and mode of the socket and
	 * its directory where they can be read (a directory PHP may not enter
	 * hides the socket's). Every item may be missing.
	 *
	 * @param string $path Socket path.
	 * @return array<string, string>
	 */
	public static function facts( $path ) {
		$facts = array();
		if ( function_exists( 'posix_geteuid' ) ) {
			$uid           = posix_geteuid();
			$user          = function_exists( 'posix_getpwuid' ) ? posix_getpwuid( $uid ) : false;
			$facts['user'] = is_array( $user ) ? $user['name'] : (string) $uid;
			$names         = array();
			$groups        = function_exists( 'posix_getgroups' ) ? posix_getgroups() : false;
			foreach ( is_array( $groups ) ? $groups : array() as $gid ) {
				$names[] = self::group_name( (int) $gid );
			}
			$gid = function_exists( 'posix_getegid' ) ? self::group_name( posix_getegid() ) : null;
			if ( null !== $gid && ! in_array( $gid, $names, true ) ) {
				array_unshift( $names, $gid );
			}
			$facts['groups'] = implode( ', ', array_unique( $names ) );
		}
		foreach ( array( 'socket' => $path, 'directory' => dirname( $path ) ) as $what => $file ) {
			$stat = @stat( $file ); // phpcs:ignore WordPress.PHP.NoSilencedErrors.Discouraged -- a hidden path is an answer, not an error.
			if ( is_array( $stat ) ) {
				$facts[ $what ] = sprintf( 'mode %04o, group %s', $stat['mode'] & 07777, self::group_name( (int) $stat['gid'] ) );
			}
		}
		return $facts;
	}

	/**
	 * A group's name, or its number.
	 *
	 * @param int $gid Group id.
	 * @return string
	 */
	private static function group_name( $gid ) {
		$group = function_exists( 'posix_getgrgid' ) ? posix_getgrgid( $gid ) : false;
		return is_array( $group ) ? (string) $group['name'] : (string) $gid;
	}

	/**
	 * What to do about an error, by errno (Linux numbers; the stream transport
	 * reports the same ones).
	 *
	 * @param array $record The record.
	 * @return string Plain text.
	 */
	private static function advice( array $record ) {
		$path  = $record['path'];
		$facts = isset( $record['facts'] ) && is_array( $record['facts'] ) ? array_filter( $record['facts'], 'is_string' ) : array();
		switch ( $record['errno'] ) {
			case 2: // ENOENT.
				return "The socket does not exist: banhammer is not running, or it listens on another path. banhammer's jail.local must name the same path (backend = syslog[socket=$path]) as BANHAMMER_SOCKET in wp-config.php, and banhammer must be running.";
			case 1: // EPERM.
			case 13: // EACCES.
				$user = isset( $facts['user'] ) ? $facts['user'] : 'the web server\'s user';
				$text = "PHP runs as $user" . ( isset( $facts['groups'] ) && '' !== $facts['groups'] ? ' (groups: ' . $facts['groups'] . ')' : '' ) . '. '
					. "It must be allowed to enter the socket's directory and to write to the socket: the web server's user must be in the socket's group (banhammer's default: www-data), and the directory must let that group in (not mode 0700).";
				foreach ( array( 'directory', 'socket' ) as $what ) {
					if ( isset( $facts[ $what ] ) ) {
						$text .= ' The ' . $what . ' has ' . $facts[ $what ] . '.';
					}
				}
				if ( ! isset( $facts['socket'] ) && isset( $facts['directory'] ) ) {
					$text .= ' PHP cannot see into the directory.';
				}
				return $text . ' After adding the user to a group, restart PHP (php-fpm, Apache) so that it picks the group up.';
			case 111: // ECONNREFUSED.
				return 'Nothing listens there: banhammer stopped and left the file behind, or the path is not a socket.';
			case 11: // EAGAIN.
			case 105: // ENOBUFS.
				return "The socket's queue was full: banhammer is not reading it fast enough.";
			case 88: // ENOTSOCK.
			case 91: // EPROTOTYPE.
				return "The path is not banhammer's datagram socket (it is a socket of another kind).";
			default:
				return 'Check that banhammer is running with backend = syslog[socket=' . $path . '] and that the web server\'s user may write to that socket.';
		}
	}

	/**
	 * The notice's HTML for the record, everything escaped.
	 *
	 * @param array  $record      The record.
	 * @param string $dismiss_url The dismiss link (with its nonce).
	 * @return string
	 */
	public static function render( array $record, $dismiss_url ) {
		$when  = static function ( $t ) {
			// The site's own time zone where WordPress offers it.
			return function_exists( 'wp_date' ) ? (string) wp_date( 'Y-m-d H:i:s T', (int) $t ) : gmdate( 'Y-m-d H:i:s', (int) $t ) . ' UTC';
		};
		$error = '' !== $record['error'] ? $record['error'] : 'unknown error';
		if ( $record['errno'] > 0 ) {
			$error .= ' (errno ' . $record['errno'] . ')';
		}
		$times = 1 === $record['count'] ? 'once' : 'at least ' . $record['count'] . ' times';
		$html  = '<div class="notice notice-error"><p><strong>banhammer could not send to its syslog socket</strong> <code>'
			. esc_html( $record['path'] ) . '</code>: ' . esc_html( $error ) . ' &mdash; ' . esc_html( $times )
			. ' since ' . esc_html( $when( $record['first'] ) ) . ', last at ' . esc_html( $when( $record['last'] ) ) . '.</p>';
		if ( $record['fallback'] ) {
			$html .= '<p>Each record went to syslog() instead, as it does without BANHAMMER_SOCKET: a jail reading the log file your syslog daemon writes (auth.log with the default facility) still saw it; a jail reading banhammer\'s socket did not.</p>';
		} else {
			$html .= '<p>syslog() did not take the records either: they were lost.</p>';
		}
		$html .= '<p><strong>To fix:</strong> ' . esc_html( self::advice( $record ) ) . '</p>'
			. '<p><a href="' . esc_url( $dismiss_url ) . '">Dismiss</a> (shown again at the next failure)</p></div>';
		return $html;
	}
}
