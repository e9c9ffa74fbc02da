/* Gradient rule of scale_mask_softmax (ir.h, "fused ops"), composed from
 * primitives: with y the forward result, ds = y * (dy - sum(dy * y)) over
 * the last axis, zeroed where a mask replaced the score by a constant
 * (y need not be 0 there: a fully masked row is uniform); dx = scale * ds
 * and a float bias gets ds summed down to its shape. */
#include "passes/grad_util.h"

PASS_GRAD_FN(pass_grad_scale_mask_softmax) {
  bool want_x = pass_ad_wants(ad, 0);
  bool has_mask = n->nin == 2;
  bool lengths = has_mask && ir_dtype_is_int(ad_in_type(ad, n, 1)->dtype);
  bool want_bias = has_mask && !lengths && pass_ad_wants(ad, 1);
  if (!want_x && !want_bias) return true;
  const ir_type *t = &n->type;
  double scale = n->attrs[0].f;
  int y = n->id;
  int ds = ad_mul(ad, y, ad_sub(ad, gy, ad_sum_last(ad, ad_mul(ad, gy, y))));
  if (lengths) {
    int in[2] = {ds, n->in[1]};
    ir_attr zero = pass_attr_float(0.0);
    ds = pass_ad_op(ad, IR_OP_SEQUENCE_MASK, 2, in, &zero);
  }
  if (n->attrs[1].b) {
    if (t->rank < 2) return pass_ad_fail(ad, "%s: causal needs rank >= 2", ir_op_get(n->op)->name);
    int64_t dims[2] = {t->dims[t->rank - 2], t->dims[t->rank - 1]};
    ir_attr io[3] = {pass_attr_ints(2, dims), pass_attr_int(0), pass_attr_dtype(IR_I32)};
    int i = pass_ad_op(ad, IR_OP_IOTA, 0, NULL, io);
    io[1] = pass_attr_int(1);
    int j = pass_ad_op(ad, IR_OP_IOTA, 0, NULL, io);
    int future = pass_ad_binary(ad, IR_OP_CMP_GT, j, i);
    ds = ad_select(ad, future, pass_ad_scalar(ad, 0.0, t->dtype), ds);
  }
  if (want_x) gx[0] = scale == 1.0 ? ds : ad_scale(ad, ds, scale);
  if (want_bias) gx[1] = pass_ad_unbroadcast(ad, ds, ad_in_type(ad, n, 1));
  return (!want_x || gx[0] >= 0) && (!want_bias || gx[1] >= 0);
}
