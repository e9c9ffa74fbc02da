/* Lowering of the training-state ops: step (the run counter from rt_exec),
 * assign (a parameter's new value written into its storage) and
 * scatter_add (gather's adjoint). */
#include "backend/cg.h"

static bool not_yet(const ir_node *n, ir_diag *d) {
  ir_diag_set(d, "%s: no JIT lowering yet", ir_op_get(n->op)->name);
  return false;
}

CG_LOWER_FN(cg_lower_step) {
  (void)c;
  return not_yet(n, d);
}

CG_LOWER_FN(cg_lower_assign) {
  (void)c;
  return not_yet(n, d);
}

CG_LOWER_FN(cg_lower_scatter_add) {
  (void)c;
  return not_yet(n, d);
}
