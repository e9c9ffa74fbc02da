/* The IR text parser, values half: literals, strings, types, attribute
 * blocks and constant payloads. Every function reports its own error
 * position through ir_p_fail and returns false. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/parse_int.h"

/* ---- literals ------------------------------------------------------------- */

/* NUL-terminated copy of a token's text for strtoX; false if too long. */
static bool tok_cstr(const ir_tok *t, char *buf, size_t len) {
  if (t->len >= len) return false;
  memcpy(buf, t->text, t->len);
  buf[t->len] = 0;
  return true;
}

bool ir_p_parse_i64(parser *P, const ir_tok *t, int64_t *out) {
  char buf[64];
  if (t->kind != TK_INT || !tok_cstr(t, buf, sizeof buf))
    return ir_p_fail(P, t->line, t->col, "integer literal out of range");
  errno = 0;
  long long v = strtoll(buf, NULL, 10);
  if (errno == ERANGE) return ir_p_fail(P, t->line, t->col, "integer literal %s out of range", buf);
  *out = v;
  return true;
}

/* Float from an INT/FLOAT token or the words nan/inf. as_f32 reads the text
 * with strtof so f32 values are rounded once, exactly as printed. */
static bool parse_real(parser *P, const ir_tok *t, bool as_f32, double *out) {
  if (ir_p_is_word(t, "nan")) {
    *out = NAN;
    return true;
  }
  if (ir_p_is_word(t, "inf")) {
    *out = INFINITY;
    return true;
  }
  char buf[512];
  if (!tok_cstr(t, buf, sizeof buf))
    return ir_p_fail(P, t->line, t->col, "number literal too long");
  errno = 0;
  double v = as_f32 ? (double)strtof(buf, NULL) : strtod(buf, NULL);
  if (errno == ERANGE && isinf(v))
    return ir_p_fail(P, t->line, t->col, "%s is out of range for %s", buf, as_f32 ? "f32" : "f64");
  *out = v;
  return true;
}

static bool is_real_tok(const ir_tok *t) {
  return t->kind == TK_INT || t->kind == TK_FLOAT || ir_p_is_word(t, "nan") ||
         ir_p_is_word(t, "inf");
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes a STRING token's escapes into an arena string. */
bool ir_p_parse_string(parser *P, const ir_tok *t, const char **out) {
  char *s = ir_alloc(P->g, t->len + 1);
  if (!s) return ir_p_fail(P, t->line, t->col, "out of memory");
  size_t k = 0;
  for (size_t i = 0; i < t->len; i++) {
    char c = t->text[i];
    if (c != '\\') {
      s[k++] = c;
      continue;
    }
    int col = t->col + 1 + (int)i;
    char e = i + 1 < t->len ? t->text[i + 1] : 0;
    i++;
    if (e == 'n')
      s[k++] = '\n';
    else if (e == 't')
      s[k++] = '\t';
    else if (e == '"' || e == '\\')
      s[k++] = e;
    else if (e == 'x' && i + 2 < t->len && hexval(t->text[i + 1]) >= 0 &&
             hexval(t->text[i + 2]) >= 0) {
      int v = hexval(t->text[i + 1]) * 16 + hexval(t->text[i + 2]);
      if (v == 0) return ir_p_fail(P, t->line, col, "NUL byte in string");
      s[k++] = (char)v;
      i += 2;
    } else {
      return ir_p_fail(P, t->line, col, "bad escape sequence in string");
    }
  }
  s[k] = 0;
  *out = s;
  return true;
}

/* ---- types ------------------------------------------------------------- */

bool ir_p_parse_type(parser *P, ir_type *out, int *line, int *col) {
  ir_tok t = P->tok;
  char buf[64];
  if (line) *line = t.line;
  if (col) *col = t.col;
  ir_dtype dt;
  if (t.kind != TK_IDENT)
    return ir_p_fail(P, t.line, t.col, "expected a type, got %s",
                     ir_p_tok_desc(&t, buf, sizeof buf));
  if (!ir_dtype_parse(t.text, t.len, &dt))
    return ir_p_fail(P, t.line, t.col, "unknown dtype %s", ir_p_tok_desc(&t, buf, sizeof buf));
  if (!ir_p_advance(P) || !ir_p_expect(P, TK_LBRACK, "'[' after the dtype")) return false;
  ir_type ty = {.dtype = dt};
  int64_t numel = 1;
  if (P->tok.kind == TK_RBRACK) {
    *out = ty;
    return ir_p_advance(P);
  }
  for (;;) {
    ir_tok dim = P->tok;
    if (dim.kind != TK_INT)
      return ir_p_fail(P, dim.line, dim.col, "expected a dimension, got %s",
                       ir_p_tok_desc(&dim, buf, sizeof buf));
    int64_t v;
    if (!ir_p_parse_i64(P, &dim, &v)) return false;
    if (v < 0) return ir_p_fail(P, dim.line, dim.col, "negative dimension %" PRId64, v);
    if (ty.rank == IR_MAX_RANK)
      return ir_p_fail(P, dim.line, dim.col, "rank exceeds the maximum of %d", IR_MAX_RANK);
    /* Zero dims are skipped so strides stay in range too. */
    int64_t f = v > 1 ? v : 1;
    if (numel > (INT64_C(1) << 48) / f)
      return ir_p_fail(P, dim.line, dim.col, "type has too many elements");
    numel *= f;
    ty.dims[ty.rank++] = v;
    if (!ir_p_advance(P)) return false;
    if (P->tok.kind == TK_RBRACK) break;
    if (!ir_p_expect(P, TK_COMMA, "',' or ']' in the type")) return false;
  }
  *out = ty;
  return ir_p_advance(P);
}

/* ---- attributes ---------------------------------------------------------- */

static const char *kind_desc(ir_attr_kind k) {
  switch (k) {
  case IR_ATTR_INT: return "an integer";
  case IR_ATTR_FLOAT: return "a number";
  case IR_ATTR_BOOL: return "true or false";
  case IR_ATTR_STR: return "a string";
  case IR_ATTR_DTYPE: return "a dtype string such as \"f32\"";
  case IR_ATTR_INTS: return "a list of integers";
  }
  return "?";
}

static bool parse_attr_value(parser *P, ir_op op, int idx, ir_attr *a) {
  const ir_attr_spec *spec = &ir_op_get(op)->attrs[idx];
  ir_tok t = P->tok;
  char buf[64];
  a->kind = spec->kind;
  bool ok = false;
  switch (spec->kind) {
  case IR_ATTR_INT: ok = t.kind == TK_INT && ir_p_parse_i64(P, &t, &a->i); break;
  case IR_ATTR_FLOAT: ok = is_real_tok(&t) && parse_real(P, &t, false, &a->f); break;
  case IR_ATTR_BOOL:
    ok = ir_p_is_word(&t, "true") || ir_p_is_word(&t, "false");
    a->b = ir_p_is_word(&t, "true");
    break;
  case IR_ATTR_STR: ok = t.kind == TK_STRING && ir_p_parse_string(P, &t, &a->s); break;
  case IR_ATTR_DTYPE:
    if (t.kind == TK_STRING) {
      if (!ir_dtype_parse(t.text, t.len, &a->dt))
        return ir_p_fail(P, t.line, t.col, "unknown dtype %s", ir_p_tok_desc(&t, buf, sizeof buf));
      ok = true;
    }
    break;
  case IR_ATTR_INTS: {
    if (t.kind != TK_LBRACK) break;
    if (!ir_p_advance(P)) return false;
    int n = 0, cap = 0;
    int64_t *v = NULL;
    while (P->tok.kind != TK_RBRACK) {
      if (n && !ir_p_expect(P, TK_COMMA, "',' or ']' in the list")) return false;
      ir_tok e = P->tok;
      if (e.kind != TK_INT)
        return ir_p_fail(P, e.line, e.col,
                         "attribute '%s' of %s expects a list of integers, got %s", spec->name,
                         ir_op_get(op)->name, ir_p_tok_desc(&e, buf, sizeof buf));
      if (n == cap) {
        cap = cap ? 2 * cap : 8;
        int64_t *nv = ir_alloc(P->g, (size_t)cap * sizeof *nv);
        if (!nv) return ir_p_fail(P, e.line, e.col, "out of memory");
        if (n) memcpy(nv, v, (size_t)n * sizeof *nv);
        v = nv;
      }
      if (!ir_p_parse_i64(P, &e, &v[n++]) || !ir_p_advance(P)) return false;
    }
    a->ints.n = n;
    a->ints.v = v;
    return ir_p_advance(P);
  }
  }
  if (P->failed) return false;
  if (!ok)
    return ir_p_fail(P, t.line, t.col, "attribute '%s' of %s expects %s, got %s", spec->name,
                     ir_op_get(op)->name, kind_desc(spec->kind),
                     ir_p_tok_desc(&t, buf, sizeof buf));
  return ir_p_advance(P);
}

/* Names the op's attributes for an "unknown attribute" message. */
static void valid_attrs(ir_op op, char *buf, size_t len) {
  const ir_op_info *info = ir_op_get(op);
  if (info->nattrs == 0) {
    snprintf(buf, len, "%s has no attributes", info->name);
    return;
  }
  size_t k = (size_t)snprintf(buf, len, "valid attributes of %s:", info->name);
  for (int i = 0; i < info->nattrs && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s %s", i ? "," : "", info->attrs[i].name);
}

bool ir_p_parse_attrs(parser *P, ir_op op, ir_attr *attrs, bool *seen) {
  if (!ir_p_advance(P)) return false; /* '{' */
  const ir_op_info *info = ir_op_get(op);
  char buf[64], list[256];
  bool first = true;
  while (P->tok.kind != TK_RBRACE) {
    if (!first && !ir_p_expect(P, TK_COMMA, "',' or '}' after an attribute")) return false;
    first = false;
    ir_tok nm = P->tok;
    if (nm.kind != TK_IDENT)
      return ir_p_fail(P, nm.line, nm.col, "expected an attribute name, got %s",
                       ir_p_tok_desc(&nm, buf, sizeof buf));
    int idx = -1;
    for (int i = 0; i < info->nattrs; i++)
      if (strlen(info->attrs[i].name) == nm.len &&
          memcmp(info->attrs[i].name, nm.text, nm.len) == 0)
        idx = i;
    if (idx < 0) {
      valid_attrs(op, list, sizeof list);
      return ir_p_fail(P, nm.line, nm.col, "unknown attribute %s (%s)",
                       ir_p_tok_desc(&nm, buf, sizeof buf), list);
    }
    if (seen[idx])
      return ir_p_fail(P, nm.line, nm.col, "duplicate attribute '%s'", info->attrs[idx].name);
    seen[idx] = true;
    if (!ir_p_advance(P) || !ir_p_expect(P, TK_EQUAL, "'=' after the attribute name") ||
        !parse_attr_value(P, op, idx, &attrs[idx]))
      return false;
  }
  return ir_p_advance(P);
}

/* ---- constants ---------------------------------------------------------- */

static bool push_elem(parser *P) {
  ir_tok t = P->tok;
  char buf[64];
  if (!is_real_tok(&t) && !ir_p_is_word(&t, "true") && !ir_p_is_word(&t, "false"))
    return ir_p_fail(P, t.line, t.col, "expected a constant value, got %s",
                     ir_p_tok_desc(&t, buf, sizeof buf));
  if (P->nelems == P->capelems) {
    int64_t cap = P->capelems ? 2 * P->capelems : 64;
    ir_tok *ne = realloc(P->elems, (size_t)cap * sizeof *ne);
    if (!ne) return ir_p_fail(P, t.line, t.col, "out of memory");
    P->elems = ne;
    P->capelems = cap;
  }
  P->elems[P->nelems++] = t;
  return ir_p_advance(P);
}

/* const( V | dense [V, ...] | <folded ...> ): collects literal tokens. */
bool ir_p_parse_const_body(parser *P) {
  P->nelems = 0;
  if (P->tok.kind == TK_LT)
    return ir_p_fail(P, P->tok.line, P->tok.col,
                     "folded constant cannot be parsed without its side table");
  if (!ir_p_is_word(&P->tok, "dense")) return push_elem(P);
  if (!ir_p_advance(P) || !ir_p_expect(P, TK_LBRACK, "'[' after 'dense'")) return false;
  while (P->tok.kind != TK_RBRACK) {
    if (P->nelems && !ir_p_expect(P, TK_COMMA, "',' or ']' in the constant")) return false;
    if (!push_elem(P)) return false;
  }
  return ir_p_advance(P);
}

/* Converts the collected literals to a payload of type t. */
bool ir_p_build_payload(parser *P, const ir_type *t, int line, int col) {
  int64_t numel = ir_type_numel(t);
  char buf[64], ty[IR_TYPE_STRLEN];
  if (numel != P->nelems)
    return ir_p_fail(P, line, col, "const has %" PRId64 " element%s but its type %s has %" PRId64,
                     P->nelems, P->nelems == 1 ? "" : "s", ir_type_str(t, ty, sizeof ty), numel);
  size_t es = ir_dtype_size(t->dtype);
  free(P->payload);
  P->payload = malloc((size_t)(numel ? numel : 1) * es);
  if (!P->payload) return ir_p_fail(P, line, col, "out of memory");
  const char *dn = ir_dtype_name(t->dtype);
  for (int64_t i = 0; i < numel; i++) {
    const ir_tok *e = &P->elems[i];
    unsigned char *dst = (unsigned char *)P->payload + (size_t)i * es;
    if (ir_dtype_is_float(t->dtype)) {
      double v;
      if (!is_real_tok(e))
        return ir_p_fail(P, e->line, e->col, "expected a number for a %s constant, got %s", dn,
                         ir_p_tok_desc(e, buf, sizeof buf));
      if (!parse_real(P, e, t->dtype == IR_F32, &v)) return false;
      if (t->dtype == IR_F32) {
        float f = (float)v;
        memcpy(dst, &f, 4);
      } else {
        memcpy(dst, &v, 8);
      }
    } else if (ir_dtype_is_int(t->dtype)) {
      int64_t v;
      if (e->kind != TK_INT)
        return ir_p_fail(P, e->line, e->col, "expected an integer for a %s constant, got %s", dn,
                         ir_p_tok_desc(e, buf, sizeof buf));
      if (!ir_p_parse_i64(P, e, &v)) return false;
      if (t->dtype == IR_I32) {
        if (v < INT32_MIN || v > INT32_MAX)
          return ir_p_fail(P, e->line, e->col, "%" PRId64 " is out of range for i32", v);
        int32_t w = (int32_t)v;
        memcpy(dst, &w, 4);
      } else {
        memcpy(dst, &v, 8);
      }
    } else {
      if (!ir_p_is_word(e, "true") && !ir_p_is_word(e, "false"))
        return ir_p_fail(P, e->line, e->col, "expected true or false for a bool constant, got %s",
                         ir_p_tok_desc(e, buf, sizeof buf));
      *dst = ir_p_is_word(e, "true");
    }
  }
  return true;
}
