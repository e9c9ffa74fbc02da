/* Gradient rules of the reductions, softmax and log_softmax, layernorm,
 * sequence_mask and the softmax cross-entropy loss. Each adjoint is
 * composed from primitive ops (no fused backward kernels), so the JIT and
 * the reference interpreter run it like any forward graph. */
#include "passes/grad_util.h"

/* x broadcast to `to`'s shape (x when already that shape). */
static int broadcast_to(pass_ad *ad, int x, const ir_type *to) {
  if (x < 0) return -1;
  if (ir_shape_eq(ad_type(ad, x), to)) return x;
  int64_t dims[IR_MAX_RANK];
  for (int i = 0; i < to->rank; i++)
    dims[i] = to->dims[i];
  ir_attr a = pass_attr_ints(to->rank, dims);
  return pass_ad_op(ad, IR_OP_BROADCAST_TO, 1, &x, &a);
}

/* sum, mean: g in keepdims form broadcast back over the reduced axes (mean
 * divides by the count). reduce_max: like torch.amax, tied maxima share g
 * equally. */
PASS_GRAD_FN(pass_grad_reduce) {
  if (!pass_ad_wants(ad, 0)) return true;
  int x = n->in[0];
  const ir_type *xt = ad_type(ad, x);
  const ir_ints *axes = &n->attrs[0].ints;
  bool red[IR_MAX_RANK] = {false};
  for (int i = 0; i < axes->n; i++) {
    int64_t a = axes->v[i] < 0 ? axes->v[i] + xt->rank : axes->v[i];
    if (a < 0 || a >= xt->rank) return pass_ad_fail(ad, "axis %lld out of range", (long long)a);
    red[a] = true;
  }
  int64_t kdims[IR_MAX_RANK], count = 1, rax[IR_MAX_RANK];
  int nrax = 0;
  for (int i = 0; i < xt->rank; i++) {
    kdims[i] = red[i] ? 1 : xt->dims[i];
    if (red[i]) {
      count *= xt->dims[i];
      rax[nrax++] = i;
    }
  }
  ir_dtype dt = xt->dtype;
  int gk = pass_ad_reshape(ad, gy, xt->rank, kdims);
  int r;
  switch (n->op) {
  case IR_OP_SUM: r = broadcast_to(ad, gk, xt); break;
  case IR_OP_MEAN:
    r = broadcast_to(ad, ad_div(ad, gk, pass_ad_scalar(ad, (double)count, dt)), xt);
    break;
  case IR_OP_REDUCE_MAX: {
    int yk = pass_ad_reshape(ad, n->id, xt->rank, kdims);
    int eq = pass_ad_cast(ad, pass_ad_binary(ad, IR_OP_CMP_EQ, x, yk), dt);
    int cnt = ad_reduce(ad, IR_OP_SUM, eq, nrax, rax, true);
    r = ad_mul(ad, ad_div(ad, gk, cnt), eq);
    break;
  }
  default: return pass_ad_fail(ad, "not a reduction with a gradient");
  }
  gx[0] = r;
  return r >= 0;
}

/* softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g), both along
 * the op's axis. */
PASS_GRAD_FN(pass_grad_softmax) {
  if (!pass_ad_wants(ad, 0)) return true;
  int64_t axis = n->attrs[0].i;
  int y = n->id;
  if (n->op == IR_OP_SOFTMAX) {
    int s = ad_reduce(ad, IR_OP_SUM, ad_mul(ad, gy, y), 1, &axis, true);
    gx[0] = ad_mul(ad, y, ad_sub(ad, gy, s));
  } else {
    int s = ad_reduce(ad, IR_OP_SUM, gy, 1, &axis, true);
    gx[0] = ad_sub(ad, gy, ad_mul(ad, pass_ad_unary(ad, IR_OP_EXP, y), s));
  }
  return gx[0] >= 0;
}

/* y = xhat gamma + beta over the last axis, xhat = (x - mean) rstd:
 * dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with
 * dxhat = g gamma; dgamma = sum over leading axes of g xhat; dbeta = sum
 * of g. The statistics are recomputed from x rather than saved. */
PASS_GRAD_FN(pass_grad_layernorm) {
  int x = n->in[0], gamma = n->in[1];
  if (pass_ad_wants(ad, 2)) gx[2] = pass_ad_unbroadcast(ad, gy, ad_in_type(ad, n, 2));
  if (!pass_ad_wants(ad, 0) && !pass_ad_wants(ad, 1)) return gx[2] >= 0 || !pass_ad_wants(ad, 2);
  ir_dtype dt = n->type.dtype;
  int xc = ad_sub(ad, x, ad_mean_last(ad, x));
  int var = ad_mean_last(ad, ad_mul(ad, xc, xc));
  int rstd = pass_ad_unary(ad, IR_OP_RSQRT, ad_add(ad, var, pass_ad_scalar(ad, n->attrs[0].f, dt)));
  int xhat = ad_mul(ad, xc, rstd);
  if (pass_ad_wants(ad, 1))
    gx[1] = pass_ad_unbroadcast(ad, ad_mul(ad, gy, xhat), ad_in_type(ad, n, 1));
  if (pass_ad_wants(ad, 0)) {
    int dxhat = ad_mul(ad, gy, gamma);
    int m1 = ad_mean_last(ad, dxhat);
    int m2 = ad_mean_last(ad, ad_mul(ad, dxhat, xhat));
    gx[0] = ad_mul(ad, rstd, ad_sub(ad, ad_sub(ad, dxhat, m1), ad_mul(ad, xhat, m2)));
  }
  return xhat >= 0;
}

/* Masked positions are constants: their gradient is 0. len gets none. */
PASS_GRAD_FN(pass_grad_sequence_mask) {
  if (!pass_ad_wants(ad, 0)) return true;
  int in[2] = {gy, n->in[1]};
  ir_attr a = pass_attr_float(0.0);
  gx[0] = pass_ad_op(ad, IR_OP_SEQUENCE_MASK, 2, in, &a);
  return gx[0] >= 0;
}

/* loss[...] = logsumexp(logits[..., :]) - logits[..., label]:
 * dlogits = (softmax(logits) - onehot(label)) g[..., None], zero rows where
 * label == ignore_index. The one-hot is iota over the last axis compared
 * with the labels. Labels get none. */
PASS_GRAD_FN(pass_grad_xent) {
  if (!pass_ad_wants(ad, 0)) return true;
  int logits = n->in[0], labels = n->in[1];
  const ir_type *lt = ad_type(ad, logits);
  ir_dtype dt = lt->dtype, it = ad_type(ad, labels)->dtype;
  int r = lt->rank;
  int64_t kd[IR_MAX_RANK], full[IR_MAX_RANK];
  for (int i = 0; i < r; i++)
    kd[i] = full[i] = lt->dims[i];
  kd[r - 1] = 1;
  int lab = pass_ad_reshape(ad, labels, r, kd);
  ir_attr ia[3] = {pass_attr_ints(r, full), pass_attr_int(r - 1), pass_attr_dtype(it)};
  int iota = pass_ad_op(ad, IR_OP_IOTA, 0, NULL, ia);
  int onehot = pass_ad_cast(ad, pass_ad_binary(ad, IR_OP_CMP_EQ, iota, lab), dt);
  ir_attr sa = pass_attr_int(-1);
  int p = pass_ad_op(ad, IR_OP_SOFTMAX, 1, &logits, &sa);
  int ge = pass_ad_reshape(ad, gy, r, kd);
  int ignored =
      pass_ad_binary(ad, IR_OP_CMP_EQ, lab, pass_ad_scalar(ad, (double)n->attrs[0].i, it));
  int gm = ad_select(ad, ignored, pass_ad_scalar(ad, 0.0, dt), ge);
  gx[0] = ad_mul(ad, ad_sub(ad, p, onehot), gm);
  return gx[0] >= 0;
}
