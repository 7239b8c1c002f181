<?php
/**
 * Plugin Name:       banhammer
 * Description:       Reports failed logins, forged pingbacks, XML-RPC multicall abuse and user enumeration to syslog (or straight to banhammer), for banhammer or fail2ban to ban the sender.
 * Version:           0.1.0
 * Requires at least: 5.0
 * Requires PHP:      7.4
 * Author:            The banhammer developers
 * License:           MIT OR Apache-2.0
 * Text Domain:       banhammer
 *
 * Works as a normal plugin (wp-content/plugins/banhammer/) or as a must-use
 * plugin (wp-content/mu-plugins/banhammer/ plus mu-loader.php copied to
 * wp-content/mu-plugins/banhammer.php). Settings are wp-config.php constants;
 * see readme.txt and src/class-banhammer-config.php.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

defined( 'ABSPATH' ) || exit;

// Installed both as a must-use and as a normal plugin: the first one loaded wins.
if ( defined( 'BANHAMMER_PLUGIN_FILE' ) ) {
	return;
}
define( 'BANHAMMER_PLUGIN_FILE', __FILE__ );

require_once __DIR__ . '/src/load.php';

Banhammer_Plugin::boot();
