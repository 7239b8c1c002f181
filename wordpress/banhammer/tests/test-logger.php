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
	 * What the failure handler heard.
	 *
	 * @var array
	 */
	private $failures = array();

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
		$this->failures  = array();
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
			self::remove( $this->dir );
		}
	}

	/**
	 * Remove a directory tree (a failed test may leave subdirectories, some
	 * with mode 0000).
	 *
	 * @param string $path Directory or file.
	 */
	private static function remove( $path ) {
		if ( is_dir( $path ) && ! is_link( $path ) ) {
			chmod( $path, 0700 );
			foreach ( (array) scandir( $path ) as $name ) {
				if ( '.' !== $name && '..' !== $name ) {
					self::remove( $path . '/' . $name );
				}
			}
			rmdir( $path );
			return;
		}
		unlink( $path );
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
		$logger = new Banhammer_Logger(
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
		$logger->set_failure_handler(
			function ( $failure ) {
				$this->failures[] = $failure;
			}
		);
		return $logger;
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
		$this->assertSame( array(), $this->failures, 'no failure reported' );
	}

	/**
	 * The finding: with no socket at the path, the send failed silently. The
	 * record goes to syslog() and the failure, with its errno, is reported.
	 */
	public function test_a_failed_socket_send_is_reported_and_the_record_goes_to_syslog() {
		$path = $this->dir . '/missing.sock';
		foreach ( array( true, false ) as $extension ) {
			$this->syslogged = array();
			$this->failures  = array();
			$this->assertTrue( $this->logger( $path, $extension )->log( 'Pingback error 17 generated from 192.0.2.8' ) );
			$this->assertSame( array( array( 'wordpress(blog.example.org)', LOG_AUTHPRIV, 'Pingback error 17 generated from 192.0.2.8' ) ), $this->syslogged );
			$this->assertSame(
				array(
					array(
						'path'     => $path,
						'errno'    => 2,
						'error'    => 'No such file or directory',
						'fallback' => true,
					),
				),
				$this->failures,
				$extension ? 'sockets extension' : 'stream_socket_client'
			);
		}
	}

	/**
	 * A path that is a plain file, not a socket: syslog() instead, reported.
	 */
	public function test_fallback_when_not_a_socket() {
		$path = $this->dir . '/file';
		file_put_contents( $path, '' );
		foreach ( array( true, false ) as $extension ) {
			$this->failures = array();
			$this->assertTrue( $this->logger( $path, $extension )->log( 'x from 192.0.2.1' ) );
			$this->assertSame( 111, $this->failures[0]['errno'] );
			$this->assertSame( 'Connection refused', $this->failures[0]['error'] );
		}
		$this->assertCount( 2, $this->syslogged );
	}

	/**
	 * syslog() refusing too: log() says the record went nowhere, and the
	 * failure says so.
	 */
	public function test_fallback_refused_is_reported() {
		$logger = new Banhammer_Logger(
			'wordpress(test)',
			LOG_AUTHPRIV,
			$this->dir . '/missing.sock',
			static function () {
				return false;
			}
		);
		$logger->set_failure_handler(
			function ( $failure ) {
				$this->failures[] = $failure;
			}
		);
		$this->assertFalse( $logger->log( 'x from 192.0.2.1' ) );
		$this->assertFalse( $this->failures[0]['fallback'] );
	}

	/**
	 * A failure handler that throws (a broken database, say) must not break
	 * the login that is being logged.
	 */
	public function test_a_failure_handler_that_throws_breaks_nothing() {
		$logger = $this->logger( $this->dir . '/missing.sock', true );
		$logger->set_failure_handler(
			static function () {
				throw new RuntimeException( 'database gone' );
			}
		);
		$this->assertTrue( $logger->log( 'x from 192.0.2.1' ) );
		$this->assertCount( 1, $this->syslogged );
	}

	/**
	 * The finding's other half: a socket the web server may not write to
	 * (its directory mode 0700, as systemd's RuntimeDirectoryMode=0700 makes
	 * it; or the socket 0660 in a group the web server is not in). The send is
	 * made by another process as an unprivileged user (nobody), since root
	 * may write anywhere. A socket of the sender's group works.
	 */
	public function test_a_socket_without_permission_is_reported_and_the_record_goes_to_syslog() {
		if ( ! function_exists( 'posix_geteuid' ) ) {
			$this->skip_loudly( 'needs the posix extension to tell whether it runs as root' );
		}
		$root = 0 === posix_geteuid();
		if ( $root && ! is_executable( '/usr/bin/setpriv' ) ) {
			$this->skip_loudly( 'needs setpriv (util-linux) to send as an unprivileged user' );
		}
		chmod( $this->dir, 0755 );
		$cases = array(
			// The directory nobody may enter, the socket itself open to all.
			'directory 0700' => array( 'private/syslog.sock', 0700, 0666, null, 13 ),
			// The directory open, the socket only for its group.
			'socket 0660'    => array( 'shared/syslog.sock', 0755, $root ? 0660 : 0000, null, 13 ),
			// The same socket given to the sender's group: it works.
			'sender\'s group' => array( 'group/syslog.sock', 0755, 0660, 65534, 0 ),
		);
		foreach ( $cases as $name => $case ) {
			list( $relative, $dir_mode, $socket_mode, $group, $errno ) = $case;
			if ( null !== $group && ! $root ) {
				continue;
			}
			$path = $this->dir . '/' . $relative;
			mkdir( dirname( $path ) );
			$server = socket_create( AF_UNIX, SOCK_DGRAM, 0 );
			$this->assertTrue( socket_bind( $server, $path ) );
			chmod( $path, $socket_mode );
			if ( null !== $group ) {
				chgrp( $path, $group );
			}
			// Not root: a mode that shuts out even the owner stands for "not in the group".
			chmod( dirname( $path ), $root ? $dir_mode : ( 0700 === $dir_mode ? 0000 : $dir_mode ) );
			foreach ( array( 'ext', 'stream' ) as $transport ) {
				$out = $this->send_as_nobody( $path, $transport );
				if ( 0 === $errno ) {
					$this->assertSame( array(), $out['failures'], "$name, $transport" );
					$this->assertSame( array(), $out['syslogged'], "$name, $transport" );
					continue;
				}
				$this->assertTrue( $out['ok'], "$name, $transport" );
				$this->assertSame( array( 'Authentication failure for alice from 192.0.2.7' ), $out['syslogged'], "$name, $transport" );
				$this->assertSame(
					array(
						array(
							'path'     => $path,
							'errno'    => 13,
							'error'    => 'Permission denied',
							'fallback' => true,
						),
					),
					$out['failures'],
					"$name, $transport"
				);
			}
			chmod( dirname( $path ), 0700 );
			socket_close( $server );
			unlink( $path );
			rmdir( dirname( $path ) );
		}
	}

	/**
	 * Run tests/helpers/send-once.php as nobody (root) or as ourselves.
	 *
	 * @param string $path      Socket path.
	 * @param string $transport "ext" or "stream".
	 * @return array What it printed, decoded.
	 */
	private function send_as_nobody( $path, $transport ) {
		$command = array( PHP_BINARY, __DIR__ . '/helpers/send-once.php', $path, $transport );
		if ( 0 === posix_geteuid() ) {
			$command = array_merge( array( '/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups' ), $command );
		}
		$proc = proc_open( $command, array( 1 => array( 'pipe', 'w' ), 2 => array( 'pipe', 'w' ) ), $pipes );
		$this->assertIsResource( $proc );
		$out = stream_get_contents( $pipes[1] );
		$err = stream_get_contents( $pipes[2] );
		fclose( $pipes[1] );
		fclose( $pipes[2] );
		$rc      = proc_close( $proc );
		$decoded = json_decode( (string) $out, true );
		$this->assertSame( 0, $rc, "send-once.php: $err$out" );
		$this->assertIsArray( $decoded, "send-once.php: $err$out" );
		return $decoded;
	}

	/**
	 * Skip with a loud message, or fail under CI=true.
	 *
	 * @param string $why Reason.
	 */
	private function skip_loudly( $why ) {
		$ci = getenv( 'CI' );
		if ( 'true' === $ci || '1' === $ci ) {
			$this->fail( "$why, and CI=true" );
		}
		fwrite( STDERR, "\n!!! SKIPPED: $why !!!\n" );
		$this->markTestSkipped( $why );
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
