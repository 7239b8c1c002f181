<?php
/**
 * IP addresses: validation and one canonical text form.
 *
 * Every address the plugin writes goes through here, so a log line only ever
 * ends with an address in the form banhammer and fail2ban read back: IPv6
 * compressed and lower-case, IPv4-mapped IPv6 (::ffff:192.0.2.1) written as
 * plain IPv4 (it is the same client, and a ban must hit it whichever way the
 * web server reported it).
 *
 * Syntax is PHP's filter_var(), which refuses what is not written the one
 * unambiguous way: IPv4 with leading zeros ("06.6.6.6", octal to some
 * parsers), partial forms ("6.6"), non-ASCII digits, zone ids ("fe80::1%eth0").
 * On top of that, client() refuses addresses no client can send from: the
 * unspecified ones (0.0.0.0/8, ::), multicast (224.0.0.0/4, ff00::/8) and the
 * broadcast address 255.255.255.255. Such a "client" only ever comes from
 * text someone wrote, never from a connection.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Static helpers for one address at a time.
 */
final class Banhammer_Ip {

	/**
	 * Longest textual address accepted: an IPv6 address with an embedded IPv4
	 * one, written out in full ("0000:…:ffff:255.255.255.255").
	 */
	const MAX_TEXT_LENGTH = 45;

	/**
	 * The canonical text form of an address, or null if $text is not exactly
	 * one IPv4 or IPv6 address (no blanks, ports, brackets or zone ids).
	 *
	 * @param mixed $text Candidate address.
	 * @return string|null
	 */
	public static function normalize( $text ) {
		$packed = self::to_packed( $text );
		if ( null === $packed ) {
			return null;
		}
		return 4 === strlen( $packed ) ? (string) inet_ntop( $packed ) : self::format_ipv6( $packed );
	}

	/**
	 * The canonical text of an address that can be a client (see the top), or
	 * null.
	 *
	 * @param mixed $text Candidate address.
	 * @return string|null
	 */
	public static function client( $text ) {
		$packed = self::to_packed( $text );
		if ( null === $packed || ! self::is_usable( $packed ) ) {
			return null;
		}
		return 4 === strlen( $packed ) ? (string) inet_ntop( $packed ) : self::format_ipv6( $packed );
	}

	/**
	 * Whether a packed address (4 or 16 bytes, mapped IPv4 already unmapped)
	 * can be the source of a connection.
	 *
	 * @param string $packed Address.
	 * @return bool
	 */
	public static function is_usable( $packed ) {
		$first = ord( $packed[0] );
		if ( 4 === strlen( $packed ) ) {
			// 0.0.0.0/8 "this network", 224.0.0.0/4 multicast, limited broadcast.
			return 0 !== $first && 224 !== ( $first & 0xf0 ) && "\xff\xff\xff\xff" !== $packed;
		}
		// :: unspecified, ff00::/8 multicast.
		return str_repeat( "\0", 16 ) !== $packed && 0xff !== $first;
	}

	/**
	 * The address in network byte order: 4 bytes for IPv4 (mapped IPv6
	 * included), 16 for IPv6; null if $text is not an address.
	 *
	 * @param mixed $text Candidate address.
	 * @return string|null
	 */
	public static function to_packed( $text ) {
		if ( ! is_string( $text ) || '' === $text || strlen( $text ) > self::MAX_TEXT_LENGTH ) {
			return null;
		}
		// filter_var first: inet_pton alone accepts a few forms we do not want to
		// see in a log (it depends on the C library), filter_var is PHP's own.
		if ( false === filter_var( $text, FILTER_VALIDATE_IP ) ) {
			return null;
		}
		$packed = inet_pton( $text );
		if ( false === $packed ) {
			return null;
		}
		return self::unmap( $packed );
	}

	/**
	 * One entry of a forwarding header (X-Forwarded-For, CF-Connecting-IP),
	 * normalised; proxies write "192.0.2.1", "192.0.2.1:4711", "2001:db8::1"
	 * or "[2001:db8::1]:4711". Null for anything else ("unknown", "_hidden",
	 * host names, garbage).
	 *
	 * @param mixed $entry Header entry.
	 * @return string|null
	 */
	public static function from_forwarded( $entry ) {
		if ( ! is_string( $entry ) ) {
			return null;
		}
		$entry = trim( $entry, " \t" );
		if ( '' === $entry ) {
			return null;
		}
		if ( '[' === $entry[0] ) {
			// "[v6]" or "[v6]:port".
			$close = strpos( $entry, ']' );
			if ( false === $close ) {
				return null;
			}
			$rest = substr( $entry, $close + 1 );
			if ( '' !== $rest && 1 !== preg_match( '/^:\d{1,5}$/', $rest ) ) {
				return null;
			}
			$inner = substr( $entry, 1, $close - 1 );
			// Only IPv6 belongs in brackets.
			return false === strpos( $inner, ':' ) ? null : self::normalize( $inner );
		}
		if ( 1 === substr_count( $entry, ':' ) ) {
			// "v4:port" (one colon can never be IPv6).
			list( $host, $port ) = explode( ':', $entry, 2 );
			if ( 1 !== preg_match( '/^\d{1,5}$/', $port ) ) {
				return null;
			}
			$entry = $host;
		}
		return self::normalize( $entry );
	}

	/**
	 * RFC 5952 text of a 16-byte address: lower-case hex, no leading zeros,
	 * the longest run of two or more zero groups (the first of equals) as
	 * "::". Written here rather than by inet_ntop(), which prints
	 * "::192.0.2.1" for IPv4-compatible addresses: a form fail2ban's <HOST>
	 * does not match, so such a line would ban no one.
	 *
	 * @param string $packed 16 bytes.
	 * @return string
	 */
	private static function format_ipv6( $packed ) {
		$groups     = array_values( (array) unpack( 'n8', $packed ) );
		$best_start = -1;
		$best_len   = 0;
		$run_start  = -1;
		foreach ( $groups as $i => $group ) {
			if ( 0 !== $group ) {
				$run_start = -1;
				continue;
			}
			if ( $run_start < 0 ) {
				$run_start = $i;
			}
			if ( $i - $run_start + 1 > $best_len ) {
				$best_start = $run_start;
				$best_len   = $i - $run_start + 1;
			}
		}
		$hex = array_map( 'dechex', $groups );
		if ( $best_len < 2 ) {
			return implode( ':', $hex );
		}
		return implode( ':', array_slice( $hex, 0, $best_start ) ) . '::' . implode( ':', array_slice( $hex, $best_start + $best_len ) );
	}

	/**
	 * IPv4-mapped IPv6 (::ffff:a.b.c.d) as the 4-byte IPv4 address.
	 *
	 * @param string $packed 4 or 16 bytes.
	 * @return string
	 */
	private static function unmap( $packed ) {
		if ( 16 === strlen( $packed ) && "\0\0\0\0\0\0\0\0\0\0\xff\xff" === substr( $packed, 0, 12 ) ) {
			return substr( $packed, 12 );
		}
		return $packed;
	}
}
