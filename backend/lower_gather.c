/* Lowering of gather (embedding lookup): result row p is table row idx[p],
 * copied as bytes so every dtype is exact. An index outside [0, rows) is
 * user input, not a crash: it is reported through rt_exec_error and that
 * result row is zeroed (runtime/ref_layout.c fails the run instead). */
#include "backend/lower_rows.h"
#include "runtime/exec.h"

CG_LOWER_FN(cg_lower_gather) {
  const ir_type *tt = &c->g->nodes[n->in[0]]->type;
  const ir_type *it = &c->g->nodes[n->in[1]]->type;
  if (tt->rank < 1 || !ir_dtype_is_int(it->dtype)) {
    ir_diag_set(d, "gather: needs a table of rank >= 1 and integer indices");
    return false;
  }
  int64_t rows = tt->dims[0], nidx = ir_type_numel(it), row = 1;
  for (int i = 1; i < tt->rank; i++)
    row *= tt->dims[i];
  int64_t es = (int64_t)ir_dtype_size(tt->dtype), bytes = row * es;
  unsigned align = (unsigned)es;
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  /* Indices are checked even when rows are empty, as the reference does. */
  k.extent = nidx;
  k.work = row > 0 ? row : 1;
  if (nidx > 0) {
    cg_loop l;
    LLVMValueRef p = cg_loop_begin(c, &l, k.begin, k.end);
    LLVMValueRef ix = lr_load_i64(c, it->dtype, k.in[1], p);
    LLVMValueRef dst = LLVMBuildGEP2(
        c->b, c->t_i8, k.out, (LLVMValueRef[]){LLVMBuildMul(c->b, p, cg_i64(c, bytes), "")}, 1, "");
    lr_if bad;
    /* unsigned compare: negative indices are out of range too */
    lr_if_begin(c, &bad, LLVMBuildICmp(c->b, LLVMIntUGE, ix, cg_i64(c, rows), ""));
    lr_exec_error(c, &k, RT_ERR_INDEX, p, ix, rows);
    LLVMBuildMemSet(c->b, dst, LLVMConstInt(c->t_i8, 0, 0), cg_i64(c, bytes), align);
    lr_if_else(c, &bad);
    LLVMValueRef src =
        LLVMBuildGEP2(c->b, c->t_i8, k.in[0],
                      (LLVMValueRef[]){LLVMBuildMul(c->b, ix, cg_i64(c, bytes), "")}, 1, "");
    LLVMBuildMemCpy(c->b, dst, align, src, align, cg_i64(c, bytes));
    lr_if_end(c, &bad);
    cg_loop_end(c, &l);
  }
  cg_kernel_end(c, &k);
  return true;
}
