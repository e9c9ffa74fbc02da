/* Gradient rules of the data-movement ops (reshape, transpose,
 * broadcast_to, slice, concat, gather) and of matmul. Movement is undone
 * by its inverse movement; slice pads with zero blocks through concat, and
 * gather's adjoint is scatter_add. */
#include "passes/grad_util.h"

PASS_GRAD_FN(pass_grad_reshape) {
  if (!pass_ad_wants(ad, 0)) return true;
  const ir_type *xt = ad_in_type(ad, n, 0);
  gx[0] = pass_ad_reshape(ad, gy, xt->rank, xt->dims);
  return gx[0] >= 0;
}

PASS_GRAD_FN(pass_grad_transpose) {
  if (!pass_ad_wants(ad, 0)) return true;
  const ir_ints *p = &n->attrs[0].ints;
  int64_t inv[IR_MAX_RANK];
  for (int i = 0; i < p->n; i++)
    inv[p->v[i]] = i;
  ir_attr a = pass_attr_ints(p->n, inv);
  gx[0] = pass_ad_op(ad, IR_OP_TRANSPOSE, 1, &gy, &a);
  return gx[0] >= 0;
}

PASS_GRAD_FN(pass_grad_broadcast_to) {
  if (!pass_ad_wants(ad, 0)) return true;
  gx[0] = pass_ad_unbroadcast(ad, gy, ad_in_type(ad, n, 0));
  return gx[0] >= 0;
}

/* g padded with zeros back to x's shape: along each sliced axis in turn,
 * concat(zeros[before], g, zeros[after]). */
PASS_GRAD_FN(pass_grad_slice) {
  if (!pass_ad_wants(ad, 0)) return true;
  const ir_type *xt = ad_in_type(ad, n, 0);
  const int64_t *st = n->attrs[0].ints.v, *en = n->attrs[1].ints.v;
  if (ir_type_numel(&n->type) == 0) {
    gx[0] = pass_ad_fill(ad, 0.0, xt);
    return gx[0] >= 0;
  }
  int cur = gy;
  for (int i = 0; i < xt->rank && cur >= 0; i++) {
    int64_t s = st[i], e = en[i], dim = xt->dims[i];
    if (s == 0 && e == dim) continue;
    ir_type zt = *ad_type(ad, cur);
    int parts[3], np = 0;
    if (s > 0) {
      zt.dims[i] = s;
      parts[np++] = pass_ad_fill(ad, 0.0, &zt);
    }
    parts[np++] = cur;
    if (e < dim) {
      zt.dims[i] = dim - e;
      parts[np++] = pass_ad_fill(ad, 0.0, &zt);
    }
    ir_attr a = pass_attr_int(i);
    cur = pass_ad_op(ad, IR_OP_CONCAT, np, parts, &a);
  }
  gx[0] = cur;
  return cur >= 0;
}

/* Each operand's gradient is its slice of g along the concat axis. */
PASS_GRAD_FN(pass_grad_concat) {
  const ir_type *yt = &n->type;
  int ax = (int)(n->attrs[0].i < 0 ? n->attrs[0].i + yt->rank : n->attrs[0].i);
  int64_t off = 0;
  for (int k = 0; k < n->nin; k++) {
    int64_t size = ad_in_type(ad, n, k)->dims[ax];
    if (pass_ad_wants(ad, k)) {
      int64_t starts[IR_MAX_RANK] = {0}, ends[IR_MAX_RANK];
      for (int i = 0; i < yt->rank; i++)
        ends[i] = yt->dims[i];
      starts[ax] = off;
      ends[ax] = off + size;
      ir_attr a[2] = {pass_attr_ints(yt->rank, starts), pass_attr_ints(yt->rank, ends)};
      gx[k] = pass_ad_op(ad, IR_OP_SLICE, 1, &gy, a);
      if (gx[k] < 0) return false;
    }
    off += size;
  }
  return true;
}

/* Rows of g summed into the rows of the table they were read from
 * (repeated indices accumulate). The indices get none. */
PASS_GRAD_FN(pass_grad_gather) {
  if (!pass_ad_wants(ad, 0)) return true;
  int in[2] = {n->in[1], gy};
  ir_attr a = pass_attr_int(ad_in_type(ad, n, 0)->dims[0]);
  gx[0] = pass_ad_op(ad, IR_OP_SCATTER_ADD, 2, in, &a);
  return gx[0] >= 0;
}

static int matmul(pass_ad *ad, int a, int b, bool ta, bool tb) {
  int in[2] = {a, b};
  ir_attr at[2] = {pass_attr_bool(ta), pass_attr_bool(tb)};
  return pass_ad_op(ad, IR_OP_MATMUL, 2, in, at);
}

/* y = op(a) op(b) with op = transpose of the last two axes where flagged.
 * The adjoints are matmuls whose transpose flags absorb every transpose:
 *   da = g b^T (a^T: b g^T), db = a^T g (b^T: g^T a), with op() applied to
 * a and b inside. Batch dims broadcast in the forward, so each adjoint is
 * summed back to its operand's batch shape. */
PASS_GRAD_FN(pass_grad_matmul) {
  int a = n->in[0], b = n->in[1];
  bool ta = n->attrs[0].b, tb = n->attrs[1].b;
  if (pass_ad_wants(ad, 0)) {
    int da = !ta ? matmul(ad, gy, b, false, !tb) : matmul(ad, b, gy, tb, true);
    gx[0] = pass_ad_unbroadcast(ad, da, ad_type(ad, a));
    if (gx[0] < 0) return false;
  }
  if (pass_ad_wants(ad, 1)) {
    const ir_type *at = ad_type(ad, a), *bt = ad_type(ad, b);
    if (bt->rank == 2 && at->rank > 2 && !ta) {
      /* A shared weight under batch dims ([B.., M, K] @ [K, N]): fold the
       * batch into the rows, so the weight's gradient is one GEMM instead
       * of a GEMM per batch item and a sum. */
      int64_t k = at->dims[at->rank - 1], nn = ad_type(ad, gy)->dims[at->rank - 1];
      int64_t rows = ir_type_numel(at) / (k ? k : 1);
      int a2 = pass_ad_reshape(ad, a, 2, (int64_t[]){rows, k});
      int g2 = pass_ad_reshape(ad, gy, 2, (int64_t[]){rows, nn});
      gx[1] = !tb ? matmul(ad, a2, g2, true, false) : matmul(ad, g2, a2, true, false);
      return gx[1] >= 0;
    }
    int db = !tb ? matmul(ad, a, gy, !ta, false) : matmul(ad, gy, a, true, ta);
    gx[1] = pass_ad_unbroadcast(ad, db, ad_type(ad, b));
    if (gx[1] < 0) return false;
  }
  return true;
}
