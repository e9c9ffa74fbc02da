/* Shape rules of the fused ops the fusion passes make (attention,
 * additive_attention, scale_mask_softmax) and of their gradient ops. The
 * gradient ops return every operand gradient packed into one flat vector
 * (the IR has one result per node); the gradient rules slice it apart. */
#include "ir/shape.h"
#include "ir/shape_util.h"

static bool is_fp(const ir_type *t) { return t->dtype == IR_F32 || t->dtype == IR_F64; }

/* Same dtype as ref, float, rank >= 2; its leading dims (all but the last
 * two) equal ref's. */
static bool check_batched(ir_op op, int nin, const ir_type *in, int k, const char *what,
                          const ir_type *ref, ir_diag *d) {
  const ir_type *t = &in[k];
  if (!is_fp(t) || t->dtype != ref->dtype)
    return ir_shape_fail(op, nin, in, d, "%s must be f32 or f64 like the queries", what);
  if (t->rank != ref->rank)
    return ir_shape_fail(op, nin, in, d, "%s has rank %d, the queries %d", what, t->rank,
                         ref->rank);
  for (int i = 0; i < t->rank - 2; i++)
    if (t->dims[i] != ref->dims[i])
      return ir_shape_fail(op, nin, in, d, "%s's batch dimension %d is %lld, the queries' %lld",
                           what, i, (long long)t->dims[i], (long long)ref->dims[i]);
  return true;
}

/* The optional mask operand against scores of shape [batch..., tq, tk]:
 * integer lengths whose shape is a prefix of [batch..., tq], or a float
 * additive bias that broadcasts to the scores. */
static bool check_mask(ir_op op, int nin, const ir_type *in, int k, const ir_type *scores,
                       ir_diag *d) {
  const ir_type *m = &in[k];
  if (ir_dtype_is_int(m->dtype)) {
    if (m->rank >= scores->rank)
      return ir_shape_fail(op, nin, in, d, "lengths need a lower rank than the scores (%d vs %d)",
                           m->rank, scores->rank);
    for (int i = 0; i < m->rank; i++)
      if (m->dims[i] != scores->dims[i])
        return ir_shape_fail(op, nin, in, d,
                             "lengths' shape must be a prefix of the scores' "
                             "(dimension %d is %lld, the scores have %lld)",
                             i, (long long)m->dims[i], (long long)scores->dims[i]);
    return true;
  }
  if (m->dtype != scores->dtype)
    return ir_shape_fail(op, nin, in, d, "the mask must be integer lengths or a %s bias",
                         ir_dtype_name(scores->dtype));
  ir_type b;
  if (!ir_broadcast(m, scores, &b) || !ir_shape_eq(&b, scores))
    return ir_shape_fail(op, nin, in, d, "the bias does not broadcast to the scores");
  return true;
}

static ir_type scores_type(const ir_type *q, int64_t tk) {
  ir_type s = *q;
  s.dims[s.rank - 1] = tk;
  return s;
}

/* q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] (+ mask); nbase = 3. */
static bool check_attention(ir_op op, int nin, const ir_type *in, ir_type *scores, ir_diag *d) {
  const ir_type *q = &in[0], *k = &in[1], *v = &in[2];
  if (!is_fp(q) || q->rank < 2)
    return ir_shape_fail(op, nin, in, d, "queries must be f32/f64 of rank >= 2");
  if (!check_batched(op, nin, in, 1, "keys", q, d) ||
      !check_batched(op, nin, in, 2, "values", q, d))
    return false;
  int r = q->rank;
  if (k->dims[r - 1] != q->dims[r - 1])
    return ir_shape_fail(op, nin, in, d, "keys have width %lld, queries %lld",
                         (long long)k->dims[r - 1], (long long)q->dims[r - 1]);
  if (v->dims[r - 2] != k->dims[r - 2])
    return ir_shape_fail(op, nin, in, d, "%lld values for %lld keys", (long long)v->dims[r - 2],
                         (long long)k->dims[r - 2]);
  *scores = scores_type(q, k->dims[r - 2]);
  return true;
}

static bool flat(ir_op op, int nin, const ir_type *in, const int *which, int n, ir_type *out,
                 ir_diag *d) {
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    int64_t e = ir_type_numel(&in[which[i]]);
    if (total > INT64_MAX - e) return ir_shape_fail(op, nin, in, d, "too many elements");
    total += e;
  }
  *out = ir_type_make(in[0].dtype, 1, &total);
  return true;
}

IR_SHAPE_FN(ir_shape_attention) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 5, d)) return false;
  if (nin != 3 && nin != 4)
    return ir_shape_fail(op, nin, in, d, "takes q, k, v and an optional mask");
  ir_type s;
  if (!check_attention(op, nin, in, &s, d)) return false;
  if (nin == 4 && !check_mask(op, nin, in, 3, &s, d)) return false;
  *out = in[0];
  out->dims[out->rank - 1] = in[2].dims[in[2].rank - 1];
  return true;
}

/* attention_lse(q, k, v [, mask]): flat [o, lse], lse one per query row. */
IR_SHAPE_FN(ir_shape_attention_lse) {
  ir_type o;
  if (!ir_shape_attention(op, nin, in, attrs, &o, d)) return false;
  int64_t n = ir_type_numel(&o) + ir_type_numel(&o) / (o.dims[o.rank - 1] ? o.dims[o.rank - 1] : 1);
  *out = ir_type_make(o.dtype, 1, &n);
  return true;
}

/* attention_grad(q, k, v, [mask,] o, do): flat [dq, dk, dv]. o may be an
 * attention_lse result ([o, lse] flat) instead. */
IR_SHAPE_FN(ir_shape_attention_grad) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 5, d)) return false;
  if (nin != 5 && nin != 6)
    return ir_shape_fail(op, nin, in, d, "takes q, k, v, an optional mask, o and do");
  ir_type s;
  if (!check_attention(op, nin, in, &s, d)) return false;
  if (nin == 6 && !check_mask(op, nin, in, 3, &s, d)) return false;
  ir_type o = in[0], packed;
  o.dims[o.rank - 1] = in[2].dims[in[2].rank - 1];
  if (!ir_shape_attention_lse(op, nin - 2, in, attrs, &packed, d)) return false;
  if (!ir_type_eq(&in[nin - 2], &o) && !ir_type_eq(&in[nin - 2], &packed))
    return ir_shape_fail(op, nin, in, d,
                         "o must have the output's type, or be attention_lse's [o, lse]");
  if (!ir_type_eq(&in[nin - 1], &o))
    return ir_shape_fail(op, nin, in, d, "do must have the output's type");
  return flat(op, nin, in, (const int[]){0, 1, 2}, 3, out, d);
}

/* qp [..., Tq, H], kp [..., Tk, H], wv (H elements), v [..., Tk, dv]. */
static bool check_additive(ir_op op, int nin, const ir_type *in, ir_type *scores, ir_diag *d) {
  const ir_type *q = &in[0], *k = &in[1], *w = &in[2], *v = &in[3];
  if (!is_fp(q) || q->rank < 2)
    return ir_shape_fail(op, nin, in, d, "projected queries must be f32/f64 of rank >= 2");
  if (!check_batched(op, nin, in, 1, "projected keys", q, d) ||
      !check_batched(op, nin, in, 3, "values", q, d))
    return false;
  int r = q->rank;
  int64_t h = q->dims[r - 1];
  if (k->dims[r - 1] != h)
    return ir_shape_fail(op, nin, in, d, "projected keys have width %lld, queries %lld",
                         (long long)k->dims[r - 1], (long long)h);
  if (w->dtype != q->dtype || w->rank > 2 || ir_type_numel(w) != h ||
      (w->rank >= 1 && w->dims[w->rank - 1] != h && w->dims[0] != h))
    return ir_shape_fail(op, nin, in, d, "w_v must hold %lld elements ([H], [1, H] or [H, 1])",
                         (long long)h);
  if (v->dims[r - 2] != k->dims[r - 2])
    return ir_shape_fail(op, nin, in, d, "%lld values for %lld keys", (long long)v->dims[r - 2],
                         (long long)k->dims[r - 2]);
  *scores = scores_type(q, k->dims[r - 2]);
  return true;
}

IR_SHAPE_FN(ir_shape_additive_attention) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 3, d)) return false;
  if (nin != 4 && nin != 5)
    return ir_shape_fail(op, nin, in, d, "takes qp, kp, w_v, v and optional lengths");
  ir_type s;
  if (!check_additive(op, nin, in, &s, d)) return false;
  if (nin == 5 && !ir_dtype_is_int(in[4].dtype))
    return ir_shape_fail(op, nin, in, d, "the mask must be integer lengths");
  if (nin == 5 && !check_mask(op, nin, in, 4, &s, d)) return false;
  *out = in[0];
  out->dims[out->rank - 1] = in[3].dims[in[3].rank - 1];
  return true;
}

/* additive_attention_grad(qp, kp, wv, v, [len,] do): flat [dqp, dkp, dwv, dv]. */
IR_SHAPE_FN(ir_shape_additive_attention_grad) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 3, d)) return false;
  if (nin != 5 && nin != 6)
    return ir_shape_fail(op, nin, in, d, "takes qp, kp, w_v, v, optional lengths and do");
  ir_type s;
  if (!check_additive(op, nin, in, &s, d)) return false;
  if (nin == 6 && !ir_dtype_is_int(in[4].dtype))
    return ir_shape_fail(op, nin, in, d, "the mask must be integer lengths");
  if (nin == 6 && !check_mask(op, nin, in, 4, &s, d)) return false;
  ir_type o = in[0];
  o.dims[o.rank - 1] = in[3].dims[in[3].rank - 1];
  if (!ir_type_eq(&in[nin - 1], &o))
    return ir_shape_fail(op, nin, in, d, "do must have the output's type");
  return flat(op, nin, in, (const int[]){0, 1, 2, 3}, 4, out, d);
}

/* scale_mask_softmax(x [, mask]): x's type. */
IR_SHAPE_FN(ir_shape_scale_mask_softmax) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 3, d)) return false;
  if (nin != 1 && nin != 2) return ir_shape_fail(op, nin, in, d, "takes x and an optional mask");
  if (!is_fp(&in[0]) || in[0].rank < 1)
    return ir_shape_fail(op, nin, in, d, "x must be f32/f64 of rank >= 1");
  if (nin == 2 && !check_mask(op, nin, in, 1, &in[0], d)) return false;
  *out = in[0];
  return true;
}
