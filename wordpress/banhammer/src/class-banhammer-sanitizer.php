<?php
/**
 * Client text made safe for one syslog line.
 *
 * Receives text a client chose (the user name typed into a login form, the
 * site's host name); emits text that cannot end the line early, start a new
 * one, or push the real address off the end of it:
 *
 * - control characters (NUL included: C's syslog() would stop there and the
 *   line would end with whatever came before it), line and paragraph
 *   separators and invisible format characters (bidi overrides) are removed;
 *   newlines would let a syslog daemon that does not escape them write a
 *   second, forged line;
 * - invalid UTF-8 becomes "?";
 * - other blanks become one space;
 * - the length is capped, so no relay that truncates long messages (RFC 3164
 *   says 1024 bytes) can cut off the " from ADDRESS" the plugin appends.
 *
 * The failregexes end with "from <HOST>$": whatever the user name contains,
 * the address matched is the last word of the line, which the plugin wrote.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Static sanitising helpers.
 */
final class Banhammer_Sanitizer {

	/**
	 * Longest user name written, in characters. WordPress logins have at most
	 * 60, e-mail addresses (which also log in) at most 100.
	 */
	const MAX_USERNAME = 100;

	/**
	 * Input beyond this many bytes is not even looked at.
	 */
	const MAX_INPUT_BYTES = 4096;

	/**
	 * Longest host name written into the syslog ident.
	 */
	const MAX_HOST = 64;

	/**
	 * Longest syslog ident.
	 */
	const MAX_IDENT = 80;

	/**
	 * Appended to a user name that was cut.
	 */
	const ELLIPSIS = '...';

	/**
	 * A user name as written into a log line.
	 *
	 * @param mixed $raw User name as received (any type).
	 * @param int   $max Length cap in characters.
	 * @return string
	 */
	public static function username( $raw, $max = self::MAX_USERNAME ) {
		if ( is_int( $raw ) || is_float( $raw ) ) {
			$raw = (string) $raw;
		}
		if ( ! is_string( $raw ) ) {
			return '';
		}
		// Bound the work on absurd input before any regex runs.
		$cut = strlen( $raw ) > self::MAX_INPUT_BYTES;
		if ( $cut ) {
			$raw = substr( $raw, 0, self::MAX_INPUT_BYTES );
		}
		$text = self::scrub_utf8( $raw );
		// Cc: C0/C1 controls and DEL; Cf: format characters (bidi, zero width,
		// BOM); Zl/Zp: U+2028/U+2029, which some readers treat as line breaks.
		$text = (string) preg_replace( '/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/u', '', $text );
		$text = trim( (string) preg_replace( '/[\p{Z}\s]+/u', ' ', $text ) );
		$max  = max( 1, (int) $max );
		if ( 1 === preg_match( '/^.{' . ( $max + 1 ) . '}/us', $text ) ) {
			preg_match( '/^.{' . $max . '}/us', $text, $head );
			$text = $head[0];
			$cut  = true;
		}
		return $cut ? rtrim( $text ) . self::ELLIPSIS : $text;
	}

	/**
	 * A host name as written into the syslog ident "wordpress(HOST)": lower
	 * case, port dropped, only letters, digits, ".", "-" and "_". A colon,
	 * blank, bracket or parenthesis there would make syslog daemons split the
	 * ident, and the filters would no longer recognise the line. An IPv6
	 * literal's colons become "-". Empty if nothing is left.
	 *
	 * @param mixed $raw Host, possibly "host:port" or "[v6]:port".
	 * @return string
	 */
	public static function host( $raw ) {
		if ( ! is_string( $raw ) ) {
			return '';
		}
		$host = strtolower( trim( $raw ) );
		if ( '' !== $host && '[' === $host[0] ) {
			$close = strpos( $host, ']' );
			$host  = false === $close ? substr( $host, 1 ) : substr( $host, 1, $close - 1 );
		} elseif ( 1 === substr_count( $host, ':' ) ) {
			$host = substr( $host, 0, (int) strpos( $host, ':' ) );
		}
		$host = str_replace( ':', '-', $host );
		$host = (string) preg_replace( '/[^a-z0-9._-]+/', '', $host );
		$host = trim( substr( $host, 0, self::MAX_HOST ), '.' );
		return 1 === preg_match( '/[a-z0-9]/', $host ) ? $host : '';
	}

	/**
	 * A syslog ident (the program name in "ident[pid]:"): letters, digits and
	 * ". _ - ( )" only. Empty if nothing is left.
	 *
	 * @param mixed $raw Ident.
	 * @return string
	 */
	public static function ident( $raw ) {
		if ( ! is_string( $raw ) ) {
			return '';
		}
		$ident = (string) preg_replace( '/[^A-Za-z0-9._()-]+/', '', $raw );
		return substr( $ident, 0, self::MAX_IDENT );
	}

	/**
	 * $text with every byte that is not part of a valid UTF-8 sequence
	 * replaced by "?" (without needing mbstring or iconv).
	 *
	 * @param string $text Bytes.
	 * @return string
	 */
	public static function scrub_utf8( $text ) {
		if ( 1 === preg_match( '//u', $text ) ) {
			return $text;
		}
		$valid = '/(
			[\x00-\x7F]
			| [\xC2-\xDF][\x80-\xBF]
			| \xE0[\xA0-\xBF][\x80-\xBF]
			| [\xE1-\xEC\xEE\xEF][\x80-\xBF]{2}
			| \xED[\x80-\x9F][\x80-\xBF]
			| \xF0[\x90-\xBF][\x80-\xBF]{2}
			| [\xF1-\xF3][\x80-\xBF]{3}
			| \xF4[\x80-\x8F][\x80-\xBF]{2}
			)|./xs';
		return (string) preg_replace_callback(
			$valid,
			static function ( $m ) {
				return isset( $m[1] ) && '' !== $m[1] ? $m[1] : '?';
			},
			$text
		);
	}
}
