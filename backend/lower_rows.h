/* Helpers shared by the reduction, row-wise and gather lowerings
 * (backend/lower_reduce.c, lower_rows.c, lower_gather.c): reassociable
 * accumulation, NaN-propagating max, static index arithmetic, entry-block
 * scratch and the data-dependent error call. Internal to backend/. */
#ifndef KILN_LOWER_ROWS_H
#define KILN_LOWER_ROWS_H

#include "backend/cg.h"

/* a + b with reassociation allowed, so the loop vectorizer may keep
 * partial sums in vector lanes. */
LLVMValueRef lr_fadd_reassoc(cg_ctx *c, LLVMValueRef a, LLVMValueRef b);
/* max(a, b) that propagates NaN (llvm.maximum), as the reference does. */
LLVMValueRef lr_fmax(cg_ctx *c, LLVMValueRef a, LLVMValueRef b);
/* Float value v of type from f32/f64 widened to double (no-op for f64). */
LLVMValueRef lr_to_f64(cg_ctx *c, LLVMValueRef v);
/* Double v narrowed to the storage type of float dtype dt. */
LLVMValueRef lr_from_f64(cg_ctx *c, ir_dtype dt, LLVMValueRef v);
/* min(a, b) of i64 values (signed). */
LLVMValueRef lr_smin64(cg_ctx *c, LLVMValueRef a, LLVMValueRef b);

/* Element offset of flat row-major index q over a list of n static
 * dimensions sizes[] whose elements sit strides[] apart: the sum of
 * (q / inner_i % sizes[i]) * strides[i]. Sizes must be >= 1. */
LLVMValueRef lr_offset(cg_ctx *c, LLVMValueRef q, int n, const int64_t *sizes,
                       const int64_t *strides);

/* An n-element array of t on the kernel's stack. Call right after
 * cg_kernel_begin so it lands in the entry block (SROA/mem2reg only
 * promote entry-block allocas). */
LLVMValueRef lr_alloca(cg_ctx *c, LLVMTypeRef t, int64_t n);

/* rt_exec_error(exec, node id, kind, pos, val, limit); pos and val i64. */
void lr_exec_error(cg_ctx *c, cg_kernel *k, int kind, LLVMValueRef pos, LLVMValueRef val,
                   int64_t limit);

/* Loads element idx of an integer tensor (i32 or i64) as i64. */
LLVMValueRef lr_load_i64(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx);

/* Two-way branch on cond: lr_if_begin leaves the builder in the "then"
 * block; lr_if_else switches to the "else" block; lr_if_end joins. */
typedef struct lr_if {
  LLVMBasicBlockRef then_bb, else_bb, join_bb;
} lr_if;
void lr_if_begin(cg_ctx *c, lr_if *f, LLVMValueRef cond);
void lr_if_else(cg_ctx *c, lr_if *f);
void lr_if_end(cg_ctx *c, lr_if *f);

#endif
