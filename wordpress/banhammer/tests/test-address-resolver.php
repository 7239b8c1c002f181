<?php
/**
 * Banhammer_Address_Resolver: the address the plugin reports.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Address_Resolver.
 */
final class Test_Banhammer_Address_Resolver extends TestCase {

	/**
	 * A resolver trusting $proxies.
	 *
	 * @param string $proxies Trusted proxies.
	 * @param string $header  Header.
	 * @param string $cdn     The CDN's ranges.
	 * @return Banhammer_Address_Resolver
	 */
	private function resolver( $proxies = '', $header = 'X-Forwarded-For', $cdn = '' ) {
		return new Banhammer_Address_Resolver( new Banhammer_Network_Set( $proxies ), $header, new Banhammer_Network_Set( $cdn ) );
	}

	/**
	 * Cloudflare's edges, as the tests' CDN (two of its published ranges).
	 */
	const CDN = '173.245.48.0/20 2400:cb00::/32';

	/**
	 * No proxies configured: REMOTE_ADDR, whatever the headers say.
	 */
	public function test_direct_client_headers_ignored() {
		$server = array(
			'REMOTE_ADDR'           => '203.0.113.9',
			'HTTP_X_FORWARDED_FOR'  => '127.0.0.99',
			'HTTP_CF_CONNECTING_IP' => '127.0.0.98',
			'HTTP_X_REAL_IP'        => '127.0.0.97',
			'HTTP_CLIENT_IP'        => '127.0.0.96',
		);
		$this->assertSame( '203.0.113.9', $this->resolver()->resolve( $server ) );
		$this->assertSame( '203.0.113.9', $this->resolver( '', 'CF-Connecting-IP' )->resolve( $server ) );
	}

	/**
	 * A peer that is not a trusted proxy is the client, even with proxies
	 * configured and headers present: it could have written them itself.
	 */
	public function test_untrusted_peer_headers_ignored() {
		$server = array(
			'REMOTE_ADDR'           => '203.0.113.9',
			'HTTP_X_FORWARDED_FOR'  => '127.0.0.99',
			'HTTP_CF_CONNECTING_IP' => '127.0.0.98',
		);
		$this->assertSame( '203.0.113.9', $this->resolver( '10.0.0.0/8' )->resolve( $server ) );
		$this->assertSame( '203.0.113.9', $this->resolver( '10.0.0.0/8', 'CF-Connecting-IP' )->resolve( $server ) );
	}

	/**
	 * REMOTE_ADDR missing or broken: nothing to report.
	 */
	public function test_bad_peer() {
		$this->assertNull( $this->resolver()->resolve( array() ) );
		$this->assertNull( $this->resolver()->resolve( array( 'REMOTE_ADDR' => '' ) ) );
		$this->assertNull( $this->resolver()->resolve( array( 'REMOTE_ADDR' => 'unix:' ) ) );
		$this->assertNull( $this->resolver()->resolve( array( 'REMOTE_ADDR' => array( '1.2.3.4' ) ) ) );
		$this->assertSame( '192.0.2.1', $this->resolver()->resolve( array( 'REMOTE_ADDR' => '::ffff:192.0.2.1' ) ) );
		$this->assertSame( '2001:db8::1', $this->resolver()->resolve( array( 'REMOTE_ADDR' => '2001:DB8:0::1' ) ) );
	}

	/**
	 * Behind one proxy: the entry it appended.
	 */
	public function test_one_proxy() {
		$server = array(
			'REMOTE_ADDR'          => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR' => '203.0.113.9',
		);
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1' )->resolve( $server ) );
	}

	/**
	 * The client prepends lies; only the right end counts.
	 */
	public function test_spoofed_entries_on_the_left() {
		$server = array(
			'REMOTE_ADDR'          => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR' => '127.0.0.99, 10.0.0.5, 203.0.113.9',
		);
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1 10.0.0.0/8' )->resolve( $server ) );
		$server['HTTP_X_FORWARDED_FOR'] = '198.51.100.1, 203.0.113.9, 10.0.0.5';
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1 10.0.0.0/8' )->resolve( $server ) );
	}

	/**
	 * Several trusted hops (CDN, load balancer, local nginx) are skipped.
	 */
	public function test_chain_of_proxies() {
		$server = array(
			'REMOTE_ADDR'          => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR' => '198.51.100.200, 2001:db8::9, 173.245.48.7, 10.1.1.1',
		);
		$resolver = $this->resolver( '127.0.0.1/32, 10.0.0.0/8, 173.245.48.0/20' );
		$this->assertSame( '2001:db8::9', $resolver->resolve( $server ) );
	}

	/**
	 * Entries written with ports, brackets, mapped IPv4, odd blanks.
	 */
	public function test_entry_forms() {
		$resolver = $this->resolver( '10.0.0.0/8' );
		$this->assertSame( '203.0.113.9', $resolver->resolve( array( 'REMOTE_ADDR' => '10.0.0.1', 'HTTP_X_FORWARDED_FOR' => '203.0.113.9:51234' ) ) );
		$this->assertSame( '2001:db8::9', $resolver->resolve( array( 'REMOTE_ADDR' => '10.0.0.1', 'HTTP_X_FORWARDED_FOR' => '[2001:DB8::9]:443' ) ) );
		$this->assertSame( '203.0.113.9', $resolver->resolve( array( 'REMOTE_ADDR' => '::ffff:10.0.0.1', 'HTTP_X_FORWARDED_FOR' => "::ffff:203.0.113.9 ,\t10.0.0.2" ) ) );
	}

	/**
	 * Unclear answers report nothing rather than a proxy or a guess.
	 */
	public function test_unclear_reports_nothing() {
		$resolver = $this->resolver( '127.0.0.1 10.0.0.0/8' );
		// No header: the request came from the proxy host itself.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1' ) ) );
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => ' ' ) ) );
		// Nothing but trusted hops.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '10.0.0.1, 10.0.0.2' ) ) );
		// A trusted proxy wrote something that is not an address.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '203.0.113.9, unknown' ) ) );
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '203.0.113.9,,10.0.0.1' ) ) );
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '203.0.113.9 from 10.0.0.1' ) ) );
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => array( '203.0.113.9' ) ) ) );
		// A chain longer than any real one.
		$long = implode( ',', array_fill( 0, Banhammer_Address_Resolver::MAX_HOPS, '10.0.0.1' ) );
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '203.0.113.9,' . $long ) ) );
		$this->assertSame( '203.0.113.9', $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '203.0.113.9,' . substr( $long, 9 ) ) ) );
	}

	/**
	 * CF-Connecting-IP: read only when the request came from the CDN.
	 */
	public function test_single_address_header() {
		$resolver = $this->resolver( '', 'CF-Connecting-IP', self::CDN );
		$via_cdn  = array(
			'REMOTE_ADDR'           => '173.245.48.7',
			'HTTP_CF_CONNECTING_IP' => '203.0.113.9',
			'HTTP_X_FORWARDED_FOR'  => '127.0.0.99, 203.0.113.9',
		);
		$this->assertSame( '203.0.113.9', $resolver->resolve( $via_cdn ) );
		$via_cdn['REMOTE_ADDR'] = '2400:cb00:1::1';
		$this->assertSame( '203.0.113.9', $resolver->resolve( $via_cdn ) );
		// Sent straight to the origin, bypassing the CDN: the header is the client's.
		$direct = array(
			'REMOTE_ADDR'           => '198.51.100.66',
			'HTTP_CF_CONNECTING_IP' => '203.0.113.9',
		);
		$this->assertSame( '198.51.100.66', $resolver->resolve( $direct ) );
		// Missing or broken: X-Forwarded-For is walked instead.
		$this->assertSame(
			'203.0.113.10',
			$resolver->resolve(
				array(
					'REMOTE_ADDR'           => '173.245.48.7',
					'HTTP_CF_CONNECTING_IP' => 'garbage',
					'HTTP_X_FORWARDED_FOR'  => '203.0.113.10',
				)
			)
		);
		$this->assertSame( '203.0.113.10', $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_X_FORWARDED_FOR' => '203.0.113.10' ) ) );
		// The header names one of the CDN's addresses: not a client to report.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_CF_CONNECTING_IP' => '173.245.48.8' ) ) );
		// The CDN's ranges listed as trusted proxies instead (no CDN ranges): the
		// header is not read, X-Forwarded-For gives the same answer.
		$old = $this->resolver( self::CDN, 'CF-Connecting-IP' );
		$this->assertSame( '203.0.113.9', $old->resolve( $via_cdn ) );
		$this->assertNull( $old->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_CF_CONNECTING_IP' => '203.0.113.9' ) ) );
	}

	/**
	 * Other single-address headers work the same way; names are validated.
	 */
	public function test_header_names() {
		$resolver = $this->resolver( '127.0.0.1', 'X-Real-IP', '192.0.2.0/24' );
		$this->assertSame( '203.0.113.9', $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '192.0.2.1', 'HTTP_X_REAL_IP' => '203.0.113.9' ) ) );
		$this->assertSame( '203.0.113.9', $resolver->resolve( array( 'REMOTE_ADDR' => '192.0.2.1', 'HTTP_X_REAL_IP' => '203.0.113.9' ) ) );
		// From the local proxy alone it is not read (X-Forwarded-For is, and is missing).
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_REAL_IP' => '203.0.113.9' ) ) );
		$this->assertSame( 'HTTP_CF_CONNECTING_IP', Banhammer_Address_Resolver::server_key( 'CF-Connecting-IP' ) );
		$this->assertSame( 'HTTP_X_FORWARDED_FOR', Banhammer_Address_Resolver::server_key( 'x-forwarded-for' ) );
		$this->assertTrue( Banhammer_Address_Resolver::is_header_name( 'True-Client-IP' ) );
		$this->assertFalse( Banhammer_Address_Resolver::is_header_name( 'REMOTE ADDR' ) );
		$this->assertFalse( Banhammer_Address_Resolver::is_header_name( '' ) );
		$this->assertFalse( Banhammer_Address_Resolver::is_header_name( array() ) );
		// A broken name falls back to X-Forwarded-For.
		$broken = $this->resolver( '127.0.0.1', 'REMOTE_ADDR' );
		$this->assertSame( '203.0.113.9', $broken->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '203.0.113.9' ) ) );
		// Lower-case spelling of X-Forwarded-For is the same header.
		$lower = $this->resolver( '127.0.0.1', 'x-forwarded-for' );
		$this->assertSame( '203.0.113.9', $lower->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '127.0.0.99, 203.0.113.9' ) ) );
	}

	/**
	 * The finding: behind a trusted local nginx, a client that reached nginx
	 * directly (not through the CDN) set CF-Connecting-IP itself, and that
	 * became the logged address. A CDN header is read only when the hop that
	 * handed the request to the first trusted proxy is in the CDN's ranges.
	 */
	public function test_cf_connecting_ip_from_a_client_behind_a_trusted_proxy_is_ignored() {
		$server = array(
			'REMOTE_ADDR'           => '127.0.0.1',
			// nginx appended the address that connected to it.
			'HTTP_X_FORWARDED_FOR'  => '203.0.113.9',
			'HTTP_CF_CONNECTING_IP' => '6.6.6.6',
		);
		// Without CDN ranges the header is never read.
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'CF-Connecting-IP' )->resolve( $server ) );
		// With them, it is read only from the CDN's edges, and 203.0.113.9 is not one.
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'CF-Connecting-IP', self::CDN )->resolve( $server ) );
		// A forged CDN hop on the left changes nothing: nginx's own entry is read first.
		$server['HTTP_X_FORWARDED_FOR'] = '173.245.48.7, 203.0.113.9';
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'CF-Connecting-IP', self::CDN )->resolve( $server ) );
		// The same client straight at PHP, no proxy at all.
		$direct = array(
			'REMOTE_ADDR'           => '203.0.113.9',
			'HTTP_CF_CONNECTING_IP' => '6.6.6.6',
		);
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'CF-Connecting-IP', self::CDN )->resolve( $direct ) );
		// Every single-address header is a CDN header: True-Client-IP, X-Real-IP alike.
		foreach ( array( 'True-Client-IP', 'X-Real-IP', 'X-Client-IP' ) as $header ) {
			$server = array(
				'REMOTE_ADDR'                                     => '127.0.0.1',
				'HTTP_X_FORWARDED_FOR'                            => '203.0.113.9',
				Banhammer_Address_Resolver::server_key( $header ) => '6.6.6.6',
			);
			$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', $header )->resolve( $server ), $header );
			$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', $header, self::CDN )->resolve( $server ), $header );
		}
	}

	/**
	 * The CDN header is read when the CDN handed the request in: straight to
	 * PHP, or through trusted proxies that appended the CDN edge's address.
	 */
	public function test_cf_connecting_ip_from_the_cdn_is_read() {
		$resolver = $this->resolver( '127.0.0.1 10.0.0.0/8', 'CF-Connecting-IP', self::CDN );
		// Cloudflare -> PHP.
		$this->assertSame( '198.51.100.1', $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_CF_CONNECTING_IP' => '198.51.100.1' ) ) );
		$this->assertSame( '198.51.100.1', $resolver->resolve( array( 'REMOTE_ADDR' => '2400:cb00:1::1', 'HTTP_CF_CONNECTING_IP' => '198.51.100.1' ) ) );
		// Cloudflare -> load balancer -> nginx -> PHP.
		$server = array(
			'REMOTE_ADDR'           => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR'  => '6.6.6.6, 198.51.100.1, 173.245.48.7, 10.0.0.5',
			'HTTP_CF_CONNECTING_IP' => '2001:db8::77',
		);
		$this->assertSame( '2001:db8::77', $resolver->resolve( $server ) );
		// Cloudflare's ranges also among the trusted proxies (an older setup): still the header.
		$both = $this->resolver( '127.0.0.1 10.0.0.0/8 ' . self::CDN, 'CF-Connecting-IP', self::CDN );
		$this->assertSame( '2001:db8::77', $both->resolve( $server ) );
		// The header missing or unusable: the entry the CDN appended to X-Forwarded-For.
		foreach ( array( null, '', 'garbage', '0.0.0.0', '173.245.48.9', '127.0.0.1', '6.6.6.6, 7.7.7.7' ) as $value ) {
			$s = $server;
			if ( null === $value ) {
				unset( $s['HTTP_CF_CONNECTING_IP'] );
			} else {
				$s['HTTP_CF_CONNECTING_IP'] = $value;
			}
			$this->assertSame( '198.51.100.1', $resolver->resolve( $s ), var_export( $value, true ) );
		}
		// ... and nothing when the CDN appended nothing: never the CDN or a proxy.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7' ) ) );
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_CF_CONNECTING_IP' => '0.0.0.0' ) ) );
	}

	/**
	 * With X-Forwarded-For (the default), the CDN's ranges are hops trusted to
	 * append, like the trusted proxies.
	 */
	public function test_cdn_ranges_are_trusted_hops_in_x_forwarded_for() {
		$resolver = $this->resolver( '127.0.0.1', 'X-Forwarded-For', self::CDN );
		$server   = array(
			'REMOTE_ADDR'           => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR'  => '6.6.6.6, 198.51.100.1, 173.245.48.7',
			'HTTP_CF_CONNECTING_IP' => '7.7.7.7',
		);
		$this->assertSame( '198.51.100.1', $resolver->resolve( $server ), 'CF-Connecting-IP is not the configured header' );
		$this->assertSame( '198.51.100.1', $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_X_FORWARDED_FOR' => '198.51.100.1' ) ) );
		// The CDN's ranges are never the client.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_X_FORWARDED_FOR' => '173.245.48.8' ) ) );
	}

	/**
	 * The finding's sibling: "X-Real-IP: 0.0.0.0" was logged as is. An address
	 * that cannot have sent the request (unspecified, multicast, broadcast) or
	 * is not written canonically is never the client, from any source; the next
	 * trustworthy source is used, never text the attacker wrote further left.
	 */
	public function test_unusable_addresses_are_never_logged_as_the_client() {
		$unusable = array(
			'0.0.0.0',
			'0.1.2.3',
			'::',
			'::0',
			'0:0:0:0:0:0:0:0',
			'::ffff:0.0.0.0',
			'224.0.0.1',
			'239.255.255.250',
			'ff02::1',
			'FF05::1:3',
			'::ffff:224.0.0.1',
			'255.255.255.255',
			'::ffff:255.255.255.255',
			'06.6.6.6',
			'6.6.6.06',
			'6.6',
			'6.6.6',
			'6',
			'0x6.6.6.6',
			'6.6.6.6.',
			"\u{0666}.6.6.6",
			"\u{ff16}.\u{ff16}.\u{ff16}.\u{ff16}",
			'6.6.6.6%eth0',
			'fe80::1%eth0',
			'fe80::1%25eth0',
			'6.6.6.6 6',
			'6.6.6.6/32',
			'::ffff:06.6.6.6',
		);
		$cdn = $this->resolver( '127.0.0.1', 'CF-Connecting-IP', self::CDN );
		$xff = $this->resolver( '127.0.0.1' );
		foreach ( $unusable as $bad ) {
			// The peer itself.
			$this->assertNull( $xff->resolve( array( 'REMOTE_ADDR' => $bad ) ), "REMOTE_ADDR $bad" );
			// A CDN header: the entry the CDN appended instead.
			$this->assertSame(
				'198.51.100.1',
				$cdn->resolve(
					array(
						'REMOTE_ADDR'           => '127.0.0.1',
						'HTTP_X_FORWARDED_FOR'  => '6.6.6.6, 198.51.100.1, 173.245.48.7',
						'HTTP_CF_CONNECTING_IP' => $bad,
					)
				),
				"CF-Connecting-IP $bad"
			);
			// X-Real-IP behind a trusted nginx: nginx's X-Forwarded-For entry.
			$this->assertSame(
				'198.51.100.1',
				$this->resolver( '127.0.0.1', 'X-Real-IP' )->resolve(
					array(
						'REMOTE_ADDR'          => '127.0.0.1',
						'HTTP_X_FORWARDED_FOR' => '198.51.100.1',
						'HTTP_X_REAL_IP'       => $bad,
					)
				),
				"X-Real-IP $bad"
			);
			// In X-Forwarded-For where a trusted proxy wrote it: unclear, nothing
			// (what lies to its left was written by the client).
			$this->assertNull( $xff->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => '198.51.100.1, ' . $bad ) ), "X-Forwarded-For $bad" );
			// And no line is ever written for it.
			$this->assertNull( Banhammer_Messages::auth_failure( 'admin', $bad ), "line for $bad" );
		}
	}

	/**
	 * X-Forwarded-For as proxies write it: blanks, ports, brackets, IPv6,
	 * mapped IPv4, many hops.
	 */
	public function test_x_forwarded_for_forms() {
		$resolver = $this->resolver( '127.0.0.1 ::1 10.0.0.0/8 fd00::/8' );
		$cases    = array(
			'203.0.113.9'                            => '203.0.113.9',
			'  203.0.113.9  '                        => '203.0.113.9',
			"203.0.113.9,\t10.0.0.1 ,  10.0.0.2"     => '203.0.113.9',
			'203.0.113.9:1234, 10.0.0.1:80'          => '203.0.113.9',
			'[2001:db8::9]:443, [fd00::1]:80'        => '2001:db8::9',
			'[2001:DB8:0:0::9], fd00::1'             => '2001:db8::9',
			'2001:db8::9'                            => '2001:db8::9',
			'::ffff:203.0.113.9, ::ffff:10.0.0.1'    => '203.0.113.9',
			'6.6.6.6, 203.0.113.9, ' . implode( ', ', array_fill( 0, 14, '10.0.0.1' ) ) => '203.0.113.9',
			// The client's own part is never parsed, however odd.
			"garbage \u{2028} 0.0.0.0, 203.0.113.9"  => '203.0.113.9',
			'unknown, 203.0.113.9'                   => '203.0.113.9',
			// An IPv6 address with a port must be bracketed: unbracketed, it is
			// another valid address (documented).
			'2001:db8::9:443'                        => '2001:db8::9:443',
		);
		foreach ( $cases as $chain => $want ) {
			$this->assertSame( $want, $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => (string) $chain ) ), (string) $chain );
		}
		$unclear = array(
			'203.0.113.9 10.0.0.1',   // two addresses, one entry
			'203.0.113.9;10.0.0.1',
			'[203.0.113.9]',          // brackets are for IPv6 only
			'for=203.0.113.9',        // RFC 7239 syntax in the wrong header
			'203.0.113.9:http',
			'"203.0.113.9"',
		);
		foreach ( $unclear as $chain ) {
			$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => $chain ) ), $chain );
		}
	}

	/**
	 * A huge X-Forwarded-For (the client controls its left part) is read from
	 * the right only, within a fixed number of entries and bytes.
	 */
	public function test_huge_x_forwarded_for_is_read_from_the_right_only() {
		$resolver = $this->resolver( '127.0.0.1 10.0.0.0/8' );
		$left     = str_repeat( '6.6.6.6, ', 200000 );
		$this->assertSame( '203.0.113.9', $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => $left . '203.0.113.9, 10.0.0.1' ) ) );
		// Only trusted hops in the part examined: unclear.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => str_repeat( '10.0.0.1,', 200000 ) ) ) );
		// A huge entry is not an address.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_FORWARDED_FOR' => str_repeat( ' ', 100000 ) . '203.0.113.9' . str_repeat( ' ', 100000 ) ) ) );
		// The entries examined are bounded whatever the header's size.
		$tail = Banhammer_Address_Resolver::last_entries( $left . '203.0.113.9', Banhammer_Address_Resolver::MAX_HOPS );
		$this->assertCount( Banhammer_Address_Resolver::MAX_HOPS, $tail['entries'] );
		$this->assertSame( ' 203.0.113.9', $tail['entries'][0] );
		$this->assertTrue( $tail['more'] );
		$this->assertSame( array( 'entries' => array( ' c', ' b', 'a' ), 'more' => false ), Banhammer_Address_Resolver::last_entries( 'a, b, c', 16 ) );
		// A cut in the middle of an entry is never read as an address.
		$tail = Banhammer_Address_Resolver::last_entries( str_repeat( '1', 5000 ) . '1.2.3.4', 16 );
		$this->assertSame( array(), $tail['entries'] );
		$this->assertTrue( $tail['more'] );
	}

	/**
	 * Headers the plugin does not read (RFC 7239 Forwarded, Client-IP,
	 * X-Cluster-Client-IP ...): never, from anyone, unless configured.
	 */
	public function test_other_headers_are_never_read() {
		$server = array(
			'REMOTE_ADDR'              => '127.0.0.1',
			'HTTP_X_FORWARDED_FOR'     => '203.0.113.9',
			'HTTP_FORWARDED'           => 'for=6.6.6.6;proto=https, for="[2001:db8::6]"',
			'HTTP_CLIENT_IP'           => '6.6.6.6',
			'HTTP_X_CLUSTER_CLIENT_IP' => '6.6.6.6',
			'HTTP_X_REAL_IP'           => '6.6.6.6',
			'HTTP_TRUE_CLIENT_IP'      => '6.6.6.6',
			'HTTP_CF_CONNECTING_IP'    => '6.6.6.6',
			'HTTP_X_FORWARDED'         => '6.6.6.6',
			'HTTP_FORWARDED_FOR'       => '6.6.6.6',
		);
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'X-Forwarded-For', '6.6.6.0/24' )->resolve( $server ) );
		// "Forwarded" named as the header: not supported, X-Forwarded-For is read.
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'Forwarded' )->resolve( $server ) );
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'Forwarded', self::CDN )->resolve( $server ) );
		$server['REMOTE_ADDR'] = '173.245.48.7';
		$this->assertSame( '203.0.113.9', $this->resolver( '127.0.0.1', 'Forwarded', self::CDN )->resolve( $server ) );
	}
}
