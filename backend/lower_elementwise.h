/* The value of one elementwise or broadcast op at one element, from its
 * operands' values there: the op math shared by the ops' own kernels
 * (lower_elementwise.c) and by loop regions (lower_loop.c), which evaluate
 * a whole chain per element. Internal to backend/. */
#ifndef KILN_LOWER_ELEMENTWISE_H
#define KILN_LOWER_ELEMENTWISE_H

#include "backend/cg.h"

/* What an op's value needs beyond its operands, filled by cg_ew_prepare. */
typedef struct cg_ew {
  const ir_node *n;             /* the op's node: op, attributes, result type */
  ir_dtype dt;                  /* operand dtype (the first operand's for compare and cast) */
  bool tanh_form;               /* gelu, gelu_deriv */
  bool drop;                    /* dropout that draws a mask (training, p > 0) */
  double p;                     /* dropout */
  LLVMValueRef seed, step, key; /* dropout's stream (cg_ew_dropout_setup) */
} cg_ew;

/* Checks that n (a node of g, whose operand types it reads) is an op and
 * dtype the emitters support and fills e; false with d set naming the op. */
bool cg_ew_prepare(const ir_graph *g, const ir_node *n, bool training, cg_ew *e, ir_diag *d);

/* Loads dropout's seed and step from the kernel's rt_exec (in the entry
 * block); key is the mask stream (i32). */
void cg_ew_dropout_setup(cg_ctx *c, cg_kernel *k, cg_ew *e, LLVMValueRef key);

/* n's value at one element, as n's compute type. v holds the operands'
 * values (compute types; select also takes storage types) with two
 * index inputs instead of loads: iota's v[0] is the index along its axis,
 * sequence_mask's v[2] the index along the last axis (i64). flat is the
 * element's flat index in n's result (dropout's mask index). */
LLVMValueRef cg_ew_value(cg_ctx *c, const cg_ew *e, LLVMValueRef *v, LLVMValueRef flat);

#endif
