/* Gradient rule of additive_attention (ir.h, "fused ops"), so the backward of a
 * fused region is fused too. OWNER: the additive helper (stub). */
#include "passes/autodiff.h"

PASS_GRAD_FN(pass_grad_additive_attention) {
  (void)gy, (void)gx;
  return pass_ad_fail(ad, "%s: no gradient rule yet", ir_op_get(n->op)->name);
}
