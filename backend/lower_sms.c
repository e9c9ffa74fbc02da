/* Lowering of scale_mask_softmax: one pass over each row, in place.
 * OWNER: the fuse-attention helper (stub). */
#include "backend/cg.h"

CG_LOWER_FN(cg_lower_scale_mask_softmax) {
  (void)c;
  ir_diag_set(d, "%s: no JIT kernel yet", ir_op_get(n->op)->name);
  return false;
}
