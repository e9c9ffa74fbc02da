/* Gradient rule of attention (ir.h, "fused ops"): one attention_grad node
 * computes [dq, dk, dv] packed flat (the backend's streaming backward), and
 * slices and reshapes hand each wanted operand its part, so the backward
 * of a fused region is fused too. */
#include "passes/grad_util.h"

/* A dropout key of -1 means "the node's id", which a later rewrite would
 * change between the forward and the backward; pin it (node and body) as
 * autodiff does for dropout. */
static void pin_key(ir_graph *g, int id) {
  ir_node *n = g->nodes[id];
  if (!(n->attrs[3].f > 0) || n->attrs[4].i >= 0) return;
  n->attrs[4].i = id;
  for (int i = 0; n->body && i < n->body->nnodes; i++) {
    ir_node *b = n->body->nodes[i];
    if (b->op == IR_OP_DROPOUT && b->attrs[1].i < 0) b->attrs[1].i = id;
  }
}

PASS_GRAD_FN(pass_grad_attention) {
  ir_graph *g = pass_ad_graph(ad);
  bool has_mask = n->nin == 4;
  if (has_mask && ir_dtype_is_float(ad_in_type(ad, n, 3)->dtype) && pass_ad_wants(ad, 3)) {
    const char *name = g->nodes[n->in[3]]->name;
    return pass_ad_fail(ad,
                        "attention: the float bias operand %s%s needs a gradient, which the "
                        "fused attention does not compute (fuse only constant biases)",
                        name ? "%" : "#", name ? name : "mask");
  }
  if (!pass_ad_wants(ad, 0) && !pass_ad_wants(ad, 1) && !pass_ad_wants(ad, 2)) return true;
  pin_key(g, n->id);
  int in[6], nin = 0;
  for (int i = 0; i < n->nin; i++)
    in[nin++] = n->in[i];
  in[nin++] = n->id;
  in[nin++] = gy;
  int packed = pass_ad_op(ad, IR_OP_ATTENTION_GRAD, nin, in, g->nodes[n->id]->attrs);
  int64_t off = 0;
  for (int k = 0; k < 3; k++) {
    const ir_type *t = ad_in_type(ad, n, k);
    int64_t e = ir_type_numel(t);
    if (pass_ad_wants(ad, k)) {
      int64_t st = off, en = off + e;
      ir_attr sl[2] = {pass_attr_ints(1, &st), pass_attr_ints(1, &en)};
      int part = packed < 0 ? -1 : pass_ad_op(ad, IR_OP_SLICE, 1, &packed, sl);
      gx[k] = pass_ad_reshape(ad, part, t->rank, t->dims);
      if (gx[k] < 0) return false;
    }
    off += e;
  }
  return packed >= 0;
}
