<?php
/**
 * Banhammer_Config: wp-config.php constants.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Config.
 */
final class Test_Banhammer_Config extends TestCase {

	/**
	 * Settings from these constants.
	 *
	 * @param array $constants Name => value.
	 * @return Banhammer_Config
	 */
	private static function config( array $constants = array() ) {
		return new Banhammer_Config(
			static function ( $name ) use ( $constants ) {
				return array_key_exists( $name, $constants ) ? $constants[ $name ] : null;
			}
		);
	}

	/**
	 * Nothing set: the recipe's behaviour plus every extra signal.
	 */
	public function test_defaults() {
		$config = self::config();
		$this->assertSame( Banhammer_Config::SIGNALS, array_keys( $config->signals ) );
		$this->assertSame( LOG_AUTHPRIV, $config->facility );
		$this->assertSame( 80, LOG_AUTHPRIV );
		$this->assertNull( $config->ident );
		$this->assertNull( $config->host );
		$this->assertTrue( $config->trusted_proxies->is_empty() );
		$this->assertSame( 'X-Forwarded-For', $config->proxy_header );
		$this->assertSame( array( 'admin', 'administrator', 'root', 'test', 'user' ), $config->blocked_usernames );
		$this->assertNull( $config->socket_path );
		$this->assertSame( array(), $config->problems() );
		$this->assertSame( 'wordpress(blog.example.org)', $config->ident_for( 'Blog.Example.org' ) );
		$this->assertSame( 'wordpress', $config->ident_for( null ) );
		$this->assertSame( 'wordpress', $config->ident_for( ':::' ) );
	}

	/**
	 * Signal lists: names, removals, all, none, mistakes.
	 */
	public function test_signals() {
		$this->assertSame( array( 'auth', 'pingback_error' ), array_keys( self::config( array( 'BANHAMMER_SIGNALS' => 'auth, pingback_error' ) )->signals ) );
		$this->assertSame( array( 'auth', 'multicall' ), array_keys( self::config( array( 'BANHAMMER_SIGNALS' => array( 'auth', 'MULTICALL' ) ) )->signals ) );
		$without = self::config( array( 'BANHAMMER_SIGNALS' => '-pingback_request -enumeration' ) );
		$this->assertSame( array( 'auth', 'pingback_error', 'multicall', 'blocked_username' ), array_keys( $without->signals ) );
		$this->assertTrue( $without->enabled( 'auth' ) );
		$this->assertFalse( $without->enabled( 'enumeration' ) );
		$this->assertSame( array(), self::config( array( 'BANHAMMER_SIGNALS' => false ) )->signals );
		$this->assertSame( array(), self::config( array( 'BANHAMMER_SIGNALS' => '' ) )->signals );
		$this->assertCount( 6, self::config( array( 'BANHAMMER_SIGNALS' => 'all' ) )->signals );
		$this->assertCount( 5, self::config( array( 'BANHAMMER_SIGNALS' => 'all,-auth' ) )->signals );
		$typo = self::config( array( 'BANHAMMER_SIGNALS' => 'auth,pingback' ) );
		$this->assertSame( array( 'auth' ), array_keys( $typo->signals ) );
		$this->assertCount( 1, $typo->problems() );
		$this->assertStringContainsString( "'pingback'", $typo->problems()[0] );
	}

	/**
	 * Facilities: LOG_* values or names.
	 */
	public function test_facility() {
		$this->assertSame( LOG_AUTH, self::config( array( 'BANHAMMER_SYSLOG_FACILITY' => LOG_AUTH ) )->facility );
		$this->assertSame( LOG_LOCAL3, self::config( array( 'BANHAMMER_SYSLOG_FACILITY' => 'local3' ) )->facility );
		$this->assertSame( LOG_DAEMON, self::config( array( 'BANHAMMER_SYSLOG_FACILITY' => 'LOG_DAEMON' ) )->facility );
		$this->assertSame( LOG_AUTHPRIV, self::config( array( 'BANHAMMER_SYSLOG_FACILITY' => ' AuthPriv ' ) )->facility );
		foreach ( array( 'nonsense', 3, LOG_NOTICE, array() ) as $bad ) {
			$config = self::config( array( 'BANHAMMER_SYSLOG_FACILITY' => $bad ) );
			$this->assertSame( LOG_AUTHPRIV, $config->facility );
			$this->assertCount( 1, $config->problems() );
		}
	}

	/**
	 * Ident and host: sanitised, mistakes reported.
	 */
	public function test_ident_and_host() {
		$config = self::config( array( 'BANHAMMER_SYSLOG_IDENT' => 'wordpress(shop)' ) );
		$this->assertSame( 'wordpress(shop)', $config->ident_for( 'blog.example.org' ) );
		$this->assertSame( array(), $config->problems() );
		$bad = self::config( array( 'BANHAMMER_SYSLOG_IDENT' => 'word press:' ) );
		$this->assertSame( 'wordpress', $bad->ident_for( 'x' ) );
		$this->assertCount( 1, $bad->problems() );
		$this->assertNull( self::config( array( 'BANHAMMER_SYSLOG_IDENT' => '[]' ) )->ident );

		$host = self::config( array( 'BANHAMMER_HOST' => 'WWW.Example.org:443' ) );
		$this->assertSame( 'wordpress(www.example.org)', $host->ident_for( 'blog.example.org' ) );
		$this->assertCount( 1, self::config( array( 'BANHAMMER_HOST' => '::' ) )->problems() );
	}

	/**
	 * Proxies and header.
	 */
	public function test_proxies() {
		$config = self::config(
			array(
				'BANHAMMER_TRUSTED_PROXIES' => '127.0.0.1, 10.0.0.0/8, proxy.local',
				'BANHAMMER_PROXY_HEADER'    => 'CF-Connecting-IP',
			)
		);
		$this->assertTrue( $config->trusted_proxies->contains( '10.1.1.1' ) );
		$this->assertSame( 'CF-Connecting-IP', $config->proxy_header );
		$this->assertCount( 1, $config->problems() );
		$this->assertStringContainsString( "'proxy.local'", $config->problems()[0] );
		$bad = self::config( array( 'BANHAMMER_PROXY_HEADER' => 'HTTP_X_FORWARDED_FOR: 1' ) );
		$this->assertSame( 'X-Forwarded-For', $bad->proxy_header );
		$this->assertCount( 1, $bad->problems() );
		// RFC 7239 is not read.
		$forwarded = self::config( array( 'BANHAMMER_PROXY_HEADER' => 'forwarded' ) );
		$this->assertSame( 'X-Forwarded-For', $forwarded->proxy_header );
		$this->assertStringContainsString( 'RFC 7239', $forwarded->problems()[0] );
	}

	/**
	 * The CDN's ranges: the constant, else the option; the entries as
	 * written, comments gone (checked when the plugin builds the set).
	 */
	public function test_cdn_ranges() {
		$option = static function ( $name ) {
			return 'banhammer_cdn_ranges' === $name ? "# Cloudflare\n173.245.48.0/20\n2400:cb00::/32 # v6\n" : null;
		};
		$none   = self::config();
		$this->assertSame( array(), $none->cdn_ranges );
		$this->assertSame( 'none', $none->cdn_ranges_source );
		$from_option = new Banhammer_Config(
			static function () {
				return null;
			},
			$option
		);
		$this->assertSame( array( '173.245.48.0/20', '2400:cb00::/32' ), $from_option->cdn_ranges );
		$this->assertSame( 'option', $from_option->cdn_ranges_source );
		$from_constant = new Banhammer_Config(
			static function ( $name ) {
				return 'BANHAMMER_CDN_RANGES' === $name ? array( '192.0.2.0/24', 'junk' ) : null;
			},
			$option
		);
		$this->assertSame( array( '192.0.2.0/24', 'junk' ), $from_constant->cdn_ranges );
		$this->assertSame( 'constant', $from_constant->cdn_ranges_source );
		$this->assertSame( array(), $from_constant->problems() );
		$wrong = self::config( array( 'BANHAMMER_CDN_RANGES' => 42 ) );
		$this->assertSame( array(), $wrong->cdn_ranges );
		$this->assertStringContainsString( 'BANHAMMER_CDN_RANGES: expected a string or an array', $wrong->problems()[0] );
		// An option that is not text (another plugin's doing) is ignored.
		$odd = new Banhammer_Config(
			static function () {
				return null;
			},
			static function () {
				return array( '1.2.3.4' );
			}
		);
		$this->assertSame( 'none', $odd->cdn_ranges_source );
	}

	/**
	 * Blocked names: commas separate, case folds, false empties.
	 */
	public function test_blocked_usernames() {
		$this->assertSame( array( 'admin', 'web master', 'björn' ), self::config( array( 'BANHAMMER_BLOCKED_USERNAMES' => 'Admin, web master,,BJÖRN, admin' ) )->blocked_usernames );
		$this->assertSame( array( 'x' ), self::config( array( 'BANHAMMER_BLOCKED_USERNAMES' => array( 'X' ) ) )->blocked_usernames );
		$this->assertSame( array(), self::config( array( 'BANHAMMER_BLOCKED_USERNAMES' => false ) )->blocked_usernames );
		$this->assertSame( array(), self::config( array( 'BANHAMMER_BLOCKED_USERNAMES' => '' ) )->blocked_usernames );
	}

	/**
	 * Socket: true, a path, or off.
	 */
	public function test_socket() {
		$this->assertSame( '/run/banhammer/syslog.sock', self::config( array( 'BANHAMMER_SOCKET' => true ) )->socket_path );
		$this->assertSame( '/tmp/x.sock', self::config( array( 'BANHAMMER_SOCKET' => '/tmp/x.sock' ) )->socket_path );
		$this->assertNull( self::config( array( 'BANHAMMER_SOCKET' => false ) )->socket_path );
		foreach ( array( 'relative.sock', '/' . str_repeat( 'a', 120 ), "/tmp/a\0b", 1 ) as $bad ) {
			$config = self::config( array( 'BANHAMMER_SOCKET' => $bad ) );
			$this->assertNull( $config->socket_path );
			$this->assertCount( 1, $config->problems() );
		}
	}
}
