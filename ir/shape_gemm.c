/* Shape rule of gemm (ir.h, "fused ops"): matmul's rule for a and b, plus
 * the accumulator c, which must have exactly the result's type, and beta,
 * which must be 0 when there is no c. */
#include "ir/shape.h"
#include "ir/shape_util.h"

IR_SHAPE_FN(ir_shape_gemm) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 4, d)) return false;
  if (nin != 2 && nin != 3)
    return ir_shape_fail(op, nin, in, d, "takes 2 or 3 operands (a, b[, c]), got %d", nin);
  if (!ir_shape_matmul(op, 2, in, attrs, out, d)) return false;
  double beta = attrs[3].f;
  if (nin == 2 && beta != 0)
    return ir_shape_fail(op, nin, in, d, "beta is %g but there is no accumulator operand c", beta);
  if (nin == 3 && !ir_type_eq(&in[2], out)) {
    char want[IR_TYPE_STRLEN];
    return ir_shape_fail(op, nin, in, d, "the accumulator c must have the result's type %s",
                         ir_type_str(out, want, sizeof want));
  }
  return true;
}
