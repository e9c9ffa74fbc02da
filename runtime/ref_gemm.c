/* Reference kernel of gemm: the product by rt_ref_matmul's triple loop
 * (gemm's transposes sit where matmul's do), then alpha and beta applied
 * element by element in double. beta = 0 reads no c and alpha = 0 no
 * product, as BLAS does (ir.h, "fused ops"). */
#include "runtime/ref_util.h"

RT_REF_FN(rt_ref_gemm) {
  double alpha = n->attrs[2].f, beta = n->attrs[3].f;
  bool has_c = n->nin == 3;
  if (has_c && rt_numel(in[2]) != rt_numel(out)) {
    ir_diag_set(d, "gemm: the accumulator's size differs from the result's");
    return false;
  }
  if (alpha != 0 && !rt_ref_matmul(n, in, out, opts, d)) return false;
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    double v = alpha != 0 ? alpha * rt_get_f(out, i) : 0.0;
    if (has_c && beta != 0) v += beta * rt_get_f(in[2], i);
    rt_store_f(out, i, v);
  }
  return true;
}
