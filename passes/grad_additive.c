/* Gradient rule of additive_attention (ir.h, "fused ops"), so the backward
 * of a fused region is fused too: one additive_attention_grad node computes
 * every operand gradient packed flat [dqp, dkp, dwv, dv]; slices and
 * reshapes hand each operand its part. */
#include "passes/grad_util.h"

PASS_GRAD_FN(pass_grad_additive_attention) {
  ir_graph *g = pass_ad_graph(ad);
  int nin = n->nin, in[6];
  for (int i = 0; i < nin; i++)
    in[i] = n->in[i];
  in[nin] = gy;
  /* the forward drew its mask with key -1 as its own id: the backward must
   * draw the same one, whatever ids the gradient nodes get */
  ir_attr a[3] = {n->attrs[0], n->attrs[1],
                  pass_attr_int(n->attrs[2].i >= 0 ? n->attrs[2].i : n->id)};
  int packed = -1;
  int64_t off = 0;
  for (int k = 0; k < 4; k++) {
    const ir_type *t = &g->nodes[n->in[k]]->type;
    int64_t numel = ir_type_numel(t);
    if (pass_ad_wants(ad, k)) {
      if (packed < 0 &&
          (packed = pass_ad_op(ad, IR_OP_ADDITIVE_ATTENTION_GRAD, nin + 1, in, a)) < 0)
        return false;
      int64_t st = off, en = off + numel;
      ir_attr sa[2] = {pass_attr_ints(1, &st), pass_attr_ints(1, &en)};
      int sl = pass_ad_op(ad, IR_OP_SLICE, 1, &packed, sa);
      gx[k] = pass_ad_reshape(ad, sl, t->rank, t->dims);
      if (gx[k] < 0) return false;
    }
    off += numel;
  }
  return true;
}
