/* Shape rules of the fused embedding (passes/fold_embedding.c): embed(table,
 * ids, pe) and its gradient embed_grad(ids, dy [, pe]), whose result packs
 * dtable's rows and then dpe's as one [rows + numel(pe) / D, D] matrix.
 * Semantics: ir/ir.h, "fused ops". */
#include "ir/shape.h"
#include "ir/shape_util.h"

static bool is_fp(const ir_type *t) { return t->dtype == IR_F32 || t->dtype == IR_F64; }

/* The gathered rows' type: ids' dims + [d], dtype dt; false when too deep. */
static bool rows_type(const ir_type *ids, int64_t d, ir_dtype dt, ir_type *out) {
  if (ids->rank + 1 > IR_MAX_RANK) return false;
  *out = *ids;
  out->dtype = dt;
  out->dims[out->rank++] = d;
  return true;
}

/* pe: the result's dtype, last dim D (the kernels walk it contiguously),
 * broadcasting to the result without growing it. */
static bool check_pe(ir_op op, int nin, const ir_type *in, int k, const ir_type *res, ir_diag *d) {
  const ir_type *pe = &in[k];
  if (pe->dtype != res->dtype)
    return ir_shape_fail(op, nin, in, d, "pe must be %s like the table", ir_dtype_name(res->dtype));
  int64_t dd = res->dims[res->rank - 1];
  if (pe->rank < 1 || pe->dims[pe->rank - 1] != dd)
    return ir_shape_fail(op, nin, in, d, "pe's last dimension must be the embedding width %lld",
                         (long long)dd);
  ir_type b;
  if (!ir_broadcast(pe, res, &b) || !ir_shape_eq(&b, res))
    return ir_shape_fail(op, nin, in, d, "pe does not broadcast to the result");
  return true;
}

IR_SHAPE_FN(ir_shape_embed) {
  if (!ir_shape_begin(op, nin, in, attrs, 3, 3, d)) return false;
  const ir_type *t = &in[0], *ids = &in[1];
  if (!is_fp(t) || t->rank != 2)
    return ir_shape_fail(op, nin, in, d, "the table must be f32/f64 of rank 2");
  if (!ir_dtype_is_int(ids->dtype)) return ir_shape_fail(op, nin, in, d, "ids must be i32 or i64");
  if (!rows_type(ids, t->dims[1], t->dtype, out))
    return ir_shape_fail(op, nin, in, d, "result rank exceeds %d", IR_MAX_RANK);
  return check_pe(op, nin, in, 2, out, d);
}

IR_SHAPE_FN(ir_shape_embed_grad) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 4, d)) return false;
  if (nin != 2 && nin != 3) return ir_shape_fail(op, nin, in, d, "takes ids, dy and optional pe");
  const ir_type *ids = &in[0], *dy = &in[1];
  if (!ir_dtype_is_int(ids->dtype)) return ir_shape_fail(op, nin, in, d, "ids must be i32 or i64");
  if (!is_fp(dy) || dy->rank != ids->rank + 1)
    return ir_shape_fail(op, nin, in, d, "dy must be f32/f64 of ids' rank + 1");
  for (int i = 0; i < ids->rank; i++)
    if (dy->dims[i] != ids->dims[i])
      return ir_shape_fail(op, nin, in, d, "dy's dimension %d is %lld, ids' %lld", i,
                           (long long)dy->dims[i], (long long)ids->dims[i]);
  if (nin == 3 && !check_pe(op, nin, in, 2, dy, d)) return false;
  int64_t rows = attrs[3].i, dd = dy->dims[dy->rank - 1];
  if (rows < 0) return ir_shape_fail(op, nin, in, d, "rows must be >= 0");
  if (dd > 0 && rows > (INT64_MAX - 1) / dd) return ir_shape_fail(op, nin, in, d, "too large");
  /* pe's last dim is D, so its gradient packs as whole rows under dtable's */
  int64_t dims[2] = {rows + (nin == 3 && dd > 0 ? ir_type_numel(&in[2]) / dd : 0), dd};
  *out = ir_type_make(dy->dtype, 2, dims);
  return true;
}
