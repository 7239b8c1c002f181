<?php
/**
 * Loads the plugin's classes (the plugin file and the tests both use this).
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

require_once __DIR__ . '/class-banhammer-ip.php';
require_once __DIR__ . '/class-banhammer-network-set.php';
require_once __DIR__ . '/class-banhammer-address-resolver.php';
require_once __DIR__ . '/class-banhammer-sanitizer.php';
require_once __DIR__ . '/class-banhammer-messages.php';
require_once __DIR__ . '/class-banhammer-config.php';
require_once __DIR__ . '/class-banhammer-detector.php';
require_once __DIR__ . '/class-banhammer-syslog-datagram.php';
require_once __DIR__ . '/class-banhammer-logger.php';
require_once __DIR__ . '/class-banhammer-socket-alert.php';
require_once __DIR__ . '/class-banhammer-settings-page.php';
require_once __DIR__ . '/class-banhammer-plugin.php';
