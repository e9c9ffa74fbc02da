/* Constant folding: constant sub-graphs are evaluated by the reference
 * interpreter and replaced by one CONST node each.
 * The rule for what is worth folding: a constant value is "cheap" when it
 * is built only from iotas and scalar consts by index arithmetic (add, sub,
 * mul, neg, abs, max, min, comparisons, select, cast) and data movement
 * (reshape, broadcast_to, transpose, slice). Cheap values stay as they are:
 * a causal iota + 1 or cmp_gt(iota, iota) costs nothing to compute, and
 * the fusion passes match those spellings, while a folded [B, H, T, T]
 * constant would cost memory. Every other constant value ("heavy": the cone
 * holds real arithmetic such as pow, div, sin, or a tensor const) is folded
 * at its frontier, the heavy nodes some unfolded node or a return uses, so
 * the positional-encoding table (iota, pow, div, sin, cos, reshape, concat)
 * becomes ONE constant. Cheap parts inside a heavy cone fold with it.
 * A broadcast_to is never materialized (it would only inflate its operand):
 * its operand is folded instead. Values over o->fold_limit elements
 * (0: 1 << 22) are not folded; their heavy operands are. Dropout, steps,
 * assigns, params and regions are never folded; nodes that only fed folded
 * values are dropped. */
#include <stdlib.h>

#include "passes/canon_eval.h"
#include "passes/pipeline.h"
#include "passes/rewrite.h"

static bool index_op(ir_op op) {
  switch (op) {
  case IR_OP_IOTA:
  case IR_OP_ADD:
  case IR_OP_SUB:
  case IR_OP_MUL:
  case IR_OP_NEG:
  case IR_OP_ABS:
  case IR_OP_MAX:
  case IR_OP_MIN:
  case IR_OP_CMP_LT:
  case IR_OP_CMP_LE:
  case IR_OP_CMP_GT:
  case IR_OP_CMP_GE:
  case IR_OP_CMP_EQ:
  case IR_OP_SELECT:
  case IR_OP_CAST:
  case IR_OP_RESHAPE:
  case IR_OP_BROADCAST_TO:
  case IR_OP_TRANSPOSE:
  case IR_OP_SLICE: return true;
  default: return false;
  }
}

/* Writes the rewritten graph in the original order: materialized values
 * as consts, constants still read by a kept unfolded node as they were,
 * every non-constant node; the rest fed folded values only. */
static ir_graph *rebuild(const ir_graph *src, const bool *is_const, const bool *mat,
                         rt_tensor **vals, ir_diag *d) {
  int nn = src->nnodes;
  bool *keep = calloc((size_t)(nn ? nn : 1), sizeof *keep);
  if (!keep) {
    ir_diag_set(d, "constant-fold: out of memory");
    return NULL;
  }
  for (int r = 0; r < src->nrets; r++)
    keep[src->rets[r]] = true;
  for (int i = nn - 1; i >= 0; i--) {
    const ir_node *n = src->nodes[i];
    if (!is_const[i] || mat[i]) keep[i] = true;
    if (!keep[i] || mat[i]) continue;
    for (int k = 0; k < n->nin; k++)
      keep[n->in[k]] = true;
  }
  pass_rw rw;
  if (!pass_rw_init(&rw, src, d)) {
    free(keep);
    return NULL;
  }
  for (int i = 0; i < nn && !rw.failed; i++) {
    const ir_node *n = src->nodes[i];
    if (!mat[i]) {
      if (keep[i]) pass_rw_copy(&rw, i);
      continue;
    }
    int id = ir_add_const(rw.dst, &n->type, vals[i]->data, d);
    if (id < 0) {
      rw.failed = true;
      break;
    }
    if (n->name) ir_node_set_name(rw.dst, id, n->name);
    ir_node_copy_loc(rw.dst, id, &n->loc);
    pass_rw_map(&rw, i, id);
  }
  free(keep);
  return pass_rw_finish(&rw);
}

bool pass_constant_fold(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  *changed = false;
  const ir_graph *src = *g;
  int64_t limit = o && o->fold_limit > 0 ? o->fold_limit : (int64_t)1 << 22;
  int nn = src->nnodes;
  bool *is_const = pass_const_mask(src, limit);
  bool *cheap = calloc((size_t)(nn ? nn : 1), sizeof *cheap);
  bool *folded = calloc((size_t)(nn ? nn : 1), sizeof *folded);
  bool *mat = calloc((size_t)(nn ? nn : 1), sizeof *mat);
  rt_tensor **vals = calloc((size_t)(nn ? nn : 1), sizeof *vals);
  bool ok = is_const && cheap && folded && mat && vals;
  if (!ok) ir_diag_set(d, "constant-fold: out of memory");
  int nfold = 0;
  for (int i = 0; ok && i < nn; i++) {
    const ir_node *n = src->nodes[i];
    if (!is_const[i]) continue;
    if (n->op == IR_OP_CONST) {
      cheap[i] = ir_type_numel(&n->type) <= 1;
      continue;
    }
    bool c = index_op(n->op);
    for (int k = 0; k < n->nin && c; k++)
      c = cheap[n->in[k]];
    cheap[i] = c;
    folded[i] = !c && n->op != IR_OP_BROADCAST_TO;
  }
  /* materialize the folded values something unfolded still reads */
  for (int i = 0; ok && i < nn; i++) {
    const ir_node *n = src->nodes[i];
    for (int k = 0; k < n->nin; k++)
      if (!folded[i] && folded[n->in[k]]) mat[n->in[k]] = true;
  }
  for (int r = 0; ok && r < src->nrets; r++)
    if (folded[src->rets[r]]) mat[src->rets[r]] = true;
  for (int i = 0; ok && i < nn; i++)
    nfold += mat[i];
  ir_graph *out = NULL;
  if (ok && nfold > 0) {
    ir_diag ed = {0};
    if (!pass_const_eval(src, is_const, mat, vals, &ed)) {
      ir_diag_set(d, "constant-fold: %s", ed.msg);
      ok = false;
    }
  }
  if (ok && nfold > 0) {
    out = rebuild(src, is_const, mat, vals, d);
    ok = out != NULL;
  }
  pass_const_free(vals, nn);
  free(is_const);
  free(cheap);
  free(folded);
  free(mat);
  if (!ok) return false;
  if (out) {
    ir_graph_destroy(*g);
    *g = out;
    *changed = true;
  }
  return true;
}
