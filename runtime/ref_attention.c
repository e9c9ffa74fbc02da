/* Reference kernel of attention_grad: the gradients of attention (ir.h,
 * "fused ops") with respect to q, k and v, computed plainly with the whole
 * score matrix in memory. OWNER: the attention-kernels helper (stub). */
#include "runtime/ref_kernels.h"

RT_REF_FN(rt_ref_attention_grad) {
  (void)in, (void)out, (void)opts;
  ir_diag_set(d, "%s: not implemented yet", ir_op_get(n->op)->name);
  return false;
}
