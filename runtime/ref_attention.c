/* Reference kernel of attention_grad: the gradients of attention (ir.h,
 * "fused ops") with respect to q, k and v, computed plainly in double with
 * one head's whole score matrix in memory. The oracle of the streaming
 * kernels in backend/kern_attention.c. */
#include <stdlib.h>

#include "runtime/philox.h"
#include "runtime/ref_util.h"

RT_REF_FN(rt_ref_attention_grad) {
  bool has_mask = n->nin == 6;
  const rt_tensor *q = in[0], *k = in[1], *v = in[2], *mask = has_mask ? in[3] : NULL;
  const rt_tensor *dy = in[n->nin - 1];
  int r = q->type.rank;
  int64_t tq = q->type.dims[r - 2], tk = k->type.dims[r - 2];
  int64_t dh = q->type.dims[r - 1], dv = v->type.dims[r - 1];
  int64_t batch = 1;
  for (int i = 0; i < r - 2; i++)
    batch *= q->type.dims[i];
  double scale = n->attrs[0].f, maskv = n->attrs[2].f, p = n->attrs[3].f;
  bool causal = n->attrs[1].b;
  bool drop = opts && opts->training && p > 0;
  uint32_t key = n->attrs[4].i >= 0 ? (uint32_t)n->attrs[4].i : (uint32_t)n->id;
  double keep_scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  bool lengths = mask && ir_dtype_is_int(mask->type.dtype);
  int64_t len_div = 1;
  if (lengths && rt_numel(mask) > 0) len_div = batch * tq / rt_numel(mask);
  ir_type st = q->type;
  st.dims[r - 1] = tk;
  int64_t bstr[IR_MAX_RANK] = {0};
  if (mask && !lengths) ir_broadcast_strides(&mask->type, &st, bstr);

  double *w = malloc((size_t)(tq * tk + 1) * sizeof(double));      /* softmax weights */
  double *dsc = malloc((size_t)(tq * tk + 1) * sizeof(double));    /* dropout multiplier */
  double *ds = malloc((size_t)(tq * tk + 1) * sizeof(double));     /* d scores */
  bool *fixed = malloc((size_t)(tq * tk + 1) * sizeof(bool));      /* score replaced by a const */
  double *acc = calloc((size_t)rt_numel(out) + 1, sizeof(double)); /* [dq, dk, dv] */
  if (!w || !dsc || !ds || !fixed || !acc) {
    free(w), free(dsc), free(ds), free(fixed), free(acc);
    ir_diag_set(d, "%s: out of memory for a %lld x %lld score matrix", ir_op_get(n->op)->name,
                (long long)tq, (long long)tk);
    return false;
  }
  int64_t nq = tq * dh, nk = tk * dh, nv = tk * dv, no = tq * dv;
  int64_t off_dk = batch * nq, off_dv = off_dk + batch * nk;
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t i = 0; i < tq; i++) {
      int64_t len = lengths ? rt_get_i(mask, (b * tq + i) / len_div) : tk;
      double mx = -INFINITY;
      for (int64_t j = 0; j < tk; j++) {
        int64_t e = i * tk + j;
        double s = 0;
        for (int64_t c = 0; c < dh; c++)
          s += rt_get_f(q, b * nq + i * dh + c) * rt_get_f(k, b * nk + j * dh + c);
        s *= scale;
        fixed[e] = (lengths && j >= len) || (causal && j > i);
        if (mask && !lengths)
          s += rt_get_f(mask, rt_bcast_offset(&st, bstr, (b * tq + i) * tk + j));
        if (fixed[e]) s = maskv;
        w[e] = s;
        if (s > mx) mx = s;
      }
      double sum = 0;
      for (int64_t j = 0; j < tk; j++)
        sum += (w[i * tk + j] = exp(w[i * tk + j] - mx));
      for (int64_t j = 0; j < tk; j++) {
        int64_t e = i * tk + j;
        w[e] /= sum;
        dsc[e] = 1.0;
        if (drop) {
          float u =
              rt_dropout_uniform(opts->seed, opts->step, key, (uint64_t)((b * tq + i) * tk + j));
          dsc[e] = p < 1 && u >= p ? keep_scale : 0.0;
        }
      }
    }
    /* dW = (dy v^T) * mask; dS = W (dW - rowsum(W dW)), zero where replaced */
    for (int64_t i = 0; i < tq; i++) {
      double dot = 0;
      for (int64_t j = 0; j < tk; j++) {
        double g = 0;
        for (int64_t c = 0; c < dv; c++)
          g += rt_get_f(dy, b * no + i * dv + c) * rt_get_f(v, b * nv + j * dv + c);
        ds[i * tk + j] = g * dsc[i * tk + j];
        dot += w[i * tk + j] * ds[i * tk + j];
      }
      for (int64_t j = 0; j < tk; j++) {
        int64_t e = i * tk + j;
        ds[e] = fixed[e] ? 0.0 : w[e] * (ds[e] - dot);
      }
    }
    for (int64_t i = 0; i < tq; i++)
      for (int64_t j = 0; j < tk; j++) {
        double g = ds[i * tk + j] * scale, wd = w[i * tk + j] * dsc[i * tk + j];
        for (int64_t c = 0; c < dh; c++) {
          int64_t qi = b * nq + i * dh + c, ki = b * nk + j * dh + c;
          acc[qi] += g * rt_get_f(k, ki);
          acc[off_dk + ki] += g * rt_get_f(q, qi);
        }
        for (int64_t c = 0; c < dv; c++) {
          int64_t vi = off_dv + b * nv + j * dv + c;
          acc[vi] += wd * rt_get_f(dy, b * no + i * dv + c);
        }
      }
  }
  for (int64_t i = 0; i < rt_numel(out); i++)
    rt_store_f(out, i, acc[i]);
  free(w), free(dsc), free(ds), free(fixed), free(acc);
  return true;
}
