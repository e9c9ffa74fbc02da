/* Lowering of the training-state ops: step (the run counter from rt_exec),
 * assign (a parameter's new value written into its storage: program_jit.c
 * makes the assign node's buffer the parameter's own memory) and
 * scatter_add (gather's adjoint). Each matches runtime/ref_*.c exactly. */
#include <stddef.h>

#include "backend/lower_map.h"
#include "backend/lower_rows.h"
#include "runtime/exec.h"

static LLVMValueRef exec_field(cg_ctx *c, cg_kernel *k, LLVMTypeRef t, size_t offset) {
  LLVMValueRef off = cg_i64(c, (int64_t)offset);
  LLVMValueRef p = LLVMBuildGEP2(c->b, c->t_i8, k->exec, &off, 1, "");
  return LLVMBuildLoad2(c->b, t, p, "");
}

/* The counter converted as the reference does: through double for floats
 * (so f32 rounds once from the exact double of any step below 2^53), the
 * low bits for i32. */
CG_LOWER_FN(cg_lower_step) {
  ir_dtype dt = n->type.dtype;
  if (n->type.rank != 0 || dt == IR_BOOL) {
    ir_diag_set(d, "step: needs a scalar f32, f64, i32 or i64 result, got %s rank %d",
                ir_dtype_name(dt), n->type.rank);
    return false;
  }
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  k.extent = 1;
  k.serial = true;
  LLVMValueRef s = exec_field(c, &k, c->t_i64, offsetof(rt_exec, step));
  LLVMValueRef v;
  if (ir_dtype_is_float(dt)) {
    v = LLVMBuildUIToFP(c->b, s, c->t_f64, "");
    if (dt == IR_F32) v = LLVMBuildFPTrunc(c->b, v, c->t_f32, "");
  } else {
    v = dt == IR_I64 ? s : LLVMBuildTrunc(c->b, s, c->t_i32, "");
  }
  cg_store(c, dt, k.out, cg_i64(c, 0), v);
  cg_kernel_end(c, &k);
  return true;
}

/* An earlier kernel of this run failed (a bad index): the reference writes
 * no parameter back then, so the assign leaves its parameter alone. */
static void assign_setup(cg_ctx *c, cg_kernel *k, void *ud) {
  (void)ud;
  LLVMValueRef err = exec_field(c, k, c->t_i32, offsetof(rt_exec, err_node));
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
  LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(c->ctx, fn, "failed_run");
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(c->ctx, fn, "write");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, err, cg_i32(c, 0), ""), skip, go);
  LLVMPositionBuilderAtEnd(c->b, skip);
  LLVMBuildRetVoid(c->b);
  LLVMPositionBuilderAtEnd(c->b, go);
}

/* out (the parameter's storage) = operand 1, moved as stored bytes. */
CG_LOWER_FN(cg_lower_assign) {
  const ir_type *vt = &c->g->nodes[n->in[1]]->type;
  if (!ir_type_eq(vt, &n->type)) {
    ir_diag_set(d, "assign: the value's type differs from the parameter's");
    return false;
  }
  cg_map m;
  cg_map_init(&m, n, cg_map_copy_value, NULL);
  m.raw_out = true;
  m.setup = assign_setup;
  int64_t contig[IR_MAX_RANK];
  ir_strides(vt, contig);
  cg_map_add(&m, 1, vt->dtype, true, 0, contig);
  cg_map_emit(c, n, &m);
  return true;
}

/* Parallel over the columns of a row (the trailing dims): each call zeroes
 * its columns of every output row, then adds the source rows in index
 * order, so every element sums in the reference's order on any thread
 * count. Every call checks every index; all meet the first bad one first,
 * so the recorded error is the reference's. */
CG_LOWER_FN(cg_lower_scatter_add) {
  const ir_type *it = &c->g->nodes[n->in[0]]->type;
  ir_dtype dt = n->type.dtype;
  if (!ir_dtype_is_int(it->dtype) || !ir_dtype_is_float(dt) || n->type.rank < 1) {
    ir_diag_set(d, "scatter_add: needs integer indices and a float source");
    return false;
  }
  int64_t rows = n->type.dims[0], nidx = ir_type_numel(it), row = 1;
  for (int i = 1; i < n->type.rank; i++)
    row *= n->type.dims[i];
  int64_t es = (int64_t)ir_dtype_size(dt);
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  /* An empty row still checks its indices, as the reference does. */
  k.extent = row > 0 ? row : 1;
  k.work = nidx + rows;
  LLVMValueRef end = lr_smin64(c, k.end, cg_i64(c, row));
  LLVMValueRef width = LLVMBuildNSWSub(c->b, end, k.begin, "");
  LLVMValueRef any = LLVMBuildICmp(c->b, LLVMIntSGT, width, cg_i64(c, 0), "");
  LLVMValueRef nbytes =
      LLVMBuildSelect(c->b, any, LLVMBuildNSWMul(c->b, width, cg_i64(c, es), ""), cg_i64(c, 0), "");

  cg_loop zl;
  LLVMValueRef r = cg_loop_begin(c, &zl, cg_i64(c, 0), cg_i64(c, rows));
  LLVMValueRef at =
      LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, r, cg_i64(c, row), ""), k.begin, "");
  LLVMValueRef dst = cg_elem_ptr(c, dt, k.out, at);
  LLVMBuildMemSet(c->b, dst, LLVMConstInt(c->t_i8, 0, 0), nbytes, (unsigned)es);
  cg_loop_end(c, &zl);

  if (nidx > 0) {
    cg_loop pl;
    LLVMValueRef p = cg_loop_begin(c, &pl, cg_i64(c, 0), cg_i64(c, nidx));
    LLVMValueRef ix = lr_load_i64(c, it->dtype, k.in[0], p);
    lr_if bad;
    /* unsigned compare: negative indices are out of range too */
    lr_if_begin(c, &bad, LLVMBuildICmp(c->b, LLVMIntUGE, ix, cg_i64(c, rows), ""));
    lr_exec_error(c, &k, RT_ERR_INDEX, p, ix, rows);
    lr_if_else(c, &bad);
    LLVMValueRef obase = LLVMBuildNSWMul(c->b, ix, cg_i64(c, row), "");
    LLVMValueRef sbase = LLVMBuildNSWMul(c->b, p, cg_i64(c, row), "");
    cg_loop jl;
    LLVMValueRef j = cg_loop_begin(c, &jl, k.begin, end);
    LLVMValueRef oi = LLVMBuildNSWAdd(c->b, obase, j, "");
    LLVMValueRef sum =
        LLVMBuildFAdd(c->b, cg_load(c, dt, k.out, oi),
                      cg_load(c, dt, k.in[1], LLVMBuildNSWAdd(c->b, sbase, j, "")), "");
    cg_store(c, dt, k.out, oi, sum);
    cg_loop_end(c, &jl);
    lr_if_end(c, &bad);
    cg_loop_end(c, &pl);
  }
  cg_kernel_end(c, &k);
  return true;
}
