/* Lowering of scale_mask_softmax: one kernel item per row of the last axis,
 * three sweeps over that row (scale, mask and the row maximum; exponentials
 * and their sum in double; normalisation), reading x only in the first, so
 * the output may share x's buffer. Scores are rounded to the storage type
 * as the unfused mul / add / mask nodes would (runtime/ref_sms.c). */
#include <math.h>

#include "backend/lower_rows.h"

CG_LOWER_FN(cg_lower_scale_mask_softmax) {
  const ir_type *xt = &c->g->nodes[n->in[0]]->type;
  ir_dtype dt = xt->dtype;
  bool causal = n->attrs[1].b;
  if (!ir_dtype_is_float(dt) || n->type.dtype != dt || xt->rank < (causal ? 2 : 1)) {
    ir_diag_set(d, "%s: needs f32/f64 x of rank >= %d", ir_op_get(n->op)->name, causal ? 2 : 1);
    return false;
  }
  const ir_type *mt = n->nin == 2 ? &c->g->nodes[n->in[1]]->type : NULL;
  bool lengths = mt && ir_dtype_is_int(mt->dtype), bias = mt && !lengths;
  int r = xt->rank;
  int64_t tk = xt->dims[r - 1], tq = r >= 2 ? xt->dims[r - 2] : 1;
  int64_t rows = tk ? ir_type_numel(xt) / tk : 0, per_len = 1, bstr[IR_MAX_RANK];
  if (lengths)
    for (int i = mt->rank; i < r - 1; i++)
      per_len *= xt->dims[i]; /* rows sharing one length */
  if (bias) ir_broadcast_strides(mt, xt, bstr);

  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  k.extent = rows;
  k.work = 3 * tk;
  LLVMTypeRef t = cg_type(c, dt);
  LLVMValueRef mslot = lr_alloca(c, t, 1), sslot = lr_alloca(c, c->t_f64, 1);
  LLVMValueRef x = k.in[0], out = k.out, mask = mt ? k.in[1] : NULL;
  LLVMValueRef sc = cg_const(c, dt, n->attrs[0].f), mv = cg_const(c, dt, n->attrs[2].f);
  cg_loop lr, l1, l2, l3;
  LLVMValueRef row = cg_loop_begin(c, &lr, k.begin, k.end);
  LLVMValueRef base = LLVMBuildMul(c->b, row, cg_i64(c, tk), "");
  LLVMValueRef len = NULL, qi = NULL, brow = NULL;
  if (lengths)
    len = lr_load_i64(c, mt->dtype, mask, LLVMBuildUDiv(c->b, row, cg_i64(c, per_len), ""));
  if (causal) qi = LLVMBuildURem(c->b, row, cg_i64(c, tq), "");
  if (bias) brow = lr_offset(c, row, r - 1, xt->dims, bstr);

  /* sweep 1: masked scaled scores into out, and their maximum */
  LLVMBuildStore(c->b, LLVMConstReal(t, -INFINITY), mslot);
  LLVMValueRef j = cg_loop_begin(c, &l1, cg_i64(c, 0), cg_i64(c, tk));
  LLVMValueRef at = LLVMBuildAdd(c->b, base, j, "");
  LLVMValueRef v = LLVMBuildFMul(c->b, cg_load(c, dt, x, at), sc, "");
  if (bias) {
    LLVMValueRef bo =
        LLVMBuildAdd(c->b, brow, LLVMBuildMul(c->b, j, cg_i64(c, bstr[r - 1]), ""), "");
    v = LLVMBuildFAdd(c->b, v, cg_load(c, dt, mask, bo), "");
  }
  LLVMValueRef off = LLVMConstInt(c->t_i1, 0, 0);
  if (lengths) off = LLVMBuildOr(c->b, off, LLVMBuildICmp(c->b, LLVMIntSGE, j, len, ""), "");
  if (causal) off = LLVMBuildOr(c->b, off, LLVMBuildICmp(c->b, LLVMIntSGT, j, qi, ""), "");
  if (lengths || causal) v = LLVMBuildSelect(c->b, off, mv, v, "");
  cg_store(c, dt, out, at, v);
  LLVMBuildStore(c->b, lr_fmax(c, LLVMBuildLoad2(c->b, t, mslot, ""), v), mslot);
  cg_loop_end(c, &l1);
  LLVMValueRef m64 = lr_to_f64(c, LLVMBuildLoad2(c->b, t, mslot, ""));

  /* sweep 2: numerators and their sum, in double */
  LLVMBuildStore(c->b, LLVMConstReal(c->t_f64, 0.0), sslot);
  j = cg_loop_begin(c, &l2, cg_i64(c, 0), cg_i64(c, tk));
  at = LLVMBuildAdd(c->b, base, j, "");
  LLVMValueRef z = LLVMBuildFSub(c->b, lr_to_f64(c, cg_load(c, dt, out, at)), m64, "");
  LLVMValueRef e = cg_intrinsic(c, "llvm.exp", c->t_f64, &z, 1);
  cg_store(c, dt, out, at, lr_from_f64(c, dt, e));
  LLVMBuildStore(c->b, lr_fadd_reassoc(c, LLVMBuildLoad2(c->b, c->t_f64, sslot, ""), e), sslot);
  cg_loop_end(c, &l2);
  LLVMValueRef sum = LLVMBuildLoad2(c->b, c->t_f64, sslot, "");

  /* sweep 3: normalise */
  j = cg_loop_begin(c, &l3, cg_i64(c, 0), cg_i64(c, tk));
  at = LLVMBuildAdd(c->b, base, j, "");
  LLVMValueRef y = LLVMBuildFDiv(c->b, lr_to_f64(c, cg_load(c, dt, out, at)), sum, "");
  cg_store(c, dt, out, at, lr_from_f64(c, dt, y));
  cg_loop_end(c, &l3);
  cg_loop_end(c, &lr);
  cg_kernel_end(c, &k);
  return true;
}
