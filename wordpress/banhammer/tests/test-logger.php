<?php
/**
 * Banhammer_Logger: syslog() and banhammer's socket, with a real socket.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Logger.
 */
final class Test_Banhammer_Logger extends TestCase {

	/**
	 * Temporary directory.
	 *
	 * @var string
	 */
	private $dir;

	/**
	 * Receiving socket.
	 *
	 * @var resource|Socket|null
	 */
	private $server;

	/**
	 * Calls to the syslog seam.
	 *
	 * @var array
	 */
	private $syslogged = array();

	/**
	 * Fresh directory per test.
	 */
	protected function setUp(): void {
		if ( ! function_exists( 'socket_create' ) ) {
			$this->markTestSkipped( 'needs the sockets extension to play banhammer' );
		}
		$this->dir = sys_get_temp_dir() . '/banhammer-test-' . getmypid() . '-' . mt_rand();
		mkdir( $this->dir, 0700 );
		$this->syslogged = array();
	}

	/**
	 * Remove the socket and the directory.
	 */
	protected function tearDown(): void {
		if ( null !== $this->server ) {
			socket_close( $this->server );
			$this->server = null;
		}
		if ( null !== $this->dir && is_dir( $this->dir ) ) {
			foreach ( (array) glob( $this->dir . '/*' ) as $file ) {
				unlink( $file );
			}
			rmdir( $this->dir );
		}
	}

	/**
	 * Bind a datagram socket the way banhammer does.
	 *
	 * @return string Its path.
	 */
	private function listen() {
		$path         = $this->dir . '/syslog.sock';
		$this->server = socket_create( AF_UNIX, SOCK_DGRAM, 0 );
		$this->assertTrue( socket_bind( $this->server, $path ) );
		socket_set_option( $this->server, SOL_SOCKET, SO_RCVTIMEO, array( 'sec' => 2, 'usec' => 0 ) );
		return $path;
	}

	/**
	 * Next datagram.
	 *
	 * @return string
	 */
	private function receive() {
		$buf  = '';
		$from = '';
		$n    = socket_recvfrom( $this->server, $buf, 65536, 0, $from );
		$this->assertNotFalse( $n, 'a datagram arrives' );
		return $buf;
	}

	/**
	 * A logger with test seams.
	 *
	 * @param string|null $path       Socket path.
	 * @param bool|null   $extension  Use the sockets extension.
	 * @return Banhammer_Logger
	 */
	private function logger( $path, $extension = null ) {
		return new Banhammer_Logger(
			'wordpress(blog.example.org)',
			LOG_AUTHPRIV,
			$path,
			function ( $ident, $facility, $message ) {
				$this->syslogged[] = array( $ident, $facility, $message );
				return true;
			},
			static function () {
				return new DateTimeImmutable( '2005-08-14 11:58:01', new DateTimeZone( 'Europe/Zurich' ) );
			},
			$extension
		);
	}

	/**
	 * Both transports deliver the exact RFC 3164 datagram.
	 */
	public function test_socket_datagram() {
		$path = $this->listen();
		foreach ( array( true, false ) as $extension ) {
			$this->assertTrue( $this->logger( $path, $extension )->log( 'Authentication failure for admin from 192.0.2.7' ) );
			$this->assertSame(
				'<85>Aug 14 11:58:01 wordpress(blog.example.org)[' . getmypid() . ']: Authentication failure for admin from 192.0.2.7',
				$this->receive(),
				$extension ? 'sockets extension' : 'stream_socket_client'
			);
		}
		$this->assertSame( array(), $this->syslogged, 'nothing went to syslog()' );
	}

	/**
	 * No daemon listening: syslog() instead, silently.
	 */
	public function test_fallback_to_syslog() {
		foreach ( array( true, false ) as $extension ) {
			$this->syslogged = array();
			$this->assertTrue( $this->logger( $this->dir . '/missing.sock', $extension )->log( 'Pingback error 17 generated from 192.0.2.8' ) );
			$this->assertSame( array( array( 'wordpress(blog.example.org)', LOG_AUTHPRIV, 'Pingback error 17 generated from 192.0.2.8' ) ), $this->syslogged );
		}
	}

	/**
	 * A path that is a plain file, not a socket: syslog() instead.
	 */
	public function test_fallback_when_not_a_socket() {
		$path = $this->dir . '/file';
		file_put_contents( $path, '' );
		$this->assertTrue( $this->logger( $path, true )->log( 'x from 192.0.2.1' ) );
		$this->assertCount( 1, $this->syslogged );
	}

	/**
	 * No socket configured: syslog() with the recipe's ident and facility.
	 */
	public function test_syslog_mode() {
		$this->assertTrue( $this->logger( null )->log( 'Authentication failure for admin from 192.0.2.7' ) );
		$this->assertSame( array( array( 'wordpress(blog.example.org)', LOG_AUTHPRIV, 'Authentication failure for admin from 192.0.2.7' ) ), $this->syslogged );
		$this->assertFalse( $this->logger( null )->log( null ), 'no line, nothing logged' );
		$this->assertCount( 1, $this->syslogged );
	}
}
