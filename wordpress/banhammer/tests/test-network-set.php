<?php
/**
 * Banhammer_Network_Set: trusted proxy lists.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Network_Set.
 */
final class Test_Banhammer_Network_Set extends TestCase {

	/**
	 * Single addresses, IPv4 and IPv6 blocks.
	 */
	public function test_contains() {
		$set = new Banhammer_Network_Set( '127.0.0.1, 10.0.0.0/8 172.16.0.0/12  2001:db8:cafe::/48' );
		$this->assertTrue( $set->contains( '127.0.0.1' ) );
		$this->assertFalse( $set->contains( '127.0.0.2' ) );
		$this->assertTrue( $set->contains( '10.255.1.2' ) );
		$this->assertFalse( $set->contains( '11.0.0.1' ) );
		$this->assertTrue( $set->contains( '172.31.255.255' ) );
		$this->assertFalse( $set->contains( '172.32.0.0' ) );
		$this->assertTrue( $set->contains( '2001:db8:cafe:1::9' ) );
		$this->assertFalse( $set->contains( '2001:db8:caff::9' ) );
		$this->assertTrue( $set->contains( '::ffff:10.1.2.3' ), 'mapped IPv4 is IPv4' );
		$this->assertFalse( $set->contains( '::a01:203' ), 'IPv4-compatible is IPv6' );
		$this->assertFalse( $set->contains( null ) );
		$this->assertFalse( $set->contains( 'garbage' ) );
		$this->assertSame( array(), $set->invalid_entries() );
	}

	/**
	 * Prefixes that do not fall on a byte boundary; host bits set.
	 */
	public function test_odd_prefixes() {
		$set = new Banhammer_Network_Set( array( '192.0.2.77/27', '2001:db8::/33' ) );
		$this->assertTrue( $set->contains( '192.0.2.64' ) );
		$this->assertTrue( $set->contains( '192.0.2.95' ) );
		$this->assertFalse( $set->contains( '192.0.2.96' ) );
		$this->assertFalse( $set->contains( '192.0.2.63' ) );
		$this->assertTrue( $set->contains( '2001:db8:7fff::1' ) );
		$this->assertFalse( $set->contains( '2001:db8:8000::1' ) );
	}

	/**
	 * /0 trusts a whole family, never the other one.
	 */
	public function test_zero_prefix() {
		$set = new Banhammer_Network_Set( '0.0.0.0/0' );
		$this->assertTrue( $set->contains( '203.0.113.9' ) );
		$this->assertFalse( $set->contains( '2001:db8::1' ) );
	}

	/**
	 * An IPv4-mapped block counts the mapping's 96 bits.
	 */
	public function test_mapped_block() {
		$set = new Banhammer_Network_Set( '::ffff:10.0.0.0/104' );
		$this->assertTrue( $set->contains( '10.9.9.9' ) );
		$this->assertFalse( $set->contains( '11.0.0.0' ) );
		$this->assertSame( array( '::ffff:10.0.0.0/90' ), ( new Banhammer_Network_Set( '::ffff:10.0.0.0/90' ) )->invalid_entries() );
	}

	/**
	 * Unreadable entries are set aside, not guessed at.
	 */
	public function test_invalid_entries() {
		$set = new Banhammer_Network_Set( array( '10.0.0.0/33', 'proxy.local', '10.0.0.0/', '10.0.0.0/8x', '::/129', '192.0.2.1', 7, '' ) );
		$this->assertSame( array( '10.0.0.0/33', 'proxy.local', '10.0.0.0/', '10.0.0.0/8x', '::/129', '7' ), $set->invalid_entries() );
		$this->assertTrue( $set->contains( '192.0.2.1' ) );
		$this->assertFalse( $set->contains( '10.0.0.1' ) );
		$this->assertFalse( $set->is_empty() );
		$this->assertTrue( ( new Banhammer_Network_Set( array() ) )->is_empty() );
		$this->assertTrue( ( new Banhammer_Network_Set( null ) )->is_empty() );
	}

	/**
	 * Lists: arrays or separated strings.
	 */
	public function test_split_list() {
		$this->assertSame( array( 'a', 'b', 'c' ), Banhammer_Network_Set::split_list( " a,b\n c ,, " ) );
		$this->assertSame( array( 'a b', 'c' ), Banhammer_Network_Set::split_list( 'a b, c', '/,/' ) );
		$this->assertSame( array( 'x', '5' ), Banhammer_Network_Set::split_list( array( ' x ', 5, array(), null, '' ) ) );
		$this->assertSame( array(), Banhammer_Network_Set::split_list( 17 ) );
	}

	/**
	 * A CDN's list pasted as published: one range a line, "#" comments,
	 * Windows line ends; an absurdly long list is cut at MAX_ENTRIES.
	 */
	public function test_pasted_lists_and_comments() {
		$set = new Banhammer_Network_Set( "# Cloudflare, from https://www.cloudflare.com/ips-v4 (2024-05-01)\r\n173.245.48.0/20\r\n103.21.244.0/22 # Europe\n\n2400:cb00::/32#v6\n" );
		$this->assertSame( 3, $set->count() );
		$this->assertSame( array(), $set->invalid_entries() );
		$this->assertTrue( $set->contains( '103.21.247.255' ) );
		$this->assertTrue( $set->contains( '2400:cb00:ffff::1' ) );
		$this->assertSame( array( '173.245.48.0/20', '2400:cb00::/32' ), Banhammer_Network_Set::entries( "173.245.48.0/20 # a # b\n2400:cb00::/32" ) );
		$this->assertSame( array( 'a#b' ), Banhammer_Network_Set::entries( array( 'a#b' ) ), 'no comments inside an array' );

		$many = array();
		for ( $i = 0; $i < Banhammer_Network_Set::MAX_ENTRIES + 5; $i++ ) {
			$many[] = '10.' . intdiv( $i, 256 ) . '.' . ( $i % 256 ) . '.0/24';
		}
		$set = new Banhammer_Network_Set( $many );
		$this->assertSame( Banhammer_Network_Set::MAX_ENTRIES, $set->count() );
		$this->assertCount( 5, $set->invalid_entries() );
		$this->assertStringContainsString( 'more than 1000 entries', $set->invalid_entries()[0] );
	}
}
