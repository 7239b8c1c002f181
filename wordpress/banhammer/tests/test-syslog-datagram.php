<?php
/**
 * Banhammer_Syslog_Datagram: RFC 3164 datagrams and the system time zone.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Syslog_Datagram.
 */
final class Test_Banhammer_Syslog_Datagram extends TestCase {

	/**
	 * What C's syslog() sends to /dev/log.
	 */
	public function test_format() {
		$time = new DateTimeImmutable( '2005-08-04 09:05:07', new DateTimeZone( 'Europe/Zurich' ) );
		$this->assertSame(
			'<85>Aug  4 09:05:07 wordpress(blog.example.org)[2817]: Authentication failure for admin from 192.0.2.7',
			Banhammer_Syslog_Datagram::format( LOG_AUTHPRIV, LOG_NOTICE, $time, 'wordpress(blog.example.org)', 2817, 'Authentication failure for admin from 192.0.2.7' )
		);
		$time = new DateTimeImmutable( '2005-12-14 23:59:59', new DateTimeZone( 'UTC' ) );
		$this->assertSame( '<189>Dec 14 23:59:59 wordpress[1]: x', Banhammer_Syslog_Datagram::format( LOG_LOCAL7, LOG_NOTICE, $time, 'wordpress', 1, 'x' ) );
		$this->assertSame( '<37>Dec 14 23:59:59 wordpress[1]: x', Banhammer_Syslog_Datagram::format( LOG_AUTH, LOG_NOTICE, $time, 'wordpress', 1, 'x' ) );
	}

	/**
	 * The month is English whatever the locale.
	 */
	public function test_month_ignores_locale() {
		$old = setlocale( LC_TIME, '0' );
		setlocale( LC_TIME, 'de_DE.UTF-8', 'fr_FR.UTF-8', 'C' );
		$time = new DateTimeImmutable( '2005-03-01 00:00:00', new DateTimeZone( 'UTC' ) );
		$this->assertStringStartsWith( '<85>Mar  1 ', Banhammer_Syslog_Datagram::format( LOG_AUTHPRIV, LOG_NOTICE, $time, 't', 1, 'm' ) );
		setlocale( LC_TIME, $old );
	}

	/**
	 * TZ first, then /etc/localtime's target, then /etc/timezone.
	 */
	public function test_choose_zone() {
		$this->assertSame( 'Europe/Paris', Banhammer_Syslog_Datagram::choose_zone( 'Europe/Paris', '/usr/share/zoneinfo/Asia/Tokyo', 'UTC' ) );
		$this->assertSame( 'Europe/Paris', Banhammer_Syslog_Datagram::choose_zone( ':Europe/Paris', false, null ) );
		$this->assertSame( 'Asia/Tokyo', Banhammer_Syslog_Datagram::choose_zone( false, '/usr/share/zoneinfo/Asia/Tokyo', "UTC\n" ) );
		$this->assertSame( 'Asia/Tokyo', Banhammer_Syslog_Datagram::choose_zone( '', '../usr/share/zoneinfo/posix/Asia/Tokyo', null ) );
		$this->assertSame( 'Etc/UTC', Banhammer_Syslog_Datagram::choose_zone( false, '/usr/share/zoneinfo/Etc/UTC', null ) );
		$this->assertSame( 'America/New_York', Banhammer_Syslog_Datagram::choose_zone( 'CET-1CEST,M3.5.0,M10.5.0/3', false, "America/New_York\n" ), 'POSIX TZ strings are skipped' );
		$this->assertSame( 'America/New_York', Banhammer_Syslog_Datagram::choose_zone( false, '/etc/zones/local', "America/New_York\n" ) );
		$this->assertNull( Banhammer_Syslog_Datagram::choose_zone( 'Mars/Olympus', false, 'nonsense zone' ) );
		$this->assertNull( Banhammer_Syslog_Datagram::choose_zone( null, null, null ) );
	}

	/**
	 * The system zone is a zone, and does not follow PHP's default (which
	 * WordPress sets to UTC).
	 */
	public function test_system_zone() {
		$old = date_default_timezone_get();
		date_default_timezone_set( 'Pacific/Chatham' );
		$zone = Banhammer_Syslog_Datagram::system_zone();
		date_default_timezone_set( $old );
		$this->assertInstanceOf( DateTimeZone::class, $zone );
		$this->assertNotSame( 'Pacific/Chatham', $zone->getName() );
	}
}
