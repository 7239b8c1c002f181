<?php
/**
 * Which address sent this request: the one the plugin reports, and the one
 * banhammer will ban.
 *
 * Receives the request's server variables ($_SERVER); emits one normalised
 * address or null. The rule is the one every reverse proxy setup needs and no
 * client can bend:
 *
 * - The direct peer (REMOTE_ADDR) is the client unless it is one of the
 *   configured trusted proxies. Forwarding headers from anyone else are
 *   ignored: a client can write any header it likes.
 * - Behind a trusted proxy, X-Forwarded-For is read from the right (the entry
 *   the proxy itself appended) to the left, skipping further trusted proxies;
 *   the first address that is not trusted is the client. Entries to its left
 *   were written by the client and are never read.
 * - If the site names a single-address header instead (CF-Connecting-IP,
 *   X-Real-IP, True-Client-IP), it is read only when the direct peer is a
 *   trusted proxy, and X-Forwarded-For is the fallback when it is missing.
 * - When the answer is unclear (an unreadable entry where an address should
 *   be, a chain of nothing but trusted proxies, too many hops) the result is
 *   null and nothing is reported: reporting a proxy would get the proxy, and
 *   with it every visitor, banned.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Client address resolution behind trusted proxies.
 */
final class Banhammer_Address_Resolver {

	/**
	 * The default header, walked right to left.
	 */
	const FORWARDED_FOR = 'X-Forwarded-For';

	/**
	 * Most X-Forwarded-For entries examined; real chains have a handful.
	 */
	const MAX_HOPS = 16;

	/**
	 * Trusted proxies.
	 *
	 * @var Banhammer_Network_Set
	 */
	private $trusted;

	/**
	 * Header named by the site ("X-Forwarded-For", "CF-Connecting-IP", ...).
	 *
	 * @var string
	 */
	private $header;

	/**
	 * Constructor.
	 *
	 * @param Banhammer_Network_Set $trusted Trusted proxies.
	 * @param string                $header  Client address header set by those proxies.
	 */
	public function __construct( Banhammer_Network_Set $trusted, $header = self::FORWARDED_FOR ) {
		$this->trusted = $trusted;
		$this->header  = self::is_header_name( $header ) ? $header : self::FORWARDED_FOR;
	}

	/**
	 * Whether $name is a plausible HTTP header name.
	 *
	 * @param mixed $name Candidate.
	 * @return bool
	 */
	public static function is_header_name( $name ) {
		return is_string( $name ) && 1 === preg_match( '/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/', $name );
	}

	/**
	 * The $_SERVER key PHP stores a request header under
	 * ("CF-Connecting-IP" is HTTP_CF_CONNECTING_IP).
	 *
	 * @param string $header Header name.
	 * @return string
	 */
	public static function server_key( $header ) {
		return 'HTTP_' . strtoupper( str_replace( '-', '_', $header ) );
	}

	/**
	 * The client's address, normalised, or null when it cannot be told.
	 *
	 * @param array $server The request's $_SERVER.
	 * @return string|null
	 */
	public function resolve( array $server ) {
		$peer = Banhammer_Ip::normalize( isset( $server['REMOTE_ADDR'] ) ? $server['REMOTE_ADDR'] : null );
		if ( null === $peer || ! $this->trusted->contains( $peer ) ) {
			return $peer;
		}

		$forwarded_key = self::server_key( self::FORWARDED_FOR );
		$key           = self::server_key( $this->header );
		if ( $key !== $forwarded_key && isset( $server[ $key ] ) ) {
			$client = Banhammer_Ip::from_forwarded( $server[ $key ] );
			if ( null !== $client ) {
				return $this->trusted->contains( $client ) ? null : $client;
			}
		}

		$chain = isset( $server[ $forwarded_key ] ) && is_string( $server[ $forwarded_key ] ) ? $server[ $forwarded_key ] : '';
		if ( '' === trim( $chain ) ) {
			return null;
		}
		$entries = explode( ',', $chain );
		$hops    = 0;
		for ( $i = count( $entries ) - 1; $i >= 0; $i-- ) {
			if ( ++$hops > self::MAX_HOPS ) {
				return null;
			}
			$address = Banhammer_Ip::from_forwarded( $entries[ $i ] );
			if ( null === $address ) {
				// A trusted proxy wrote something that is not an address: what lies
				// to its left cannot be trusted either.
				return null;
			}
			if ( ! $this->trusted->contains( $address ) ) {
				return $address;
			}
		}
		return null;
	}
}
