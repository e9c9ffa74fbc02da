/* Reference kernels for data movement: reshape, transpose, broadcast_to,
 * slice, concat and gather. They move whole elements as bytes, so every
 * dtype is handled exactly. Gather checks every index (a bad token id is
 * user input, not a programming error). */
#include "runtime/ref_util.h"

static void copy_elem(rt_tensor *out, int64_t o, const rt_tensor *src, int64_t s) {
  size_t es = ir_dtype_size(out->type.dtype);
  memcpy((char *)out->data + (size_t)o * es, (const char *)src->data + (size_t)s * es, es);
}

RT_REF_FN(rt_ref_reshape) {
  (void)opts;
  if (in[0]->bytes != out->bytes) {
    ir_diag_set(d, "%s: element counts differ", rt_opname(n));
    return false;
  }
  memcpy(out->data, in[0]->data, out->bytes);
  return true;
}

RT_REF_FN(rt_ref_transpose) {
  (void)opts;
  const ir_type *xt = &in[0]->type;
  const ir_ints *perm = &n->attrs[0].ints;
  if (perm->n != xt->rank || out->type.rank != xt->rank) {
    ir_diag_set(d, "transpose: perm has %d entries for rank %d", perm->n, xt->rank);
    return false;
  }
  int64_t xs[IR_MAX_RANK], s[IR_MAX_RANK];
  ir_strides(xt, xs);
  for (int i = 0; i < xt->rank; i++) {
    int p;
    if (!rt_norm_axis(perm->v[i], xt->rank, &p)) {
      ir_diag_set(d, "transpose: perm entry %lld out of range", (long long)perm->v[i]);
      return false;
    }
    s[i] = xs[p]; /* result axis i walks input axis perm[i] */
  }
  for (int64_t i = 0, e = rt_numel(out); i < e; i++)
    copy_elem(out, i, in[0], rt_bcast_offset(&out->type, s, i));
  return true;
}

RT_REF_FN(rt_ref_broadcast_to) {
  (void)n;
  (void)opts;
  (void)d;
  int64_t s[IR_MAX_RANK];
  ir_broadcast_strides(&in[0]->type, &out->type, s);
  for (int64_t i = 0, e = rt_numel(out); i < e; i++)
    copy_elem(out, i, in[0], rt_bcast_offset(&out->type, s, i));
  return true;
}

RT_REF_FN(rt_ref_slice) {
  (void)opts, (void)d;
  const ir_type *xt = &in[0]->type;
  int64_t xs[IR_MAX_RANK], base = ir_slice_base(xt, &n->attrs[0].ints);
  ir_strides(xt, xs);
  for (int64_t i = 0, e = rt_numel(out); i < e; i++)
    copy_elem(out, i, in[0], base + rt_bcast_offset(&out->type, xs, i));
  return true;
}

RT_REF_FN(rt_ref_concat) {
  (void)opts;
  int axis;
  if (!rt_norm_axis(n->attrs[0].i, out->type.rank, &axis)) {
    ir_diag_set(d, "concat: axis %lld out of range for rank %d", (long long)n->attrs[0].i,
                out->type.rank);
    return false;
  }
  int64_t os[IR_MAX_RANK], at = 0;
  ir_strides(&out->type, os);
  for (int k = 0; k < n->nin; k++) {
    const ir_type *t = &in[k]->type;
    if (t->rank != out->type.rank || at + t->dims[axis] > out->type.dims[axis]) {
      ir_diag_set(d, "concat: operand %d does not fit the result", k);
      return false;
    }
    for (int64_t i = 0, e = rt_numel(in[k]); i < e; i++) {
      int64_t idx[IR_MAX_RANK];
      rt_unflatten(t, i, idx);
      idx[axis] += at;
      copy_elem(out, rt_offset(t->rank, idx, os), in[k], i);
    }
    at += t->dims[axis];
  }
  return true;
}

RT_REF_FN(rt_ref_gather) {
  (void)n;
  (void)opts;
  const ir_type *tt = &in[0]->type;
  if (tt->rank < 1) {
    ir_diag_set(d, "gather: table needs rank >= 1");
    return false;
  }
  int64_t rows = tt->dims[0], nidx = rt_numel(in[1]);
  int64_t row = 1;
  for (int k = 1; k < tt->rank; k++)
    row *= tt->dims[k];
  if (nidx * row != rt_numel(out)) {
    ir_diag_set(d, "gather: result has %lld elements, expected %lld", (long long)rt_numel(out),
                (long long)(nidx * row));
    return false;
  }
  for (int64_t p = 0; p < nidx; p++) {
    int64_t ix = rt_load_i(in[1], p);
    if (ix < 0 || ix >= rows) {
      ir_diag_set(d, "gather: index %lld out of range [0, %lld) at position %lld", (long long)ix,
                  (long long)rows, (long long)p);
      return false;
    }
    for (int64_t j = 0; j < row; j++)
      copy_elem(out, p * row + j, in[0], ix * row + j);
  }
  return true;
}

RT_REF_FN(rt_ref_scatter_add) {
  (void)opts;
  int64_t rows = n->attrs[0].i, nidx = rt_numel(in[0]);
  int64_t row = rows > 0 ? rt_numel(out) / rows : 0;
  memset(out->data, 0, out->bytes);
  for (int64_t p = 0; p < nidx; p++) {
    int64_t ix = rt_load_i(in[0], p);
    if (ix < 0 || ix >= rows) {
      ir_diag_set(d, "scatter_add: index %lld out of range [0, %lld) at position %lld",
                  (long long)ix, (long long)rows, (long long)p);
      return false;
    }
    for (int64_t j = 0; j < row; j++)
      rt_store_f(out, ix * row + j, rt_get_f(out, ix * row + j) + rt_get_f(in[1], p * row + j));
  }
  return true;
}
