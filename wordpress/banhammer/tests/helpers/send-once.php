<?php
/**
 * Sends one record through Banhammer_Logger and prints, as JSON, what went to
 * the syslog() fallback and what the failure handler heard. Run by
 * test-logger.php as another user (setpriv), so that permissions apply even
 * when the tests run as root.
 *
 * Usage: php send-once.php SOCKET_PATH ext|stream
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

require_once dirname( __DIR__, 2 ) . '/src/load.php';

$syslogged = array();
$failures  = array();
$logger    = new Banhammer_Logger(
	'wordpress(test)',
	LOG_AUTHPRIV,
	$argv[1],
	static function ( $ident, $facility, $message ) use ( &$syslogged ) {
		$syslogged[] = $message;
		return true;
	},
	static function () {
		return new DateTimeImmutable( '2005-08-14 11:58:01' );
	},
	'ext' === $argv[2]
);
$logger->set_failure_handler(
	static function ( $failure ) use ( &$failures ) {
		$failures[] = $failure;
	}
);
$ok = $logger->log( 'Authentication failure for alice from 192.0.2.7' );
echo json_encode(
	array(
		'ok'        => $ok,
		'syslogged' => $syslogged,
		'failures'  => $failures,
	)
);
