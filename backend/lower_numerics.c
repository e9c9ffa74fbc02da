/* --check-numerics in compiled code (cg_ctx.check_numerics): a table of
 * which step call finishes a float result, two scan functions the loop
 * vectorizer turns into vector compares, and the test kiln_step makes
 * after each such call. None of it is emitted when the option is off, so
 * the module is then exactly what it was without the option. */
#include <stdint.h>
#include <stdlib.h>

#include "backend/cg.h"
#include "runtime/exec.h"

/* Elements per block of the scan: the vectorized OR over a block runs
 * without a branch, and only a block holding a bad value is scanned again
 * for its first index. */
#define CG_SCAN_BLOCK 1024
/* Blocks per chunk when a scan is split over the pool: 32K elements, the
 * work below which kernels stay on the calling thread (cg_core.c). */
#define CG_SCAN_GRAIN 32

/* i1: x is NaN or +-inf. `ueq` is true when unordered (NaN) or equal. */
static LLVMValueRef nonfinite(cg_ctx *c, LLVMTypeRef t, LLVMValueRef x) {
  LLVMValueRef a = cg_intrinsic(c, "llvm.fabs", t, &x, 1);
  return LLVMBuildFCmp(c->b, LLVMRealUEQ, a, LLVMConstReal(t, __builtin_inf()), "");
}

/* void kiln_nonfinite_<dt>(ptr args, i64 begin, i64 end), a kernel over
 * blocks [begin, end) of the buffer: args = {ptr x, i64 n, ptr first}.
 * A chunk stops at its first bad element and lowers *first to its index
 * (atomic min: chunks run on the pool's threads, and the lowest wins). */
static LLVMValueRef scan_fn(cg_ctx *c, ir_dtype dt) {
  LLVMTypeRef t = cg_type(c, dt);
  LLVMValueRef fn = LLVMAddFunction(
      c->mod, dt == IR_F32 ? "kiln_nonfinite_f32" : "kiln_nonfinite_f64", c->t_kernel);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  LLVMValueRef args = LLVMGetParam(fn, 0);
  LLVMValueRef x = LLVMBuildLoad2(c->b, c->t_ptr, args, "x");
  LLVMValueRef n = LLVMBuildLoad2(c->b, c->t_i64, cg_elem_ptr(c, IR_I64, args, cg_i64(c, 1)), "n");
  LLVMValueRef first =
      LLVMBuildLoad2(c->b, c->t_ptr, cg_elem_ptr(c, IR_I64, args, cg_i64(c, 2)), "");
  LLVMValueRef acc = LLVMBuildAlloca(c->b, c->t_i8, "any");
  cg_loop blocks;
  LLVMValueRef blk = cg_loop_begin(c, &blocks, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2));
  LLVMValueRef b = LLVMBuildMul(c->b, blk, cg_i64(c, CG_SCAN_BLOCK), "");
  LLVMValueRef full = LLVMBuildAdd(c->b, b, cg_i64(c, CG_SCAN_BLOCK), "");
  LLVMValueRef end =
      LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, full, n, ""), full, n, "end");
  LLVMBuildStore(c->b, LLVMConstInt(c->t_i8, 0, 0), acc);
  cg_loop any;
  LLVMValueRef j = cg_loop_begin(c, &any, b, end);
  LLVMValueRef bad = LLVMBuildZExt(c->b, nonfinite(c, t, cg_load(c, dt, x, j)), c->t_i8, "");
  LLVMBuildStore(c->b, LLVMBuildOr(c->b, LLVMBuildLoad2(c->b, c->t_i8, acc, ""), bad, ""), acc);
  cg_loop_end(c, &any);
  LLVMBasicBlockRef find = LLVMAppendBasicBlockInContext(c->ctx, fn, "find");
  LLVMBasicBlockRef clean = LLVMAppendBasicBlockInContext(c->ctx, fn, "clean");
  LLVMValueRef hit = LLVMBuildLoad2(c->b, c->t_i8, acc, "");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, hit, LLVMConstInt(c->t_i8, 0, 0), ""), find,
                  clean);
  LLVMPositionBuilderAtEnd(c->b, find);
  cg_loop scan;
  LLVMValueRef k = cg_loop_begin(c, &scan, b, end);
  LLVMBasicBlockRef found = LLVMAppendBasicBlockInContext(c->ctx, fn, "found");
  LLVMBasicBlockRef on = LLVMAppendBasicBlockInContext(c->ctx, fn, "on");
  LLVMBuildCondBr(c->b, nonfinite(c, t, cg_load(c, dt, x, k)), found, on);
  LLVMPositionBuilderAtEnd(c->b, found);
  LLVMBuildAtomicRMW(c->b, LLVMAtomicRMWBinOpMin, first, k, LLVMAtomicOrderingMonotonic, 0);
  LLVMBuildRetVoid(c->b);
  LLVMPositionBuilderAtEnd(c->b, on);
  cg_loop_end(c, &scan);
  LLVMBuildBr(c->b, clean); /* not reached: the block holds a bad value */
  LLVMPositionBuilderAtEnd(c->b, clean);
  cg_loop_end(c, &blocks);
  LLVMBuildRetVoid(c->b);
  return fn;
}

bool cg_numerics_begin(cg_ctx *c, cg_numerics *nx, ir_diag *d) {
  int ncalls = 0;
  for (int i = 0; i < c->nkernels; i++)
    ncalls += c->kernels[i].extent > 0;
  nx->entry_t =
      LLVMStructTypeInContext(c->ctx, (LLVMTypeRef[]){c->t_i64, c->t_i32, c->t_i32}, 3, 0);
  LLVMValueRef *v = malloc((size_t)(ncalls ? ncalls : 1) * sizeof *v);
  if (!v) return ir_diag_set(d, "out of memory"), false;
  for (int i = 0, k = 0; i < c->nkernels; i++) {
    const cg_kernel_rec *r = &c->kernels[i];
    if (r->extent <= 0) continue;
    int next = i + 1;
    while (next < c->nkernels && c->kernels[next].extent <= 0)
      next++;
    /* a node's calls are consecutive; its result is complete after the last */
    bool last = next == c->nkernels || c->kernels[next].n != r->n;
    ir_dtype dt = r->n->type.dtype;
    int kind = !last ? 0 : dt == IR_F32 ? 1 : dt == IR_F64 ? 2 : 0;
    LLVMValueRef f[] = {cg_i64(c, kind ? ir_type_numel(&r->n->type) : 0), cg_i32(c, kind),
                        cg_i32(c, r->n->id)};
    v[k++] = LLVMConstStructInContext(c->ctx, f, 3, 0);
  }
  nx->table = cg_const_table(c, "kiln_checks", nx->entry_t, v, (unsigned)ncalls);
  nx->table_t = LLVMGlobalGetValueType(nx->table);
  free(v);
  nx->f32 = scan_fn(c, IR_F32);
  nx->f64 = scan_fn(c, IR_F64);
  return true;
}

static LLVMValueRef field(cg_ctx *c, const cg_numerics *nx, LLVMValueRef i, int f, LLVMTypeRef t) {
  LLVMValueRef idx[] = {cg_i64(c, 0), i, cg_i32(c, f)};
  return LLVMBuildLoad2(c->b, t, LLVMBuildInBoundsGEP2(c->b, nx->table_t, nx->table, idx, 3, ""),
                        "");
}

void cg_numerics_check(cg_ctx *c, const cg_numerics *nx, LLVMValueRef i, LLVMValueRef block,
                       LLVMValueRef exec) {
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
  LLVMBasicBlockRef scan = LLVMAppendBasicBlockInContext(c->ctx, fn, "check");
  LLVMBasicBlockRef par = LLVMAppendBasicBlockInContext(c->ctx, fn, "check_parallel");
  LLVMBasicBlockRef direct = LLVMAppendBasicBlockInContext(c->ctx, fn, "check_direct");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "check_done");
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(c->ctx, fn, "nonfinite");
  LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(c->ctx, fn, "checked");
  LLVMValueRef kind = field(c, nx, i, 1, c->t_i32);
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, kind, cg_i32(c, 0), ""), cont, scan);

  LLVMPositionBuilderAtEnd(c->b, scan);
  LLVMValueRef n = field(c, nx, i, 0, c->t_i64);
  LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->t_ptr, block, "out"), nx->args);
  LLVMBuildStore(c->b, n, cg_elem_ptr(c, IR_I64, nx->args, cg_i64(c, 1)));
  LLVMBuildStore(c->b, nx->first, cg_elem_ptr(c, IR_I64, nx->args, cg_i64(c, 2)));
  LLVMBuildStore(c->b, cg_i64(c, INT64_MAX), nx->first);
  LLVMValueRef kfn = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, kind, cg_i32(c, 1), ""),
                                     nx->f32, nx->f64, "scan");
  LLVMValueRef nblocks = LLVMBuildSDiv(
      c->b, LLVMBuildAdd(c->b, n, cg_i64(c, CG_SCAN_BLOCK - 1), ""), cg_i64(c, CG_SCAN_BLOCK), "");
  LLVMValueRef grain = cg_i64(c, CG_SCAN_GRAIN);
  LLVMValueRef big = LLVMBuildICmp(c->b, LLVMIntSGE, nblocks, cg_i64(c, 2 * CG_SCAN_GRAIN), "");
  LLVMBuildCondBr(c->b, big, par, direct);
  LLVMPositionBuilderAtEnd(c->b, par);
  LLVMTypeRef pf_params[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_i64};
  LLVMValueRef pargs[] = {exec, kfn, nx->args, nblocks, grain};
  cg_call(c, "rt_parallel_for", c->t_void, pf_params, 5, pargs);
  LLVMBuildBr(c->b, done);
  LLVMPositionBuilderAtEnd(c->b, direct);
  LLVMValueRef dargs[] = {nx->args, cg_i64(c, 0), nblocks};
  LLVMBuildCall2(c->b, c->t_kernel, kfn, dargs, 3, "");
  LLVMBuildBr(c->b, done);
  LLVMPositionBuilderAtEnd(c->b, done);
  LLVMValueRef pos = LLVMBuildLoad2(c->b, c->t_i64, nx->first, "pos");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, pos, cg_i64(c, INT64_MAX), ""), bad, cont);

  LLVMPositionBuilderAtEnd(c->b, bad);
  /* recorded like a kernel fault; the step stops here, so nothing reads
   * the bad value and the program's message names this node */
  LLVMTypeRef ep[] = {c->t_ptr, c->t_i32, c->t_i32, c->t_i64, c->t_i64, c->t_i64};
  LLVMValueRef ea[] = {
      exec,        field(c, nx, i, 2, c->t_i32), cg_i32(c, RT_ERR_NONFINITE), pos, cg_i64(c, 0),
      cg_i64(c, 0)};
  cg_call(c, "rt_exec_error", c->t_void, ep, 6, ea);
  LLVMBuildRetVoid(c->b);
  LLVMPositionBuilderAtEnd(c->b, cont);
}

void cg_numerics_allocas(cg_ctx *c, cg_numerics *nx) {
  nx->args = LLVMBuildArrayAlloca(c->b, c->t_i64, cg_i64(c, 3), "scan_args");
  nx->first = LLVMBuildAlloca(c->b, c->t_i64, "first_bad");
}
