<?php
/**
 * Banhammer_Sanitizer: client text in a log line.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * Tests of Banhammer_Sanitizer.
 */
final class Test_Banhammer_Sanitizer extends TestCase {

	/**
	 * User names in, user names out.
	 *
	 * @return array
	 */
	public function usernames() {
		return array(
			'plain'                 => array( 'admin', 'admin' ),
			'blank inside'          => array( 'John Smith', 'John Smith' ),
			'e-mail'                => array( 'jo@example.org', 'jo@example.org' ),
			'non-ASCII'             => array( 'Jürgen Åström', 'Jürgen Åström' ),
			'fake address kept'     => array( 'admin from 127.0.0.99', 'admin from 127.0.0.99' ),
			'newline'               => array( "admin\nAug 14 11:00:00 web1 wordpress[1]: x", 'adminAug 14 11:00:00 web1 wordpress[1]: x' ),
			'carriage return'       => array( "ad\rmin", 'admin' ),
			'NUL'                   => array( "admin from 127.0.0.99\0", 'admin from 127.0.0.99' ),
			'tab and escape'        => array( "a\tb\x1b[2Jc", 'ab[2Jc' ),
			'DEL'                   => array( "ad\x7fmin", 'admin' ),
			'C1 NEL'                => array( "ad\u{85}min", 'admin' ),
			'line separator'        => array( "ad\u{2028}min\u{2029}", 'admin' ),
			'bidi override'         => array( "\u{202e}nimda\u{202c}", 'nimda' ),
			'zero width and BOM'    => array( "\u{feff}ad\u{200b}min", 'admin' ),
			'odd blanks'            => array( "  John\u{a0}\u{3000}Smith  ", 'John Smith' ),
			'invalid UTF-8'         => array( "ad\xffmin\xc3", 'ad?min?' ),
			'overlong encoding'     => array( "\xc0\xaf", '??' ),
			'surrogate'             => array( "\xed\xa0\x80x", '???x' ),
			'empty'                 => array( '', '' ),
			'only controls'         => array( "\n\r\0", '' ),
			'integer'               => array( 42, '42' ),
			'null'                  => array( null, '' ),
			'array'                 => array( array( 'admin' ), '' ),
			'object'                => array( new stdClass(), '' ),
		);
	}

	/**
	 * Controls, separators and format characters go; names stay readable.
	 *
	 * @dataProvider usernames
	 * @param mixed  $in  Input.
	 * @param string $out Output.
	 */
	public function test_username( $in, $out ) {
		$this->assertSame( $out, Banhammer_Sanitizer::username( $in ) );
	}

	/**
	 * Long names are cut, in characters, and say so.
	 */
	public function test_username_length_cap() {
		$this->assertSame( str_repeat( 'a', 100 ), Banhammer_Sanitizer::username( str_repeat( 'a', 100 ) ) );
		$this->assertSame( str_repeat( 'a', 100 ) . '...', Banhammer_Sanitizer::username( str_repeat( 'a', 101 ) ) );
		$this->assertSame( str_repeat( 'ü', 100 ) . '...', Banhammer_Sanitizer::username( str_repeat( 'ü', 300 ) ) );
		$this->assertSame( 'abc...', Banhammer_Sanitizer::username( 'abc def', 4 ) );
		// Huge input: cut early, still marked.
		$huge = Banhammer_Sanitizer::username( str_repeat( "\n", 10000 ) . 'admin' );
		$this->assertSame( '...', $huge );
		$this->assertLessThanOrEqual( 103, strlen( Banhammer_Sanitizer::username( str_repeat( 'x from 127.0.0.99 ', 100000 ) ) ) );
	}

	/**
	 * Host names for the ident.
	 *
	 * @return array
	 */
	public function hosts() {
		return array(
			array( 'blog.example.org', 'blog.example.org' ),
			array( 'Blog.Example.ORG', 'blog.example.org' ),
			array( 'blog.example.org:8080', 'blog.example.org' ),
			array( '127.0.0.1:8080', '127.0.0.1' ),
			array( '[2001:db8::1]:8080', '2001-db8--1' ),
			array( '[::1]', '--1' ),
			array( 'my_host.local', 'my_host.local' ),
			array( 'evil) Authentication failure for x from 1.2.3.4', 'evilauthenticationfailureforxfrom1.2.3.4' ),
			array( "a\nb", 'ab' ),
			array( 'x[1]: y', 'x1' ),
			array( 'exa mple.org', 'example.org' ),
			array( 'bücher.example', 'bcher.example' ),
			array( '.example.org.', 'example.org' ),
			array( str_repeat( 'a', 100 ), str_repeat( 'a', 64 ) ),
			array( '', '' ),
			array( ':', '' ),
			array( null, '' ),
		);
	}

	/**
	 * Only characters that cannot split a syslog tag remain.
	 *
	 * @dataProvider hosts
	 * @param mixed  $in  Input.
	 * @param string $out Output.
	 */
	public function test_host( $in, $out ) {
		$this->assertSame( $out, Banhammer_Sanitizer::host( $in ) );
	}

	/**
	 * Idents keep letters, digits and . _ - ( ).
	 */
	public function test_ident() {
		$this->assertSame( 'wordpress(blog.example.org)', Banhammer_Sanitizer::ident( 'wordpress(blog.example.org)' ) );
		$this->assertSame( 'wordpress1x', Banhammer_Sanitizer::ident( "wordpress[1]: x\n" ) );
		$this->assertSame( '', Banhammer_Sanitizer::ident( ' :[]' ) );
		$this->assertSame( '', Banhammer_Sanitizer::ident( 5 ) );
		$this->assertSame( 80, strlen( Banhammer_Sanitizer::ident( str_repeat( 'w', 200 ) ) ) );
	}

	/**
	 * Valid UTF-8 passes untouched, invalid bytes become "?".
	 */
	public function test_scrub_utf8() {
		$this->assertSame( "a\u{1F600}b", Banhammer_Sanitizer::scrub_utf8( "a\u{1F600}b" ) );
		$this->assertSame( 'a?b', Banhammer_Sanitizer::scrub_utf8( "a\x80b" ) );
		$this->assertSame( '????', Banhammer_Sanitizer::scrub_utf8( "\xf5\x80\x80\x80" ) );
		$this->assertSame( '???', Banhammer_Sanitizer::scrub_utf8( "\xf0\x9f\x98" ) );
	}
}
