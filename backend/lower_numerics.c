/* --check-numerics in compiled code (cg_ctx.check_numerics): a table of
 * which step call finishes a float result, two scan functions the loop
 * vectorizer turns into vector compares, and the test kiln_step makes
 * after each such call. None of it is emitted when the option is off, so
 * the module is then exactly what it was without the option. */
#include <stdlib.h>

#include "backend/cg.h"
#include "runtime/exec.h"

/* Elements per block of the scan: the vectorized OR over a block runs
 * without a branch, and only a block holding a bad value is scanned again
 * for its first index. */
#define CG_SCAN_BLOCK 1024

/* i1: x is NaN or +-inf. `ueq` is true when unordered (NaN) or equal. */
static LLVMValueRef nonfinite(cg_ctx *c, LLVMTypeRef t, LLVMValueRef x) {
  LLVMValueRef a = cg_intrinsic(c, "llvm.fabs", t, &x, 1);
  return LLVMBuildFCmp(c->b, LLVMRealUEQ, a, LLVMConstReal(t, __builtin_inf()), "");
}

/* i64 kiln_nonfinite_<dt>(ptr x, i64 n): the first index of a non-finite
 * element of x[0, n), or -1. */
static LLVMValueRef scan_fn(cg_ctx *c, ir_dtype dt) {
  LLVMTypeRef t = cg_type(c, dt);
  LLVMTypeRef params[] = {c->t_ptr, c->t_i64};
  LLVMValueRef fn =
      LLVMAddFunction(c->mod, dt == IR_F32 ? "kiln_nonfinite_f32" : "kiln_nonfinite_f64",
                      LLVMFunctionType(c->t_i64, params, 2, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  LLVMValueRef x = LLVMGetParam(fn, 0), n = LLVMGetParam(fn, 1);
  LLVMValueRef acc = LLVMBuildAlloca(c->b, c->t_i8, "any");
  LLVMValueRef nblocks = LLVMBuildSDiv(
      c->b, LLVMBuildAdd(c->b, n, cg_i64(c, CG_SCAN_BLOCK - 1), ""), cg_i64(c, CG_SCAN_BLOCK), "");
  cg_loop blocks;
  LLVMValueRef blk = cg_loop_begin(c, &blocks, cg_i64(c, 0), nblocks);
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
  cg_loop first;
  LLVMValueRef k = cg_loop_begin(c, &first, b, end);
  LLVMBasicBlockRef found = LLVMAppendBasicBlockInContext(c->ctx, fn, "found");
  LLVMBasicBlockRef on = LLVMAppendBasicBlockInContext(c->ctx, fn, "on");
  LLVMBuildCondBr(c->b, nonfinite(c, t, cg_load(c, dt, x, k)), found, on);
  LLVMPositionBuilderAtEnd(c->b, found);
  LLVMBuildRet(c->b, k);
  LLVMPositionBuilderAtEnd(c->b, on);
  cg_loop_end(c, &first);
  LLVMBuildBr(c->b, clean); /* not reached: the block holds a bad value */
  LLVMPositionBuilderAtEnd(c->b, clean);
  cg_loop_end(c, &blocks);
  LLVMBuildRet(c->b, cg_i64(c, -1));
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
  LLVMBasicBlockRef scan32 = LLVMAppendBasicBlockInContext(c->ctx, fn, "check_f32");
  LLVMBasicBlockRef scan64 = LLVMAppendBasicBlockInContext(c->ctx, fn, "check_f64");
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(c->ctx, fn, "nonfinite");
  LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(c->ctx, fn, "checked");
  LLVMValueRef kind = field(c, nx, i, 1, c->t_i32);
  LLVMValueRef sw = LLVMBuildSwitch(c->b, kind, cont, 2);
  LLVMAddCase(sw, cg_i32(c, 1), scan32);
  LLVMAddCase(sw, cg_i32(c, 2), scan64);
  LLVMTypeRef st = LLVMFunctionType(c->t_i64, (LLVMTypeRef[]){c->t_ptr, c->t_i64}, 2, 0);
  LLVMValueRef found[2];
  LLVMBasicBlockRef from[2] = {scan32, scan64};
  for (int k = 0; k < 2; k++) {
    LLVMPositionBuilderAtEnd(c->b, from[k]);
    LLVMValueRef out = LLVMBuildLoad2(c->b, c->t_ptr, block, "out");
    LLVMValueRef args[] = {out, field(c, nx, i, 0, c->t_i64)};
    found[k] = LLVMBuildCall2(c->b, st, k ? nx->f64 : nx->f32, args, 2, "bad_index");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, found[k], cg_i64(c, 0), ""), bad, cont);
  }
  LLVMPositionBuilderAtEnd(c->b, bad);
  LLVMValueRef pos = LLVMBuildPhi(c->b, c->t_i64, "pos");
  LLVMAddIncoming(pos, found, from, 2);
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
