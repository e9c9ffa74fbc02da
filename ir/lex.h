/* Lexer for the IR text format (internal to ir/). Tokens carry their byte
 * range and 1-based line/col; comments are skipped, but the one that follows
 * a token on the same line is attached to the next token (as `trail`) so the
 * parser can read "# file.c:LINE" locations. */
#ifndef KILN_IR_LEX_H
#define KILN_IR_LEX_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  TK_EOF,
  TK_ERROR,  /* lexing failed: message in the lexer */
  TK_VALUE,  /* %name (text without '%') */
  TK_GLOBAL, /* @name (text without '@') */
  TK_IDENT,  /* [A-Za-z_][A-Za-z0-9_]* */
  TK_INT,    /* -?[0-9]+ */
  TK_FLOAT,  /* -?digits with '.' or exponent, or -inf */
  TK_STRING, /* "..." (text is the raw body between the quotes) */
  TK_LPAREN,
  TK_RPAREN,
  TK_LBRACE,
  TK_RBRACE,
  TK_LBRACK,
  TK_RBRACK,
  TK_COMMA,
  TK_EQUAL,
  TK_COLON,
  TK_LT,
} ir_tok_kind;

typedef struct ir_tok {
  ir_tok_kind kind;
  const char *text; /* start of the token's text (see kinds) */
  size_t len;
  int line, col;
  /* Comment after the previous token on that token's line, if any:
   * the text after '#', up to the end of the line. */
  const char *trail;
  size_t trail_len;
  int trail_line;
} ir_tok;

typedef struct ir_lexer {
  const char *src, *end, *p;
  int line;
  const char *line_start;
  int prev_line; /* line of the last token returned */
  char err[160];
  int err_line, err_col;
} ir_lexer;

void ir_lex_init(ir_lexer *lx, const char *src, size_t len);
/* Next token; on TK_ERROR, lx->err and err_line/err_col describe it. */
ir_tok ir_lex_next(ir_lexer *lx);
const char *ir_tok_kind_name(ir_tok_kind k);

#endif
