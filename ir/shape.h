/* Shape rules named by the op table (ops.def, SHAPE column). Each infers a
 * result type from operand types and attributes, or writes a message that
 * names the op and the operand types. Implemented in ir/shape_*.c. */
#ifndef KILN_IR_SHAPE_H
#define KILN_IR_SHAPE_H

#include "ir/ir.h"

#define IR_SHAPE_FN(name)                                                                          \
  bool name(ir_op op, int nin, const ir_type *in, const ir_attr *attrs, ir_type *out, ir_diag *d)

IR_SHAPE_FN(ir_shape_iota);
IR_SHAPE_FN(ir_shape_binary);
IR_SHAPE_FN(ir_shape_binary_float);
IR_SHAPE_FN(ir_shape_compare);
IR_SHAPE_FN(ir_shape_select);
IR_SHAPE_FN(ir_shape_unary_numeric);
IR_SHAPE_FN(ir_shape_unary_float);
IR_SHAPE_FN(ir_shape_cast);
IR_SHAPE_FN(ir_shape_reduce);
IR_SHAPE_FN(ir_shape_softmax);
IR_SHAPE_FN(ir_shape_layernorm);
IR_SHAPE_FN(ir_shape_reshape);
IR_SHAPE_FN(ir_shape_transpose);
IR_SHAPE_FN(ir_shape_broadcast_to);
IR_SHAPE_FN(ir_shape_slice);
IR_SHAPE_FN(ir_shape_concat);
IR_SHAPE_FN(ir_shape_gather);
IR_SHAPE_FN(ir_shape_scatter_add);
IR_SHAPE_FN(ir_shape_assign);
IR_SHAPE_FN(ir_shape_matmul);
IR_SHAPE_FN(ir_shape_gemm); /* ir/shape_gemm.c */
IR_SHAPE_FN(ir_shape_sequence_mask);
IR_SHAPE_FN(ir_shape_xent);
IR_SHAPE_FN(ir_shape_attention);
IR_SHAPE_FN(ir_shape_attention_grad);
IR_SHAPE_FN(ir_shape_attention_lse);
IR_SHAPE_FN(ir_shape_additive_attention);
IR_SHAPE_FN(ir_shape_additive_attention_grad);
IR_SHAPE_FN(ir_shape_scale_mask_softmax);
IR_SHAPE_FN(ir_shape_loop);
IR_SHAPE_FN(ir_shape_embed); /* ir/shape_embed.c */
IR_SHAPE_FN(ir_shape_embed_grad);

/* "add(f32[2,3], f32[4])": the op and its operand types, for messages. */
void ir_shape_describe(ir_op op, int nin, const ir_type *in, char *buf, size_t len);

#endif
