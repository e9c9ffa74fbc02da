/* Reference kernel of scale_mask_softmax (ir.h, "fused ops").
 * OWNER: the fuse-attention helper (stub). */
#include "runtime/ref_kernels.h"

RT_REF_FN(rt_ref_scale_mask_softmax) {
  (void)in, (void)out, (void)opts;
  ir_diag_set(d, "%s: not implemented yet", ir_op_get(n->op)->name);
  return false;
}
