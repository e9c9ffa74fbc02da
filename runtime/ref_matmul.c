/* Reference kernels for matmul (numpy semantics: batch dims broadcast, the
 * last two contract, optional transposes) and sequence_mask. matmul is a
 * plain triple loop with double accumulation: the oracle must not share
 * code or rounding behaviour with the BLAS path it checks. */
#include "runtime/ref_util.h"

/* One matmul operand seen as a batch of matrices. */
typedef struct mm_side {
  ir_type batch;      /* leading dims */
  int64_t rows, cols; /* stored matrix shape */
  bool trans;
} mm_side;

static void mm_side_init(const ir_type *t, bool trans, bool is_b, mm_side *s) {
  s->trans = trans && t->rank >= 2;
  s->batch = *t;
  if (t->rank == 1) { /* a vector: a row for a, a column for b */
    s->batch.rank = 0;
    s->rows = is_b ? t->dims[0] : 1;
    s->cols = is_b ? 1 : t->dims[0];
    return;
  }
  s->batch.rank = t->rank - 2;
  s->rows = t->dims[t->rank - 2];
  s->cols = t->dims[t->rank - 1];
}

/* Offset within one matrix of logical element (r, c) after the transpose. */
static int64_t mm_at(const mm_side *s, int64_t r, int64_t c) {
  return s->trans ? c * s->cols + r : r * s->cols + c;
}

RT_REF_FN(rt_ref_matmul) {
  (void)opts;
  if (in[0]->type.rank < 1 || in[1]->type.rank < 1) {
    ir_diag_set(d, "matmul: operands need rank >= 1");
    return false;
  }
  mm_side a, b;
  mm_side_init(&in[0]->type, n->attrs[0].b, false, &a);
  mm_side_init(&in[1]->type, n->attrs[1].b, true, &b);
  int64_t m = a.trans ? a.cols : a.rows, k = a.trans ? a.rows : a.cols;
  int64_t kb = b.trans ? b.cols : b.rows, nn = b.trans ? b.rows : b.cols;
  ir_type batch;
  if (k != kb || !ir_broadcast(&a.batch, &b.batch, &batch) ||
      ir_type_numel(&batch) * m * nn != rt_numel(out)) {
    ir_diag_set(d, "matmul: operand shapes do not match the result");
    return false;
  }
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  ir_broadcast_strides(&a.batch, &batch, sa);
  ir_broadcast_strides(&b.batch, &batch, sb);
  bool fl = ir_dtype_is_float(out->type.dtype);
  int64_t asz = a.rows * a.cols, bsz = b.rows * b.cols;
  for (int64_t bi = 0, be = ir_type_numel(&batch); bi < be; bi++) {
    int64_t ao = rt_bcast_offset(&batch, sa, bi) * asz;
    int64_t bo = rt_bcast_offset(&batch, sb, bi) * bsz;
    for (int64_t i = 0; i < m; i++) {
      for (int64_t j = 0; j < nn; j++) {
        double accf = 0;
        int64_t acci = 0;
        for (int64_t p = 0; p < k; p++) {
          int64_t x = ao + mm_at(&a, i, p), y = bo + mm_at(&b, p, j);
          if (fl)
            accf += rt_get_f(in[0], x) * rt_get_f(in[1], y);
          else
            acci = rt_wrap_add(acci, rt_wrap_mul(rt_get_i(in[0], x), rt_get_i(in[1], y)));
        }
        int64_t o = (bi * m + i) * nn + j;
        if (fl)
          rt_store_f(out, o, accf);
        else
          rt_store_i(out, o, acci);
      }
    }
  }
  return true;
}

RT_REF_FN(rt_ref_sequence_mask) {
  (void)opts;
  const ir_type *xt = &in[0]->type, *lt = &in[1]->type;
  bool prefix = xt->rank >= 1 && lt->rank < xt->rank;
  for (int i = 0; prefix && i < lt->rank; i++)
    prefix = lt->dims[i] == xt->dims[i];
  if (!prefix) {
    ir_diag_set(d, "sequence_mask: lengths must have a prefix of x's leading dims");
    return false;
  }
  /* len is a prefix of x's dims, so its flat index is x's flat index
   * divided by the number of elements in the remaining dims. */
  int64_t rest = 1;
  for (int i = lt->rank; i < xt->rank; i++)
    rest *= xt->dims[i];
  int64_t klen = xt->dims[xt->rank - 1];
  double value = n->attrs[0].f;
  size_t es = ir_dtype_size(out->type.dtype);
  for (int64_t i = 0, e = rt_numel(out); i < e; i++) {
    int64_t len = rt_load_i(in[1], i / rest), kk = i % klen;
    if (kk >= len)
      rt_store_f(out, i, value);
    else
      memcpy((char *)out->data + (size_t)i * es, (const char *)in[0]->data + (size_t)i * es, es);
  }
  return true;
}
