/* Reference kernels for leaves and elementwise ops: const, iota, binary
 * arithmetic, comparisons, select, unary math, cast and dropout. Floats are
 * computed in double, integers in int64 with wrapping arithmetic, then
 * stored to the result dtype. */
#include <math.h>

#include "runtime/philox.h"
#include "runtime/ref_util.h"

RT_REF_FN(rt_ref_leaf) {
  (void)in;
  (void)opts;
  if (n->op != IR_OP_CONST) {
    ir_diag_set(d, "%s: a leaf has no value outside a run", rt_opname(n));
    return false;
  }
  if (!n->data) {
    ir_diag_set(d, "const: no payload");
    return false;
  }
  memcpy(out->data, n->data, out->bytes);
  return true;
}

RT_REF_FN(rt_ref_iota) {
  (void)in;
  (void)opts;
  int axis;
  if (!rt_norm_axis(n->attrs[1].i, out->type.rank, &axis)) {
    ir_diag_set(d, "iota: axis %lld out of range for rank %d", (long long)n->attrs[1].i,
                out->type.rank);
    return false;
  }
  int64_t idx[IR_MAX_RANK];
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    rt_unflatten(&out->type, i, idx);
    rt_store_i(out, i, idx[axis]);
  }
  return true;
}

static int64_t int_binary(ir_op op, int64_t a, int64_t b) {
  switch (op) {
  case IR_OP_ADD: return rt_wrap_add(a, b);
  case IR_OP_SUB: return rt_wrap_sub(a, b);
  case IR_OP_MUL: return rt_wrap_mul(a, b);
  case IR_OP_DIV:
    if (b == 0) return 0;
    if (b == -1) return rt_wrap_neg(a); /* INT64_MIN / -1 would trap */
    return a / b;                       /* C division truncates toward zero */
  case IR_OP_MAX: return a > b ? a : b;
  case IR_OP_MIN: return a < b ? a : b;
  case IR_OP_POW: {
    /* Not admitted by the shape rule; square-and-multiply, wrapping. */
    int64_t r = 1;
    if (b < 0) return a == 1 ? 1 : (a == -1 ? (b % 2 ? -1 : 1) : 0);
    for (; b > 0; b >>= 1, a = rt_wrap_mul(a, a))
      if (b & 1) r = rt_wrap_mul(r, a);
    return r;
  }
  default: return 0;
  }
}

static double float_binary(ir_op op, double a, double b) {
  switch (op) {
  case IR_OP_ADD: return a + b;
  case IR_OP_SUB: return a - b;
  case IR_OP_MUL: return a * b;
  case IR_OP_DIV: return a / b;
  case IR_OP_POW: return pow(a, b);
  /* NaN propagates, as torch.maximum/minimum do */
  case IR_OP_MAX: return isnan(a) || isnan(b) ? NAN : (a > b ? a : b);
  case IR_OP_MIN: return isnan(a) || isnan(b) ? NAN : (a < b ? a : b);
  default: return 0;
  }
}

RT_REF_FN(rt_ref_binary) {
  (void)opts;
  (void)d;
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  ir_broadcast_strides(&in[0]->type, &out->type, sa);
  ir_broadcast_strides(&in[1]->type, &out->type, sb);
  bool fl = ir_dtype_is_float(out->type.dtype);
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    int64_t oa = rt_bcast_offset(&out->type, sa, i), ob = rt_bcast_offset(&out->type, sb, i);
    if (fl)
      rt_store_f(out, i, float_binary(n->op, rt_get_f(in[0], oa), rt_get_f(in[1], ob)));
    else
      rt_store_i(out, i, int_binary(n->op, rt_load_i(in[0], oa), rt_load_i(in[1], ob)));
  }
  return true;
}

static bool compare(ir_op op, int c) {
  switch (op) {
  case IR_OP_CMP_LT: return c < 0;
  case IR_OP_CMP_LE: return c <= 0;
  case IR_OP_CMP_GT: return c > 0;
  case IR_OP_CMP_GE: return c >= 0;
  case IR_OP_CMP_EQ: return c == 0;
  default: return false;
  }
}

RT_REF_FN(rt_ref_compare) {
  (void)opts;
  (void)d;
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  ir_broadcast_strides(&in[0]->type, &out->type, sa);
  ir_broadcast_strides(&in[1]->type, &out->type, sb);
  bool fl = ir_dtype_is_float(in[0]->type.dtype) || ir_dtype_is_float(in[1]->type.dtype);
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    int64_t oa = rt_bcast_offset(&out->type, sa, i), ob = rt_bcast_offset(&out->type, sb, i);
    bool r;
    if (fl) {
      double a = rt_get_f(in[0], oa), b = rt_get_f(in[1], ob);
      r = !isnan(a) && !isnan(b) && compare(n->op, a < b ? -1 : (a > b ? 1 : 0));
    } else {
      int64_t a = rt_get_i(in[0], oa), b = rt_get_i(in[1], ob);
      r = compare(n->op, a < b ? -1 : (a > b ? 1 : 0));
    }
    rt_store_i(out, i, r);
  }
  return true;
}

RT_REF_FN(rt_ref_select) {
  (void)n;
  (void)opts;
  (void)d;
  int64_t s[3][IR_MAX_RANK];
  for (int k = 0; k < 3; k++)
    ir_broadcast_strides(&in[k]->type, &out->type, s[k]);
  size_t es = ir_dtype_size(out->type.dtype);
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    bool c = rt_get_i(in[0], rt_bcast_offset(&out->type, s[0], i)) != 0;
    const rt_tensor *src = c ? in[1] : in[2];
    int64_t off = rt_bcast_offset(&out->type, c ? s[1] : s[2], i);
    memcpy((char *)out->data + (size_t)i * es, (const char *)src->data + (size_t)off * es, es);
  }
  return true;
}

static double gelu(double x, bool tanh_form) {
  if (tanh_form) {
    const double pi = 3.14159265358979323846;
    double k = sqrt(2.0 / pi);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
  }
  return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

/* d gelu / dx: Phi(x) + x phi(x) exactly; the tanh form's derivative by the
 * chain rule through tanh(k (x + 0.044715 x^3)). */
static double gelu_deriv(double x, bool tanh_form) {
  const double pi = 3.14159265358979323846;
  if (tanh_form) {
    double k = sqrt(2.0 / pi), t = tanh(k * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
  }
  return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * pi);
}

static double float_unary(ir_op op, double x, bool tanh_form) {
  switch (op) {
  case IR_OP_NEG: return -x;
  case IR_OP_ABS: return fabs(x);
  case IR_OP_RELU: return isnan(x) ? x : (x > 0 ? x : 0.0);
  case IR_OP_EXP: return exp(x);
  case IR_OP_LOG: return log(x);
  case IR_OP_TANH: return tanh(x);
  case IR_OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case IR_OP_SQRT: return sqrt(x);
  case IR_OP_RSQRT: return 1.0 / sqrt(x);
  case IR_OP_SIN: return sin(x);
  case IR_OP_COS: return cos(x);
  case IR_OP_ERF: return erf(x);
  case IR_OP_GELU: return gelu(x, tanh_form);
  case IR_OP_GELU_DERIV: return gelu_deriv(x, tanh_form);
  default: return 0;
  }
}

RT_REF_FN(rt_ref_unary) {
  (void)opts;
  bool tanh_form = false;
  if (n->op == IR_OP_GELU || n->op == IR_OP_GELU_DERIV) {
    const char *a = n->attrs[0].s ? n->attrs[0].s : "none";
    if (strcmp(a, "tanh") == 0)
      tanh_form = true;
    else if (strcmp(a, "none") != 0) {
      ir_diag_set(d, "gelu: approximate must be \"none\" or \"tanh\", got \"%s\"", a);
      return false;
    }
  }
  bool fl = ir_dtype_is_float(out->type.dtype);
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    if (fl) {
      rt_store_f(out, i, float_unary(n->op, rt_get_f(in[0], i), tanh_form));
      continue;
    }
    int64_t x = rt_load_i(in[0], i), r;
    switch (n->op) {
    case IR_OP_NEG: r = rt_wrap_neg(x); break;
    case IR_OP_ABS: r = x < 0 ? rt_wrap_neg(x) : x; break;
    case IR_OP_RELU: r = x > 0 ? x : 0; break;
    default:
      ir_diag_set(d, "%s: not defined for %s", rt_opname(n), ir_dtype_name(out->type.dtype));
      return false;
    }
    rt_store_i(out, i, r);
  }
  return true;
}

RT_REF_FN(rt_ref_cast) {
  (void)n;
  (void)opts;
  (void)d;
  ir_dtype from = in[0]->type.dtype, to = out->type.dtype;
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    if (ir_dtype_is_float(from)) {
      rt_store_f(out, i, rt_get_f(in[0], i)); /* NaN->0, saturating, != 0 for bool */
    } else {
      int64_t v = rt_get_i(in[0], i);
      if (to == IR_F32)
        ((float *)out->data)[i] = (float)v; /* one rounding, not two via double */
      else
        rt_store_i(out, i, v);
    }
  }
  return true;
}

RT_REF_FN(rt_ref_dropout) {
  (void)d;
  double p = n->attrs[0].f;
  int64_t e = rt_numel(out);
  if (!opts || !opts->training || !(p > 0)) {
    memcpy(out->data, in[0]->data, out->bytes);
    return true;
  }
  double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  for (int64_t i = 0; i < e; i++) {
    float u = rt_dropout_uniform(opts->seed, opts->step, rt_dropout_key(n), (uint64_t)i);
    rt_store_f(out, i, p < 1 && u >= p ? rt_get_f(in[0], i) * scale : 0.0);
  }
  return true;
}

RT_REF_FN(rt_ref_step) {
  (void)in;
  (void)d;
  uint64_t step = opts ? opts->step : 0;
  if (ir_dtype_is_float(out->type.dtype))
    rt_store_f(out, 0, (double)step);
  else
    rt_store_i(out, 0, (int64_t)step);
  (void)n;
  return true;
}

/* The node's value is the new parameter value; rt_ref_run hands it to the
 * parameter store once every node has run. */
RT_REF_FN(rt_ref_assign) {
  (void)n;
  (void)opts;
  (void)d;
  memcpy(out->data, in[1]->data, out->bytes);
  return true;
}
