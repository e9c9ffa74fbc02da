/* Reference kernel of additive_attention_grad: the gradients of additive
 * attention (ir.h, "fused ops") with respect to qp, kp, w_v and v.
 * OWNER: the additive-attention helper (stub). */
#include "runtime/ref_kernels.h"

RT_REF_FN(rt_ref_additive_attention_grad) {
  (void)in, (void)out, (void)opts;
  ir_diag_set(d, "%s: not implemented yet", ir_op_get(n->op)->name);
  return false;
}
