/* Shape rules of the elementwise ops (iota, binary, compare, select, unary,
 * cast) and the helpers every rule shares (shape_util.h): the message
 * prefix "op(types)", input validation, axis normalisation. */
#include <stdarg.h>
#include <string.h>

#include "ir/shape.h"
#include "ir/shape_util.h"

/* ---- helpers ----------------------------------------------------------- */

bool ir_norm_axis(int64_t axis, int rank, int *out) {
  if (rank < 0 || axis < -(int64_t)rank || axis >= (int64_t)rank) return false;
  *out = (int)(axis < 0 ? axis + rank : axis);
  return true;
}

bool ir_type_valid(const ir_type *t) {
  if ((unsigned)t->dtype >= IR_NUM_DTYPES || t->rank < 0 || t->rank > IR_MAX_RANK) return false;
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] < 0) return false;
  return true;
}

bool ir_checked_numel(int rank, const int64_t *dims, int64_t *out) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n)) return false;
  }
  *out = n;
  return true;
}

const char *ir_attr_kind_name(ir_attr_kind k) {
  static const char *const names[] = {"int", "float", "bool", "string", "dtype", "int list"};
  return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "unknown kind";
}

/* ir_type_str reads dims[0..rank), so an out-of-range rank (a corrupt graph
 * being verified) must not reach it. */
static void type_str_safe(const ir_type *t, char *buf, size_t len) {
  if (t->rank < 0 || t->rank > IR_MAX_RANK)
    snprintf(buf, len, "%s[<rank %d>]", ir_dtype_name(t->dtype), t->rank);
  else
    ir_type_str(t, buf, len);
}

static size_t append(char *buf, size_t len, size_t k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t len, size_t k, const char *fmt, ...) {
  if (k >= len) return k;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + k, len - k, fmt, ap);
  va_end(ap);
  return n < 0 ? len : k + (size_t)n;
}

void ir_shape_describe(ir_op op, int nin, const ir_type *in, char *buf, size_t len) {
  if (!buf || len == 0) return;
  buf[0] = 0;
  const char *name = (unsigned)op < IR_NUM_OPS ? ir_op_get(op)->name : "?";
  size_t k = append(buf, len, 0, "%s(", name);
  for (int i = 0; in && i < nin && k < len; i++) {
    char t[IR_TYPE_STRLEN];
    type_str_safe(&in[i], t, sizeof t);
    k = append(buf, len, k, "%s%s", i ? ", " : "", t);
  }
  k = append(buf, len, k, ")");
  /* A long operand list (concat) is cut; say so rather than end mid-type. */
  if (k >= len && len >= 5) memcpy(buf + len - 5, "...)", 5);
}

bool ir_shape_fail(ir_op op, int nin, const ir_type *in, ir_diag *d, const char *fmt, ...) {
  if (!d) return false;
  char head[400], why[360];
  ir_shape_describe(op, nin, in, head, sizeof head);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  ir_diag_set(d, "%s: %s", head, why);
  return false;
}

bool ir_shape_begin(ir_op op, int nin, const ir_type *in, const ir_attr *attrs, int want_nin,
                    int want_attrs, ir_diag *d) {
  if ((unsigned)op >= IR_NUM_OPS) {
    ir_diag_set(d, "unknown op %d", (int)op);
    return false;
  }
  if (nin < 0 || (nin > 0 && !in)) return ir_shape_fail(op, 0, NULL, d, "operands are missing");
  if (want_nin >= 0 ? nin != want_nin : nin < 1)
    return ir_shape_fail(op, nin, in, d, "takes %s%d operand%s, got %d",
                         want_nin < 0 ? "at least " : "", want_nin < 0 ? 1 : want_nin,
                         want_nin == 1 || want_nin < 0 ? "" : "s", nin);
  for (int i = 0; i < nin; i++)
    if (!ir_type_valid(&in[i]))
      return ir_shape_fail(op, nin, in, d, "operand %d has an invalid type", i);
  const ir_op_info *info = ir_op_get(op);
  if (info->nattrs < want_attrs)
    return ir_shape_fail(op, nin, in, d, "shape rule needs %d attributes, the op has %d",
                         want_attrs, info->nattrs);
  if (info->nattrs > 0 && !attrs) return ir_shape_fail(op, nin, in, d, "attributes are missing");
  for (int i = 0; i < info->nattrs; i++) {
    const ir_attr_spec *s = &info->attrs[i];
    const ir_attr *a = &attrs[i];
    if (a->kind != s->kind)
      return ir_shape_fail(op, nin, in, d, "attribute '%s' is a %s, expected a %s", s->name,
                           ir_attr_kind_name(a->kind), ir_attr_kind_name(s->kind));
    if (a->kind == IR_ATTR_INTS && (a->ints.n < 0 || (a->ints.n > 0 && !a->ints.v)))
      return ir_shape_fail(op, nin, in, d, "attribute '%s' is a malformed list", s->name);
    if (a->kind == IR_ATTR_DTYPE && (unsigned)a->dt >= IR_NUM_DTYPES)
      return ir_shape_fail(op, nin, in, d, "attribute '%s' is not a dtype (%d)", s->name,
                           (int)a->dt);
  }
  return true;
}

/* ---- leaves ------------------------------------------------------------ */

IR_SHAPE_FN(ir_shape_iota) {
  if (!ir_shape_begin(op, nin, in, attrs, 0, 3, d)) return false;
  const ir_ints *shape = &attrs[0].ints;
  int64_t axis = attrs[1].i;
  ir_dtype dt = attrs[2].dt;
  if (shape->n < 1 || shape->n > IR_MAX_RANK)
    return ir_shape_fail(op, nin, in, d, "shape must have rank 1 to %d, got %d", IR_MAX_RANK,
                         shape->n);
  for (int i = 0; i < shape->n; i++)
    if (shape->v[i] < 0)
      return ir_shape_fail(op, nin, in, d, "negative dimension %lld in shape",
                           (long long)shape->v[i]);
  int ax;
  if (!ir_norm_axis(axis, shape->n, &ax))
    return ir_shape_fail(op, nin, in, d, "axis %lld is out of range for rank %d", (long long)axis,
                         shape->n);
  if (dt == IR_BOOL) return ir_shape_fail(op, nin, in, d, "dtype must not be bool");
  *out = ir_type_make(dt, shape->n, shape->v);
  return true;
}

/* ---- binary ------------------------------------------------------------ */

static bool binary_common(ir_op op, int nin, const ir_type *in, ir_type *out, ir_diag *d,
                          bool float_only) {
  if (in[0].dtype != in[1].dtype)
    return ir_shape_fail(op, nin, in, d, "operand dtypes differ (%s vs %s)",
                         ir_dtype_name(in[0].dtype), ir_dtype_name(in[1].dtype));
  if (float_only && !ir_dtype_is_float(in[0].dtype))
    return ir_shape_fail(op, nin, in, d, "needs a float dtype (f32 or f64), got %s",
                         ir_dtype_name(in[0].dtype));
  if (in[0].dtype == IR_BOOL) return ir_shape_fail(op, nin, in, d, "bool operands not supported");
  if (!ir_broadcast(&in[0], &in[1], out))
    return ir_shape_fail(op, nin, in, d, "shapes do not broadcast");
  return true;
}

IR_SHAPE_FN(ir_shape_binary) {
  (void)attrs;
  if (!ir_shape_begin(op, nin, in, attrs, 2, 0, d)) return false;
  return binary_common(op, nin, in, out, d, false);
}

IR_SHAPE_FN(ir_shape_binary_float) {
  (void)attrs;
  if (!ir_shape_begin(op, nin, in, attrs, 2, 0, d)) return false;
  return binary_common(op, nin, in, out, d, true);
}

IR_SHAPE_FN(ir_shape_compare) {
  if (!ir_shape_begin(op, nin, in, attrs, 2, 0, d)) return false;
  if (in[0].dtype != in[1].dtype)
    return ir_shape_fail(op, nin, in, d, "operand dtypes differ (%s vs %s)",
                         ir_dtype_name(in[0].dtype), ir_dtype_name(in[1].dtype));
  if (!ir_broadcast(&in[0], &in[1], out))
    return ir_shape_fail(op, nin, in, d, "shapes do not broadcast");
  out->dtype = IR_BOOL;
  return true;
}

IR_SHAPE_FN(ir_shape_select) {
  if (!ir_shape_begin(op, nin, in, attrs, 3, 0, d)) return false;
  if (in[0].dtype != IR_BOOL)
    return ir_shape_fail(op, nin, in, d, "condition must be bool, got %s",
                         ir_dtype_name(in[0].dtype));
  if (in[1].dtype != in[2].dtype)
    return ir_shape_fail(op, nin, in, d, "value dtypes differ (%s vs %s)",
                         ir_dtype_name(in[1].dtype), ir_dtype_name(in[2].dtype));
  ir_type cv, all;
  if (!ir_broadcast(&in[0], &in[1], &cv) || !ir_broadcast(&cv, &in[2], &all))
    return ir_shape_fail(op, nin, in, d, "shapes do not broadcast");
  all.dtype = in[1].dtype;
  *out = all;
  return true;
}

/* ---- unary ------------------------------------------------------------- */

IR_SHAPE_FN(ir_shape_unary_numeric) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 0, d)) return false;
  if (in[0].dtype == IR_BOOL)
    return ir_shape_fail(op, nin, in, d, "needs a numeric dtype (f32, f64, i32, i64), got bool");
  *out = in[0];
  return true;
}

IR_SHAPE_FN(ir_shape_unary_float) {
  int nattrs = op == IR_OP_DROPOUT ? 2 : (op == IR_OP_GELU || op == IR_OP_GELU_DERIV) ? 1 : 0;
  if (!ir_shape_begin(op, nin, in, attrs, 1, nattrs, d)) return false;
  if (!ir_dtype_is_float(in[0].dtype))
    return ir_shape_fail(op, nin, in, d, "needs a float dtype (f32 or f64), got %s",
                         ir_dtype_name(in[0].dtype));
  if (op == IR_OP_GELU || op == IR_OP_GELU_DERIV) {
    const char *s = attrs[0].s;
    if (!s || (strcmp(s, "none") != 0 && strcmp(s, "tanh") != 0))
      return ir_shape_fail(op, nin, in, d,
                           "approximate must be \"none\" or \"tanh\", got \"%.64s\"", s ? s : "");
  }
  if (op == IR_OP_DROPOUT) {
    double p = attrs[0].f;
    /* written so that NaN fails too */
    if (!(p >= 0.0 && p < 1.0))
      return ir_shape_fail(op, nin, in, d, "p must be in [0, 1), got %g", p);
    if (attrs[1].i < -1 || attrs[1].i > UINT32_MAX)
      return ir_shape_fail(op, nin, in, d, "key must be -1 or a 32-bit stream, got %lld",
                           (long long)attrs[1].i);
  }
  *out = in[0];
  return true;
}

IR_SHAPE_FN(ir_shape_cast) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 1, d)) return false;
  *out = in[0];
  out->dtype = attrs[0].dt;
  return true;
}
