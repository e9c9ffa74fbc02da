/* The machinery every DSL builder goes through: operand checks (invalid
 * values propagate, graphs must not mix), node emission with the caller's
 * source location, and the sticky first error "file.c:LINE: message". */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/internal.h"

_Static_assert((int)KL_F32 == (int)IR_F32 && (int)KL_F64 == (int)IR_F64 &&
                   (int)KL_I32 == (int)IR_I32 && (int)KL_I64 == (int)IR_I64 &&
                   (int)KL_BOOL == (int)IR_BOOL,
               "kl_dtype and ir_dtype must list the dtypes in the same order");
_Static_assert(KL_MAX_RANK == IR_MAX_RANK, "the DSL and the IR agree on the maximum rank");

const char *kl__basename(const char *file) {
  if (!file) return "?";
  const char *slash = strrchr(file, '/');
  return slash ? slash + 1 : file;
}

void kl__verror(kl_graph *g, const char *file, int line, const char *fmt, va_list ap) {
  if (!g || !g->ir || g->ir->has_error) return;
  ir_diag *d = &g->ir->error;
  size_t cap = sizeof d->msg;
  int k = 0;
  if (file) k = snprintf(d->msg, cap, "%s:%d: ", kl__basename(file), line);
  if (k >= 0 && (size_t)k < cap && g->ctx)
    k += snprintf(d->msg + k, cap - (size_t)k, "%s: ", g->ctx);
  if (k >= 0 && (size_t)k < cap) vsnprintf(d->msg + k, cap - (size_t)k, fmt, ap);
  d->line = 0;
  d->col = 0;
  g->ir->has_error = true;
}

void kl__error(kl_graph *g, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kl__verror(g, file, line, fmt, ap);
  va_end(ap);
}

static bool value_in_graph(kl_value v) {
  return v.g && v.g->ir && v.id >= 0 && v.id < v.g->ir->nnodes;
}

void kl__describe(ir_op op, int n, const kl_value *xs, char *buf, size_t len) {
  /* Leaves have no operands to show: "iota", not "iota()". */
  if (n == 0) {
    snprintf(buf, len, "%s", ir_op_get(op)->name);
    return;
  }
  size_t k = (size_t)snprintf(buf, len, "%s(", ir_op_get(op)->name);
  for (int i = 0; i < n && k < len; i++) {
    char t[IR_TYPE_STRLEN];
    const char *s = "<invalid>";
    if (xs && value_in_graph(xs[i]))
      s = ir_type_str(&xs[i].g->ir->nodes[xs[i].id]->type, t, sizeof t);
    k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", s);
  }
  if (k < len) snprintf(buf + k, len - k, ")");
}

void kl__fail(kl_graph *g, const char *file, int line, ir_op op, int n, const kl_value *xs,
              const char *fmt, ...) {
  if (!g || !g->ir || g->ir->has_error) return;
  char what[512], msg[512];
  kl__describe(op, n, xs, what, sizeof what);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  kl__error(g, file, line, "%s: %s", what, msg);
}

kl_graph *kl__operands(int n, const kl_value *xs, ir_op op, const char *file, int line,
                       kl_graph **gout) {
  kl_graph *g = NULL;
  for (int i = 0; i < n && !g; i++)
    g = xs[i].g;
  *gout = g;
  if (!g || !g->ir || g->ir->has_error) return NULL;
  for (int i = 0; i < n; i++) {
    if (xs[i].g && xs[i].g != g) {
      kl__fail(g, file, line, op, n, xs, "operands come from different graphs");
      return NULL;
    }
  }
  for (int i = 0; i < n; i++)
    if (!xs[i].g || xs[i].id < 0) return NULL;
  for (int i = 0; i < n; i++) {
    if (xs[i].id >= g->ir->nnodes) {
      kl__fail(g, file, line, op, n, xs, "operand %d is not a value of this graph", i);
      return NULL;
    }
  }
  return g;
}

/* Shape rules already name the op and its operand types; other IR messages
 * (arity, attribute kinds) may not, so those get the description prefixed. */
static void record_ir_failure(kl_graph *g, const char *file, int line, ir_op op, int n,
                              const kl_value *xs, const char *msg) {
  const char *name = ir_op_get(op)->name;
  size_t len = strlen(name);
  if (strncmp(msg, name, len) == 0 && msg[len] == '(') {
    kl__error(g, file, line, "%s", msg);
  } else {
    char what[512];
    kl__describe(op, n, xs, what, sizeof what);
    const char *rest = msg;
    if (strncmp(msg, name, len) == 0 && msg[len] == ':') rest = msg + len + 1;
    while (*rest == ' ')
      rest++;
    kl__error(g, file, line, "%s: %s", what, rest);
  }
}

kl_value kl__node(kl_graph *g, ir_op op, int n, const kl_value *xs, const ir_attr *attrs,
                  const ir_type *declared, const char *file, int line) {
  int small[16] = {0};
  int *ids = small;
  if (n > 16) {
    ids = malloc((size_t)n * sizeof *ids);
    if (!ids) {
      kl__fail(g, file, line, op, n, xs, "out of memory");
      return kl__invalid(g);
    }
  }
  for (int i = 0; i < n; i++)
    ids[i] = xs[i].id;
  ir_diag d = {.line = 0};
  int id = ir_add_node(g->ir, op, n, ids, attrs, declared, &d);
  if (ids != small) free(ids);
  if (id < 0) {
    record_ir_failure(g, file, line, op, n, xs, d.msg[0] ? d.msg : "cannot add the node");
    return kl__invalid(g);
  }
  ir_node_set_loc(g->ir, id, kl__basename(file), line);
  return (kl_value){g, id};
}

kl_value kl__op(ir_op op, int n, const kl_value *xs, const ir_attr *attrs, const char *file,
                int line) {
  kl_graph *g;
  if (!kl__operands(n, xs, op, file, line, &g)) return kl__invalid(g);
  return kl__node(g, op, n, xs, attrs, NULL, file, line);
}

bool kl__ints_ok(const kl_ints *s) { return s->n >= 0 && s->n <= 8; }

bool kl__dtype_ok(kl_dtype dt) { return (unsigned)dt < (unsigned)IR_NUM_DTYPES; }

bool kl__shape_ok(const kl_ints *s, bool allow_minus1, char *msg, size_t len) {
  if (s->n < 0 || s->n > KL_MAX_RANK) {
    snprintf(msg, len, "rank %d is outside 0..%d", s->n, KL_MAX_RANK);
    return false;
  }
  /* Element counts stay far from int64 overflow so byte sizes are safe. */
  const int64_t limit = INT64_C(1) << 56;
  int64_t numel = 1;
  for (int i = 0; i < s->n; i++) {
    int64_t d = s->v[i];
    if (d == -1 && allow_minus1) continue;
    if (d < 0) {
      snprintf(msg, len, "dimension %d is negative (%lld)", i, (long long)d);
      return false;
    }
    if (d > 0 && numel > limit / d) {
      snprintf(msg, len, "the shape has too many elements");
      return false;
    }
    numel *= d;
  }
  return true;
}

ir_type kl__type(kl_dtype dt, const kl_ints *shape) {
  return ir_type_make((ir_dtype)dt, shape->n, shape->v);
}

const ir_type *kl__type_of(kl_value v) { return &v.g->ir->nodes[v.id]->type; }

bool kl__scalar_bytes(double v, ir_dtype dt, void *out) {
  switch (dt) {
  case IR_F32: {
    /* Out-of-range doubles become infinities, as a float conversion in
     * PyTorch does, without the C undefined behaviour. */
    float f = (float)(v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : v);
    if (isnan(v)) f = NAN;
    memcpy(out, &f, sizeof f);
    return true;
  }
  case IR_F64: memcpy(out, &v, sizeof v); return true;
  case IR_I32: {
    if (isnan(v) || v < -2147483648.0 || v >= 2147483648.0) return false;
    int32_t i = (int32_t)v;
    memcpy(out, &i, sizeof i);
    return true;
  }
  case IR_I64: {
    if (isnan(v) || v < -9223372036854775808.0 || v >= 9223372036854775808.0) return false;
    int64_t i = (int64_t)v;
    memcpy(out, &i, sizeof i);
    return true;
  }
  case IR_BOOL: {
    unsigned char b = v != 0;
    memcpy(out, &b, 1);
    return true;
  }
  default: return false;
  }
}

kl_value kl__scalar_node(kl_graph *g, double v, ir_dtype dt, ir_op op, int n, const kl_value *xs,
                         const char *file, int line) {
  unsigned char bytes[8] = {0};
  if (!kl__scalar_bytes(v, dt, bytes)) {
    kl__fail(g, file, line, op, n, xs, "the scalar %g does not fit %s", v, ir_dtype_name(dt));
    return kl__invalid(g);
  }
  ir_type t = ir_type_make(dt, 0, NULL);
  ir_diag d = {.line = 0};
  int id = ir_add_const(g->ir, &t, bytes, &d);
  if (id < 0) {
    record_ir_failure(g, file, line, IR_OP_CONST, 0, NULL, d.msg);
    return kl__invalid(g);
  }
  ir_node_set_loc(g->ir, id, kl__basename(file), line);
  return (kl_value){g, id};
}
