/* Shape rules of the ops that change shapes or combine axes: reductions,
 * normalisations, data movement (reshape, transpose, broadcast_to, slice,
 * concat, gather), matmul, sequence_mask and the cross-entropy loss. */
#include <string.h>

#include "ir/shape.h"
#include "ir/shape_util.h"

/* "[2,3,4]" for messages about list attributes. */
static const char *ints_str(const ir_ints *l, char *buf, size_t len) {
  size_t k = 0;
  buf[0] = 0;
  k += (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < l->n && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)l->v[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

static bool check_shape_attr(ir_op op, int nin, const ir_type *in, const ir_ints *s, ir_diag *d) {
  if (s->n > IR_MAX_RANK)
    return ir_shape_fail(op, nin, in, d, "shape has rank %d, more than %d", s->n, IR_MAX_RANK);
  for (int i = 0; i < s->n; i++)
    if (s->v[i] < 0)
      return ir_shape_fail(op, nin, in, d, "negative dimension %lld in shape", (long long)s->v[i]);
  return true;
}

/* ---- reductions and normalisations ------------------------------------- */

IR_SHAPE_FN(ir_shape_reduce) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 2, d)) return false;
  const ir_type *x = &in[0];
  const ir_ints *axes = &attrs[0].ints;
  bool keep = attrs[1].b;
  if (x->dtype == IR_BOOL) return ir_shape_fail(op, nin, in, d, "bool operands not supported");
  if (op == IR_OP_MEAN && !ir_dtype_is_float(x->dtype))
    return ir_shape_fail(op, nin, in, d, "needs a float dtype (f32 or f64), got %s",
                         ir_dtype_name(x->dtype));
  bool reduced[IR_MAX_RANK] = {false};
  for (int i = 0; i < axes->n; i++) {
    int ax;
    if (!ir_norm_axis(axes->v[i], x->rank, &ax))
      return ir_shape_fail(op, nin, in, d, "axis %lld is out of range for rank %d",
                           (long long)axes->v[i], x->rank);
    if (reduced[ax])
      return ir_shape_fail(op, nin, in, d, "duplicate axis %lld (axis %d listed twice)",
                           (long long)axes->v[i], ax);
    reduced[ax] = true;
  }
  ir_type o = {.dtype = x->dtype, .rank = 0};
  for (int i = 0; i < x->rank; i++) {
    if (!reduced[i])
      o.dims[o.rank++] = x->dims[i];
    else if (keep)
      o.dims[o.rank++] = 1;
  }
  *out = o;
  return true;
}

static bool float_rank1(ir_op op, int nin, const ir_type *in, const ir_type *x, ir_diag *d) {
  if (!ir_dtype_is_float(x->dtype))
    return ir_shape_fail(op, nin, in, d, "needs a float dtype (f32 or f64), got %s",
                         ir_dtype_name(x->dtype));
  if (x->rank < 1) return ir_shape_fail(op, nin, in, d, "needs rank >= 1, got a scalar");
  return true;
}

IR_SHAPE_FN(ir_shape_softmax) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 1, d)) return false;
  if (!float_rank1(op, nin, in, &in[0], d)) return false;
  int ax;
  if (!ir_norm_axis(attrs[0].i, in[0].rank, &ax))
    return ir_shape_fail(op, nin, in, d, "axis %lld is out of range for rank %d",
                         (long long)attrs[0].i, in[0].rank);
  *out = in[0];
  return true;
}

IR_SHAPE_FN(ir_shape_layernorm) {
  if (!ir_shape_begin(op, nin, in, attrs, 3, 1, d)) return false;
  const ir_type *x = &in[0];
  if (!float_rank1(op, nin, in, x, d)) return false;
  int64_t D = x->dims[x->rank - 1];
  ir_type want = ir_type_make(x->dtype, 1, &D);
  static const char *const what[] = {"gamma", "beta"};
  for (int i = 1; i <= 2; i++) {
    if (!ir_type_eq(&in[i], &want)) {
      char w[IR_TYPE_STRLEN];
      return ir_shape_fail(op, nin, in, d, "%s must be %s (x's dtype, [last dim of x])",
                           what[i - 1], ir_type_str(&want, w, sizeof w));
    }
  }
  double eps = attrs[0].f;
  if (!(eps > 0.0)) return ir_shape_fail(op, nin, in, d, "eps must be > 0, got %g", eps);
  *out = *x;
  return true;
}

/* ---- data movement ------------------------------------------------------ */

IR_SHAPE_FN(ir_shape_reshape) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 1, d)) return false;
  const ir_ints *s = &attrs[0].ints;
  if (!check_shape_attr(op, nin, in, s, d)) return false;
  int64_t want, have;
  char buf[160];
  if (!ir_checked_numel(s->n, s->v, &want))
    return ir_shape_fail(op, nin, in, d, "element count of shape %s overflows",
                         ints_str(s, buf, sizeof buf));
  if (!ir_checked_numel(in[0].rank, in[0].dims, &have))
    return ir_shape_fail(op, nin, in, d, "element count of the operand overflows");
  if (want != have)
    return ir_shape_fail(op, nin, in, d,
                         "cannot reshape %lld elements into shape %s (%lld elements)",
                         (long long)have, ints_str(s, buf, sizeof buf), (long long)want);
  *out = ir_type_make(in[0].dtype, s->n, s->v);
  return true;
}

IR_SHAPE_FN(ir_shape_transpose) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 1, d)) return false;
  const ir_ints *p = &attrs[0].ints;
  const ir_type *x = &in[0];
  char buf[160];
  if (p->n != x->rank)
    return ir_shape_fail(op, nin, in, d, "perm %s has %d entries for rank %d",
                         ints_str(p, buf, sizeof buf), p->n, x->rank);
  bool seen[IR_MAX_RANK] = {false};
  ir_type o = {.dtype = x->dtype, .rank = x->rank};
  for (int i = 0; i < p->n; i++) {
    int64_t v = p->v[i];
    if (v < 0 || v >= x->rank || seen[v])
      return ir_shape_fail(op, nin, in, d, "perm %s is not a permutation of 0..%d",
                           ints_str(p, buf, sizeof buf), x->rank - 1);
    seen[v] = true;
    o.dims[i] = x->dims[v];
  }
  *out = o;
  return true;
}

IR_SHAPE_FN(ir_shape_broadcast_to) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 1, d)) return false;
  const ir_ints *s = &attrs[0].ints;
  const ir_type *x = &in[0];
  if (!check_shape_attr(op, nin, in, s, d)) return false;
  char buf[160];
  if (x->rank > s->n)
    return ir_shape_fail(op, nin, in, d, "cannot broadcast to %s: operand rank %d > target rank %d",
                         ints_str(s, buf, sizeof buf), x->rank, s->n);
  int off = s->n - x->rank;
  for (int i = 0; i < x->rank; i++) {
    if (x->dims[i] != 1 && x->dims[i] != s->v[off + i])
      return ir_shape_fail(
          op, nin, in, d, "cannot broadcast to %s: operand dim %d is %lld, target %lld",
          ints_str(s, buf, sizeof buf), i, (long long)x->dims[i], (long long)s->v[off + i]);
  }
  *out = ir_type_make(x->dtype, s->n, s->v);
  return true;
}

IR_SHAPE_FN(ir_shape_slice) {
  if (!ir_shape_begin(op, nin, in, attrs, 1, 2, d)) return false;
  const ir_ints *st = &attrs[0].ints, *en = &attrs[1].ints;
  const ir_type *x = &in[0];
  if (st->n != x->rank || en->n != x->rank)
    return ir_shape_fail(op, nin, in, d,
                         "starts and ends need one entry per axis (%d), got %d and %d", x->rank,
                         st->n, en->n);
  ir_type o = *x;
  for (int i = 0; i < x->rank; i++) {
    int64_t s = st->v[i], e = en->v[i];
    if (!(0 <= s && s <= e && e <= x->dims[i]))
      return ir_shape_fail(op, nin, in, d,
                           "axis %d: needs 0 <= start <= end <= %lld, got start %lld, end %lld", i,
                           (long long)x->dims[i], (long long)s, (long long)e);
    o.dims[i] = e - s;
  }
  *out = o;
  return true;
}

IR_SHAPE_FN(ir_shape_concat) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 1, d)) return false;
  const ir_type *x = &in[0];
  if (x->rank < 1) return ir_shape_fail(op, nin, in, d, "operands need rank >= 1");
  int ax;
  if (!ir_norm_axis(attrs[0].i, x->rank, &ax))
    return ir_shape_fail(op, nin, in, d, "axis %lld is out of range for rank %d",
                         (long long)attrs[0].i, x->rank);
  ir_type o = *x;
  for (int k = 1; k < nin; k++) {
    const ir_type *y = &in[k];
    if (y->dtype != x->dtype)
      return ir_shape_fail(op, nin, in, d, "operand %d has dtype %s, operand 0 has %s", k,
                           ir_dtype_name(y->dtype), ir_dtype_name(x->dtype));
    if (y->rank != x->rank)
      return ir_shape_fail(op, nin, in, d, "operand %d has rank %d, operand 0 has rank %d", k,
                           y->rank, x->rank);
    for (int i = 0; i < x->rank; i++) {
      if (i != ax && y->dims[i] != x->dims[i])
        return ir_shape_fail(op, nin, in, d,
                             "operand %d differs from operand 0 in dimension %d (%lld vs %lld)", k,
                             i, (long long)y->dims[i], (long long)x->dims[i]);
    }
    if (__builtin_add_overflow(o.dims[ax], y->dims[ax], &o.dims[ax]))
      return ir_shape_fail(op, nin, in, d, "concatenated dimension overflows");
  }
  *out = o;
  return true;
}

IR_SHAPE_FN(ir_shape_gather) {
  if (!ir_shape_begin(op, nin, in, attrs, 2, 0, d)) return false;
  const ir_type *t = &in[0], *idx = &in[1];
  if (t->rank < 1) return ir_shape_fail(op, nin, in, d, "table needs rank >= 1, got a scalar");
  if (!ir_dtype_is_int(idx->dtype))
    return ir_shape_fail(op, nin, in, d, "indices must be i32 or i64, got %s",
                         ir_dtype_name(idx->dtype));
  int rank = idx->rank + t->rank - 1;
  if (rank > IR_MAX_RANK)
    return ir_shape_fail(op, nin, in, d, "result rank %d exceeds the maximum %d", rank,
                         IR_MAX_RANK);
  ir_type o = {.dtype = t->dtype, .rank = rank};
  for (int i = 0; i < idx->rank; i++)
    o.dims[i] = idx->dims[i];
  for (int i = 1; i < t->rank; i++)
    o.dims[idx->rank + i - 1] = t->dims[i];
  *out = o;
  return true;
}

/* scatter_add(idx, src) {rows = V}: src is idx.shape + [D...]; the result
 * [V, D...] sums src's rows into the rows idx names. */
IR_SHAPE_FN(ir_shape_scatter_add) {
  if (!ir_shape_begin(op, nin, in, attrs, 2, 1, d)) return false;
  const ir_type *idx = &in[0], *src = &in[1];
  if (!ir_dtype_is_int(idx->dtype))
    return ir_shape_fail(op, nin, in, d, "indices must be i32 or i64, got %s",
                         ir_dtype_name(idx->dtype));
  if (!ir_dtype_is_float(src->dtype))
    return ir_shape_fail(op, nin, in, d, "needs a float source (f32 or f64), got %s",
                         ir_dtype_name(src->dtype));
  if (attrs[0].i < 1)
    return ir_shape_fail(op, nin, in, d, "rows must be >= 1, got %lld", (long long)attrs[0].i);
  if (src->rank < idx->rank)
    return ir_shape_fail(op, nin, in, d, "source rank %d is below the index rank %d", src->rank,
                         idx->rank);
  for (int i = 0; i < idx->rank; i++)
    if (src->dims[i] != idx->dims[i])
      return ir_shape_fail(op, nin, in, d, "source dim %d is %lld, the index's is %lld", i,
                           (long long)src->dims[i], (long long)idx->dims[i]);
  int rank = 1 + src->rank - idx->rank;
  if (rank > IR_MAX_RANK)
    return ir_shape_fail(op, nin, in, d, "result rank %d exceeds the maximum %d", rank,
                         IR_MAX_RANK);
  ir_type o = {.dtype = src->dtype, .rank = rank};
  o.dims[0] = attrs[0].i;
  for (int i = idx->rank; i < src->rank; i++)
    o.dims[1 + i - idx->rank] = src->dims[i];
  *out = o;
  return true;
}

/* assign(param, value): the value has the parameter's exact type. */
IR_SHAPE_FN(ir_shape_assign) {
  if (!ir_shape_begin(op, nin, in, attrs, 2, 0, d)) return false;
  if (!ir_type_eq(&in[0], &in[1]))
    return ir_shape_fail(op, nin, in, d, "the value's type differs from the parameter's");
  *out = in[0];
  return true;
}

/* ---- contractions --------------------------------------------------------- */

IR_SHAPE_FN(ir_shape_matmul) {
  if (!ir_shape_begin(op, nin, in, attrs, 2, 2, d)) return false;
  const ir_type *a = &in[0], *b = &in[1];
  if (a->dtype != b->dtype)
    return ir_shape_fail(op, nin, in, d, "operand dtypes differ (%s vs %s)",
                         ir_dtype_name(a->dtype), ir_dtype_name(b->dtype));
  if (!ir_dtype_is_float(a->dtype))
    return ir_shape_fail(op, nin, in, d, "needs a float dtype (f32 or f64), got %s",
                         ir_dtype_name(a->dtype));
  if (a->rank < 2 || b->rank < 2)
    return ir_shape_fail(op, nin, in, d, "operands need rank >= 2 (got %d and %d)", a->rank,
                         b->rank);
  bool ta = attrs[0].b, tb = attrs[1].b;
  int64_t m = a->dims[a->rank - 2], ka = a->dims[a->rank - 1];
  int64_t kb = b->dims[b->rank - 2], n = b->dims[b->rank - 1];
  if (ta) {
    int64_t t = m;
    m = ka;
    ka = t;
  }
  if (tb) {
    int64_t t = kb;
    kb = n;
    n = t;
  }
  if (ka != kb)
    return ir_shape_fail(op, nin, in, d, "contracting dimensions differ (%lld vs %lld)",
                         (long long)ka, (long long)kb);
  ir_type ba = ir_type_make(a->dtype, a->rank - 2, a->dims);
  ir_type bb = ir_type_make(b->dtype, b->rank - 2, b->dims);
  ir_type o;
  if (!ir_broadcast(&ba, &bb, &o))
    return ir_shape_fail(op, nin, in, d, "batch dimensions do not broadcast");
  o.dims[o.rank++] = m;
  o.dims[o.rank++] = n;
  *out = o;
  return true;
}

/* ---- masking and losses -------------------------------------------------- */

IR_SHAPE_FN(ir_shape_sequence_mask) {
  if (!ir_shape_begin(op, nin, in, attrs, 2, 0, d)) return false;
  const ir_type *x = &in[0], *len = &in[1];
  if (!float_rank1(op, nin, in, x, d)) return false;
  if (!ir_dtype_is_int(len->dtype))
    return ir_shape_fail(op, nin, in, d, "lengths must be i32 or i64, got %s",
                         ir_dtype_name(len->dtype));
  if (len->rank >= x->rank)
    return ir_shape_fail(op, nin, in, d, "lengths need a lower rank than x (%d vs %d)", len->rank,
                         x->rank);
  for (int i = 0; i < len->rank; i++)
    if (len->dims[i] != x->dims[i])
      return ir_shape_fail(op, nin, in, d,
                           "lengths' shape must be a prefix of x's: dimension %d is %lld, x has "
                           "%lld",
                           i, (long long)len->dims[i], (long long)x->dims[i]);
  *out = *x;
  return true;
}

IR_SHAPE_FN(ir_shape_xent) {
  if (!ir_shape_begin(op, nin, in, attrs, 2, 0, d)) return false;
  const ir_type *lg = &in[0], *lb = &in[1];
  if (!float_rank1(op, nin, in, lg, d)) return false;
  if (!ir_dtype_is_int(lb->dtype))
    return ir_shape_fail(op, nin, in, d, "labels must be i32 or i64, got %s",
                         ir_dtype_name(lb->dtype));
  ir_type want = ir_type_make(lb->dtype, lg->rank - 1, lg->dims);
  if (!ir_shape_eq(lb, &want)) {
    char w[IR_TYPE_STRLEN];
    return ir_shape_fail(op, nin, in, d, "labels must have shape %s (logits without the last axis)",
                         ir_type_str(&want, w, sizeof w) + strlen(ir_dtype_name(lb->dtype)));
  }
  *out = *lb;
  out->dtype = lg->dtype;
  return true;
}
