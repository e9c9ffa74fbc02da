/* Lowering of sum, mean and reduce_max. The input shape is first reduced to
 * alternating groups of kept and reduced axes (size-1 axes dropped, neighbours
 * of the same kind merged). When the last group is reduced, each output
 * accumulates a scalar over unit-stride inner loops; otherwise a tile of
 * output columns accumulates in a stack array so the innermost loop is still
 * unit-stride. Semantics follow runtime/ref_reduce.c. Each input element
 * comes from a callback (lower_reduce.h): a load here, a loop body in
 * lower_loop.c, whose operands' strides also bound which axes merge. */
#include <math.h>

#include "backend/lower_reduce.h"
#include "backend/lower_rows.h"

/* Columns per tile when the last axis is kept: 2 KiB of double accumulators. */
#define RED_TILE 256

typedef struct red_group {
  int64_t size;
  int64_t stride[CG_RED_MAX_SRC]; /* per source: elements between neighbours */
  bool reduced;
} red_group;

typedef struct red {
  ir_op op;
  ir_dtype dt;      /* input and result dtype */
  bool fl;          /* float dtype */
  int64_t count;    /* input elements per output */
  LLVMTypeRef acct; /* accumulator type */
  int ns;           /* sources, source 0 included */
  red_group g[IR_MAX_RANK];
  int ng;
  const cg_red_input *in;
} red;

/* One offset per source. */
typedef struct red_offs {
  LLVMValueRef v[CG_RED_MAX_SRC];
} red_offs;

static LLVMValueRef red_init(cg_ctx *c, const red *r) {
  if (r->op != IR_OP_REDUCE_MAX) return LLVMConstNull(r->acct);
  if (r->fl) return LLVMConstReal(r->acct, -INFINITY);
  return r->dt == IR_I32 ? cg_i32(c, INT32_MIN) : cg_i64(c, INT64_MIN);
}

/* Integer sums wrap (no nsw), as the reference's rt_wrap_add. */
static LLVMValueRef red_combine(cg_ctx *c, const red *r, LLVMValueRef acc, LLVMValueRef v) {
  if (r->op == IR_OP_REDUCE_MAX) {
    LLVMValueRef a[2] = {acc, v};
    return r->fl ? lr_fmax(c, acc, v) : cg_intrinsic(c, "llvm.smax", r->acct, a, 2);
  }
  return r->fl ? lr_fadd_reassoc(c, acc, lr_to_f64(c, v)) : LLVMBuildAdd(c->b, acc, v, "");
}

static LLVMValueRef red_finish(cg_ctx *c, const red *r, LLVMValueRef acc) {
  if (!r->fl || r->op == IR_OP_REDUCE_MAX) return acc;
  if (r->op == IR_OP_MEAN)
    acc = LLVMBuildFDiv(c->b, acc, LLVMConstReal(c->t_f64, (double)r->count), "");
  return lr_from_f64(c, r->dt, acc);
}

/* base + j * stride, folding the trivial strides away. */
static LLVMValueRef step(cg_ctx *c, LLVMValueRef base, LLVMValueRef j, int64_t stride) {
  if (stride == 0) return base;
  if (stride != 1) j = LLVMBuildMul(c->b, j, cg_i64(c, stride), "");
  return LLVMBuildAdd(c->b, base, j, "");
}

static void offs_step(cg_ctx *c, const red *r, red_offs *o, LLVMValueRef j, const red_group *g) {
  for (int s = 0; s < r->ns; s++)
    o->v[s] = step(c, o->v[s], j, g->stride[s]);
}

/* The input element at offsets o, from the callback. */
static LLVMValueRef red_value(cg_ctx *c, cg_kernel *k, const red *r, const red_offs *o) {
  return r->in->value(c, k, r->in->ud, o->v);
}

/* Nested loops over the reduced groups, outermost first; adds the current
 * element's offsets to o and leaves the builder in the innermost body. */
static void red_loops_begin(cg_ctx *c, const red *r, cg_loop *ls, red_offs *o) {
  for (int i = 0; i < r->ng; i++) {
    if (!r->g[i].reduced) continue;
    LLVMValueRef j = cg_loop_begin(c, &ls[i], cg_i64(c, 0), cg_i64(c, r->g[i].size));
    offs_step(c, r, o, j, &r->g[i]);
  }
}

static void red_loops_end(cg_ctx *c, const red *r, cg_loop *ls) {
  for (int i = r->ng - 1; i >= 0; i--)
    if (r->g[i].reduced) cg_loop_end(c, &ls[i]);
}

/* Offsets of flat index q over the kept groups (optionally without the
 * last one), per source. */
static void kept_offsets(cg_ctx *c, const red *r, int upto, LLVMValueRef q, red_offs *o) {
  int64_t sizes[IR_MAX_RANK], strides[IR_MAX_RANK];
  for (int s = 0; s < r->ns; s++) {
    int n = 0;
    for (int i = 0; i < upto; i++) {
      if (r->g[i].reduced) continue;
      sizes[n] = r->g[i].size;
      strides[n++] = r->g[i].stride[s];
    }
    o->v[s] = lr_offset(c, q, n, sizes, strides);
  }
}

/* A zero-size reduced axis: every output is the initial value finished
 * (sum 0, mean 0/0 = NaN, max -inf / the integer minimum). */
static void emit_empty(cg_ctx *c, cg_kernel *k, const red *r) {
  LLVMValueRef v = red_finish(c, r, red_init(c, r));
  cg_loop l;
  LLVMValueRef o = cg_loop_begin(c, &l, k->begin, k->end);
  cg_store(c, r->dt, k->out, o, v);
  cg_loop_end(c, &l);
}

/* Last group reduced: one scalar accumulator per output. */
static void emit_scalar(cg_ctx *c, cg_kernel *k, const red *r) {
  LLVMValueRef acc = lr_alloca(c, r->acct, 1);
  if (r->in->setup) r->in->setup(c, k, r->in->ud);
  cg_loop l, ls[IR_MAX_RANK];
  LLVMValueRef o = cg_loop_begin(c, &l, k->begin, k->end);
  red_offs off;
  kept_offsets(c, r, r->ng, o, &off);
  LLVMBuildStore(c->b, red_init(c, r), acc);
  red_loops_begin(c, r, ls, &off);
  LLVMValueRef v = red_value(c, k, r, &off);
  LLVMValueRef a = LLVMBuildLoad2(c->b, r->acct, acc, "");
  LLVMBuildStore(c->b, red_combine(c, r, a, v), acc);
  red_loops_end(c, r, ls);
  cg_store(c, r->dt, k->out, o, red_finish(c, r, LLVMBuildLoad2(c->b, r->acct, acc, "")));
  cg_loop_end(c, &l);
}

/* Last group kept (m columns, unit stride in source 0): item = (outer
 * output row p, tile t of columns); the tile's accumulators live on the
 * stack. */
static void emit_tiled(cg_ctx *c, cg_kernel *k, const red *r, int64_t m, int64_t tile,
                       int64_t ntiles) {
  LLVMValueRef acc = lr_alloca(c, r->acct, tile);
  if (r->in->setup) r->in->setup(c, k, r->in->ud);
  const red_group *last = &r->g[r->ng - 1];
  cg_loop l, lj, ls[IR_MAX_RANK];
  LLVMValueRef it = cg_loop_begin(c, &l, k->begin, k->end);
  LLVMValueRef p = it, m0 = cg_i64(c, 0);
  if (ntiles > 1) {
    p = LLVMBuildUDiv(c->b, it, cg_i64(c, ntiles), "");
    m0 = LLVMBuildMul(c->b, LLVMBuildURem(c->b, it, cg_i64(c, ntiles), ""), cg_i64(c, tile), "");
  }
  LLVMValueRef mlen = lr_smin64(c, cg_i64(c, tile), LLVMBuildSub(c->b, cg_i64(c, m), m0, ""));
  red_offs off;
  kept_offsets(c, r, r->ng - 1, p, &off);
  offs_step(c, r, &off, m0, last);
  LLVMValueRef zero = cg_i64(c, 0);

  LLVMValueRef j = cg_loop_begin(c, &lj, zero, mlen);
  LLVMBuildStore(c->b, red_init(c, r), LLVMBuildGEP2(c->b, r->acct, acc, &j, 1, ""));
  cg_loop_end(c, &lj);

  red_loops_begin(c, r, ls, &off);
  j = cg_loop_begin(c, &lj, zero, mlen);
  LLVMValueRef pa = LLVMBuildGEP2(c->b, r->acct, acc, &j, 1, "");
  red_offs at = off;
  offs_step(c, r, &at, j, last);
  LLVMValueRef v = red_value(c, k, r, &at);
  LLVMBuildStore(c->b, red_combine(c, r, LLVMBuildLoad2(c->b, r->acct, pa, ""), v), pa);
  cg_loop_end(c, &lj);
  red_loops_end(c, r, ls);

  LLVMValueRef obase = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, p, cg_i64(c, m), ""), m0, "");
  j = cg_loop_begin(c, &lj, zero, mlen);
  pa = LLVMBuildGEP2(c->b, r->acct, acc, &j, 1, "");
  LLVMValueRef res = red_finish(c, r, LLVMBuildLoad2(c->b, r->acct, pa, ""));
  cg_store(c, r->dt, k->out, LLVMBuildAdd(c->b, obase, j, ""), res);
  cg_loop_end(c, &lj);
  cg_loop_end(c, &l);
}

bool cg_emit_reduce(cg_ctx *c, const ir_node *n, const cg_red_input *in, ir_diag *d) {
  const ir_node *rn = in->red;
  const ir_type *xt = in->type;
  const char *name = ir_op_get(rn->op)->name;
  const ir_ints *axes = &rn->attrs[0].ints;
  bool reduced[IR_MAX_RANK] = {false};
  for (int i = 0; i < axes->n; i++) {
    int64_t a = axes->v[i] < 0 ? axes->v[i] + xt->rank : axes->v[i];
    if (a < 0 || a >= xt->rank || reduced[a]) {
      ir_diag_set(d, "%s: bad or repeated axis %lld for rank %d", name, (long long)axes->v[i],
                  xt->rank);
      return false;
    }
    reduced[a] = true;
  }
  red r = {.op = rn->op, .dt = xt->dtype, .fl = ir_dtype_is_float(xt->dtype), .in = in};
  if (rn->type.dtype != r.dt || r.dt == IR_BOOL || (rn->op == IR_OP_MEAN && !r.fl)) {
    ir_diag_set(d, "%s: unsupported dtype %s", name, ir_dtype_name(r.dt));
    return false;
  }
  if (in->nsrc < 0 || in->nsrc >= CG_RED_MAX_SRC) {
    ir_diag_set(d, "%s: %d sources exceed %d", name, in->nsrc, CG_RED_MAX_SRC - 1);
    return false;
  }
  r.ns = in->nsrc + 1;
  r.acct = r.fl && rn->op != IR_OP_REDUCE_MAX ? c->t_f64 : cg_type(c, r.dt);
  int64_t no = ir_type_numel(&rn->type), nx = ir_type_numel(xt);
  r.count = no > 0 ? nx / no : 0;
  int64_t xs[IR_MAX_RANK];
  ir_strides(xt, xs);
  for (int i = 0; i < xt->rank; i++) {
    if (xt->dims[i] == 1) continue;
    int64_t col[CG_RED_MAX_SRC];
    col[0] = xs[i];
    for (int s = 1; s < r.ns; s++)
      col[s] = in->strides[s - 1][i];
    /* Merge into the previous group when it has the same kind and stepping
     * it equals stepping through all of this axis, for every source. */
    red_group *pg = r.ng > 0 ? &r.g[r.ng - 1] : NULL;
    bool merge = pg && pg->reduced == reduced[i];
    for (int s = 0; merge && s < r.ns; s++)
      merge = pg->stride[s] == col[s] * xt->dims[i];
    if (merge) {
      pg->size *= xt->dims[i];
    } else {
      pg = &r.g[r.ng++];
      pg->size = xt->dims[i];
      pg->reduced = reduced[i];
    }
    for (int s = 0; s < r.ns; s++)
      pg->stride[s] = col[s];
  }

  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  if (no == 0) {
    k.extent = 0;
  } else if (r.count == 0) {
    k.extent = no;
    emit_empty(c, &k, &r);
  } else if (r.ng == 0 || r.g[r.ng - 1].reduced) {
    k.extent = no;
    k.work = r.count;
    emit_scalar(c, &k, &r);
  } else {
    int64_t m = r.g[r.ng - 1].size;
    int64_t tile = m < RED_TILE ? m : RED_TILE, ntiles = (m + tile - 1) / tile;
    k.extent = no / m * ntiles;
    k.work = r.count * tile;
    emit_tiled(c, &k, &r, m, tile, ntiles);
  }
  cg_kernel_end(c, &k);
  return true;
}

static LLVMValueRef load_input(cg_ctx *c, cg_kernel *k, void *ud, const LLVMValueRef *off) {
  return cg_load(c, *(const ir_dtype *)ud, k->in[0], off[0]);
}

CG_LOWER_FN(cg_lower_reduce) {
  ir_dtype dt = c->g->nodes[n->in[0]]->type.dtype;
  cg_red_input in = {
      .red = n, .type = &c->g->nodes[n->in[0]]->type, .value = load_input, .ud = &dt};
  return cg_emit_reduce(c, n, &in, d);
}
