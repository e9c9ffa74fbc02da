/* Lowerings of the data-movement ops: reshape, transpose, broadcast_to and
 * slice are strided copies (lower_map.h); concat is one kernel whose items
 * are blocks of output rows, each filled from the operands that cover it.
 * Elements move as stored bytes, so every dtype is exact. */
#include "backend/lower_map.h"

static const ir_type *operand_type(const cg_ctx *c, const ir_node *n, int i) {
  return &c->g->nodes[n->in[i]]->type;
}

CG_LOWER_FN(cg_lower_reshape) {
  if (ir_type_numel(operand_type(c, n, 0)) != ir_type_numel(&n->type)) {
    ir_diag_set(d, "%s: element counts differ", ir_op_get(n->op)->name);
    return false;
  }
  cg_map_copy(c, n, 0, NULL); /* same row-major order: collapses to one flat loop */
  return true;
}

CG_LOWER_FN(cg_lower_transpose) {
  const ir_type *xt = operand_type(c, n, 0);
  const ir_ints *perm = &n->attrs[0].ints;
  if (perm->n != xt->rank || n->type.rank != xt->rank) {
    ir_diag_set(d, "transpose: perm has %d entries for rank %d", perm->n, xt->rank);
    return false;
  }
  int64_t xs[IR_MAX_RANK], s[IR_MAX_RANK];
  ir_strides(xt, xs);
  for (int i = 0; i < xt->rank; i++) {
    int64_t p = perm->v[i] < 0 ? perm->v[i] + xt->rank : perm->v[i];
    if (p < 0 || p >= xt->rank) {
      ir_diag_set(d, "transpose: perm entry %lld out of range", (long long)perm->v[i]);
      return false;
    }
    s[i] = xs[p]; /* result axis i walks input axis perm[i] */
  }
  cg_map_copy(c, n, 0, s);
  return true;
}

CG_LOWER_FN(cg_lower_broadcast_to) {
  (void)d;
  int64_t s[IR_MAX_RANK] = {0};
  ir_broadcast_strides(operand_type(c, n, 0), &n->type, s);
  cg_map_copy(c, n, 0, s);
  return true;
}

/* The operand pointer arrives advanced to the slice's first element
 * (cg_operand_offset), so slices that differ only in their starts share
 * one kernel. */
CG_LOWER_FN(cg_lower_slice) {
  (void)d;
  int64_t xs[IR_MAX_RANK];
  ir_strides(operand_type(c, n, 0), xs);
  cg_map_copy(c, n, 0, xs);
  return true;
}

/* ---- concat ----------------------------------------------------------- */

static LLVMValueRef min64(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef max64(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, a, b, ""), a, b, "");
}

/* The output is `rows` rows of `width` elements (dims before the axis, the
 * rest); operand k fills columns [col_k, col_k + width_k) of every row. An
 * item is one block of CG_MAP_BLOCK columns of one row, so concat along axis
 * 0 (one row) still splits across threads. */
CG_LOWER_FN(cg_lower_concat) {
  const ir_type *ot = &n->type;
  int64_t axis = n->attrs[0].i < 0 ? n->attrs[0].i + ot->rank : n->attrs[0].i;
  if (axis < 0 || axis >= ot->rank) {
    ir_diag_set(d, "concat: axis %lld out of range for rank %d", (long long)n->attrs[0].i,
                ot->rank);
    return false;
  }
  int64_t rows = 1, post = 1, at = 0;
  for (int i = 0; i < axis; i++)
    rows *= ot->dims[i];
  for (int i = (int)axis + 1; i < ot->rank; i++)
    post *= ot->dims[i];
  int64_t width = ot->dims[axis] * post;
  for (int k = 0; k < n->nin; k++) {
    const ir_type *t = operand_type(c, n, k);
    bool fits =
        t->rank == ot->rank && t->dtype == ot->dtype && at + t->dims[axis] <= ot->dims[axis];
    for (int i = 0; fits && i < ot->rank; i++)
      fits = i == axis || t->dims[i] == ot->dims[i];
    if (!fits) {
      ir_diag_set(d, "concat: operand %d does not fit the result", k);
      return false;
    }
    at += t->dims[axis];
  }

  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  int64_t blk = width > CG_MAP_BLOCK ? CG_MAP_BLOCK : width;
  int64_t nblk = blk > 0 ? (width + blk - 1) / blk : 0;
  k.extent = rows * nblk;
  k.work = blk;
  if (k.extent > 0) {
    ir_dtype dt = ot->dtype;
    LLVMValueRef src[64];
    int nsrc = n->nin < 64 ? n->nin : 64;
    for (int i = 0; i < nsrc; i++)
      src[i] = i < 8 ? k.in[i] : cg_operand(c, &k, i);
    cg_loop items;
    LLVMValueRef item = cg_loop_begin(c, &items, k.begin, k.end);
    LLVMValueRef row = item, lo = cg_i64(c, 0), hi = cg_i64(c, width);
    if (nblk > 1) {
      row = LLVMBuildUDiv(c->b, item, cg_i64(c, nblk), "");
      LLVMValueRef j = LLVMBuildURem(c->b, item, cg_i64(c, nblk), "");
      lo = LLVMBuildNSWMul(c->b, j, cg_i64(c, blk), "");
      hi = min64(c, LLVMBuildNSWAdd(c->b, lo, cg_i64(c, blk), ""), hi);
    }
    LLVMValueRef orow = LLVMBuildNSWMul(c->b, row, cg_i64(c, width), "");
    int64_t col = 0;
    for (int i = 0; i < n->nin; i++) {
      int64_t w = operand_type(c, n, i)->dims[axis] * post;
      if (w > 0) {
        /* columns [s, e) of this block that belong to operand i */
        LLVMValueRef s = max64(c, lo, cg_i64(c, col));
        LLVMValueRef e = min64(c, hi, cg_i64(c, col + w));
        LLVMValueRef in = i < 64 ? src[i] : cg_operand(c, &k, i);
        LLVMValueRef irow =
            LLVMBuildNSWSub(c->b, LLVMBuildNSWMul(c->b, row, cg_i64(c, w), ""), cg_i64(c, col), "");
        /* One memcpy per operand and block: inner copy loops got fully
         * unrolled into the item loop, and vectorizing that (one load and
         * store per column and operand) took the loop vectorizer 24 s for a
         * 30-way concat of 64 columns. */
        LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
        LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(c->ctx, fn, "copy");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "copied");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, s, e, ""), copy, done);
        LLVMPositionBuilderAtEnd(c->b, copy);
        LLVMValueRef si = LLVMBuildNSWAdd(c->b, irow, s, "");
        LLVMValueRef oi = LLVMBuildNSWAdd(c->b, orow, s, "");
        LLVMTypeRef et = cg_type(c, dt);
        LLVMValueRef bytes = LLVMBuildNSWMul(c->b, LLVMBuildNSWSub(c->b, e, s, ""),
                                             cg_i64(c, (int64_t)ir_dtype_size(dt)), "");
        LLVMBuildMemCpy(c->b, LLVMBuildGEP2(c->b, et, k.out, &oi, 1, ""), 1,
                        LLVMBuildGEP2(c->b, et, in, &si, 1, ""), 1, bytes);
        LLVMBuildBr(c->b, done);
        LLVMPositionBuilderAtEnd(c->b, done);
      }
      col += w;
    }
    cg_loop_end(c, &items);
  }
  cg_kernel_end(c, &k);
  return true;
}
