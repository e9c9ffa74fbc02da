/* Reference kernels for reductions and normalisations: sum, mean,
 * reduce_max, softmax, log_softmax, layernorm and softmax cross-entropy.
 * Accumulation is in double (floats) or wrapping int64 (integers); softmax
 * and the loss subtract the row maximum first so large logits stay finite. */
#include <math.h>
#include <stdlib.h>

#include "runtime/ref_util.h"

RT_REF_FN(rt_ref_reduce) {
  (void)opts;
  const ir_type *xt = &in[0]->type;
  const ir_ints *axes = &n->attrs[0].ints;
  bool reduced[IR_MAX_RANK] = {false};
  for (int k = 0; k < axes->n; k++) {
    int a;
    if (!rt_norm_axis(axes->v[k], xt->rank, &a) || reduced[a]) {
      ir_diag_set(d, "%s: bad or repeated axis %lld for rank %d", rt_opname(n),
                  (long long)axes->v[k], xt->rank);
      return false;
    }
    reduced[a] = true;
  }
  /* The keepdims shape has the same row-major flat order as the result
   * whether or not the size-1 axes are dropped. */
  ir_type kt = *xt;
  for (int i = 0; i < xt->rank; i++)
    if (reduced[i]) kt.dims[i] = 1;
  int64_t no = rt_numel(out), nx = rt_numel(in[0]);
  if (ir_type_numel(&kt) != no) {
    ir_diag_set(d, "%s: result has %lld elements, expected %lld", rt_opname(n), (long long)no,
                (long long)ir_type_numel(&kt));
    return false;
  }
  int64_t ks[IR_MAX_RANK];
  ir_strides(&kt, ks);
  for (int i = 0; i < xt->rank; i++)
    if (reduced[i]) ks[i] = 0;
  int64_t count = no > 0 ? nx / no : 0;
  bool fl = ir_dtype_is_float(xt->dtype), mx = n->op == IR_OP_REDUCE_MAX;
  double *accf = calloc((size_t)(no ? no : 1), sizeof *accf);
  int64_t *acci = calloc((size_t)(no ? no : 1), sizeof *acci);
  if (!accf || !acci) {
    free(accf);
    free(acci);
    ir_diag_set(d, "%s: out of memory", rt_opname(n));
    return false;
  }
  for (int64_t o = 0; o < no; o++) {
    accf[o] = mx ? -INFINITY : 0.0;
    /* the maximum of nothing is the dtype's least value, as for floats */
    acci[o] = mx ? (xt->dtype == IR_I32 ? INT32_MIN : INT64_MIN) : 0;
  }
  for (int64_t i = 0; i < nx; i++) {
    int64_t o = rt_bcast_offset(xt, ks, i);
    if (fl) {
      double v = rt_get_f(in[0], i);
      if (!mx)
        accf[o] += v;
      else if (isnan(v) || v > accf[o]) /* NaN propagates, as torch.amax */
        accf[o] = isnan(accf[o]) ? accf[o] : v;
    } else {
      int64_t v = rt_get_i(in[0], i);
      acci[o] = mx ? (v > acci[o] ? v : acci[o]) : rt_wrap_add(acci[o], v);
    }
  }
  for (int64_t o = 0; o < no; o++) {
    if (fl) {
      double v = accf[o];
      if (n->op == IR_OP_MEAN) v = v / (double)count;
      rt_store_f(out, o, v);
    } else {
      int64_t v = acci[o];
      if (n->op == IR_OP_MEAN) v = count ? v / count : 0;
      rt_store_i(out, o, v);
    }
  }
  free(accf);
  free(acci);
  return true;
}

/* Splits a shape around `axis` into outer x len x inner. */
static void split_axis(const ir_type *t, int axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < axis; i++)
    *outer *= t->dims[i];
  for (int i = axis + 1; i < t->rank; i++)
    *inner *= t->dims[i];
  *len = t->dims[axis];
}

RT_REF_FN(rt_ref_softmax) {
  (void)opts;
  const ir_type *xt = &in[0]->type;
  int axis;
  if (!rt_norm_axis(n->attrs[0].i, xt->rank, &axis)) {
    ir_diag_set(d, "%s: axis %lld out of range for rank %d", rt_opname(n), (long long)n->attrs[0].i,
                xt->rank);
    return false;
  }
  int64_t outer, len, inner;
  split_axis(xt, axis, &outer, &len, &inner);
  bool logf = n->op == IR_OP_LOG_SOFTMAX;
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t j = 0; j < inner; j++) {
      int64_t base = o * len * inner + j;
      double m = -INFINITY;
      for (int64_t k = 0; k < len; k++) {
        double v = rt_get_f(in[0], base + k * inner);
        if (v > m || isnan(v)) m = isnan(m) ? m : v;
      }
      double s = 0;
      for (int64_t k = 0; k < len; k++)
        s += exp(rt_get_f(in[0], base + k * inner) - m);
      for (int64_t k = 0; k < len; k++) {
        double z = rt_get_f(in[0], base + k * inner) - m;
        rt_store_f(out, base + k * inner, logf ? z - log(s) : exp(z) / s);
      }
    }
  }
  return true;
}

RT_REF_FN(rt_ref_layernorm) {
  (void)opts;
  const ir_type *xt = &in[0]->type;
  if (xt->rank < 1) {
    ir_diag_set(d, "layernorm: needs rank >= 1");
    return false;
  }
  double eps = n->attrs[0].f;
  int64_t dlen = xt->dims[xt->rank - 1], rows = dlen ? rt_numel(in[0]) / dlen : 0;
  int64_t sg[IR_MAX_RANK], sb[IR_MAX_RANK];
  ir_broadcast_strides(&in[1]->type, xt, sg);
  ir_broadcast_strides(&in[2]->type, xt, sb);
  for (int64_t r = 0; r < rows; r++) {
    int64_t base = r * dlen;
    double mean = 0, var = 0;
    for (int64_t k = 0; k < dlen; k++)
      mean += rt_get_f(in[0], base + k);
    mean /= (double)dlen;
    for (int64_t k = 0; k < dlen; k++) {
      double c = rt_get_f(in[0], base + k) - mean;
      var += c * c;
    }
    var /= (double)dlen; /* biased, as torch.nn.LayerNorm */
    double inv = 1.0 / sqrt(var + eps);
    for (int64_t k = 0; k < dlen; k++) {
      int64_t i = base + k;
      double g = rt_get_f(in[1], rt_bcast_offset(xt, sg, i));
      double b = rt_get_f(in[2], rt_bcast_offset(xt, sb, i));
      rt_store_f(out, i, (rt_get_f(in[0], i) - mean) * inv * g + b);
    }
  }
  return true;
}

RT_REF_FN(rt_ref_xent) {
  (void)opts;
  const ir_type *lt = &in[0]->type;
  if (lt->rank < 1) {
    ir_diag_set(d, "softmax_cross_entropy: logits need rank >= 1");
    return false;
  }
  int64_t v = lt->dims[lt->rank - 1], rows = rt_numel(in[1]);
  if (rows != rt_numel(out) || rows * v != rt_numel(in[0])) {
    ir_diag_set(d, "softmax_cross_entropy: labels do not match the logits' leading dims");
    return false;
  }
  int64_t ignore = n->attrs[0].i;
  for (int64_t r = 0; r < rows; r++) {
    int64_t label = rt_load_i(in[1], r);
    if (label == ignore) {
      rt_store_f(out, r, 0.0);
      continue;
    }
    if (label < 0 || label >= v) {
      ir_diag_set(d, "softmax_cross_entropy: label %lld out of range [0, %lld) at position %lld",
                  (long long)label, (long long)v, (long long)r);
      return false;
    }
    int64_t base = r * v;
    double m = -INFINITY;
    for (int64_t k = 0; k < v; k++) {
      double x = rt_get_f(in[0], base + k);
      if (x > m || isnan(x)) m = isnan(m) ? m : x;
    }
    double s = 0;
    for (int64_t k = 0; k < v; k++)
      s += exp(rt_get_f(in[0], base + k) - m);
    rt_store_f(out, r, log(s) + m - rt_get_f(in[0], base + label));
  }
  return true;
}
