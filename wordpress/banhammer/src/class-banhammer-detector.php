<?php
/**
 * Decisions about one request: is this a signal worth a log line?
 *
 * Receives plain values the WordPress glue has gathered (query arguments,
 * REST route, XML-RPC method, whether a user exists); emits yes/no answers.
 * Kept apart from WordPress so each rule is tested on its own.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * Signal rules.
 */
final class Banhammer_Detector {

	/**
	 * The N of an anonymous front-end "?author=N" request that would reveal a
	 * login name, or null.
	 *
	 * With pretty permalinks WordPress answers /?author=N with a redirect to
	 * /author/LOGIN/, and the site's own links never use ?author=N: such a
	 * request is a scanner's. With plain permalinks the theme's own author
	 * links look exactly like that, so nothing is reported.
	 *
	 * @param array $query             The request's query arguments ($_GET).
	 * @param bool  $logged_in         Whether a user is logged in.
	 * @param bool  $pretty_permalinks Whether the site has a permalink structure.
	 * @return int|null
	 */
	public static function author_enumeration( array $query, $logged_in, $pretty_permalinks ) {
		if ( $logged_in || ! $pretty_permalinks || ! isset( $query['author'] ) || ! is_string( $query['author'] ) ) {
			return null;
		}
		// WordPress reads the number with absint-like leniency ("1/", " 1");
		// scanners send plain numbers.
		if ( 1 !== preg_match( '/^\s*(\d{1,9})\D*$/', $query['author'], $m ) ) {
			return null;
		}
		$id = (int) $m[1];
		return $id > 0 ? $id : null;
	}

	/**
	 * Whether an anonymous REST request is for the users endpoint
	 * (/wp/v2/users, /wp/v2/users/1, /wp/v2/users/me ...). WordPress matches
	 * routes case-insensitively, so this does too.
	 *
	 * @param mixed $route     The REST route.
	 * @param bool  $logged_in Whether a user is logged in.
	 * @return bool
	 */
	public static function rest_enumeration( $route, $logged_in ) {
		return ! $logged_in && is_string( $route ) && 1 === preg_match( '#^/+wp/v2/users(?:/|$)#i', $route );
	}

	/**
	 * Whether an XML-RPC method name is system.multicall.
	 *
	 * @param mixed $method Method name of the request.
	 * @return bool
	 */
	public static function is_multicall( $method ) {
		return 'system.multicall' === $method;
	}

	/**
	 * Whether a failed login used a blocked name that no account has.
	 *
	 * @param mixed    $username The name typed.
	 * @param string[] $blocked  Blocked names, lower case.
	 * @param callable $exists   Name => whether an account has it (asked only
	 *                           for blocked names: it costs a query).
	 * @return bool
	 */
	public static function blocked_username( $username, array $blocked, callable $exists ) {
		if ( ! is_string( $username ) || array() === $blocked ) {
			return false;
		}
		$name = Banhammer_Config::fold_case( trim( $username ) );
		if ( '' === $name || ! in_array( $name, $blocked, true ) ) {
			return false;
		}
		return ! $exists( trim( $username ) );
	}
}
