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
	 * @return Banhammer_Address_Resolver
	 */
	private function resolver( $proxies = '', $header = 'X-Forwarded-For' ) {
		return new Banhammer_Address_Resolver( new Banhammer_Network_Set( $proxies ), $header );
	}

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
	 * CF-Connecting-IP: read only when the direct peer is trusted.
	 */
	public function test_single_address_header() {
		$resolver = $this->resolver( '173.245.48.0/20 2400:cb00::/32', 'CF-Connecting-IP' );
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
		// The header names one of the proxies: not a client to report.
		$this->assertNull( $resolver->resolve( array( 'REMOTE_ADDR' => '173.245.48.7', 'HTTP_CF_CONNECTING_IP' => '173.245.48.8' ) ) );
	}

	/**
	 * Other single-address headers work the same way; names are validated.
	 */
	public function test_header_names() {
		$resolver = $this->resolver( '127.0.0.1', 'X-Real-IP' );
		$this->assertSame( '203.0.113.9', $resolver->resolve( array( 'REMOTE_ADDR' => '127.0.0.1', 'HTTP_X_REAL_IP' => '203.0.113.9' ) ) );
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
}
