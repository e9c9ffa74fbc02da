/* Lowering of the row-wise ops: softmax and log_softmax (over any axis),
 * layernorm (last axis) and softmax cross-entropy, plus the helpers shared
 * with lower_reduce.c and lower_gather.c (lower_rows.h). Sums, exponentials
 * and normalisation run in double for f32 too, so results agree with the
 * double-precision reference (runtime/ref_reduce.c) to a few ulps. */
#include <math.h>

#include "backend/lower_rows.h"
#include "runtime/exec.h"

/* Inner columns processed together by softmax over a non-last axis. */
#define ROWS_TILE 256

/* ---- helpers (lower_rows.h) ---------------------------------------------- */

LLVMValueRef lr_fadd_reassoc(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef s = LLVMBuildFAdd(c->b, a, b, "");
  if (LLVMIsAInstruction(s)) LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc);
  return s;
}

LLVMValueRef lr_fmax(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[2] = {a, b};
  return cg_intrinsic(c, "llvm.maximum", LLVMTypeOf(a), args, 2);
}

LLVMValueRef lr_to_f64(cg_ctx *c, LLVMValueRef v) {
  return LLVMTypeOf(v) == c->t_f64 ? v : LLVMBuildFPExt(c->b, v, c->t_f64, "");
}

LLVMValueRef lr_from_f64(cg_ctx *c, ir_dtype dt, LLVMValueRef v) {
  return dt == IR_F64 ? v : LLVMBuildFPTrunc(c->b, v, c->t_f32, "");
}

LLVMValueRef lr_smin64(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[2] = {a, b};
  return cg_intrinsic(c, "llvm.smin", c->t_i64, args, 2);
}

LLVMValueRef lr_offset(cg_ctx *c, LLVMValueRef q, int n, const int64_t *sizes,
                       const int64_t *strides) {
  LLVMValueRef off = cg_i64(c, 0);
  int64_t inner = 1;
  for (int i = n - 1; i >= 0; i--) {
    LLVMValueRef idx = inner == 1 ? q : LLVMBuildUDiv(c->b, q, cg_i64(c, inner), "");
    if (i > 0) idx = LLVMBuildURem(c->b, idx, cg_i64(c, sizes[i]), "");
    off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, idx, cg_i64(c, strides[i]), ""), "");
    inner *= sizes[i];
  }
  return off;
}

LLVMValueRef lr_alloca(cg_ctx *c, LLVMTypeRef t, int64_t n) {
  return LLVMBuildAlloca(c->b, n == 1 ? t : LLVMArrayType2(t, (uint64_t)n), "acc");
}

void lr_exec_error(cg_ctx *c, cg_kernel *k, int kind, LLVMValueRef pos, LLVMValueRef val,
                   int64_t limit) {
  LLVMTypeRef ps[] = {c->t_ptr, c->t_i32, c->t_i32, c->t_i64, c->t_i64, c->t_i64};
  LLVMValueRef id = LLVMBuildTrunc(c->b, cg_kernel_tag(c, k), c->t_i32, "");
  LLVMValueRef as[] = {k->exec, id, cg_i32(c, kind), pos, val, cg_i64(c, limit)};
  cg_call(c, "rt_exec_error", c->t_void, ps, 6, as);
}

LLVMValueRef lr_load_i64(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = cg_load(c, dt, base, idx);
  return dt == IR_I64 ? v : LLVMBuildSExt(c->b, v, c->t_i64, "");
}

void lr_if_begin(cg_ctx *c, lr_if *f, LLVMValueRef cond) {
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
  f->then_bb = LLVMAppendBasicBlockInContext(c->ctx, fn, "then");
  f->else_bb = LLVMAppendBasicBlockInContext(c->ctx, fn, "else");
  f->join_bb = LLVMAppendBasicBlockInContext(c->ctx, fn, "join");
  LLVMBuildCondBr(c->b, cond, f->then_bb, f->else_bb);
  LLVMPositionBuilderAtEnd(c->b, f->then_bb);
}

void lr_if_else(cg_ctx *c, lr_if *f) {
  LLVMBuildBr(c->b, f->join_bb);
  LLVMPositionBuilderAtEnd(c->b, f->else_bb);
}

void lr_if_end(cg_ctx *c, lr_if *f) {
  LLVMBuildBr(c->b, f->join_bb);
  LLVMPositionBuilderAtEnd(c->b, f->join_bb);
}

/* ---- local helpers ---------------------------------------------------------- */

static LLVMValueRef f64_call(cg_ctx *c, const char *intrinsic, LLVMValueRef x) {
  return cg_intrinsic(c, intrinsic, c->t_f64, &x, 1);
}

static LLVMValueRef add64(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildAdd(c->b, a, b, "");
}

/* x[base + k] widened to double. */
static LLVMValueRef ld64(cg_ctx *c, ir_dtype dt, LLVMValueRef x, LLVMValueRef base,
                         LLVMValueRef k) {
  return lr_to_f64(c, cg_load(c, dt, x, add64(c, base, k)));
}

static bool need_float(const ir_node *n, ir_dtype dt, ir_diag *d) {
  if (ir_dtype_is_float(dt) && n->type.dtype == dt) return true;
  ir_diag_set(d, "%s: unsupported dtype %s", ir_op_get(n->op)->name, ir_dtype_name(dt));
  return false;
}

/* NaN-propagating maximum of x[base + k], k < len, in x's type; stored in
 * the scalar slot `m` (an entry-block alloca) and returned. */
static LLVMValueRef row_max(cg_ctx *c, ir_dtype dt, LLVMValueRef x, LLVMValueRef base, int64_t len,
                            LLVMValueRef m) {
  LLVMTypeRef t = cg_type(c, dt);
  LLVMBuildStore(c->b, LLVMConstReal(t, -INFINITY), m);
  cg_loop l;
  LLVMValueRef k = cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, len));
  LLVMValueRef v = cg_load(c, dt, x, add64(c, base, k));
  LLVMBuildStore(c->b, lr_fmax(c, LLVMBuildLoad2(c->b, t, m, ""), v), m);
  cg_loop_end(c, &l);
  return LLVMBuildLoad2(c->b, t, m, "");
}

/* sum of exp(x[base + k] - m) in double; when `store`, exp values also go to
 * out[base + k] (softmax's numerators). */
static LLVMValueRef row_sumexp(cg_ctx *c, ir_dtype dt, LLVMValueRef x, LLVMValueRef out,
                               LLVMValueRef base, int64_t len, LLVMValueRef m64, LLVMValueRef s) {
  LLVMBuildStore(c->b, LLVMConstReal(c->t_f64, 0.0), s);
  cg_loop l;
  LLVMValueRef k = cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, len));
  LLVMValueRef e = f64_call(c, "llvm.exp", LLVMBuildFSub(c->b, ld64(c, dt, x, base, k), m64, ""));
  if (out) cg_store(c, dt, out, add64(c, base, k), lr_from_f64(c, dt, e));
  LLVMBuildStore(c->b, lr_fadd_reassoc(c, LLVMBuildLoad2(c->b, c->t_f64, s, ""), e), s);
  cg_loop_end(c, &l);
  return LLVMBuildLoad2(c->b, c->t_f64, s, "");
}

/* ---- softmax / log_softmax ------------------------------------------------ */

/* Softmax axis is the last (or followed only by size-1 axes): one row per
 * item, unit stride. */
static void softmax_rows(cg_ctx *c, cg_kernel *k, ir_dtype dt, int64_t len, bool logf) {
  LLVMValueRef m = lr_alloca(c, cg_type(c, dt), 1), s = lr_alloca(c, c->t_f64, 1);
  LLVMValueRef x = k->in[0], out = k->out;
  cg_loop l, lk;
  LLVMValueRef r = cg_loop_begin(c, &l, k->begin, k->end);
  LLVMValueRef base = LLVMBuildMul(c->b, r, cg_i64(c, len), "");
  LLVMValueRef m64 = lr_to_f64(c, row_max(c, dt, x, base, len, m));
  LLVMValueRef sum = row_sumexp(c, dt, x, logf ? NULL : out, base, len, m64, s);
  LLVMValueRef ls = logf ? f64_call(c, "llvm.log", sum) : NULL;
  LLVMValueRef kk = cg_loop_begin(c, &lk, cg_i64(c, 0), cg_i64(c, len));
  LLVMValueRef y;
  if (logf)
    y = LLVMBuildFSub(c->b, LLVMBuildFSub(c->b, ld64(c, dt, x, base, kk), m64, ""), ls, "");
  else
    y = LLVMBuildFDiv(c->b, ld64(c, dt, out, base, kk), sum, "");
  cg_store(c, dt, out, add64(c, base, kk), lr_from_f64(c, dt, y));
  cg_loop_end(c, &lk);
  cg_loop_end(c, &l);
}

/* Softmax over a middle axis of [outer, len, inner]: item = (outer index,
 * tile of inner columns); per-column max and sum live on the stack and the
 * innermost loops run along the unit-stride columns. */
static void softmax_cols(cg_ctx *c, cg_kernel *k, ir_dtype dt, int64_t len, int64_t inner,
                         int64_t tile, int64_t ntiles, bool logf) {
  LLVMTypeRef t = cg_type(c, dt);
  LLVMValueRef mv = lr_alloca(c, t, tile), sv = lr_alloca(c, c->t_f64, tile);
  LLVMValueRef x = k->in[0], out = k->out, zero = cg_i64(c, 0);
  cg_loop l, lk, lj;
  LLVMValueRef it = cg_loop_begin(c, &l, k->begin, k->end);
  LLVMValueRef o = LLVMBuildUDiv(c->b, it, cg_i64(c, ntiles), "");
  LLVMValueRef j0 =
      LLVMBuildMul(c->b, LLVMBuildURem(c->b, it, cg_i64(c, ntiles), ""), cg_i64(c, tile), "");
  LLVMValueRef jl = lr_smin64(c, cg_i64(c, tile), LLVMBuildSub(c->b, cg_i64(c, inner), j0, ""));
  LLVMValueRef base = add64(c, LLVMBuildMul(c->b, o, cg_i64(c, len * inner), ""), j0);

  LLVMValueRef j = cg_loop_begin(c, &lj, zero, jl);
  LLVMBuildStore(c->b, LLVMConstReal(t, -INFINITY), LLVMBuildGEP2(c->b, t, mv, &j, 1, ""));
  LLVMBuildStore(c->b, LLVMConstReal(c->t_f64, 0), LLVMBuildGEP2(c->b, c->t_f64, sv, &j, 1, ""));
  cg_loop_end(c, &lj);

  /* pass 1: column maxima */
  LLVMValueRef kk = cg_loop_begin(c, &lk, zero, cg_i64(c, len));
  LLVMValueRef kb = add64(c, base, LLVMBuildMul(c->b, kk, cg_i64(c, inner), ""));
  j = cg_loop_begin(c, &lj, zero, jl);
  LLVMValueRef pm = LLVMBuildGEP2(c->b, t, mv, &j, 1, "");
  LLVMValueRef v = cg_load(c, dt, x, add64(c, kb, j));
  LLVMBuildStore(c->b, lr_fmax(c, LLVMBuildLoad2(c->b, t, pm, ""), v), pm);
  cg_loop_end(c, &lj);
  cg_loop_end(c, &lk);

  /* pass 2: column sums of exp(x - max) */
  kk = cg_loop_begin(c, &lk, zero, cg_i64(c, len));
  kb = add64(c, base, LLVMBuildMul(c->b, kk, cg_i64(c, inner), ""));
  j = cg_loop_begin(c, &lj, zero, jl);
  LLVMValueRef m64 =
      lr_to_f64(c, LLVMBuildLoad2(c->b, t, LLVMBuildGEP2(c->b, t, mv, &j, 1, ""), ""));
  LLVMValueRef ps = LLVMBuildGEP2(c->b, c->t_f64, sv, &j, 1, "");
  LLVMValueRef e = f64_call(c, "llvm.exp", LLVMBuildFSub(c->b, ld64(c, dt, x, kb, j), m64, ""));
  if (!logf) cg_store(c, dt, out, add64(c, kb, j), lr_from_f64(c, dt, e));
  LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->t_f64, ps, ""), e, ""), ps);
  cg_loop_end(c, &lj);
  cg_loop_end(c, &lk);

  if (logf) {
    j = cg_loop_begin(c, &lj, zero, jl);
    ps = LLVMBuildGEP2(c->b, c->t_f64, sv, &j, 1, "");
    LLVMBuildStore(c->b, f64_call(c, "llvm.log", LLVMBuildLoad2(c->b, c->t_f64, ps, "")), ps);
    cg_loop_end(c, &lj);
  }

  /* pass 3: normalise */
  kk = cg_loop_begin(c, &lk, zero, cg_i64(c, len));
  kb = add64(c, base, LLVMBuildMul(c->b, kk, cg_i64(c, inner), ""));
  j = cg_loop_begin(c, &lj, zero, jl);
  LLVMValueRef s = LLVMBuildLoad2(c->b, c->t_f64, LLVMBuildGEP2(c->b, c->t_f64, sv, &j, 1, ""), "");
  LLVMValueRef y;
  if (logf) {
    m64 = lr_to_f64(c, LLVMBuildLoad2(c->b, t, LLVMBuildGEP2(c->b, t, mv, &j, 1, ""), ""));
    y = LLVMBuildFSub(c->b, LLVMBuildFSub(c->b, ld64(c, dt, x, kb, j), m64, ""), s, "");
  } else {
    y = LLVMBuildFDiv(c->b, ld64(c, dt, out, kb, j), s, "");
  }
  cg_store(c, dt, out, add64(c, kb, j), lr_from_f64(c, dt, y));
  cg_loop_end(c, &lj);
  cg_loop_end(c, &lk);
  cg_loop_end(c, &l);
}

CG_LOWER_FN(cg_lower_softmax) {
  const ir_type *xt = &c->g->nodes[n->in[0]]->type;
  if (!need_float(n, xt->dtype, d)) return false;
  int64_t ax = n->attrs[0].i < 0 ? n->attrs[0].i + xt->rank : n->attrs[0].i;
  if (ax < 0 || ax >= xt->rank) {
    ir_diag_set(d, "%s: axis %lld out of range for rank %d", ir_op_get(n->op)->name,
                (long long)n->attrs[0].i, xt->rank);
    return false;
  }
  int64_t outer = 1, len = xt->dims[ax], inner = 1;
  for (int i = 0; i < ax; i++)
    outer *= xt->dims[i];
  for (int i = (int)ax + 1; i < xt->rank; i++)
    inner *= xt->dims[i];
  bool logf = n->op == IR_OP_LOG_SOFTMAX;
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  if (outer * len * inner == 0) {
    k.extent = 0;
  } else if (inner == 1) {
    k.extent = outer;
    k.work = 3 * len;
    softmax_rows(c, &k, xt->dtype, len, logf);
  } else {
    int64_t tile = inner < ROWS_TILE ? inner : ROWS_TILE, ntiles = (inner + tile - 1) / tile;
    k.extent = outer * ntiles;
    k.work = 3 * len * tile;
    softmax_cols(c, &k, xt->dtype, len, inner, tile, ntiles, logf);
  }
  cg_kernel_end(c, &k);
  return true;
}

/* ---- layernorm ---------------------------------------------------------- */

/* Row sum of f(x[base + k]) in double: f is the identity, or (x - mean)^2
 * when mean is given. */
static LLVMValueRef row_sum(cg_ctx *c, ir_dtype dt, LLVMValueRef x, LLVMValueRef base, int64_t len,
                            LLVMValueRef mean, LLVMValueRef s) {
  LLVMBuildStore(c->b, LLVMConstReal(c->t_f64, 0.0), s);
  cg_loop l;
  LLVMValueRef k = cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, len));
  LLVMValueRef v = ld64(c, dt, x, base, k);
  if (mean) {
    v = LLVMBuildFSub(c->b, v, mean, "");
    v = LLVMBuildFMul(c->b, v, v, "");
  }
  LLVMBuildStore(c->b, lr_fadd_reassoc(c, LLVMBuildLoad2(c->b, c->t_f64, s, ""), v), s);
  cg_loop_end(c, &l);
  return LLVMBuildLoad2(c->b, c->t_f64, s, "");
}

CG_LOWER_FN(cg_lower_layernorm) {
  const ir_type *xt = &c->g->nodes[n->in[0]]->type;
  if (!need_float(n, xt->dtype, d)) return false;
  if (xt->rank < 1) {
    ir_diag_set(d, "layernorm: needs rank >= 1");
    return false;
  }
  ir_dtype dt = xt->dtype;
  int64_t len = xt->dims[xt->rank - 1], rows = len ? ir_type_numel(xt) / len : 0;
  LLVMValueRef dlen = LLVMConstReal(c->t_f64, (double)len);
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  k.extent = rows;
  k.work = 3 * len;
  if (rows > 0) {
    LLVMValueRef s = lr_alloca(c, c->t_f64, 1);
    LLVMValueRef gamma = k.in[1], beta = k.in[2], x = k.in[0];
    cg_loop l, lk;
    LLVMValueRef r = cg_loop_begin(c, &l, k.begin, k.end);
    LLVMValueRef base = LLVMBuildMul(c->b, r, cg_i64(c, len), "");
    LLVMValueRef mean = LLVMBuildFDiv(c->b, row_sum(c, dt, x, base, len, NULL, s), dlen, "");
    LLVMValueRef var = LLVMBuildFDiv(c->b, row_sum(c, dt, x, base, len, mean, s), dlen, "");
    LLVMValueRef eps = LLVMConstReal(c->t_f64, n->attrs[0].f);
    LLVMValueRef inv =
        LLVMBuildFDiv(c->b, LLVMConstReal(c->t_f64, 1.0),
                      f64_call(c, "llvm.sqrt", LLVMBuildFAdd(c->b, var, eps, "")), "");
    LLVMValueRef kk = cg_loop_begin(c, &lk, cg_i64(c, 0), cg_i64(c, len));
    LLVMValueRef y = LLVMBuildFSub(c->b, ld64(c, dt, x, base, kk), mean, "");
    y = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, y, inv, ""),
                      lr_to_f64(c, cg_load(c, dt, gamma, kk)), "");
    y = LLVMBuildFAdd(c->b, y, lr_to_f64(c, cg_load(c, dt, beta, kk)), "");
    cg_store(c, dt, k.out, add64(c, base, kk), lr_from_f64(c, dt, y));
    cg_loop_end(c, &lk);
    cg_loop_end(c, &l);
  }
  cg_kernel_end(c, &k);
  return true;
}

/* ---- softmax cross-entropy -------------------------------------------------- */

CG_LOWER_FN(cg_lower_xent) {
  const ir_type *lt = &c->g->nodes[n->in[0]]->type;
  const ir_type *bt = &c->g->nodes[n->in[1]]->type;
  if (!need_float(n, lt->dtype, d)) return false;
  if (lt->rank < 1 || !ir_dtype_is_int(bt->dtype)) {
    ir_diag_set(d, "softmax_cross_entropy: needs rank >= 1 logits and integer labels");
    return false;
  }
  ir_dtype dt = lt->dtype;
  int64_t v = lt->dims[lt->rank - 1], rows = ir_type_numel(bt);
  int64_t ignore = n->attrs[0].i;
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  k.extent = rows;
  k.work = 2 * v;
  if (rows > 0) {
    LLVMValueRef m = lr_alloca(c, cg_type(c, dt), 1), s = lr_alloca(c, c->t_f64, 1);
    LLVMValueRef x = k.in[0], zero = LLVMConstReal(cg_type(c, dt), 0.0);
    cg_loop l;
    LLVMValueRef r = cg_loop_begin(c, &l, k.begin, k.end);
    LLVMValueRef label = lr_load_i64(c, bt->dtype, k.in[1], r);
    lr_if ign, bad;
    lr_if_begin(c, &ign, LLVMBuildICmp(c->b, LLVMIntEQ, label, cg_i64(c, ignore), ""));
    cg_store(c, dt, k.out, r, zero);
    lr_if_else(c, &ign);
    /* unsigned compare: negative labels are out of range too */
    lr_if_begin(c, &bad, LLVMBuildICmp(c->b, LLVMIntUGE, label, cg_i64(c, v), ""));
    lr_exec_error(c, &k, RT_ERR_LABEL, r, label, v);
    cg_store(c, dt, k.out, r, zero);
    lr_if_else(c, &bad);
    LLVMValueRef base = LLVMBuildMul(c->b, r, cg_i64(c, v), "");
    LLVMValueRef m64 = lr_to_f64(c, row_max(c, dt, x, base, v, m));
    LLVMValueRef sum = row_sumexp(c, dt, x, NULL, base, v, m64, s);
    LLVMValueRef loss = LLVMBuildFAdd(c->b, f64_call(c, "llvm.log", sum), m64, "");
    loss = LLVMBuildFSub(c->b, loss, ld64(c, dt, x, base, label), "");
    cg_store(c, dt, k.out, r, lr_from_f64(c, dt, loss));
    lr_if_end(c, &bad);
    lr_if_end(c, &ign);
    cg_loop_end(c, &l);
  }
  cg_kernel_end(c, &k);
  return true;
}
