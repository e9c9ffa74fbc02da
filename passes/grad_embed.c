/* Gradient rule of embed (ir/ir.h, "fused ops"): one embed_grad node
 * scatters dy * scale * dropout factor into the table's rows and, when pe
 * needs a gradient, sums the same into pe; row slices hand each operand
 * its part of the packed result. */
#include "passes/grad_util.h"

/* A key of -1 means "the node's id", which later rewrites renumber; pin it
 * (node and body) so the backward draws the forward's mask. */
static void pin_key(ir_graph *g, int id) {
  ir_node *n = g->nodes[id];
  if (!(n->attrs[1].f > 0) || n->attrs[2].i >= 0) return;
  n->attrs[2].i = id;
  for (int i = 0; n->body && i < n->body->nnodes; i++) {
    ir_node *b = n->body->nodes[i];
    if (b->op == IR_OP_DROPOUT && b->attrs[1].i < 0) b->attrs[1].i = id;
  }
}

PASS_GRAD_FN(pass_grad_embed) {
  bool want_t = pass_ad_wants(ad, 0), want_pe = pass_ad_wants(ad, 2);
  if (!want_t && !want_pe) return true;
  ir_graph *g = pass_ad_graph(ad);
  pin_key(g, n->id);
  const ir_node *fw = g->nodes[n->id];
  const ir_type *tt = ad_in_type(ad, n, 0);
  ir_attr a[4] = {fw->attrs[0], fw->attrs[1], fw->attrs[2], pass_attr_int(tt->dims[0])};
  int in[3] = {n->in[1], gy, n->in[2]};
  int packed = pass_ad_op(ad, IR_OP_EMBED_GRAD, want_pe ? 3 : 2, in, a);
  /* [dtable; dpe] as rows of width D: without pe it is dtable itself, no
   * copy; otherwise a row slice each (dpe reshaped to pe's shape) */
  int64_t v = tt->dims[0], d = tt->dims[1];
  if (!want_pe) {
    gx[0] = packed;
    return packed >= 0;
  }
  int64_t rows = packed < 0 ? 0 : g->nodes[packed]->type.dims[0];
  int64_t st[2] = {0, 0}, en[2] = {v, d};
  if (want_t) {
    ir_attr sl[2] = {pass_attr_ints(2, st), pass_attr_ints(2, en)};
    gx[0] = packed < 0 ? -1 : pass_ad_op(ad, IR_OP_SLICE, 1, &packed, sl);
    if (gx[0] < 0) return false;
  }
  st[0] = v, en[0] = rows;
  ir_attr sl[2] = {pass_attr_ints(2, st), pass_attr_ints(2, en)};
  const ir_type *pt = ad_in_type(ad, n, 2);
  int part = packed < 0 ? -1 : pass_ad_op(ad, IR_OP_SLICE, 1, &packed, sl);
  gx[2] = pass_ad_reshape(ad, part, pt->rank, pt->dims);
  return gx[2] >= 0;
}
