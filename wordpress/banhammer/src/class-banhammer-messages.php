<?php
/**
 * The log lines the plugin writes, one method per signal.
 *
 * These texts are a contract with the filters shipped in banhammer's
 * config/filter.d/ (and, for the first two, with the XML-RPC recipe's
 * fail2ban filter): change one only together with its filter. Every line ends
 * with " from ADDRESS", the address validated and normalised here, so the
 * filters' "from <HOST>$" can only ever match the address the plugin wrote.
 *
 *   signal            line                                                          filter
 *   auth              Authentication failure for USER from ADDRESS                  wordpress
 *   pingback_error    Pingback error CODE generated from ADDRESS                    wordpress (16, 17: wordpress-hard)
 *   multicall         XML-RPC multicall authentication failure for USER from ADDRESS wordpress-hard
 *   pingback_request  Pingback requested from ADDRESS                               wordpress-pingback
 *   enumeration       User enumeration (author=N) from ADDRESS                      wordpress-enum
 *                     User enumeration (REST /wp/v2/users) from ADDRESS             wordpress-enum
 *   blocked_username  Login attempt with blocked username USER from ADDRESS         wordpress-enum
 *
 * Each method returns null when the address is not a valid one, or one no
 * client can send from (0.0.0.0, multicast, broadcast): no line is better
 * than a line that blames the wrong host.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Line formats.
 */
final class Banhammer_Messages {

	/**
	 * A failed login (wp_login_failed). The recipe's line.
	 *
	 * @param mixed  $username User name as typed.
	 * @param string $address  Client address.
	 * @return string|null
	 */
	public static function auth_failure( $username, $address ) {
		return self::line( 'Authentication failure for ' . Banhammer_Sanitizer::username( $username ), $address );
	}

	/**
	 * A pingback that failed WordPress's checks (xmlrpc_pingback_error). The
	 * recipe's line.
	 *
	 * @param int    $code    IXR error code.
	 * @param string $address Client address.
	 * @return string|null
	 */
	public static function pingback_error( $code, $address ) {
		return self::line( 'Pingback error ' . (int) $code . ' generated', $address );
	}

	/**
	 * A failed login inside an XML-RPC system.multicall request.
	 *
	 * @param mixed  $username User name as typed.
	 * @param string $address  Client address.
	 * @return string|null
	 */
	public static function multicall_failure( $username, $address ) {
		return self::line( 'XML-RPC multicall authentication failure for ' . Banhammer_Sanitizer::username( $username ), $address );
	}

	/**
	 * A pingback.ping call, before WordPress checks it.
	 *
	 * @param string $address Client address.
	 * @return string|null
	 */
	public static function pingback_requested( $address ) {
		return self::line( 'Pingback requested', $address );
	}

	/**
	 * An anonymous /?author=N request.
	 *
	 * @param int    $author_id The N.
	 * @param string $address   Client address.
	 * @return string|null
	 */
	public static function author_enumeration( $author_id, $address ) {
		return self::line( 'User enumeration (author=' . max( 0, (int) $author_id ) . ')', $address );
	}

	/**
	 * An anonymous request to the REST API's users endpoint.
	 *
	 * @param string $address Client address.
	 * @return string|null
	 */
	public static function rest_enumeration( $address ) {
		return self::line( 'User enumeration (REST /wp/v2/users)', $address );
	}

	/**
	 * A failed login with a user name on the blocked list.
	 *
	 * @param mixed  $username User name as typed.
	 * @param string $address  Client address.
	 * @return string|null
	 */
	public static function blocked_username( $username, $address ) {
		return self::line( 'Login attempt with blocked username ' . Banhammer_Sanitizer::username( $username ), $address );
	}

	/**
	 * "$text from $address", or null if $address is not an address a client
	 * can send from (Banhammer_Ip::client(): not 0.0.0.0, multicast ...).
	 *
	 * @param string $text    Start of the line.
	 * @param mixed  $address Client address.
	 * @return string|null
	 */
	private static function line( $text, $address ) {
		$address = Banhammer_Ip::client( $address );
		return null === $address ? null : $text . ' from ' . $address;
	}
}
