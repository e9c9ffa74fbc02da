/* --check-numerics: finding the first NaN or infinity in a node's result
 * and the message both backends report for it (op, value name, source
 * line, step, index and value; for a fused region, the body node that made
 * it first, found by re-running the body on the reference interpreter). */
#ifndef KILN_RT_NUMERICS_H
#define KILN_RT_NUMERICS_H

#include "runtime/ref.h"
#include "runtime/tensor.h"

/* Flat index of the first NaN or +-inf among the n elements of dt (f32 or
 * f64) at data, or -1 when all are finite (always -1 for other dtypes). */
int64_t rt_first_nonfinite(const void *data, int64_t n, ir_dtype dt);

/* Sets d to the message for node n, whose result `out` first holds a
 * non-finite value at flat index idx during run `opts->step`:
 *   "FILE:LINE: %NAME: OP: nan at index 5 [1,2] of f32[2,3] (step 7)".
 * For a region node (n->body) with its operands' values `in` (NULL when
 * they are gone or unknown), the body is re-run on the reference with the check on,
 * and the message adds the body node that made a non-finite value first. */
void rt_nonfinite_report(const ir_node *n, const rt_tensor *out, int64_t idx,
                         const rt_tensor *const *in, const rt_ref_opts *opts, ir_diag *d);

#endif
