/* TEMPORARY stubs: replaced by ir/shape_*.c. */
#include "ir/shape.h"
IR_SHAPE_FN(ir_shape_iota) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_binary) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_binary_float) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_compare) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_select) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_unary_numeric) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_unary_float) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_cast) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_reduce) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_softmax) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_layernorm) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_reshape) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_transpose) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_broadcast_to) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_slice) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_concat) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_gather) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_matmul) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_sequence_mask) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
IR_SHAPE_FN(ir_shape_xent) {
  (void)nin;
  (void)in;
  (void)attrs;
  (void)out;
  ir_diag_set(d, "%s: shape rule not implemented", ir_op_get(op)->name);
  return false;
}
void ir_shape_describe(ir_op op, int nin, const ir_type *in, char *buf, size_t len) {
  (void)nin;
  (void)in;
  snprintf(buf, len, "%s", ir_op_get(op)->name);
}
