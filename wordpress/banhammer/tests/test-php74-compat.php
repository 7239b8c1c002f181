<?php
/**
 * The plugin runs on PHP 7.4; the tests run on whatever PHP the machine has
 * (8.2 on Debian 12). This test reads the plugin's code with PHP-Parser
 * (installed with Debian's phpunit) and fails on syntax and functions that
 * PHP 7.4 does not have.
 *
 * @package Banhammer
 * @license MIT OR Apache-2.0
 */

use PHPUnit\Framework\TestCase;

/**
 * PHP 7.4 compatibility of the plugin (not of its tests).
 */
final class Test_Banhammer_Php74_Compat extends TestCase {

	/**
	 * Functions added in PHP 8.
	 */
	const PHP8_FUNCTIONS = array(
		'str_contains',
		'str_starts_with',
		'str_ends_with',
		'array_is_list',
		'get_debug_type',
		'get_resource_id',
		'fdiv',
		'preg_last_error_msg',
		'mb_str_pad',
		'json_validate',
	);

	/**
	 * Every PHP file that ships in the plugin.
	 *
	 * @return string[]
	 */
	private static function plugin_files() {
		$root  = dirname( __DIR__ );
		$files = array_merge( array( $root . '/banhammer.php', $root . '/mu-loader.php' ), (array) glob( $root . '/src/*.php' ) );
		sort( $files );
		return $files;
	}

	/**
	 * No PHP 8 syntax or functions.
	 */
	public function test_plugin_code_is_php74() {
		if ( ! is_file( '/usr/share/php/PhpParser/autoload.php' ) && ! class_exists( 'PhpParser\ParserFactory' ) ) {
			$this->markTestSkipped( 'PHP-Parser (Debian package php-parser) is not installed' );
		}
		if ( ! class_exists( 'PhpParser\ParserFactory' ) ) {
			require_once '/usr/share/php/PhpParser/autoload.php';
		}
		$lexer    = new PhpParser\Lexer\Emulative( array( 'phpVersion' => '7.4' ) );
		$parser   = ( new PhpParser\ParserFactory() )->create( PhpParser\ParserFactory::ONLY_PHP7, $lexer );
		$problems = array();
		foreach ( self::plugin_files() as $file ) {
			$code  = (string) file_get_contents( $file );
			$nodes = $parser->parse( $code );
			$this->assertIsArray( $nodes, $file );
			foreach ( self::php8_constructs( $nodes ) as $what => $line ) {
				$problems[] = basename( $file ) . ":$line: $what";
			}
			// Trailing commas in parameter lists and closure use() are PHP 8.0; the
			// parser does not record them, so look at the tokens.
			$significant = array_values(
				array_filter(
					token_get_all( $code ),
					static function ( $t ) {
						return ! is_array( $t ) || ! in_array( $t[0], array( T_WHITESPACE, T_COMMENT, T_DOC_COMMENT ), true );
					}
				)
			);
			$opens = array();
			foreach ( $significant as $i => $t ) {
				$text = is_array( $t ) ? $t[1] : $t;
				if ( '(' === $text ) {
					$opens[] = self::opens_signature( $significant, $i );
				} elseif ( ')' === $text ) {
					$signature = (bool) array_pop( $opens );
					if ( $signature && $i > 0 && ',' === $significant[ $i - 1 ] ) {
						$problems[] = basename( $file ) . ':' . self::line_of( $significant, $i ) . ': trailing comma in a parameter list';
					}
				}
			}
		}
		$this->assertSame( array(), $problems );
	}

	/**
	 * Whether the "(" at $i opens a declaration's parameter list: after
	 * "function" or "fn" (closures), "function NAME", or a closure's "use".
	 *
	 * @param array $tokens Significant tokens.
	 * @param int   $i      Index of the "(".
	 * @return bool
	 */
	private static function opens_signature( array $tokens, $i ) {
		$before = $i > 0 ? $tokens[ $i - 1 ] : null;
		$twice  = $i > 1 ? $tokens[ $i - 2 ] : null;
		if ( ! is_array( $before ) ) {
			return false;
		}
		if ( in_array( $before[0], array( T_FUNCTION, T_FN, T_USE ), true ) ) {
			return true;
		}
		return T_STRING === $before[0] && is_array( $twice ) && T_FUNCTION === $twice[0];
	}

	/**
	 * Line of the token at $i (or of the last token before it that has one).
	 *
	 * @param array $tokens Significant tokens.
	 * @param int   $i      Index.
	 * @return int
	 */
	private static function line_of( array $tokens, $i ) {
		for ( ; $i >= 0; $i-- ) {
			if ( is_array( $tokens[ $i ] ) ) {
				return $tokens[ $i ][2];
			}
		}
		return 0;
	}

	/**
	 * PHP 8 constructs in an AST, as description => line.
	 *
	 * @param array $nodes AST.
	 * @return array<string, int>
	 */
	private static function php8_constructs( array $nodes ) {
		$found  = array();
		$finder = new PhpParser\NodeFinder();
		foreach ( $finder->find( $nodes, static function () { return true; } ) as $node ) {
			$what = null;
			if ( $node instanceof PhpParser\Node\Expr\Match_ ) {
				$what = 'match';
			} elseif ( $node instanceof PhpParser\Node\Expr\NullsafeMethodCall || $node instanceof PhpParser\Node\Expr\NullsafePropertyFetch ) {
				$what = 'nullsafe operator';
			} elseif ( $node instanceof PhpParser\Node\Arg && null !== $node->name ) {
				$what = 'named argument';
			} elseif ( $node instanceof PhpParser\Node\Param && 0 !== $node->flags ) {
				$what = 'constructor promotion';
			} elseif ( $node instanceof PhpParser\Node\UnionType || $node instanceof PhpParser\Node\IntersectionType ) {
				$what = 'union/intersection type';
			} elseif ( ( $node instanceof PhpParser\Node\Param || $node instanceof PhpParser\Node\Stmt\Property ) && self::is_php8_type( $node->type ) ) {
				$what = 'PHP 8 type';
			} elseif ( $node instanceof PhpParser\Node\FunctionLike && self::is_php8_type( $node->getReturnType() ) ) {
				$what = 'PHP 8 return type';
			} elseif ( $node instanceof PhpParser\Node\Stmt\Catch_ && null === $node->var ) {
				$what = 'catch without variable';
			} elseif ( $node instanceof PhpParser\Node\Stmt\Enum_ ) {
				$what = 'enum';
			} elseif ( $node instanceof PhpParser\Node\AttributeGroup ) {
				$what = 'attribute';
			} elseif ( $node instanceof PhpParser\Node\Expr\Throw_ ) {
				$what = 'throw expression';
			} elseif ( $node instanceof PhpParser\Node\VariadicPlaceholder ) {
				$what = 'first-class callable';
			} elseif ( $node instanceof PhpParser\Node\Expr\FuncCall && $node->name instanceof PhpParser\Node\Name
				&& in_array( strtolower( $node->name->toString() ), self::PHP8_FUNCTIONS, true ) ) {
				$what = $node->name->toString() . '()';
			}
			if ( null !== $what ) {
				$found[ $what ] = $node->getStartLine();
			}
		}
		return $found;
	}

	/**
	 * Whether a type declaration is one PHP 7.4 lacks (mixed, static, never,
	 * null, false as a type of its own).
	 *
	 * @param mixed $type Type node or null.
	 * @return bool
	 */
	private static function is_php8_type( $type ) {
		if ( $type instanceof PhpParser\Node\NullableType ) {
			$type = $type->type;
		}
		// "static" comes as a Name, the others as Identifiers.
		return ( $type instanceof PhpParser\Node\Identifier || $type instanceof PhpParser\Node\Name )
			&& in_array( strtolower( $type->toString() ), array( 'mixed', 'static', 'never', 'null', 'false', 'true' ), true );
	}
}
