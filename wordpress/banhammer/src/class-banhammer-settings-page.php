<?php
/**
 * Settings > banhammer: where an administrator pastes the CDN's ranges.
 *
 * Receives WordPress's admin_menu and admin_init; registers the option
 * banhammer_cdn_ranges (text: one range a line, "#" comments) with a
 * sanitiser that keeps what was typed, caps its size and lists the entries it
 * cannot read; emits the page: the text box (read-only when the
 * BANHAMMER_CDN_RANGES constant overrides it), where to get the lists, and
 * what is in use now (the ranges after the banhammer_cdn_ranges filter, the
 * header that is read). Every other setting stays a wp-config.php constant.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

/**
 * The settings page.
 */
final class Banhammer_Settings_Page {

	/**
	 * Page slug (options-general.php?page=banhammer) and settings group.
	 */
	const PAGE = 'banhammer';

	/**
	 * Largest text kept: a CDN list is a few hundred bytes to a few KiB.
	 */
	const MAX_BYTES = 65536;

	/**
	 * Settings.
	 *
	 * @var Banhammer_Config
	 */
	private $config;

	/**
	 * Returns the CDN ranges in use (a Banhammer_Network_Set).
	 *
	 * @var callable
	 */
	private $cdn_ranges;

	/**
	 * Constructor.
	 *
	 * @param Banhammer_Config $config     Settings.
	 * @param callable         $cdn_ranges Returns the CDN ranges in use.
	 */
	public function __construct( Banhammer_Config $config, callable $cdn_ranges ) {
		$this->config     = $config;
		$this->cdn_ranges = $cdn_ranges;
	}

	/**
	 * Add the hooks.
	 */
	public function register() {
		add_action( 'admin_menu', array( $this, 'on_admin_menu' ), 10, 0 );
		add_action( 'admin_init', array( $this, 'on_admin_init' ), 10, 0 );
	}

	/**
	 * Action admin_menu: the page under Settings.
	 */
	public function on_admin_menu() {
		add_options_page( 'banhammer', 'banhammer', 'manage_options', self::PAGE, array( $this, 'render' ) );
	}

	/**
	 * Action admin_init: the option and its sanitiser.
	 */
	public function on_admin_init() {
		register_setting(
			self::PAGE,
			Banhammer_Config::CDN_RANGES_OPTION,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( $this, 'sanitize' ),
				'default'           => '',
			)
		);
	}

	/**
	 * The option as stored: the text as typed (so mistakes can be fixed where
	 * they are), valid UTF-8, no control characters but line breaks and tabs,
	 * Unix line ends. Too long: the old value stays. Unreadable entries are
	 * kept but listed (they are ignored when used).
	 *
	 * @param mixed $value Submitted value.
	 * @return string
	 */
	public function sanitize( $value ) {
		if ( ! is_string( $value ) ) {
			return '';
		}
		if ( strlen( $value ) > self::MAX_BYTES ) {
			$this->error( 'too-long', 'CDN ranges: more than ' . self::MAX_BYTES . ' bytes; not saved.' );
			$old = get_option( Banhammer_Config::CDN_RANGES_OPTION, '' );
			return is_string( $old ) ? $old : '';
		}
		$text = str_replace( array( "\r\n", "\r" ), "\n", Banhammer_Sanitizer::scrub_utf8( $value ) );
		$text = trim( (string) preg_replace( '/[^\P{Cc}\n\t]/u', '', $text ) );
		$set  = new Banhammer_Network_Set( $text );
		foreach ( $set->invalid_entries() as $entry ) {
			$this->error( 'invalid', "CDN ranges: '$entry' is not an address or CIDR block; it is ignored." );
		}
		return $text;
	}

	/**
	 * Report a problem on the settings page.
	 *
	 * @param string $code    Code.
	 * @param string $message Plain text.
	 */
	private function error( $code, $message ) {
		if ( function_exists( 'add_settings_error' ) ) {
			add_settings_error( Banhammer_Config::CDN_RANGES_OPTION, 'banhammer-' . $code, $message );
		}
	}

	/**
	 * The page.
	 */
	public function render() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$config   = $this->config;
		$in_use   = call_user_func( $this->cdn_ranges );
		$constant = 'constant' === $config->cdn_ranges_source;
		$text     = get_option( Banhammer_Config::CDN_RANGES_OPTION, '' );
		$header   = $config->proxy_header;
		$single   = Banhammer_Address_Resolver::is_single_address( $header );

		echo '<div class="wrap"><h1>banhammer</h1>';
		echo '<h2>CDN ranges</h2>';
		echo '<p>If your site is behind a CDN (Cloudflare, Fastly, CloudFront ...), paste the address ranges the CDN publishes, one a line. '
			. 'Requests arriving from these addresses (directly, or through the proxies in BANHAMMER_TRUSTED_PROXIES) are the CDN\'s: '
			. 'the client is the address the CDN names in X-Forwarded-For, or in its own header when BANHAMMER_PROXY_HEADER names one (CF-Connecting-IP). '
			. 'From any other address such a header is never read: a client can send it too.</p>';
		echo '<p>Cloudflare: <code>https://www.cloudflare.com/ips-v4</code> and <code>https://www.cloudflare.com/ips-v6</code> (both lists). '
			. 'The ranges change now and then: refresh them, e.g. with <code>wp option update banhammer_cdn_ranges "$(curl -s https://www.cloudflare.com/ips-v4; echo; curl -s https://www.cloudflare.com/ips-v6)"</code>. '
			. 'Lines starting with # are comments.</p>';
		echo '<form method="post" action="options.php">';
		settings_fields( self::PAGE );
		if ( $constant ) {
			echo '<p><strong>BANHAMMER_CDN_RANGES in wp-config.php sets the ranges; this box is not used.</strong></p>';
		}
		echo '<textarea name="' . esc_attr( Banhammer_Config::CDN_RANGES_OPTION ) . '" rows="14" cols="60" class="large-text code"'
			. ( $constant ? ' readonly' : '' ) . '>' . esc_textarea( is_string( $text ) ? $text : '' ) . '</textarea>';
		if ( ! $constant ) {
			submit_button();
		}
		echo '</form>';

		echo '<h2>In use</h2><ul>';
		echo '<li>' . esc_html( $in_use->count() . ' CDN range(s), from ' . self::source_name( $config->cdn_ranges_source ) . ', after the banhammer_cdn_ranges filter.' ) . '</li>';
		foreach ( $in_use->invalid_entries() as $entry ) {
			echo '<li>' . esc_html( "Ignored: '$entry' is not an address or CIDR block." ) . '</li>';
		}
		if ( $single && 0 === $in_use->count() ) {
			echo '<li>' . esc_html( "Header: BANHAMMER_PROXY_HEADER is $header, which is only read from the CDN's ranges, and there are none: X-Forwarded-For is read instead." ) . '</li>';
		} elseif ( $single ) {
			echo '<li>' . esc_html( "Header: $header, read when the request came from the CDN's ranges; X-Forwarded-For otherwise." ) . '</li>';
		} else {
			echo '<li>' . esc_html( 'Header: X-Forwarded-For, read from the right through your trusted proxies and the CDN.' ) . '</li>';
		}
		echo '</ul></div>';
	}

	/**
	 * Words for a Banhammer_Config::$cdn_ranges_source.
	 *
	 * @param string $source Source.
	 * @return string
	 */
	private static function source_name( $source ) {
		if ( 'constant' === $source ) {
			return 'BANHAMMER_CDN_RANGES';
		}
		return 'option' === $source ? 'this page' : 'nowhere';
	}
}
