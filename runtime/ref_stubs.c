/* TEMPORARY stubs: replaced by runtime/ref_*.c. */
#include "runtime/ref_kernels.h"
RT_REF_FN(rt_ref_leaf) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_iota) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_binary) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_compare) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_select) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_unary) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_cast) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_dropout) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_reduce) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_softmax) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_layernorm) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_reshape) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_transpose) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_broadcast_to) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_slice) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_concat) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_gather) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_matmul) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_sequence_mask) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
RT_REF_FN(rt_ref_xent) {
  (void)in;
  (void)out;
  (void)opts;
  ir_diag_set(d, "%s: reference kernel not implemented", ir_op_get(n->op)->name);
  return false;
}
