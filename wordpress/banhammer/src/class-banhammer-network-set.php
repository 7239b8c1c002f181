<?php
/**
 * A set of networks (addresses and CIDR blocks): the trusted proxies, the
 * CDN's ranges.
 *
 * Built once per request from the site's configuration; answers "is this
 * address one of ours?" for the address resolver. Entries that are not an
 * address or a CIDR block are kept aside (invalid_entries()) instead of being
 * guessed at: a typo must not silently trust half the Internet. A list given
 * as text may carry "#" comments (to the end of the line), so a CDN's
 * published list can be pasted with a note on where it came from. At most
 * MAX_ENTRIES networks are kept; the rest are listed as invalid.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Addresses and CIDR blocks, IPv4 and IPv6.
 */
final class Banhammer_Network_Set {

	/**
	 * Most networks kept: far more than any CDN publishes (Cloudflare: 22,
	 * CloudFront: about 150), few enough that a lookup stays cheap.
	 */
	const MAX_ENTRIES = 1000;

	/**
	 * Networks as array( packed network address, packed netmask ).
	 *
	 * @var array<int, array{0: string, 1: string}>
	 */
	private $networks = array();

	/**
	 * Entries that could not be read, as written.
	 *
	 * @var string[]
	 */
	private $invalid = array();

	/**
	 * Constructor.
	 *
	 * @param string|string[] $entries "192.0.2.1 10.0.0.0/8, 2001:db8::/32" or a list.
	 */
	public function __construct( $entries ) {
		foreach ( self::entries( $entries ) as $entry ) {
			$network = self::parse_network( $entry );
			if ( null === $network ) {
				$this->invalid[] = $entry;
			} elseif ( count( $this->networks ) >= self::MAX_ENTRIES ) {
				$this->invalid[] = $entry . ' (more than ' . self::MAX_ENTRIES . ' entries)';
			} else {
				$this->networks[] = $network;
			}
		}
	}

	/**
	 * The entries of an address list: an array, or text separated by commas
	 * and blanks with "#" comments to the end of a line.
	 *
	 * @param mixed $value List.
	 * @return string[]
	 */
	public static function entries( $value ) {
		if ( is_string( $value ) ) {
			$value = (string) preg_replace( '/#[^\r\n]*/', '', $value );
		}
		return self::split_list( $value );
	}

	/**
	 * A list given as an array or as one string, as its non-empty trimmed
	 * items.
	 *
	 * @param mixed  $value      Array of strings, or a string.
	 * @param string $separators Regex of what separates items in a string
	 *                           (default: commas and blanks).
	 * @return string[]
	 */
	public static function split_list( $value, $separators = '/[\s,]+/' ) {
		if ( is_string( $value ) ) {
			$value = preg_split( $separators, $value );
		}
		if ( ! is_array( $value ) ) {
			return array();
		}
		$items = array();
		foreach ( $value as $item ) {
			if ( is_string( $item ) || is_int( $item ) ) {
				$item = trim( (string) $item );
				if ( '' !== $item ) {
					$items[] = $item;
				}
			}
		}
		return $items;
	}

	/**
	 * Whether $ip (an address in any form Banhammer_Ip accepts) is in the set.
	 *
	 * @param string|null $ip Address.
	 * @return bool
	 */
	public function contains( $ip ) {
		$packed = Banhammer_Ip::to_packed( $ip );
		if ( null === $packed ) {
			return false;
		}
		foreach ( $this->networks as $network ) {
			// Same family only: a 4-byte address never matches a 16-byte network.
			if ( strlen( $packed ) === strlen( $network[0] ) && ( $packed & $network[1] ) === $network[0] ) {
				return true;
			}
		}
		return false;
	}

	/**
	 * True when no network was configured (or none could be read).
	 *
	 * @return bool
	 */
	public function is_empty() {
		return array() === $this->networks;
	}

	/**
	 * How many networks the set holds.
	 *
	 * @return int
	 */
	public function count() {
		return count( $this->networks );
	}

	/**
	 * Entries that are neither an address nor a CIDR block.
	 *
	 * @return string[]
	 */
	public function invalid_entries() {
		return $this->invalid;
	}

	/**
	 * "a.b.c.d", "a.b.c.d/n", "v6", "v6/n" as array( packed network, packed
	 * netmask ). Host bits below the prefix are cleared ("10.1.2.3/8" is
	 * 10.0.0.0/8).
	 *
	 * @param string $entry One entry.
	 * @return array{0: string, 1: string}|null
	 */
	private static function parse_network( $entry ) {
		$prefix = null;
		$slash  = strpos( $entry, '/' );
		if ( false !== $slash ) {
			$bits = substr( $entry, $slash + 1 );
			if ( 1 !== preg_match( '/^\d{1,3}$/', $bits ) ) {
				return null;
			}
			$prefix = (int) $bits;
			$entry  = substr( $entry, 0, $slash );
		}
		$raw = Banhammer_Ip::normalize( $entry );
		if ( null === $raw ) {
			return null;
		}
		$packed = (string) inet_pton( $raw );
		$max    = 8 * strlen( $packed );
		if ( null === $prefix ) {
			$prefix = $max;
		} elseif ( 4 === strlen( $packed ) && false !== strpos( $entry, ':' ) ) {
			// An IPv4-mapped block (::ffff:10.0.0.0/104): its prefix counts the
			// 96 bits of the mapping, which Banhammer_Ip has stripped.
			$prefix -= 96;
			if ( $prefix < 0 ) {
				return null;
			}
		}
		if ( $prefix > $max ) {
			return null;
		}
		$mask = self::netmask( strlen( $packed ), $prefix );
		return array( $packed & $mask, $mask );
	}

	/**
	 * The netmask of a prefix: $prefix one bits, then zeros, $bytes long.
	 *
	 * @param int $bytes  4 or 16.
	 * @param int $prefix Bits set.
	 * @return string
	 */
	private static function netmask( $bytes, $prefix ) {
		$out = '';
		for ( $i = 0; $i < $bytes; $i++ ) {
			$keep = max( 0, min( 8, $prefix - 8 * $i ) );
			$out .= chr( ( 0xff << ( 8 - $keep ) ) & 0xff );
		}
		return $out;
	}
}
