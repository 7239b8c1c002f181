<?php
/**
 * Banhammer_Messages: the line formats, and what the shipped filters make of
 * them whatever a client types.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Messages.
 */
final class Test_Banhammer_Messages extends TestCase {

	/**
	 * fail2ban's <HOST> (Regex._resolveHostTag, as banhammer expands it).
	 */
	const HOST = '(?:\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)))\]?|(?P<dns>[\w\-.^_]*\w))';

	/**
	 * The failregexes of config/filter.d/wordpress*.conf after the prefix
	 * (the first two are also the recipe's).
	 *
	 * @return string[] Filter name => regex.
	 */
	private static function failregexes() {
		return array(
			'wordpress/auth'        => '^Authentication failure for (?P<user>.*) from <HOST>$',
			'wordpress/pingback'    => '^Pingback error .* generated from <HOST>$',
			'hard/multicall'        => '^XML-RPC multicall authentication failure for (?P<user>.*) from <HOST>$',
			'hard/pingback'         => '^Pingback error (?:16|17) generated from <HOST>$',
			'enum/enumeration'      => '^User enumeration \((?:author=\d+|REST /wp/v2/users)\) from <HOST>$',
			'enum/blocked'          => '^Login attempt with blocked username (?P<user>.*) from <HOST>$',
			'pingback/request'      => '^Pingback requested from <HOST>$',
		);
	}

	/**
	 * Which failregexes match $line, with the host each captured.
	 *
	 * @param string $line Message.
	 * @return array<string, string> Name => host.
	 */
	private static function hits( $line ) {
		$hits = array();
		foreach ( self::failregexes() as $name => $regex ) {
			$re = '~' . str_replace( '<HOST>', self::HOST, $regex ) . '~';
			if ( 1 === preg_match( $re, $line, $m ) ) {
				foreach ( array( 'ip4', 'ip6', 'dns' ) as $group ) {
					if ( isset( $m[ $group ] ) && '' !== $m[ $group ] ) {
						$hits[ $name ] = $m[ $group ];
					}
				}
			}
		}
		return $hits;
	}

	/**
	 * The exact texts (the contract with the filters).
	 */
	public function test_formats() {
		$this->assertSame( 'Authentication failure for admin from 192.0.2.7', Banhammer_Messages::auth_failure( 'admin', '192.0.2.7' ) );
		$this->assertSame( 'Pingback error 17 generated from 192.0.2.8', Banhammer_Messages::pingback_error( 17, '192.0.2.8' ) );
		$this->assertSame( 'XML-RPC multicall authentication failure for admin from 2001:db8::7', Banhammer_Messages::multicall_failure( 'admin', '2001:DB8::7' ) );
		$this->assertSame( 'Pingback requested from 192.0.2.7', Banhammer_Messages::pingback_requested( '::ffff:192.0.2.7' ) );
		$this->assertSame( 'User enumeration (author=3) from 192.0.2.7', Banhammer_Messages::author_enumeration( 3, '192.0.2.7' ) );
		$this->assertSame( 'User enumeration (REST /wp/v2/users) from 192.0.2.7', Banhammer_Messages::rest_enumeration( '192.0.2.7' ) );
		$this->assertSame( 'Login attempt with blocked username admin from 192.0.2.7', Banhammer_Messages::blocked_username( 'admin', '192.0.2.7' ) );
	}

	/**
	 * No valid address, no line.
	 */
	public function test_no_address_no_line() {
		$this->assertNull( Banhammer_Messages::auth_failure( 'admin', null ) );
		$this->assertNull( Banhammer_Messages::auth_failure( 'admin', '' ) );
		$this->assertNull( Banhammer_Messages::pingback_error( 17, 'unknown' ) );
		$this->assertNull( Banhammer_Messages::pingback_requested( '192.0.2.7 ' ) );
		$this->assertNull( Banhammer_Messages::rest_enumeration( '127.0.0.99 from 192.0.2.7' ) );
	}

	/**
	 * Each line is matched by exactly its own failregex, capturing the address.
	 */
	public function test_each_line_hits_its_own_regex() {
		$cases = array(
			array( Banhammer_Messages::auth_failure( 'admin', '192.0.2.7' ), array( 'wordpress/auth' ) ),
			array( Banhammer_Messages::pingback_error( 17, '192.0.2.7' ), array( 'wordpress/pingback', 'hard/pingback' ) ),
			array( Banhammer_Messages::pingback_error( 33, '192.0.2.7' ), array( 'wordpress/pingback' ) ),
			array( Banhammer_Messages::multicall_failure( 'admin', '192.0.2.7' ), array( 'hard/multicall' ) ),
			array( Banhammer_Messages::pingback_requested( '192.0.2.7' ), array( 'pingback/request' ) ),
			array( Banhammer_Messages::author_enumeration( 12, '192.0.2.7' ), array( 'enum/enumeration' ) ),
			array( Banhammer_Messages::rest_enumeration( '192.0.2.7' ), array( 'enum/enumeration' ) ),
			array( Banhammer_Messages::blocked_username( 'admin', '192.0.2.7' ), array( 'enum/blocked' ) ),
		);
		foreach ( $cases as $case ) {
			$hits = self::hits( $case[0] );
			$this->assertSame( $case[1], array_keys( $hits ), $case[0] );
			$this->assertSame( array( '192.0.2.7' ), array_values( array_unique( $hits ) ), $case[0] );
		}
	}

	/**
	 * The issue's example: a user name that ends like a real line.
	 */
	public function test_forged_address_in_username() {
		$line = Banhammer_Messages::auth_failure( 'admin from 127.0.0.99', '203.0.113.9' );
		$this->assertSame( 'Authentication failure for admin from 127.0.0.99 from 203.0.113.9', $line );
		$this->assertSame( array( 'wordpress/auth' => '203.0.113.9' ), self::hits( $line ) );

		// Without the plugin's sanitising, a NUL would end the line at the fake
		// address (C's syslog() stops there), and a newline would start a forged
		// line of its own.
		foreach ( array( "admin from 127.0.0.99\0", "x\nAuthentication failure for x from 127.0.0.99", "x from 127.0.0.99\r" ) as $name ) {
			$line = Banhammer_Messages::auth_failure( $name, '203.0.113.9' );
			$this->assertSame( 0, preg_match( '/[\x00-\x1f\x7f]/', $line ), $line );
			$this->assertSame( array( 'wordpress/auth' => '203.0.113.9' ), self::hits( $line ), $line );
		}
	}

	/**
	 * Random hostile user names: every line is one line, short, matched only by
	 * its own regex, and the address captured is always the real client's.
	 */
	public function test_hostile_usernames_never_move_the_address() {
		$pieces = array(
			'admin', ' ', ' from ', 'from', '127.0.0.99', '::1', '[2001:db8::99]', '::ffff:', '2001:db8::', ':',
			"\n", "\r", "\0", "\t", "\x1b", "\u{85}", "\u{2028}", "\u{202e}", "\u{a0}", "\xff", "\xc3",
			'#012', 'ü', 'evil.example', '.', '-', ' port 22 ssh2', 'Authentication failure for ',
			'Pingback error 17 generated', ' via proxy', str_repeat( 'A', 60 ), str_repeat( "\0", 30 ),
		);
		$addresses = array( '203.0.113.9', '2001:db8::7', '198.51.100.200', '::ffff:192.0.2.44' );
		mt_srand( 20050814 );
		for ( $i = 0; $i < 3000; $i++ ) {
			$name = '';
			$n    = mt_rand( 0, 12 );
			for ( $k = 0; $k < $n; $k++ ) {
				$name .= $pieces[ mt_rand( 0, count( $pieces ) - 1 ) ];
			}
			$address = $addresses[ mt_rand( 0, count( $addresses ) - 1 ) ];
			$real    = Banhammer_Ip::normalize( $address );
			$lines   = array(
				'wordpress/auth' => Banhammer_Messages::auth_failure( $name, $address ),
				'hard/multicall' => Banhammer_Messages::multicall_failure( $name, $address ),
				'enum/blocked'   => Banhammer_Messages::blocked_username( $name, $address ),
			);
			foreach ( $lines as $regex => $line ) {
				$shown = addcslashes( $name, "\0..\37\177..\377" );
				$this->assertSame( 1, preg_match( '//u', $line ), "valid UTF-8 for $shown" );
				$this->assertSame( 0, preg_match( '/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u', $line ), "one clean line for $shown" );
				$this->assertLessThanOrEqual( 600, strlen( $line ), "short for $shown" );
				$this->assertSame( array( $regex => $real ), self::hits( $line ), "only the real address for $shown" );
			}
		}
	}

	/**
	 * The review's check on user names, the one thing in a line a client
	 * types: no way to end the line early (NUL), start another (every line
	 * break Unicode or a reader knows: LF, CR, VT, FF, NEL, the file/group/
	 * record separators, U+2028, U+2029), or push the real address out (a
	 * name of a megabyte, where the daemon refuses lines over 64 KiB and
	 * RFC 3164 relays cut at 1024 bytes). The name is cut at 100 characters
	 * and says so with "...".
	 */
	public function test_usernames_cannot_forge_an_address_or_a_second_line() {
		$breaks = array( "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\u{85}", "\u{2028}", "\u{2029}", "\0" );
		foreach ( $breaks as $break ) {
			$name = 'x' . $break . 'Authentication failure for x from 127.0.0.99' . $break;
			$line = Banhammer_Messages::auth_failure( $name, '203.0.113.9' );
			$this->assertSame( 'Authentication failure for xAuthentication failure for x from 127.0.0.99 from 203.0.113.9', $line, bin2hex( $break ) );
			$this->assertSame( array( 'wordpress/auth' => '203.0.113.9' ), self::hits( $line ) );
		}
		foreach ( array( str_repeat( 'a', 1 << 20 ), str_repeat( "\u{1F600}", 300000 ), str_repeat( 'admin from 127.0.0.99 ', 50000 ), str_repeat( "\u{2028}", 100000 ) . 'admin' ) as $name ) {
			foreach ( array( 'auth_failure', 'multicall_failure', 'blocked_username' ) as $method ) {
				$line = Banhammer_Messages::$method( $name, '2001:db8::7' );
				$this->assertLessThan( 1024, strlen( $line ), $method );
				$this->assertStringEndsWith( '... from 2001:db8::7', $line, $method );
				$this->assertSame( array( '2001:db8::7' ), array_values( self::hits( $line ) ), $method );
			}
		}
		// The whole datagram, as the plugin sends it, stays under 1024 bytes.
		$datagram = Banhammer_Syslog_Datagram::format( LOG_AUTHPRIV, LOG_NOTICE, new DateTimeImmutable(), str_repeat( 'w', Banhammer_Sanitizer::MAX_IDENT ), PHP_INT_MAX, Banhammer_Messages::multicall_failure( str_repeat( "\u{1F600}", 1000 ), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe' ) );
		$this->assertLessThan( 1024, strlen( $datagram ) );
	}
}
