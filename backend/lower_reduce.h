/* The reduction emitter (lower_reduce.c) with its per-input-element value
 * as a callback: a plain sum/mean/reduce_max loads the element, a loop
 * region ending in a reduction (lower_loop.c) evaluates its body there.
 * Internal to backend/. */
#ifndef KILN_LOWER_REDUCE_H
#define KILN_LOWER_REDUCE_H

#include "backend/cg.h"
#include "backend/lower_map.h"

/* Arrays addressed per input element: source 0 is the reduction's input
 * itself (row-major, so its offset is the element's flat index); the
 * others are the callback's, one stride row each. */
#define CG_RED_MAX_SRC (CG_MAP_MAX_ARGS + 1)

/* The input element's value (the input dtype's compute type) from the
 * sources' element offsets off[0 .. nsrc). */
typedef LLVMValueRef (*cg_red_value_fn)(cg_ctx *c, cg_kernel *k, void *ud, const LLVMValueRef *off);

typedef struct cg_red_input {
  const ir_node *red;                    /* the sum, mean or reduce_max: op, axes, result type */
  const ir_type *type;                   /* its input's type (the iteration space) */
  int nsrc;                              /* sources after source 0 */
  const int64_t (*strides)[IR_MAX_RANK]; /* nsrc rows: element strides per input dim */
  cg_red_value_fn value;
  /* Optional: runs once in the kernel's entry block. */
  void (*setup)(cg_ctx *c, cg_kernel *k, void *ud);
  void *ud;
} cg_red_input;

/* Emits n's kernel (cg_kernel_begin .. end): the reduction in->red over
 * in->type, storing in->red's result type into n's buffer. False with d
 * set (naming the op) on a bad axis or an unsupported dtype. */
bool cg_emit_reduce(cg_ctx *c, const ir_node *n, const cg_red_input *in, ir_diag *d);

#endif
