/* Dead-code elimination: keeps the returns, every assign (a state update
 * nobody reads is still the point of a training step) with what they
 * need, and every argument (the signature callers bind inputs to); drops
 * every other node. Region bodies are kept or dropped with their node. */
#include <stdlib.h>

#include "passes/pipeline.h"
#include "passes/rewrite.h"

bool pass_dce(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  (void)o;
  *changed = false;
  const ir_graph *src = *g;
  bool *live = calloc((size_t)(src->nnodes ? src->nnodes : 1), sizeof *live);
  if (!live) {
    ir_diag_set(d, "dce: out of memory");
    return false;
  }
  for (int r = 0; r < src->nrets; r++)
    live[src->rets[r]] = true;
  int ndead = 0;
  /* Operands precede their users, so one backward sweep settles liveness. */
  for (int i = src->nnodes - 1; i >= 0; i--) {
    const ir_node *n = src->nodes[i];
    if (n->op == IR_OP_ASSIGN || n->op == IR_OP_ARG) live[i] = true;
    if (!live[i]) {
      ndead++;
      continue;
    }
    for (int k = 0; k < n->nin; k++)
      live[n->in[k]] = true;
  }
  if (ndead == 0) {
    free(live);
    return true;
  }
  pass_rw rw;
  if (!pass_rw_init(&rw, src, d)) {
    free(live);
    return false;
  }
  for (int i = 0; i < src->nnodes; i++)
    if (live[i]) pass_rw_copy(&rw, i);
  free(live);
  ir_graph *out = pass_rw_finish(&rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  *changed = true;
  return true;
}
