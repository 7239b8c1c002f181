<?php
/**
 * Which address sent this request: the one the plugin reports, and the one
 * banhammer will ban.
 *
 * Receives the request's server variables ($_SERVER); emits one normalised
 * address or null. The rule is the one every reverse proxy setup needs and no
 * client can bend:
 *
 * - The hops are read from the right: first the direct peer (REMOTE_ADDR),
 *   then X-Forwarded-For from its last entry to its first. A hop is read only
 *   if the hop to its right is one the site trusts to have written it: one of
 *   its own trusted proxies, or an address in its CDN's published ranges. The
 *   first hop that is neither is the client. What lies further left was
 *   written by the client and is never read.
 * - A single-address header (CF-Connecting-IP, True-Client-IP, X-Real-IP, any
 *   header but X-Forwarded-For) is the CDN's statement of who connected to
 *   it, so it is read only when the walk reaches a hop inside the CDN's
 *   ranges: the CDN itself handed the request to the site's first trusted
 *   proxy (or to PHP). A client that reaches the site's own proxy directly
 *   cannot make its address look like the CDN's, so its header is never read.
 *   Without CDN ranges such a header is never read at all.
 * - Every address taken must be one a client can send from (see
 *   Banhammer_Ip::client()). A CDN header that is missing, unusable or names
 *   a proxy is passed over for X-Forwarded-For's next hop (written by the
 *   CDN); an unusable or unreadable hop, a chain of nothing but trusted hops
 *   or too many hops give null and nothing is reported: reporting a proxy (or
 *   the CDN) would get it, and with it every visitor, banned.
 * - RFC 7239's Forwarded header is not read.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Client address resolution behind trusted proxies and a CDN.
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
	 * Bytes of X-Forwarded-For examined per entry wanted: an entry longer than
	 * this ("[v6 with an embedded v4]:port" plus blanks) is no address.
	 */
	const MAX_ENTRY_BYTES = 128;

	/**
	 * Trusted proxies.
	 *
	 * @var Banhammer_Network_Set
	 */
	private $trusted;

	/**
	 * The CDN's ranges.
	 *
	 * @var Banhammer_Network_Set
	 */
	private $cdn;

	/**
	 * Header named by the site ("X-Forwarded-For", "CF-Connecting-IP", ...).
	 *
	 * @var string
	 */
	private $header;

	/**
	 * Constructor.
	 *
	 * @param Banhammer_Network_Set      $trusted Trusted proxies.
	 * @param string                     $header  Client address header: X-Forwarded-For, or a CDN's.
	 * @param Banhammer_Network_Set|null $cdn     The CDN's ranges (none by default).
	 */
	public function __construct( Banhammer_Network_Set $trusted, $header = self::FORWARDED_FOR, $cdn = null ) {
		$this->trusted = $trusted;
		$this->cdn     = $cdn instanceof Banhammer_Network_Set ? $cdn : new Banhammer_Network_Set( array() );
		$this->header  = self::is_header_name( $header ) && ! self::is_unsupported( $header ) ? $header : self::FORWARDED_FOR;
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
	 * Whether $name is a header the plugin cannot read a single address from
	 * (RFC 7239's Forwarded: "for=...;proto=..., for=...").
	 *
	 * @param string $name Header name.
	 * @return bool
	 */
	public static function is_unsupported( $name ) {
		return 'forwarded' === strtolower( $name );
	}

	/**
	 * Whether $name is a single-address header: anything but X-Forwarded-For.
	 *
	 * @param string $name Header name.
	 * @return bool
	 */
	public static function is_single_address( $name ) {
		return self::server_key( $name ) !== self::server_key( self::FORWARDED_FOR );
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
	 * The last $max entries of a comma-separated header, last first, as
	 * written (blanks included), looking at no more than $max *
	 * MAX_ENTRY_BYTES bytes of it; 'more' says whether anything lies to the
	 * left of them. A piece cut by that byte window is dropped, never read as
	 * an entry ("11.2.3.4" must not become "1.2.3.4").
	 *
	 * @param string $header Header value.
	 * @param int    $max    Entries wanted.
	 * @return array{entries: string[], more: bool}
	 */
	public static function last_entries( $header, $max ) {
		$window = $max * self::MAX_ENTRY_BYTES;
		$cut    = strlen( $header ) > $window;
		$pieces = explode( ',', $cut ? substr( $header, -$window ) : $header );
		if ( $cut ) {
			array_shift( $pieces );
		}
		$pieces = array_reverse( $pieces );
		$more   = $cut || count( $pieces ) > $max;
		return array(
			'entries' => array_slice( $pieces, 0, $max ),
			'more'    => $more,
		);
	}

	/**
	 * The client's address, normalised, or null when it cannot be told.
	 *
	 * @param array $server The request's $_SERVER.
	 * @return string|null
	 */
	public function resolve( array $server ) {
		$hop = Banhammer_Ip::client( isset( $server['REMOTE_ADDR'] ) ? $server['REMOTE_ADDR'] : null );
		if ( null === $hop ) {
			return null;
		}

		$chain   = self::server_key( self::FORWARDED_FOR );
		$chain   = isset( $server[ $chain ] ) && is_string( $server[ $chain ] ) ? $server[ $chain ] : '';
		$tail    = self::last_entries( $chain, self::MAX_HOPS );
		$entries = '' === trim( $chain ) ? array() : $tail['entries'];
		$next    = 0;
		while ( true ) {
			if ( $this->cdn->contains( $hop ) ) {
				// The CDN handed the request in: its header, if it names a client.
				$client = $this->cdn_header( $server );
				if ( null !== $client ) {
					return $client;
				}
			} elseif ( ! $this->trusted->contains( $hop ) ) {
				return $hop;
			}
			// A trusted hop: read the entry it appended to X-Forwarded-For.
			if ( $next >= count( $entries ) ) {
				// No entry (a request from the proxy host itself), or more hops
				// than MAX_HOPS: unclear.
				return null;
			}
			$hop = Banhammer_Ip::client( Banhammer_Ip::from_forwarded( $entries[ $next++ ] ) );
			if ( null === $hop ) {
				// A trusted hop wrote something that is not a client's address:
				// what lies to its left cannot be trusted either.
				return null;
			}
		}
	}

	/**
	 * The client named by the CDN's single-address header, or null when there
	 * is no such header, it is missing or unusable, or it names a proxy or the
	 * CDN.
	 *
	 * @param array $server The request's $_SERVER.
	 * @return string|null
	 */
	private function cdn_header( array $server ) {
		if ( ! self::is_single_address( $this->header ) ) {
			return null;
		}
		$key = self::server_key( $this->header );
		if ( ! isset( $server[ $key ] ) ) {
			return null;
		}
		$client = Banhammer_Ip::client( Banhammer_Ip::from_forwarded( $server[ $key ] ) );
		if ( null === $client || $this->cdn->contains( $client ) || $this->trusted->contains( $client ) ) {
			return null;
		}
		return $client;
	}
}
