/* Gradient rule of attention (ir.h, "fused ops"), so the backward of a
 * fused region is fused too. OWNER: the attention-kernels helper (stub). */
#include "passes/autodiff.h"

PASS_GRAD_FN(pass_grad_attention) {
  (void)gy, (void)gx;
  return pass_ad_fail(ad, "%s: no gradient rule yet", ir_op_get(n->op)->name);
}
