<?php
/**
 * RFC 3164 datagrams for banhammer's syslog socket, and the local time they
 * are stamped with.
 *
 * The datagram is what C's syslog() sends to /dev/log:
 *
 *   <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG
 *
 * PRI = facility | severity (PHP's LOG_* facility values are already shifted,
 * LOG_AUTHPRIV | LOG_NOTICE = 85); the day is padded with a blank ("Aug  4");
 * the time is the machine's local time with no zone, as syslog writes it.
 *
 * That last point needs care: WordPress sets PHP's default time zone to UTC
 * at every request, while banhammer reads the stamp in the system's zone. So
 * the stamp is formatted in the zone the system itself uses (TZ, then
 * /etc/localtime, then /etc/timezone), not in PHP's.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Datagram formatting (pure) and system time zone lookup.
 */
final class Banhammer_Syslog_Datagram {

	/**
	 * The datagram for one message.
	 *
	 * @param int               $facility LOG_* facility (already shifted).
	 * @param int               $severity LOG_* severity.
	 * @param DateTimeInterface $time     Time stamp, in the zone to write.
	 * @param string            $tag      Ident (sanitised).
	 * @param int               $pid      Process id.
	 * @param string            $message  Message (sanitised, one line).
	 * @return string
	 */
	public static function format( $facility, $severity, DateTimeInterface $time, $tag, $pid, $message ) {
		$pri = ( (int) $facility & 0x3f8 ) | ( (int) $severity & 0x07 );
		// "M" is English whatever the locale; the day is blank-padded.
		$stamp = $time->format( 'M' ) . ' ' . sprintf( '%2d', (int) $time->format( 'j' ) ) . ' ' . $time->format( 'H:i:s' );
		return '<' . $pri . '>' . $stamp . ' ' . $tag . '[' . (int) $pid . ']: ' . $message;
	}

	/**
	 * The zone name the system uses, from the usual sources in the order C's
	 * localtime() consults them; null when none gives a zone PHP knows.
	 *
	 * @param string|false|null $tz_env           The TZ environment variable.
	 * @param string|false|null $localtime_target Where /etc/localtime links to.
	 * @param string|false|null $etc_timezone     Contents of /etc/timezone.
	 * @return string|null
	 */
	public static function choose_zone( $tz_env, $localtime_target, $etc_timezone ) {
		$candidates = array();
		if ( is_string( $tz_env ) && '' !== trim( $tz_env ) ) {
			$candidates[] = ltrim( trim( $tz_env ), ':' );
		}
		if ( is_string( $localtime_target ) ) {
			$at = strpos( $localtime_target, 'zoneinfo/' );
			if ( false !== $at ) {
				$name = substr( $localtime_target, $at + strlen( 'zoneinfo/' ) );
				// zoneinfo/posix/Europe/Paris and zoneinfo/right/... are the same zones.
				$candidates[] = (string) preg_replace( '#^(?:posix|right)/#', '', $name );
			}
		}
		if ( is_string( $etc_timezone ) && '' !== trim( $etc_timezone ) ) {
			$candidates[] = trim( $etc_timezone );
		}
		foreach ( $candidates as $name ) {
			if ( self::is_zone( $name ) ) {
				return $name;
			}
		}
		return null;
	}

	/**
	 * The system's time zone (UTC when it cannot be found out).
	 *
	 * @return DateTimeZone
	 */
	public static function system_zone() {
		static $zone = null;
		if ( null === $zone ) {
			// Reading these may be refused (open_basedir): that only means UTC.
			$link = @readlink( '/etc/localtime' ); // phpcs:ignore WordPress.PHP.NoSilencedErrors.Discouraged
			$file = @is_readable( '/etc/timezone' ) ? @file_get_contents( '/etc/timezone' ) : null; // phpcs:ignore WordPress.PHP.NoSilencedErrors.Discouraged, WordPress.WP.AlternativeFunctions.file_get_contents_file_get_contents
			$name = self::choose_zone( getenv( 'TZ' ), $link, $file );
			$zone = new DateTimeZone( null === $name ? 'UTC' : $name );
		}
		return $zone;
	}

	/**
	 * Whether PHP knows the zone $name.
	 *
	 * @param string $name Zone name.
	 * @return bool
	 */
	private static function is_zone( $name ) {
		if ( '' === $name || 1 !== preg_match( '#^[A-Za-z0-9/_+-]+$#', $name ) ) {
			return false;
		}
		try {
			new DateTimeZone( $name );
			return true;
		} catch ( Exception $e ) {
			return false;
		}
	}
}
