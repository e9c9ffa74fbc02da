/* Gradient rule of scale_mask_softmax (ir.h, "fused ops"), so the backward of a
 * fused region is fused too. OWNER: the fuse-attention helper (stub). */
#include "passes/autodiff.h"

PASS_GRAD_FN(pass_grad_scale_mask_softmax) {
  (void)gy, (void)gx;
  return pass_ad_fail(ad, "%s: no gradient rule yet", ir_op_get(n->op)->name);
}
