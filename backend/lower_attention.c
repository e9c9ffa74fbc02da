/* Lowering of attention and attention_grad to the streaming (flash-style)
 * kernels. OWNER: the attention-kernels helper (stub). */
#include "backend/cg.h"

CG_LOWER_FN(cg_lower_attention) {
  (void)c;
  ir_diag_set(d, "%s: no JIT kernel yet", ir_op_get(n->op)->name);
  return false;
}

CG_LOWER_FN(cg_lower_attention_grad) {
  (void)c;
  ir_diag_set(d, "%s: no JIT kernel yet", ir_op_get(n->op)->name);
  return false;
}
