/* Lowering of matmul and gemm to cblas_sgemm / cblas_dgemm: one GEMM per
 * matrix of the (numpy-broadcast) batch, or a single GEMM when the batch
 * folds into the rows (x[B,M,K] @ w[K,N], the common linear layer). gemm's
 * alpha and beta are BLAS's; its accumulator c is copied into the result
 * first unless the memory plan put the result in c's buffer. kiln's pool
 * owns the cores: OpenBLAS runs on one thread (program_jit.c) and the
 * kernel splits the batch, or a single matrix's rows, over the pool, one
 * GEMM per chunk. kiln writes no GEMM of its own. */
#include <limits.h>

#include "backend/cg.h"

#define CBLAS_ROW_MAJOR 101
#define CBLAS_NO_TRANS 111
#define CBLAS_TRANS 112

/* One operand (or the result) as a batch of stored matrices. */
typedef struct mm_operand {
  ir_type batch;             /* the leading dims */
  int64_t rows, cols;        /* the stored matrix */
  int64_t bstr[IR_MAX_RANK]; /* element stride per result batch dim (0: broadcast) */
} mm_operand;

static void mm_operand_init(const ir_type *t, const ir_type *out_batch, mm_operand *o) {
  o->batch = ir_type_make(t->dtype, t->rank - 2, t->dims);
  o->rows = t->dims[t->rank - 2];
  o->cols = t->dims[t->rank - 1];
  ir_broadcast_strides(&o->batch, out_batch, o->bstr);
  for (int i = 0; i < out_batch->rank; i++)
    o->bstr[i] *= o->rows * o->cols;
}

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* Element offsets of batch item bi in a and b: its result batch index
 * unflattened once, each coordinate scaled by the operands' strides. */
static void emit_batch_offsets(cg_ctx *c, const ir_type *ob, const mm_operand *a,
                               const mm_operand *b, LLVMValueRef bi, LLVMValueRef *ao,
                               LLVMValueRef *bo) {
  *ao = *bo = cg_i64(c, 0);
  LLVMValueRef rest = bi;
  for (int d = ob->rank - 1; d >= 0; d--) {
    if (ob->dims[d] == 1 || (a->bstr[d] == 0 && b->bstr[d] == 0)) {
      if (ob->dims[d] != 1) rest = LLVMBuildUDiv(c->b, rest, cg_i64(c, ob->dims[d]), "");
      continue;
    }
    LLVMValueRef idx = d == 0 ? rest : LLVMBuildURem(c->b, rest, cg_i64(c, ob->dims[d]), "");
    if (d > 0) rest = LLVMBuildUDiv(c->b, rest, cg_i64(c, ob->dims[d]), "");
    if (a->bstr[d])
      *ao = LLVMBuildAdd(c->b, *ao, LLVMBuildMul(c->b, idx, cg_i64(c, a->bstr[d]), ""), "");
    if (b->bstr[d])
      *bo = LLVMBuildAdd(c->b, *bo, LLVMBuildMul(c->b, idx, cg_i64(c, b->bstr[d]), ""), "");
  }
}

/* The static part of one GEMM call. */
typedef struct mm_call {
  ir_dtype dt;
  bool ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  double alpha, beta;
} mm_call;

/* m: the rows of this call (i32), g->m or a chunk of them. */
static void emit_gemm(cg_ctx *c, const mm_call *g, LLVMValueRef m, LLVMValueRef a, LLVMValueRef b,
                      LLVMValueRef out) {
  LLVMTypeRef ft = cg_type(c, g->dt);
  LLVMTypeRef params[] = {c->t_i32, c->t_i32, c->t_i32, c->t_i32, c->t_i32, c->t_i32, ft,
                          c->t_ptr, c->t_i32, c->t_ptr, c->t_i32, ft,       c->t_ptr, c->t_i32};
  LLVMValueRef args[] = {cg_i32(c, CBLAS_ROW_MAJOR),
                         cg_i32(c, g->ta ? CBLAS_TRANS : CBLAS_NO_TRANS),
                         cg_i32(c, g->tb ? CBLAS_TRANS : CBLAS_NO_TRANS),
                         m,
                         cg_i32(c, (int32_t)g->n),
                         cg_i32(c, (int32_t)g->k),
                         cg_const(c, g->dt, g->alpha),
                         a,
                         cg_i32(c, (int32_t)g->lda),
                         b,
                         cg_i32(c, (int32_t)g->ldb),
                         cg_const(c, g->dt, g->beta),
                         out,
                         cg_i32(c, (int32_t)g->ldc)};
  cg_call(c, g->dt == IR_F32 ? "cblas_sgemm" : "cblas_dgemm", c->t_void, params, 14, args);
}

/* if (cond) { ... }: leaves the builder in the body; end_if joins. */
static LLVMBasicBlockRef begin_if(cg_ctx *c, LLVMValueRef cond) {
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ctx, fn, "then");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, fn, "join");
  LLVMBuildCondBr(c->b, cond, then, join);
  LLVMPositionBuilderAtEnd(c->b, then);
  return join;
}

static void end_if(cg_ctx *c, LLVMBasicBlockRef join) {
  LLVMBuildBr(c->b, join);
  LLVMPositionBuilderAtEnd(c->b, join);
}

/* `elems` (i64) result elements at cp when K = 0: the product is empty, so
 * the result is beta * c (or zeros), written here so it does not depend on
 * how a BLAS treats K = 0. */
static void emit_empty_product(cg_ctx *c, const mm_call *g, LLVMValueRef elems, LLVMValueRef cp,
                               LLVMValueRef ccp) {
  ir_dtype dt = g->dt;
  LLVMValueRef esz = cg_i64(c, (int64_t)ir_dtype_size(dt));
  if (!ccp || g->beta == 0) {
    LLVMBuildMemSet(c->b, cp, LLVMConstInt(c->t_i8, 0, 0), LLVMBuildMul(c->b, elems, esz, ""),
                    (unsigned)ir_dtype_size(dt));
    return;
  }
  cg_loop l;
  LLVMValueRef e = cg_loop_begin(c, &l, cg_i64(c, 0), elems);
  LLVMValueRef v = LLVMBuildFMul(c->b, cg_const(c, dt, g->beta), cg_load(c, dt, ccp, e), "");
  cg_store(c, dt, cp, e, v);
  cg_loop_end(c, &l);
}

/* matmul (has_c false, alpha 1, beta 0) and gemm share everything. */
static bool lower_product(cg_ctx *c, const ir_node *n, bool has_c, double alpha, double beta,
                          ir_diag *d) {
  const char *op = ir_op_get(n->op)->name;
  const ir_type *ta = &c->g->nodes[n->in[0]]->type, *tb = &c->g->nodes[n->in[1]]->type;
  const ir_type *to = &n->type;
  ir_dtype dt = to->dtype;
  if ((dt != IR_F32 && dt != IR_F64) || ta->rank < 2 || tb->rank < 2 || to->rank < 2) {
    ir_diag_set(d, "%s: needs f32/f64 operands of rank >= 2", op);
    return false;
  }
  if (has_c && !ir_type_eq(&c->g->nodes[n->in[2]]->type, to)) {
    ir_diag_set(d, "%s: the accumulator's type differs from the result's", op);
    return false;
  }
  ir_type ob = ir_type_make(dt, to->rank - 2, to->dims);
  mm_operand a, b;
  mm_operand_init(ta, &ob, &a);
  mm_operand_init(tb, &ob, &b);
  mm_call g = {.dt = dt, .ta = n->attrs[0].b, .tb = n->attrs[1].b, .alpha = alpha, .beta = beta};
  g.m = to->dims[to->rank - 2];
  g.n = to->dims[to->rank - 1];
  g.k = g.ta ? a.rows : a.cols;
  /* BLAS requires leading dimensions >= 1 even for empty matrices. */
  g.lda = a.cols > 1 ? a.cols : 1;
  g.ldb = b.cols > 1 ? b.cols : 1;
  g.ldc = g.n > 1 ? g.n : 1;
  int64_t batch = ir_type_numel(&ob);
  /* x[B..,M,K] @ w[K,N] with x not transposed: the batch is more rows of
   * one GEMM, which BLAS blocks and threads better than B small ones. c has
   * the result's layout, so it folds alike. */
  bool fold = !g.ta && ir_type_numel(&b.batch) == 1 && ir_type_numel(&a.batch) == batch;
  if (fold) {
    g.m *= batch;
    batch = 1;
  }
  if (!fits_int(g.m) || !fits_int(g.n) || !fits_int(g.k) || !fits_int(g.lda) || !fits_int(g.ldb) ||
      !fits_int(g.ldc)) {
    ir_diag_set(d, "%s: a dimension exceeds BLAS's int range (M %lld, N %lld, K %lld)", op,
                (long long)g.m, (long long)g.n, (long long)g.k);
    return false;
  }
  /* alpha = 0 reads neither a nor b (BLAS's rule, ir.h): the K = 0 path. */
  if (g.alpha == 0) g.k = 0;

  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  /* One matrix: its rows are the parallel items, each chunk one GEMM of
   * rows [begin, end) (a transposed a is stored [K, M]: a column offset). */
  bool by_rows = batch == 1;
  int64_t macs = g.n * (g.k > 0 ? g.k : 1);
  k.extent = g.m == 0 || g.n == 0 ? 0 : by_rows ? g.m : batch;
  k.work = by_rows ? macs : g.m * macs;
  if (k.extent > 0) {
    /* The plan may have put the result in c's buffer (memory_plan.c); the
     * kernel is shared by twins planned either way, so it asks at run time. */
    LLVMValueRef copy_c = NULL;
    if (has_c && g.beta != 0) copy_c = LLVMBuildICmp(c->b, LLVMIntNE, k.out, k.in[2], "copy_c");
    cg_loop loop;
    LLVMValueRef bi = by_rows ? k.begin : cg_loop_begin(c, &loop, k.begin, k.end);
    LLVMValueRef rows = by_rows ? LLVMBuildSub(c->b, k.end, k.begin, "rows") : cg_i64(c, g.m);
    LLVMValueRef co = LLVMBuildMul(c->b, bi, cg_i64(c, by_rows ? g.ldc : g.m * g.n), "");
    LLVMValueRef cp = cg_elem_ptr(c, dt, k.out, co);
    LLVMValueRef ccp = has_c ? cg_elem_ptr(c, dt, k.in[2], co) : NULL;
    LLVMValueRef elems = LLVMBuildMul(c->b, rows, cg_i64(c, g.n), "elems");
    if (g.k == 0) {
      emit_empty_product(c, &g, elems, cp, ccp);
    } else {
      if (copy_c) {
        LLVMBasicBlockRef join = begin_if(c, copy_c);
        unsigned align = (unsigned)ir_dtype_size(dt);
        LLVMBuildMemCpy(c->b, cp, align, ccp, align,
                        LLVMBuildMul(c->b, elems, cg_i64(c, (int64_t)ir_dtype_size(dt)), ""));
        end_if(c, join);
      }
      LLVMValueRef ao, bo;
      if (by_rows) {
        ao = LLVMBuildMul(c->b, bi, cg_i64(c, g.ta ? 1 : g.lda), "");
        bo = cg_i64(c, 0);
      } else {
        emit_batch_offsets(c, &ob, &a, &b, bi, &ao, &bo);
      }
      emit_gemm(c, &g, LLVMBuildTrunc(c->b, rows, c->t_i32, ""), cg_elem_ptr(c, dt, k.in[0], ao),
                cg_elem_ptr(c, dt, k.in[1], bo), cp);
    }
    if (!by_rows) cg_loop_end(c, &loop);
  }
  cg_kernel_end(c, &k);
  return true;
}

CG_LOWER_FN(cg_lower_matmul) { return lower_product(c, n, false, 1.0, 0.0, d); }

CG_LOWER_FN(cg_lower_gemm) {
  bool has_c = n->nin == 3;
  double beta = n->attrs[3].f;
  if (!has_c && beta != 0) {
    ir_diag_set(d, "gemm: beta %g without an accumulator operand", beta);
    return false;
  }
  return lower_product(c, n, has_c, n->attrs[2].f, has_c ? beta : 0.0, d);
}
