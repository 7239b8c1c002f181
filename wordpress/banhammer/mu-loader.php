<?php
/**
 * Must-use loader for the banhammer plugin.
 *
 * WordPress loads only the PHP files directly inside wp-content/mu-plugins/.
 * Copy the plugin's folder to wp-content/mu-plugins/banhammer/ and this file
 * to wp-content/mu-plugins/banhammer.php.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

defined( 'ABSPATH' ) || exit;

if ( is_file( __DIR__ . '/banhammer/banhammer.php' ) ) {
	require_once __DIR__ . '/banhammer/banhammer.php';
}
