/* Internal to the IR text parser (parse.c, parse_values.c): the parser
 * state and the helpers both halves share. */
#ifndef KILN_IR_PARSE_INT_H
#define KILN_IR_PARSE_INT_H

#include "ir/ir.h"
#include "ir/lex.h"

/* Text name -> node id, keyed by slices of the source text. */
typedef struct sym {
  const char *name;
  size_t len;
  int id, line;
} sym;

typedef struct parser {
  ir_lexer lx;
  ir_tok tok;
  const char *file;
  ir_diag *d;
  bool failed;
  ir_graph *g;
  sym *syms;
  size_t nsyms, capsyms;
  int *ops; /* operand buffer */
  int capops;
  ir_tok *elems; /* const literal tokens, converted once the type is known */
  int64_t nelems, capelems;
  void *payload;
} parser;

bool ir_p_fail(parser *P, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *ir_p_tok_desc(const ir_tok *t, char *buf, size_t len);
bool ir_p_advance(parser *P);
bool ir_p_is_word(const ir_tok *t, const char *w);
bool ir_p_expect(parser *P, ir_tok_kind k, const char *what);

bool ir_p_parse_i64(parser *P, const ir_tok *t, int64_t *out);
bool ir_p_parse_string(parser *P, const ir_tok *t, const char **out);
bool ir_p_parse_type(parser *P, ir_type *out, int *line, int *col);
/* At '{': reads attributes into attrs (schema order), marking seen. */
bool ir_p_parse_attrs(parser *P, ir_op op, ir_attr *attrs, bool *seen);
/* After "const(": collects the literal tokens into P->elems. */
bool ir_p_parse_const_body(parser *P);
/* Converts P->elems to P->payload for type t (errors at line:col for a
 * count mismatch). */
bool ir_p_build_payload(parser *P, const ir_type *t, int line, int col);

#endif
