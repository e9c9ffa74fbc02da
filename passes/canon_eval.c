/* Compile-time evaluation of constant sub-graphs (passes/canon_eval.h):
 * the reference interpreter, node by node, over the cone that is asked for. */
#include <stdlib.h>

#include "passes/canon_eval.h"
#include "runtime/ref.h"

static bool foldable_op(const ir_node *n) {
  switch (n->op) {
  case IR_OP_ARG:
  case IR_OP_PARAM:
  case IR_OP_STEP:
  case IR_OP_ASSIGN:
  case IR_OP_DROPOUT: return false;
  default: return n->body == NULL && ir_op_get(n->op)->fusion != IR_FUSE_REGION;
  }
}

bool *pass_const_mask(const ir_graph *g, int64_t limit) {
  bool *c = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *c);
  if (!c) return NULL;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!foldable_op(n) || ir_type_numel(&n->type) > limit) continue;
    if (n->op == IR_OP_CONST) {
      c[i] = n->data != NULL;
      continue;
    }
    bool all = true;
    for (int k = 0; k < n->nin && all; k++)
      all = c[n->in[k]];
    /* iota is the only non-const leaf that is a value */
    c[i] = all && (n->nin > 0 || n->op == IR_OP_IOTA);
  }
  return c;
}

bool pass_const_eval(const ir_graph *g, const bool *is_const, const bool *want, rt_tensor **vals,
                     ir_diag *d) {
  bool *need = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *need);
  if (!need) {
    ir_diag_set(d, "out of memory");
    return false;
  }
  for (int i = g->nnodes - 1; i >= 0; i--) {
    if (want[i]) need[i] = true;
    if (!need[i] || vals[i]) continue;
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->nin; k++)
      need[n->in[k]] = true;
  }
  bool ok = true;
  for (int i = 0; i < g->nnodes && ok; i++) {
    if (!need[i] || vals[i]) continue;
    const ir_node *n = g->nodes[i];
    if (!is_const[i]) {
      ir_diag_set(d, "%%%d (%s) is not a compile-time constant", i, ir_op_get(n->op)->name);
      ok = false;
      break;
    }
    const rt_tensor *stack[8], **in = stack;
    if (n->nin > 8 && !(in = malloc(sizeof *in * (size_t)n->nin))) {
      ir_diag_set(d, "out of memory");
      ok = false;
      break;
    }
    for (int k = 0; k < n->nin; k++)
      in[k] = vals[n->in[k]];
    rt_tensor *out = rt_tensor_create(&n->type);
    if (!out) {
      ir_diag_set(d, "out of memory");
      ok = false;
    } else if (!rt_ref_eval_node(n, in, out, NULL, d)) {
      rt_tensor_destroy(out);
      ok = false;
    } else {
      vals[i] = out;
    }
    if (in != stack) free(in);
  }
  free(need);
  return ok;
}

void pass_const_free(rt_tensor **vals, int n) {
  if (!vals) return;
  for (int i = 0; i < n; i++)
    rt_tensor_destroy(vals[i]);
  free(vals);
}
