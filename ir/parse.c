/* The IR text parser (DESIGN.md, "IR text format"). Recursive descent over
 * ir/lex.c's tokens, one-token lookahead. Nodes are built with the graph
 * API, so shape rules check every declared type as it is read; the first
 * error stops the parse and is reported as "FILE:LINE:COL: message". */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/parse_int.h"

bool ir_p_fail(parser *P, int line, int col, const char *fmt, ...) {
  if (P->failed) return false;
  P->failed = true;
  char msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *c = msg; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  ir_diag_set(P->d, "%s:%d:%d: %s", P->file, line, col, msg);
  if (P->d) {
    P->d->line = line;
    P->d->col = col;
  }
  return false;
}

/* "'text'" (or "end of input") for messages, cut short and made printable. */
const char *ir_p_tok_desc(const ir_tok *t, char *buf, size_t len) {
  if (t->kind == TK_EOF) return "end of input";
  const char *pre = t->kind == TK_VALUE ? "%" : t->kind == TK_GLOBAL ? "@" : "";
  const char *q = t->kind == TK_STRING ? "\"" : "";
  size_t n = t->len > 32 ? 32 : t->len;
  snprintf(buf, len, "'%s%s%.*s%s'", pre, q, (int)n, t->text, t->len > 32 ? "..." : q);
  for (char *c = buf; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f) *c = '?';
  return buf;
}

bool ir_p_advance(parser *P) {
  P->tok = ir_lex_next(&P->lx);
  if (P->tok.kind == TK_ERROR) return ir_p_fail(P, P->lx.err_line, P->lx.err_col, "%s", P->lx.err);
  return true;
}

bool ir_p_is_word(const ir_tok *t, const char *w) {
  return t->kind == TK_IDENT && t->len == strlen(w) && memcmp(t->text, w, t->len) == 0;
}

bool ir_p_expect(parser *P, ir_tok_kind k, const char *what) {
  if (P->tok.kind != k) {
    char buf[64];
    return ir_p_fail(P, P->tok.line, P->tok.col, "expected %s, got %s", what,
                     ir_p_tok_desc(&P->tok, buf, sizeof buf));
  }
  return ir_p_advance(P);
}

/* ---- symbols ------------------------------------------------------------ */

static size_t sym_hash(const char *s, size_t len) {
  size_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static sym *sym_find(parser *P, const ir_tok *t) {
  if (!P->capsyms) return NULL;
  for (size_t i = sym_hash(t->text, t->len) & (P->capsyms - 1);; i = (i + 1) & (P->capsyms - 1)) {
    sym *s = &P->syms[i];
    if (!s->name) return NULL;
    if (s->len == t->len && memcmp(s->name, t->text, t->len) == 0) return s;
  }
}

static bool sym_add(parser *P, const ir_tok *t, int id) {
  if (2 * (P->nsyms + 1) > P->capsyms) {
    size_t cap = P->capsyms ? 2 * P->capsyms : 64;
    sym *ns = calloc(cap, sizeof *ns);
    if (!ns) return ir_p_fail(P, t->line, t->col, "out of memory");
    for (size_t i = 0; i < P->capsyms; i++) {
      if (!P->syms[i].name) continue;
      size_t j = sym_hash(P->syms[i].name, P->syms[i].len) & (cap - 1);
      while (ns[j].name)
        j = (j + 1) & (cap - 1);
      ns[j] = P->syms[i];
    }
    free(P->syms);
    P->syms = ns;
    P->capsyms = cap;
  }
  size_t j = sym_hash(t->text, t->len) & (P->capsyms - 1);
  while (P->syms[j].name)
    j = (j + 1) & (P->capsyms - 1);
  P->syms[j] = (sym){.name = t->text, .len = t->len, .id = id, .line = t->line};
  P->nsyms++;
  return true;
}

static bool check_new_name(parser *P, const ir_tok *t) {
  const sym *s = sym_find(P, t);
  if (s)
    return ir_p_fail(P, t->line, t->col, "redefinition of '%%%.*s' (first defined on line %d)",
                     (int)t->len, t->text, s->line);
  return true;
}

/* All-digit names are numbered values: stored unnamed. */
static void name_node(parser *P, int id, const ir_tok *t) {
  bool digits = true;
  for (size_t i = 0; i < t->len; i++)
    if (t->text[i] < '0' || t->text[i] > '9') digits = false;
  if (!digits) P->g->nodes[id]->name = ir_strndup(P->g, t->text, t->len);
}

/* The node's statement starts at its name: what errors found after parsing
 * (the verifier's) point at. */
static void set_text_pos(parser *P, int id, const ir_tok *name) {
  P->g->nodes[id]->loc.text_line = name->line;
  P->g->nodes[id]->loc.text_col = name->col;
}

/* ---- statements -------------------------------------------------------- */

/* "# PATH:LINE" after a node (on its line) is the node's location. */
static void parse_loc(parser *P, int id, const ir_tok *next) {
  if (!next->trail) return;
  const char *s = next->trail, *e = s + next->trail_len;
  while (s < e && (*s == ' ' || *s == '\t'))
    s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
    e--;
  const char *colon = e;
  while (colon > s && colon[-1] != ':')
    colon--;
  if (colon == s || colon - 1 == s || colon == e || e - colon > 9) return;
  int line = 0;
  for (const char *p = colon; p < e; p++) {
    if (*p < '0' || *p > '9') return;
    line = line * 10 + (*p - '0');
  }
  const char *file = ir_strndup(P->g, s, (size_t)(colon - 1 - s));
  if (file) ir_node_set_loc(P->g, id, file, line);
}

static bool push_operand(parser *P, int nin, int id) {
  if (nin == P->capops) {
    int cap = P->capops ? 2 * P->capops : 16;
    int *n = realloc(P->ops, (size_t)cap * sizeof *n);
    if (!n) return ir_p_fail(P, P->tok.line, P->tok.col, "out of memory");
    P->ops = n;
    P->capops = cap;
  }
  P->ops[nin] = id;
  return true;
}

/* Operands "%a, %b" up to (not including) ')'; returns the count or -1. */
static int parse_operands(parser *P) {
  int nin = 0;
  char buf[64];
  while (P->tok.kind != TK_RPAREN) {
    if (nin && !ir_p_expect(P, TK_COMMA, "',' or ')' after an operand")) return -1;
    ir_tok t = P->tok;
    if (t.kind != TK_VALUE) {
      ir_p_fail(P, t.line, t.col, "expected an operand, got %s",
                ir_p_tok_desc(&t, buf, sizeof buf));
      return -1;
    }
    const sym *s = sym_find(P, &t);
    if (!s) {
      ir_p_fail(P, t.line, t.col, "use of undefined value '%%%.*s'", (int)t.len, t.text);
      return -1;
    }
    if (!push_operand(P, nin++, s->id) || !ir_p_advance(P)) return -1;
  }
  return nin;
}

static bool parse_args(parser *P);
static bool parse_stmts(parser *P);

/* After the region node's type, at 'region': "(%a: T, ...) { nodes return
 * %x }" into a new graph with its own names. *loc_tok receives the token
 * after '{', whose trailing comment is the node's location. */
static ir_graph *parse_region(parser *P, ir_tok *loc_tok) {
  parser outer = *P;
  P->g = ir_graph_create("region");
  P->syms = NULL;
  P->nsyms = P->capsyms = 0;
  P->ops = NULL;
  P->capops = 0;
  bool ok = P->g != NULL;
  if (!ok) ir_p_fail(P, P->tok.line, P->tok.col, "out of memory");
  ok = ok && ir_p_advance(P) && ir_p_expect(P, TK_LPAREN, "'(' after 'region'") && parse_args(P);
  if (ok && P->tok.kind != TK_LBRACE) ok = ir_p_expect(P, TK_LBRACE, "'{' to open the region");
  if (ok) {
    ok = ir_p_advance(P);
    *loc_tok = P->tok;
  }
  ok = ok && parse_stmts(P);
  if (ok && P->tok.kind != TK_RBRACE) ok = ir_p_expect(P, TK_RBRACE, "'}' to close the region");
  ok = ok && ir_p_advance(P);
  ir_graph *body = P->g;
  free(P->syms);
  free(P->ops);
  outer.lx = P->lx;
  outer.tok = P->tok;
  outer.failed = P->failed;
  outer.elems = P->elems; /* literal scratch space, shared with the outer graph */
  outer.nelems = P->nelems;
  outer.capelems = P->capelems;
  outer.payload = P->payload;
  *P = outer;
  if (!ok) {
    ir_graph_destroy(body);
    return NULL;
  }
  return body;
}

/* %name = op(operands) {attrs}? : type [region(...) {...}]   # file:line */
static bool parse_node(parser *P) {
  ir_tok name = P->tok;
  char buf[64];
  if (!check_new_name(P, &name) || !ir_p_advance(P) ||
      !ir_p_expect(P, TK_EQUAL, "'=' after the value name"))
    return false;
  ir_tok opt = P->tok;
  ir_op op;
  if (opt.kind != TK_IDENT)
    return ir_p_fail(P, opt.line, opt.col, "expected an op name, got %s",
                     ir_p_tok_desc(&opt, buf, sizeof buf));
  if (!ir_op_lookup(opt.text, opt.len, &op))
    return ir_p_fail(P, opt.line, opt.col, "unknown op %s", ir_p_tok_desc(&opt, buf, sizeof buf));
  if (op == IR_OP_ARG)
    return ir_p_fail(P, opt.line, opt.col,
                     "'arg' cannot appear in the body: arguments are "
                     "declared in the graph header");
  const ir_op_info *info = ir_op_get(op);
  if (!ir_p_advance(P) || !ir_p_expect(P, TK_LPAREN, "'(' after the op name")) return false;
  ir_attr attrs[IR_MAX_ATTRS];
  bool seen[IR_MAX_ATTRS] = {false};
  ir_attrs_default(P->g, op, attrs);
  int nin = 0;
  if (op == IR_OP_CONST) {
    if (!ir_p_parse_const_body(P)) return false;
  } else if (op == IR_OP_PARAM) {
    ir_tok s = P->tok;
    if (s.kind != TK_STRING)
      return ir_p_fail(P, s.line, s.col, "expected the parameter's name as a string, got %s",
                       ir_p_tok_desc(&s, buf, sizeof buf));
    if (!ir_p_parse_string(P, &s, &attrs[0].s) || !ir_p_advance(P)) return false;
    seen[0] = true;
  } else {
    nin = parse_operands(P);
    if (nin < 0) return false;
  }
  if (!ir_p_expect(P, TK_RPAREN, "')'")) return false;
  if (P->tok.kind == TK_LBRACE && !ir_p_parse_attrs(P, op, attrs, seen)) return false;
  ir_type ty;
  int tline, tcol;
  if (!ir_p_expect(P, TK_COLON, "':' and the result type") ||
      !ir_p_parse_type(P, &ty, &tline, &tcol))
    return false;
  for (int i = 0; i < info->nattrs; i++)
    if (info->attrs[i].required && !seen[i])
      return ir_p_fail(P, opt.line, opt.col, "%s requires attribute '%s'", info->name,
                       info->attrs[i].name);
  ir_diag d = {0};
  int id;
  ir_tok loc_tok = P->tok;
  if (op == IR_OP_CONST) {
    if (!ir_p_build_payload(P, &ty, opt.line, opt.col)) return false;
    id = ir_add_const(P->g, &ty, P->payload, &d);
  } else if (info->fusion == IR_FUSE_REGION) {
    if (!ir_p_is_word(&P->tok, "region"))
      return ir_p_fail(P, P->tok.line, P->tok.col,
                       "%s is a region: expected 'region(...) {' "
                       "and its body after the type",
                       info->name);
    int *ops = malloc(sizeof(int) * (size_t)(nin ? nin : 1));
    if (!ops) return ir_p_fail(P, opt.line, opt.col, "out of memory");
    if (nin) memcpy(ops, P->ops, sizeof(int) * (size_t)nin); /* P->ops is NULL when nin is 0 */
    ir_graph *body = parse_region(P, &loc_tok);
    if (!body) {
      free(ops);
      return false;
    }
    id = ir_add_region(P->g, op, nin, ops, attrs, body, &d);
    free(ops);
    if (id >= 0 && !ir_type_eq(&ty, &P->g->nodes[id]->type)) {
      char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
      return ir_p_fail(P, tline, tcol, "%s: declared type %s does not match inferred type %s",
                       info->name, ir_type_str(&ty, a, sizeof a),
                       ir_type_str(&P->g->nodes[id]->type, b, sizeof b));
    }
  } else {
    id = ir_add_node(P->g, op, nin, P->ops, attrs, &ty, &d);
  }
  if (id < 0) return ir_p_fail(P, opt.line, opt.col, "%s", d.msg);
  name_node(P, id, &name);
  parse_loc(P, id, &loc_tok);
  set_text_pos(P, id, &name);
  return sym_add(P, &name, id);
}

static bool parse_return(parser *P) {
  int n = 0;
  char buf[64];
  if (!ir_p_advance(P)) return false;
  for (;;) {
    ir_tok t = P->tok;
    if (t.kind != TK_VALUE)
      return ir_p_fail(P, t.line, t.col, "expected a value to return, got %s",
                       ir_p_tok_desc(&t, buf, sizeof buf));
    const sym *s = sym_find(P, &t);
    if (!s)
      return ir_p_fail(P, t.line, t.col, "return of undefined value '%%%.*s'", (int)t.len, t.text);
    if (!push_operand(P, n++, s->id) || !ir_p_advance(P)) return false;
    if (P->tok.kind != TK_COMMA) break;
    if (!ir_p_advance(P)) return false;
  }
  ir_set_returns(P->g, n, P->ops);
  return true;
}

static bool parse_args(parser *P) {
  char buf[64];
  if (P->tok.kind == TK_RPAREN) return ir_p_advance(P);
  for (;;) {
    ir_tok name = P->tok;
    if (name.kind != TK_VALUE)
      return ir_p_fail(P, name.line, name.col, "expected an argument name, got %s",
                       ir_p_tok_desc(&name, buf, sizeof buf));
    ir_type ty;
    if (!check_new_name(P, &name) || !ir_p_advance(P) ||
        !ir_p_expect(P, TK_COLON, "':' and the argument's type") ||
        !ir_p_parse_type(P, &ty, NULL, NULL))
      return false;
    ir_diag d = {0};
    int id = ir_add_arg(P->g, NULL, &ty, &d);
    if (id < 0) return ir_p_fail(P, name.line, name.col, "%s", d.msg);
    name_node(P, id, &name);
    set_text_pos(P, id, &name);
    if (!sym_add(P, &name, id)) return false;
    if (P->tok.kind == TK_RPAREN) return ir_p_advance(P);
    if (!ir_p_expect(P, TK_COMMA, "',' or ')' after an argument")) return false;
  }
}

/* Node definitions up to and including the return statement. */
static bool parse_stmts(parser *P) {
  char buf[64];
  for (;;) {
    ir_tok t = P->tok;
    if (t.kind == TK_VALUE) {
      if (!parse_node(P)) return false;
    } else if (ir_p_is_word(&t, "return")) {
      return parse_return(P);
    } else if (t.kind == TK_RBRACE || t.kind == TK_EOF) {
      return ir_p_fail(P, t.line, t.col, "missing 'return' before %s",
                       ir_p_tok_desc(&t, buf, sizeof buf));
    } else {
      return ir_p_fail(P, t.line, t.col, "expected a value definition or 'return', got %s",
                       ir_p_tok_desc(&t, buf, sizeof buf));
    }
  }
}

static bool parse_graph(parser *P, int *hline, int *hcol) {
  char buf[64];
  if (!ir_p_advance(P)) return false;
  *hline = P->tok.line;
  *hcol = P->tok.col;
  if (!ir_p_is_word(&P->tok, "graph"))
    return ir_p_fail(P, P->tok.line, P->tok.col, "expected 'graph', got %s",
                     ir_p_tok_desc(&P->tok, buf, sizeof buf));
  if (!ir_p_advance(P)) return false;
  ir_tok gname = P->tok;
  if (gname.kind != TK_GLOBAL)
    return ir_p_fail(P, gname.line, gname.col, "expected the graph name '@name', got %s",
                     ir_p_tok_desc(&gname, buf, sizeof buf));
  P->g = ir_graph_create("main");
  if (!P->g) return ir_p_fail(P, gname.line, gname.col, "out of memory");
  P->g->name = ir_strndup(P->g, gname.text, gname.len);
  if (!ir_p_advance(P) || !ir_p_expect(P, TK_LPAREN, "'(' after the graph name") ||
      !parse_args(P) || !ir_p_expect(P, TK_LBRACE, "'{' to open the graph body"))
    return false;
  if (!parse_stmts(P)) return false;
  if (P->tok.kind != TK_RBRACE)
    return ir_p_fail(P, P->tok.line, P->tok.col,
                     "expected ',' or '}' after the returned values, "
                     "got %s",
                     ir_p_tok_desc(&P->tok, buf, sizeof buf));
  ir_tok after = ir_lex_next(&P->lx);
  if (after.kind == TK_ERROR)
    return ir_p_fail(P, P->lx.err_line, P->lx.err_col, "unexpected text after the closing '}'");
  if (after.kind != TK_EOF)
    return ir_p_fail(P, after.line, after.col, "unexpected text after the closing '}'");
  return true;
}

ir_graph *ir_parse(const char *text, size_t len, const char *filename, ir_diag *d) {
  parser P = {0};
  ir_diag local = {0};
  P.d = d ? d : &local;
  P.d->msg[0] = 0;
  P.d->line = P.d->col = 0;
  P.file = filename ? filename : "<input>";
  ir_lex_init(&P.lx, text, len);
  int hline = 1, hcol = 1;
  bool ok = parse_graph(&P, &hline, &hcol);
  if (ok) {
    ir_diag vd = {0};
    /* Verifier errors about a node carry its statement's position; the
     * rest are about the whole graph, so point at its header. */
    if (!ir_verify(P.g, &vd))
      ok = ir_p_fail(&P, vd.line ? vd.line : hline, vd.line ? vd.col : hcol, "%s", vd.msg);
  }
  free(P.syms);
  free(P.ops);
  free(P.elems);
  free(P.payload);
  if (!ok) {
    ir_graph_destroy(P.g);
    return NULL;
  }
  return P.g;
}
