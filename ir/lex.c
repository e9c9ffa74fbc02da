/* Lexer for the IR text format: bounds-checked on every byte (the text is
 * not NUL-terminated and may contain anything), positions in 1-based
 * line/col with col counting bytes. */
#include "ir/lex.h"

#include <stdio.h>
#include <string.h>

void ir_lex_init(ir_lexer *lx, const char *src, size_t len) {
  memset(lx, 0, sizeof *lx);
  lx->src = lx->p = lx->line_start = src ? src : "";
  lx->end = lx->src + (src ? len : 0);
  lx->line = 1;
  lx->prev_line = 0;
}

static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name(char c) { return is_alpha(c) || is_digit(c) || c == '.'; }

static int col_of(const ir_lexer *lx, const char *p) { return (int)(p - lx->line_start) + 1; }

static ir_tok error_at(ir_lexer *lx, const char *p, ir_tok t, const char *fmt, const char *arg) {
  snprintf(lx->err, sizeof lx->err, fmt, arg);
  lx->err_line = lx->line;
  lx->err_col = col_of(lx, p);
  t.kind = TK_ERROR;
  return t;
}

/* A character as it appears in a message: printable as is, else \xHH. */
static const char *show_char(char c, char *buf) {
  unsigned char u = (unsigned char)c;
  if (u >= 0x21 && u < 0x7f)
    snprintf(buf, 8, "%c", c);
  else
    snprintf(buf, 8, "\\x%02x", u);
  return buf;
}

static ir_tok lex_number(ir_lexer *lx, ir_tok t) {
  const char *p = lx->p;
  bool is_float = false;
  if (p < lx->end && *p == '-') p++;
  if (p + 3 <= lx->end && memcmp(p, "inf", 3) == 0 && (p + 3 == lx->end || !is_name(p[3]))) {
    p += 3;
    is_float = true;
  } else {
    if (p >= lx->end || !is_digit(*p)) goto bad;
    while (p < lx->end && is_digit(*p))
      p++;
    if (p < lx->end && *p == '.') {
      is_float = true;
      p++;
      while (p < lx->end && is_digit(*p))
        p++;
    }
    if (p < lx->end && (*p == 'e' || *p == 'E')) {
      is_float = true;
      p++;
      if (p < lx->end && (*p == '+' || *p == '-')) p++;
      if (p >= lx->end || !is_digit(*p)) goto bad;
      while (p < lx->end && is_digit(*p))
        p++;
    }
    if (p < lx->end && is_name(*p)) goto bad;
  }
  t.kind = is_float ? TK_FLOAT : TK_INT;
  t.len = (size_t)(p - t.text);
  lx->p = p;
  return t;
bad:
  /* Show the whole malformed word. */
  while (p < lx->end && (is_name(*p) || *p == '-' || *p == '+'))
    p++;
  {
    char word[48];
    size_t n = (size_t)(p - t.text);
    snprintf(word, sizeof word, "%.*s%s", (int)(n > 40 ? 40 : n), t.text, n > 40 ? "..." : "");
    for (char *w = word; *w; w++)
      if ((unsigned char)*w < 0x20) *w = '?';
    return error_at(lx, t.text, t, "bad number '%s'", word);
  }
}

static ir_tok lex_string(ir_lexer *lx, ir_tok t) {
  const char *p = lx->p + 1;
  while (p < lx->end && *p != '"' && *p != '\n') {
    if (*p == '\\' && p + 1 < lx->end && p[1] != '\n') p++;
    p++;
  }
  if (p >= lx->end || *p != '"') return error_at(lx, lx->p, t, "unterminated string%s", "");
  t.kind = TK_STRING;
  t.text = lx->p + 1;
  t.len = (size_t)(p - t.text);
  lx->p = p + 1;
  return t;
}

ir_tok ir_lex_next(ir_lexer *lx) {
  ir_tok t = {0};
  /* Skip whitespace and comments, remembering a comment that sits on the
   * line of the previous token. */
  for (;;) {
    while (lx->p < lx->end &&
           (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r' || *lx->p == '\n')) {
      if (*lx->p == '\n') {
        lx->line++;
        lx->line_start = lx->p + 1;
      }
      lx->p++;
    }
    if (lx->p < lx->end && *lx->p == '#') {
      const char *s = lx->p + 1;
      while (lx->p < lx->end && *lx->p != '\n')
        lx->p++;
      if (lx->line == lx->prev_line && !t.trail) {
        t.trail = s;
        t.trail_len = (size_t)(lx->p - s);
        t.trail_line = lx->line;
      }
      continue;
    }
    break;
  }
  t.text = lx->p;
  t.line = lx->line;
  t.col = col_of(lx, lx->p);
  lx->prev_line = lx->line;
  if (lx->p >= lx->end) {
    t.kind = TK_EOF;
    return t;
  }
  char c = *lx->p;
  if (c == '%' || c == '@') {
    const char *p = lx->p + 1;
    while (p < lx->end && is_name(*p))
      p++;
    if (p == lx->p + 1)
      return error_at(lx, lx->p, t,
                      c == '%' ? "expected a value name after '%%'%s"
                               : "expected a graph name after '@'%s",
                      "");
    t.kind = c == '%' ? TK_VALUE : TK_GLOBAL;
    t.text = lx->p + 1;
    t.len = (size_t)(p - t.text);
    lx->p = p;
    return t;
  }
  if (is_alpha(c)) {
    const char *p = lx->p;
    while (p < lx->end && (is_alpha(*p) || is_digit(*p)))
      p++;
    t.kind = TK_IDENT;
    t.len = (size_t)(p - lx->p);
    lx->p = p;
    return t;
  }
  if (is_digit(c) || c == '-') return lex_number(lx, t);
  if (c == '"') return lex_string(lx, t);
  static const char punct[] = "(){}[],=:<";
  static const ir_tok_kind kinds[] = {TK_LPAREN, TK_RPAREN, TK_LBRACE, TK_RBRACE, TK_LBRACK,
                                      TK_RBRACK, TK_COMMA,  TK_EQUAL,  TK_COLON,  TK_LT};
  const char *q = memchr(punct, c, sizeof punct - 1);
  if (q && c) {
    t.kind = kinds[q - punct];
    t.len = 1;
    lx->p++;
    return t;
  }
  char buf[8];
  return error_at(lx, lx->p, t, "unexpected character '%s'", show_char(c, buf));
}

const char *ir_tok_kind_name(ir_tok_kind k) {
  switch (k) {
  case TK_EOF: return "end of input";
  case TK_ERROR: return "an error";
  case TK_VALUE: return "a value name";
  case TK_GLOBAL: return "a graph name";
  case TK_IDENT: return "an identifier";
  case TK_INT: return "an integer";
  case TK_FLOAT: return "a float";
  case TK_STRING: return "a string";
  case TK_LPAREN: return "'('";
  case TK_RPAREN: return "')'";
  case TK_LBRACE: return "'{'";
  case TK_RBRACE: return "'}'";
  case TK_LBRACK: return "'['";
  case TK_RBRACK: return "']'";
  case TK_COMMA: return "','";
  case TK_EQUAL: return "'='";
  case TK_COLON: return "':'";
  case TK_LT: return "'<'";
  }
  return "?";
}
