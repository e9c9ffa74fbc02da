/* Reference kernel of additive_attention_grad: the gradients of additive
 * attention (ir.h, "fused ops") with respect to qp, kp, w_v and v, packed
 * flat as [dqp, dkp, dwv, dv]. Plain loops in double, one query row at a
 * time, recomputing the scores and the softmax the forward used. */
#include <math.h>
#include <stdlib.h>

#include "runtime/philox.h"
#include "runtime/ref_kernels.h"
#include "runtime/ref_util.h"

RT_REF_FN(rt_ref_additive_attention_grad) {
  bool has_len = n->nin == 6;
  const rt_tensor *qp = in[0], *kp = in[1], *wv = in[2], *v = in[3], *len = has_len ? in[4] : NULL,
                  *dout = in[n->nin - 1];
  int r = qp->type.rank;
  int64_t tq = qp->type.dims[r - 2], h = qp->type.dims[r - 1], tk = kp->type.dims[r - 2],
          dv = v->type.dims[r - 1], nb = 1;
  for (int i = 0; i < r - 2; i++)
    nb *= qp->type.dims[i];
  /* lengths index [batch..., Tq] flattened, divided by the dims they lack */
  int64_t inner = 1;
  if (len)
    for (int i = len->type.rank; i < r - 1; i++)
      inner *= qp->type.dims[i];
  double mask_value = n->attrs[0].f, p = n->attrs[1].f;
  uint32_t key = n->attrs[2].i >= 0 ? (uint32_t)n->attrs[2].i : (uint32_t)n->id;
  bool drop = opts && opts->training && p > 0;
  double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  int64_t o_dqp = 0, o_dkp = nb * tq * h, o_dwv = o_dkp + nb * tk * h, o_dv = o_dwv + h;
  int64_t total = o_dv + nb * tk * dv;
  double *acc = calloc((size_t)total, sizeof *acc);
  double *s = malloc(sizeof(double) * (size_t)(3 * tk + 1));
  if (!acc || !s) {
    free(acc), free(s);
    ir_diag_set(d, "%s: out of memory", ir_op_get(n->op)->name);
    return false;
  }
  double *pr = s + tk, *dp = pr + tk;
  for (int64_t b = 0; b < nb; b++)
    for (int64_t i = 0; i < tq; i++) {
      int64_t row = b * tq + i, lim = len ? rt_get_i(len, row / inner) : tk;
      double mx = -INFINITY;
      for (int64_t j = 0; j < tk; j++) {
        double acc_s = 0;
        for (int64_t e = 0; e < h; e++)
          acc_s += rt_get_f(wv, e) *
                   tanh(rt_get_f(qp, row * h + e) + rt_get_f(kp, (b * tk + j) * h + e));
        s[j] = j >= lim ? mask_value : acc_s;
        if (s[j] > mx) mx = s[j];
      }
      double sum = 0;
      for (int64_t j = 0; j < tk; j++)
        sum += pr[j] = exp(s[j] - mx);
      double dot = 0;
      for (int64_t j = 0; j < tk; j++) {
        pr[j] /= sum;
        double keep = 1;
        if (drop) {
          float u = rt_dropout_uniform(opts->seed, opts->step, key, (uint64_t)(row * tk + j));
          keep = p < 1 && u >= p ? scale : 0;
        }
        double g = 0; /* d out / d (dropped weight j) */
        for (int64_t e = 0; e < dv; e++) {
          double go = rt_get_f(dout, row * dv + e);
          g += go * rt_get_f(v, (b * tk + j) * dv + e);
          acc[o_dv + (b * tk + j) * dv + e] += pr[j] * keep * go;
        }
        dp[j] = g * keep;
        dot += pr[j] * dp[j];
      }
      for (int64_t j = 0; j < tk; j++) {
        double ds = j >= lim ? 0 : pr[j] * (dp[j] - dot);
        for (int64_t e = 0; e < h; e++) {
          double t = tanh(rt_get_f(qp, row * h + e) + rt_get_f(kp, (b * tk + j) * h + e));
          double gf = ds * rt_get_f(wv, e) * (1 - t * t);
          acc[o_dwv + e] += ds * t;
          acc[o_dqp + row * h + e] += gf;
          acc[o_dkp + (b * tk + j) * h + e] += gf;
        }
      }
    }
  for (int64_t i = 0; i < total; i++)
    rt_store_f(out, i, acc[i]);
  free(acc), free(s);
  return true;
}
