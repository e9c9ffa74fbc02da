/* save-attention-stats (training only, after autodiff): an attention whose
 * output feeds its own attention_grad becomes attention_lse, which also
 * writes each query row's log-sum-exp; the gradient reads those instead of
 * running every score tile a second time to recompute them (one GEMM of
 * five per tile). The forward's users see the output part through a slice
 * and a reshape; only gradients whose operands and attributes are the
 * forward's own take the packed value. */
#include <stdlib.h>
#include <string.h>

#include "passes/autodiff.h"
#include "passes/pipeline.h"
#include "passes/rewrite.h"

/* Whether attention_grad node gn differentiates attention node an. */
static bool same_call(const ir_node *an, const ir_node *gn) {
  if (gn->nin != an->nin + 2 || gn->in[gn->nin - 2] != an->id) return false;
  for (int i = 0; i < an->nin; i++)
    if (gn->in[i] != an->in[i]) return false;
  for (int i = 0; i < ir_op_get(an->op)->nattrs; i++)
    if (!ir_attr_eq(&an->attrs[i], &gn->attrs[i])) return false;
  return true;
}

bool pass_save_attention_stats(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  (void)o;
  *changed = false;
  const ir_graph *src = *g;
  /* saved[a] = true when attention a has a matching gradient */
  bool *saved = calloc((size_t)src->nnodes + 1, sizeof *saved);
  int *packed = malloc(((size_t)src->nnodes + 1) * sizeof *packed);
  if (!saved || !packed) {
    free(saved), free(packed);
    ir_diag_set(d, "save-attention-stats: out of memory");
    return false;
  }
  bool any = false;
  for (int i = 0; i < src->nnodes; i++) {
    const ir_node *n = src->nodes[i];
    packed[i] = -1;
    if (n->op != IR_OP_ATTENTION_GRAD) continue;
    const ir_node *a = src->nodes[n->in[n->nin - 2]];
    if (a->op == IR_OP_ATTENTION && same_call(a, n)) saved[a->id] = any = true;
  }
  if (!any) {
    free(saved), free(packed);
    return true;
  }
  pass_rw rw;
  if (!pass_rw_init(&rw, src, d)) {
    free(saved), free(packed);
    return false;
  }
  for (int i = 0; i < src->nnodes && !rw.failed; i++) {
    const ir_node *n = src->nodes[i];
    int in[8];
    for (int k = 0; k < n->nin; k++)
      in[k] = rw.map[n->in[k]];
    if (saved[i]) {
      /* the reshape stands for the attention (its name); all three keep its place */
      int p = pass_rw_add(&rw, IR_OP_ATTENTION_LSE, n->nin, in, n->attrs, NULL, -1);
      if (p >= 0 && n->loc.file) ir_node_set_loc(rw.dst, p, n->loc.file, n->loc.line);
      int64_t start = 0, end = ir_type_numel(&n->type);
      ir_attr sl[2] = {pass_attr_ints(1, &start), pass_attr_ints(1, &end)};
      int part = p < 0 ? -1 : pass_rw_add(&rw, IR_OP_SLICE, 1, &p, sl, NULL, -1);
      ir_attr sh = pass_attr_ints(n->type.rank, (int64_t *)n->type.dims);
      int o = part < 0 ? -1 : pass_rw_add(&rw, IR_OP_RESHAPE, 1, &part, &sh, NULL, i);
      packed[i] = p;
      pass_rw_map(&rw, i, o);
    } else if (n->op == IR_OP_ATTENTION_GRAD && packed[n->in[n->nin - 2]] >= 0 &&
               same_call(src->nodes[n->in[n->nin - 2]], n)) {
      in[n->nin - 2] = packed[n->in[n->nin - 2]];
      pass_rw_map(&rw, i, pass_rw_add(&rw, n->op, n->nin, in, n->attrs, NULL, i));
    } else {
      pass_rw_copy(&rw, i);
    }
  }
  free(saved), free(packed);
  ir_graph *out = pass_rw_finish(&rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  *changed = true;
  return true;
}
