/* Lowering of additive_attention and its gradient to kernels that never
 * materialize the [.., Tq, Tk, H] features. OWNER: the additive helper (stub). */
#include "backend/cg.h"

CG_LOWER_FN(cg_lower_additive_attention) {
  (void)c;
  ir_diag_set(d, "%s: no JIT kernel yet", ir_op_get(n->op)->name);
  return false;
}

CG_LOWER_FN(cg_lower_additive_attention_grad) {
  (void)c;
  ir_diag_set(d, "%s: no JIT kernel yet", ir_op_get(n->op)->name);
  return false;
}
