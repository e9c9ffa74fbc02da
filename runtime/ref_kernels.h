/* Reference kernels named by the op table (ops.def, REF column). Each
 * computes `out` (allocated with n->type) from its operands. Kernels only
 * see verified nodes, so they may assume shapes and dtypes are valid. */
#ifndef KILN_RT_REF_KERNELS_H
#define KILN_RT_REF_KERNELS_H

#include "runtime/ref.h"

#define RT_REF_FN(name)                                                                            \
  bool name(const ir_node *n, const rt_tensor *const *in, rt_tensor *out, const rt_ref_opts *opts, \
            ir_diag *d)

typedef RT_REF_FN((*rt_ref_fn));

#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER_, GRAD_) RT_REF_FN(REF);
#include "ir/ops.def"
#undef IR_OP

#endif
