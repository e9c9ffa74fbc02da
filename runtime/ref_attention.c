/* Reference kernels of attention_grad (the gradients of attention with
 * respect to q, k and v) and attention_lse (the output and its row
 * log-sum-exp; ir.h, "fused ops"), computed plainly in double with one
 * head's whole score matrix in memory. The oracle of the streaming kernels
 * in backend/kern_attention.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/philox.h"
#include "runtime/ref_util.h"

/* One call's operands and attributes, read once. */
typedef struct ref_att {
  const rt_tensor *q, *k, *v, *mask;
  int64_t tq, tk, dh, dv, batch, len_div;
  double scale, maskv, p, keep_scale;
  bool causal, drop, lengths;
  uint32_t key;
  const rt_ref_opts *opts;
  ir_type st; /* the scores' type, for the bias's broadcast strides */
  int64_t bstr[IR_MAX_RANK];
} ref_att;

static void att_init(ref_att *c, const ir_node *n, const rt_tensor *const *in, bool has_mask,
                     const rt_ref_opts *opts) {
  c->q = in[0], c->k = in[1], c->v = in[2], c->mask = has_mask ? in[3] : NULL;
  int r = c->q->type.rank;
  c->tq = c->q->type.dims[r - 2], c->tk = c->k->type.dims[r - 2];
  c->dh = c->q->type.dims[r - 1], c->dv = c->v->type.dims[r - 1];
  c->batch = 1;
  for (int i = 0; i < r - 2; i++)
    c->batch *= c->q->type.dims[i];
  c->scale = n->attrs[0].f, c->maskv = n->attrs[2].f, c->p = n->attrs[3].f;
  c->causal = n->attrs[1].b;
  c->drop = opts && opts->training && c->p > 0;
  c->opts = opts;
  c->key = n->attrs[4].i >= 0 ? (uint32_t)n->attrs[4].i : (uint32_t)n->id;
  c->keep_scale = c->p < 1 ? 1.0 / (1.0 - c->p) : 0.0;
  c->lengths = c->mask && ir_dtype_is_int(c->mask->type.dtype);
  c->len_div = 1;
  if (c->lengths && rt_numel(c->mask) > 0) c->len_div = c->batch * c->tq / rt_numel(c->mask);
  c->st = c->q->type;
  c->st.dims[r - 1] = c->tk;
  memset(c->bstr, 0, sizeof c->bstr);
  if (c->mask && !c->lengths) ir_broadcast_strides(&c->mask->type, &c->st, c->bstr);
}

/* Head b's softmax weights w, dropout multipliers dsc, which scores a mask
 * replaced by a constant (fixed), and each row's log-sum-exp (lse, may be
 * NULL), all [tq, tk] (lse [tq]). */
static void head_weights(const ref_att *c, int64_t b, double *w, double *dsc, bool *fixed,
                         double *lse) {
  int64_t tq = c->tq, tk = c->tk, dh = c->dh, nq = tq * dh, nk = tk * dh;
  for (int64_t i = 0; i < tq; i++) {
    int64_t len = c->lengths ? rt_get_i(c->mask, (b * tq + i) / c->len_div) : tk;
    double mx = -INFINITY;
    for (int64_t j = 0; j < tk; j++) {
      int64_t e = i * tk + j;
      double s = 0;
      for (int64_t t = 0; t < dh; t++)
        s += rt_get_f(c->q, b * nq + i * dh + t) * rt_get_f(c->k, b * nk + j * dh + t);
      s *= c->scale;
      fixed[e] = (c->lengths && j >= len) || (c->causal && j > i);
      if (c->mask && !c->lengths)
        s += rt_get_f(c->mask, rt_bcast_offset(&c->st, c->bstr, (b * tq + i) * tk + j));
      if (fixed[e]) s = c->maskv;
      w[e] = s;
      if (s > mx) mx = s;
    }
    double sum = 0;
    for (int64_t j = 0; j < tk; j++)
      sum += (w[i * tk + j] = exp(w[i * tk + j] - mx));
    if (lse) lse[i] = mx + log(sum);
    for (int64_t j = 0; j < tk; j++) {
      int64_t e = i * tk + j;
      w[e] /= sum;
      dsc[e] = 1.0;
      if (c->drop) {
        float u = rt_dropout_uniform(c->opts->seed, c->opts->step, c->key,
                                     (uint64_t)((b * tq + i) * tk + j));
        dsc[e] = c->p < 1 && u >= c->p ? c->keep_scale : 0.0;
      }
    }
  }
}

/* Scratch of one head's [tq, tk] matrices; false with d set. */
static bool att_alloc(const ir_node *n, const ref_att *c, double **w, double **dsc, double **ds,
                      bool **fixed, ir_diag *d) {
  size_t e = (size_t)(c->tq * c->tk + 1);
  *w = malloc(e * sizeof(double)), *dsc = malloc(e * sizeof(double));
  *ds = malloc(e * sizeof(double)), *fixed = malloc(e * sizeof(bool));
  if (*w && *dsc && *ds && *fixed) return true;
  free(*w), free(*dsc), free(*ds), free(*fixed);
  ir_diag_set(d, "%s: out of memory for a %lld x %lld score matrix", ir_op_get(n->op)->name,
              (long long)c->tq, (long long)c->tk);
  return false;
}

RT_REF_FN(rt_ref_attention_lse) {
  ref_att at;
  att_init(&at, n, in, n->nin == 4, opts);
  double *w, *dsc, *ds, *lse;
  bool *fixed;
  if (!att_alloc(n, &at, &w, &dsc, &ds, &fixed, d)) return false;
  lse = ds; /* [tq] fits in [tq, tk] unless tk = 0 */
  int64_t tq = at.tq, tk = at.tk, dv = at.dv, no = tq * dv, nv = tk * dv;
  for (int64_t b = 0; b < at.batch; b++) {
    head_weights(&at, b, w, dsc, fixed, tk > 0 ? lse : NULL);
    for (int64_t i = 0; i < tq; i++) {
      for (int64_t t = 0; t < dv; t++) {
        double o = 0;
        for (int64_t j = 0; j < tk; j++)
          o += w[i * tk + j] * dsc[i * tk + j] * rt_get_f(at.v, b * nv + j * dv + t);
        rt_store_f(out, b * no + i * dv + t, o);
      }
      rt_store_f(out, at.batch * no + b * tq + i, tk > 0 ? lse[i] : -INFINITY);
    }
  }
  free(w), free(dsc), free(ds), free(fixed);
  return true;
}

RT_REF_FN(rt_ref_attention_grad) {
  ref_att at;
  att_init(&at, n, in, n->nin == 6, opts);
  const rt_tensor *q = at.q, *k = at.k, *v = at.v, *dy = in[n->nin - 1];
  int64_t tq = at.tq, tk = at.tk, dh = at.dh, dv = at.dv, batch = at.batch;
  double scale = at.scale;
  double *w, *dsc, *ds;
  bool *fixed;
  if (!att_alloc(n, &at, &w, &dsc, &ds, &fixed, d)) return false;
  double *acc = calloc((size_t)rt_numel(out) + 1, sizeof(double)); /* [dq, dk, dv] */
  if (!acc) {
    free(w), free(dsc), free(ds), free(fixed);
    ir_diag_set(d, "%s: out of memory", ir_op_get(n->op)->name);
    return false;
  }
  int64_t nq = tq * dh, nk = tk * dh, nv = tk * dv, no = tq * dv;
  int64_t off_dk = batch * nq, off_dv = off_dk + batch * nk;
  for (int64_t b = 0; b < batch; b++) {
    head_weights(&at, b, w, dsc, fixed, NULL);
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
