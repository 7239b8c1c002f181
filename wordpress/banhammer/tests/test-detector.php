<?php
/**
 * Banhammer_Detector: which requests are signals.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Detector.
 */
final class Test_Banhammer_Detector extends TestCase {

	/**
	 * ?author=N from anonymous clients on a site with pretty permalinks.
	 */
	public function test_author_enumeration() {
		$this->assertSame( 1, Banhammer_Detector::author_enumeration( array( 'author' => '1' ), false, true ) );
		$this->assertSame( 12, Banhammer_Detector::author_enumeration( array( 'author' => '12/' ), false, true ) );
		$this->assertSame( 3, Banhammer_Detector::author_enumeration( array( 'author' => ' 3' ), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => '1' ), true, true ), 'logged in' );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => '1' ), false, false ), 'plain permalinks' );
		$this->assertNull( Banhammer_Detector::author_enumeration( array(), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => '0' ), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => '-1' ), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => 'admin' ), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => array( '1' ) ), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => '1,2' ), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author' => '12345678901' ), false, true ) );
		$this->assertNull( Banhammer_Detector::author_enumeration( array( 'author_name' => 'admin' ), false, true ) );
	}

	/**
	 * REST users endpoint from anonymous clients.
	 */
	public function test_rest_enumeration() {
		foreach ( array( '/wp/v2/users', '/wp/v2/users/', '/wp/v2/users/1', '/wp/v2/users/me', '/WP/V2/Users', '//wp/v2/users' ) as $route ) {
			$this->assertTrue( Banhammer_Detector::rest_enumeration( $route, false ), $route );
			$this->assertFalse( Banhammer_Detector::rest_enumeration( $route, true ), "$route logged in" );
		}
		foreach ( array( '/wp/v2/posts', '/wp/v2/usersx', '/wp/v2', '/', '', null, '/x/wp/v2/users' ) as $route ) {
			$this->assertFalse( Banhammer_Detector::rest_enumeration( $route, false ), (string) $route );
		}
	}

	/**
	 * system.multicall, exactly.
	 */
	public function test_is_multicall() {
		$this->assertTrue( Banhammer_Detector::is_multicall( 'system.multicall' ) );
		$this->assertFalse( Banhammer_Detector::is_multicall( 'wp.getUsersBlogs' ) );
		$this->assertFalse( Banhammer_Detector::is_multicall( null ) );
	}

	/**
	 * Blocked names count only when no account has them.
	 */
	public function test_blocked_username() {
		$asked  = array();
		$exists = static function ( $name ) use ( &$asked ) {
			$asked[] = $name;
			return 'root' === strtolower( $name );
		};
		$blocked = array( 'admin', 'root', 'web master' );
		$this->assertTrue( Banhammer_Detector::blocked_username( 'admin', $blocked, $exists ) );
		$this->assertTrue( Banhammer_Detector::blocked_username( ' ADMIN ', $blocked, $exists ) );
		$this->assertTrue( Banhammer_Detector::blocked_username( 'Web Master', $blocked, $exists ) );
		$this->assertFalse( Banhammer_Detector::blocked_username( 'Root', $blocked, $exists ), 'an account has it' );
		$this->assertFalse( Banhammer_Detector::blocked_username( 'alice', $blocked, $exists ) );
		$this->assertFalse( Banhammer_Detector::blocked_username( '', $blocked, $exists ) );
		$this->assertFalse( Banhammer_Detector::blocked_username( null, $blocked, $exists ) );
		$this->assertFalse( Banhammer_Detector::blocked_username( 'admin', array(), $exists ) );
		$this->assertSame( array( 'admin', 'ADMIN', 'Web Master', 'Root' ), $asked, 'only blocked names cost a lookup' );
	}
}
