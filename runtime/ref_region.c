/* The reference kernel of every region op (attention, additive_attention,
 * ...): it runs the region's body, the unfused sub-graph the fusion pass
 * recorded, so the reference result of a fused node is by construction the
 * result of what it replaced. */
#include <string.h>

#include "runtime/ref_kernels.h"

RT_REF_FN(rt_ref_region) {
  if (!n->body) {
    ir_diag_set(d, "%s: region without a body", ir_op_get(n->op)->name);
    return false;
  }
  rt_ref_opts o = {0};
  if (opts) o = *opts;
  o.assign = NULL;          /* bodies hold no state (ir_verify) */
  o.check_numerics = false; /* the region is checked as one node, as compiled code does */
  rt_tensor *res = NULL;
  ir_diag inner = {0};
  if (!rt_ref_run(n->body, in, NULL, NULL, &o, &res, &inner)) {
    ir_diag_set(d, "%s: in its body: %s", ir_op_get(n->op)->name, inner.msg);
    return false;
  }
  memcpy(out->data, res->data, out->bytes);
  rt_tensor_destroy(res);
  return true;
}
