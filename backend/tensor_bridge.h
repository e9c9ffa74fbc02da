/* Between the public kl_tensor and the runtime's rt_tensor, for in-tree
 * tools (the CLI) that read tensors with the runtime and run them through
 * the public program API. Not part of the public API. */
#ifndef KILN_CG_TENSOR_BRIDGE_H
#define KILN_CG_TENSOR_BRIDGE_H

#include "backend/kiln_run.h"
#include "runtime/tensor.h"

/* Borrowed view of the runtime tensor inside t. */
const rt_tensor *cg_tensor_rt(const kl_tensor *t);
/* Wraps t, taking ownership (t is destroyed with the result); NULL if out
 * of memory, in which case t is destroyed. */
kl_tensor *cg_tensor_adopt(rt_tensor *t);

#endif
