<?php
/**
 * PHPUnit bootstrap: the plugin's classes, and just enough of WordPress
 * (tests/wp-stubs.php) to drive the glue. No WordPress install is needed.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

error_reporting( E_ALL );

require_once dirname( __DIR__ ) . '/src/load.php';
require_once __DIR__ . '/wp-stubs.php';
