<?php
/**
 * Banhammer_Ip: validation and the canonical form.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Ip.
 */
final class Test_Banhammer_Ip extends TestCase {

	/**
	 * Valid addresses and their canonical form.
	 *
	 * @return array
	 */
	public function valid_addresses() {
		return array(
			array( '192.0.2.1', '192.0.2.1' ),
			array( '0.0.0.0', '0.0.0.0' ),
			array( '255.255.255.255', '255.255.255.255' ),
			array( '2001:db8::1', '2001:db8::1' ),
			array( '2001:DB8::A', '2001:db8::a' ),
			array( '2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1' ),
			array( '::1', '::1' ),
			array( '::ffff:192.0.2.1', '192.0.2.1' ),
			array( '::FFFF:c000:0201', '192.0.2.1' ),
			array( '0:0:0:0:0:ffff:192.0.2.1', '192.0.2.1' ),
			array( '0000:0000:0000:0000:0000:ffff:255.255.255.255', '255.255.255.255' ),
			array( '::192.0.2.1', '::c000:201' ),
			array( '::ffff:0:192.0.2.1', '::ffff:0:c000:201' ),
			array( '::', '::' ),
			array( '2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1' ),
			array( '2001:0:0:1:0:0:0:1', '2001:0:0:1::1' ),
			array( '2001:0:0:1:0:0:1:1', '2001::1:0:0:1:1' ),
			array( '2001:db8:1:2:3:4:5:0', '2001:db8:1:2:3:4:5:0' ),
			array( 'fe80:0:0:0:0:0:0:0', 'fe80::' ),
		);
	}

	/**
	 * Our IPv6 text is inet_ntop()'s wherever that has no dotted quad.
	 */
	public function test_ipv6_text_agrees_with_inet_ntop() {
		mt_srand( 4711 );
		for ( $i = 0; $i < 2000; $i++ ) {
			$packed = '';
			for ( $k = 0; $k < 8; $k++ ) {
				// Plenty of zero groups, so every compression case comes up.
				$packed .= pack( 'n', mt_rand( 0, 2 ) ? 0 : mt_rand( 0, 0xffff ) );
			}
			$expected = inet_ntop( $packed );
			if ( false !== strpos( $expected, '.' ) ) {
				continue;
			}
			$this->assertSame( $expected, Banhammer_Ip::normalize( $expected ) );
		}
	}

	/**
	 * Valid addresses normalise.
	 *
	 * @dataProvider valid_addresses
	 * @param string $in  Input.
	 * @param string $out Canonical form.
	 */
	public function test_normalize_valid( $in, $out ) {
		$this->assertSame( $out, Banhammer_Ip::normalize( $in ) );
	}

	/**
	 * Things that are not exactly one address.
	 *
	 * @return array
	 */
	public function invalid_addresses() {
		return array(
			array( '' ),
			array( null ),
			array( 42 ),
			array( array( '192.0.2.1' ) ),
			array( ' 192.0.2.1' ),
			array( "192.0.2.1\n" ),
			array( "192.0.2.1\0" ),
			array( '192.0.2.1 ' ),
			array( '192.0.2.256' ),
			array( '192.0.2' ),
			array( '01.2.3.4' ),
			array( '1.2.3.04' ),
			array( '6.6' ),
			array( '6' ),
			array( '0x6.6.6.6' ),
			array( '6.6.6.6.' ),
			array( "\u{0666}.6.6.6" ),
			array( "\u{ff16}.6.6.6" ),
			array( '::ffff:06.6.6.6' ),
			array( 'fe80::1%25eth0' ),
			array( '6.6.6.6%eth0' ),
			array( '192.0.2.1:80' ),
			array( '[2001:db8::1]' ),
			array( 'fe80::1%eth0' ),
			array( '2001:db8::1/64' ),
			array( 'localhost' ),
			array( 'unknown' ),
			array( '1.2.3.4 from 5.6.7.8' ),
			array( str_repeat( '0', 40 ) . ':ffff:1.2.3.4' ),
		);
	}

	/**
	 * Everything else is refused.
	 *
	 * @dataProvider invalid_addresses
	 * @param mixed $in Input.
	 */
	public function test_normalize_invalid( $in ) {
		$this->assertNull( Banhammer_Ip::normalize( $in ) );
		$this->assertNull( Banhammer_Ip::to_packed( $in ) );
	}

	/**
	 * Packed forms: 4 bytes for IPv4 and mapped IPv6.
	 */
	public function test_to_packed() {
		$this->assertSame( "\xc0\x00\x02\x01", Banhammer_Ip::to_packed( '192.0.2.1' ) );
		$this->assertSame( "\xc0\x00\x02\x01", Banhammer_Ip::to_packed( '::ffff:192.0.2.1' ) );
		$this->assertSame( 16, strlen( Banhammer_Ip::to_packed( '2001:db8::1' ) ) );
	}

	/**
	 * Forwarding header entries, as proxies write them.
	 *
	 * @return array
	 */
	public function forwarded_entries() {
		return array(
			array( '192.0.2.1', '192.0.2.1' ),
			array( ' 192.0.2.1 ', '192.0.2.1' ),
			array( "\t192.0.2.1", '192.0.2.1' ),
			array( '192.0.2.1:4711', '192.0.2.1' ),
			array( '2001:db8::1', '2001:db8::1' ),
			array( '[2001:db8::1]', '2001:db8::1' ),
			array( '[2001:db8::1]:443', '2001:db8::1' ),
			array( '::ffff:192.0.2.1', '192.0.2.1' ),
			array( '[::ffff:192.0.2.1]:80', '192.0.2.1' ),
			array( '192.0.2.1:', null ),
			array( '192.0.2.1:http', null ),
			array( '192.0.2.1:123456', null ),
			array( '[192.0.2.1]', null ),
			array( '[2001:db8::1', null ),
			array( '[2001:db8::1]x', null ),
			array( 'unknown', null ),
			array( '_hidden', null ),
			array( '', null ),
			array( '   ', null ),
			array( 'proxy.example.net', null ),
			array( '192.0.2.1 192.0.2.2', null ),
			array( null, null ),
		);
	}

	/**
	 * Ports and brackets are dropped, anything else refused.
	 *
	 * @dataProvider forwarded_entries
	 * @param mixed       $in  Entry.
	 * @param string|null $out Address.
	 */
	public function test_from_forwarded( $in, $out ) {
		$this->assertSame( $out, Banhammer_Ip::from_forwarded( $in ) );
	}

	/**
	 * Addresses no client can send from are refused by client() (they stay
	 * valid syntax for normalize(), which also reads network blocks).
	 */
	public function test_client_refuses_unusable_addresses() {
		$unusable = array( '0.0.0.0', '0.255.255.255', '::', '::ffff:0.0.0.0', '224.0.0.1', '239.255.255.255', 'ff02::1', 'ff0e::1', '255.255.255.255', '::ffff:255.255.255.255' );
		foreach ( $unusable as $address ) {
			$this->assertNotNull( Banhammer_Ip::normalize( $address ), $address );
			$this->assertNull( Banhammer_Ip::client( $address ), $address );
		}
		$usable = array(
			'1.0.0.0'          => '1.0.0.0',
			'223.255.255.255'  => '223.255.255.255',
			'240.0.0.1'        => '240.0.0.1',
			'255.255.255.254'  => '255.255.255.254',
			'127.0.0.5'        => '127.0.0.5',
			'::1'              => '::1',
			'fe80::1'          => 'fe80::1',
			'feff::1'          => 'feff::1',
			'::ffff:192.0.2.1' => '192.0.2.1',
			'2001:DB8::1'      => '2001:db8::1',
		);
		foreach ( $usable as $in => $out ) {
			$this->assertSame( $out, Banhammer_Ip::client( (string) $in ), (string) $in );
		}
		foreach ( $this->invalid_addresses() as $case ) {
			$this->assertNull( Banhammer_Ip::client( $case[0] ) );
		}
	}
}
