/* JIT lowering of reductions (sum, mean, reduce_max), softmax, log_softmax,
 * layernorm, softmax cross-entropy and gather, compared with the reference
 * interpreter on random inputs: every dtype, axis combinations with and
 * without keepdims, odd and zero sizes, NaN/Inf, data-dependent errors
 * (bad gather index, bad label) and guard bytes around every result. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/jit.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "runtime/ref.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

/* ---- graphs and data ------------------------------------------------------- */

static uint64_t rng_state = 0x1234567;

static uint64_t rng(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double urand(double lo, double hi) {
  return lo + (hi - lo) * (double)(rng() >> 11) / 9007199254740992.0;
}

static ir_type ty(ir_dtype dt, int rank, const int64_t *dims) {
  return ir_type_make(dt, rank, dims);
}

static int arg(ir_graph *g, const char *name, ir_type t) {
  ir_diag d = {0};
  int id = ir_add_arg(g, name, &t, &d);
  cr_assert(id >= 0, "%s", d.msg);
  return id;
}

static int add(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs) {
  ir_diag d = {0};
  int id = ir_add_node(g, op, nin, in, attrs, NULL, &d);
  cr_assert(id >= 0, "ir_add_node(%s): %s", ir_op_get(op)->name, d.msg);
  return id;
}

/* Floats uniform in [lo, hi); integers uniform in [lo, hi] (full range when
 * lo > hi). */
static rt_tensor *rand_tensor(ir_type t, double lo, double hi) {
  rt_tensor *r = rt_tensor_create(&t);
  cr_assert(r);
  for (int64_t i = 0; i < rt_numel(r); i++) {
    if (ir_dtype_is_float(t.dtype))
      rt_set_f(r, i, urand(lo, hi));
    else if (lo > hi)
      rt_set_i(r, i, t.dtype == IR_I32 ? (int64_t)(int32_t)rng() : (int64_t)rng());
    else if (t.dtype == IR_BOOL)
      rt_set_i(r, i, (int64_t)(rng() & 1));
    else
      rt_set_i(r, i, (int64_t)lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1)));
  }
  return r;
}

/* ---- running the JIT ------------------------------------------------------ */

typedef struct jit_run {
  cg_jit *j;
  void **bufs;
  char **raw; /* allocations behind bufs (GUARD bytes on each side) */
  rt_exec ex;
} jit_run;

/* Compiles g, fills one buffer per node (arguments from args, constants
 * from their payload, results with garbage between guard bytes) and runs
 * kiln_step once. */
static void jit_start(jit_run *r, const ir_graph *g, const rt_tensor *const *args, rt_pool *pool) {
  ir_diag d = {0};
  cg_jit_opts o = {.no_cache = true};
  r->j = cg_jit_compile(g, &o, NULL, &d);
  cr_assert(r->j, "cg_jit_compile: %s", d.msg);
  r->bufs = calloc((size_t)g->nnodes + 1, sizeof *r->bufs);
  r->raw = calloc((size_t)g->nnodes, sizeof *r->raw);
  cr_assert(r->bufs && r->raw);
  int a = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    size_t bytes = (size_t)ir_type_numel(&n->type) * ir_dtype_size(n->type.dtype);
    if (n->op == IR_OP_CONST) {
      r->bufs[i] = n->data;
      continue;
    }
    r->raw[i] = aligned_alloc(64, bytes + 2 * GUARD + 64 - bytes % 64);
    cr_assert(r->raw[i]);
    memset(r->raw[i], GUARD_BYTE, bytes + 2 * GUARD);
    r->bufs[i] = r->raw[i] + GUARD;
    if (n->op == IR_OP_ARG) {
      memcpy(r->bufs[i], args[a]->data, bytes);
      a++;
    } else {
      memset(r->bufs[i], 0x5A, bytes);
    }
  }
  rt_exec_init(&r->ex, pool, 1, 0);
  r->bufs[g->nnodes] = &r->ex;
  cg_jit_step(r->j)(r->bufs);
}

static void jit_check_guards(const jit_run *r, const ir_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    if (!r->raw[i]) continue;
    const ir_node *n = g->nodes[i];
    size_t bytes = (size_t)ir_type_numel(&n->type) * ir_dtype_size(n->type.dtype);
    const unsigned char *p = (const unsigned char *)r->raw[i];
    for (size_t k = 0; k < GUARD; k++) {
      cr_assert_eq(p[k], GUARD_BYTE, "node %d (%s): guard byte %zu before the buffer changed", i,
                   ir_op_get(n->op)->name, GUARD - k);
      cr_assert_eq(p[GUARD + bytes + k], GUARD_BYTE,
                   "node %d (%s): guard byte %zu after the buffer changed", i,
                   ir_op_get(n->op)->name, k);
    }
  }
}

static void jit_free(jit_run *r, const ir_graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    free(r->raw[i]);
  free(r->raw);
  free(r->bufs);
  cg_jit_destroy(r->j);
}

/* got (a buffer of want's type) matches want: integers exactly; floats within
 * atol + rtol * |want|, NaN where want is NaN, infinities exactly. */
static void expect_close(const rt_tensor *want, const void *got, double rtol, double atol,
                         const char *what) {
  rt_tensor g = *want;
  g.data = (void *)got;
  g.owned = false;
  for (int64_t i = 0; i < rt_numel(want); i++) {
    if (!ir_dtype_is_float(want->type.dtype)) {
      cr_assert_eq(rt_get_i(&g, i), rt_get_i(want, i), "%s: element %lld: got %lld, want %lld",
                   what, (long long)i, (long long)rt_get_i(&g, i), (long long)rt_get_i(want, i));
      continue;
    }
    double w = rt_get_f(want, i), v = rt_get_f(&g, i);
    bool ok = isnan(w) ? isnan(v) : isinf(w) ? v == w : fabs(v - w) <= atol + rtol * fabs(w);
    cr_assert(ok, "%s: element %lld: got %.17g, want %.17g", what, (long long)i, v, w);
  }
}

/* Runs g (one result) with the reference and the JIT and compares. */
static void check_graph(ir_graph *g, const rt_tensor *const *args, double rtol, double atol,
                        rt_pool *pool, const char *what) {
  rt_tensor *want = NULL;
  ir_diag d = {0};
  cr_assert(rt_ref_run(g, args, NULL, NULL, NULL, &want, &d), "%s: reference: %s", what, d.msg);
  jit_run r;
  jit_start(&r, g, args, pool);
  cr_assert_eq(r.ex.err_node, -1, "%s: unexpected kernel error", what);
  expect_close(want, r.bufs[g->rets[0]], rtol, atol, what);
  jit_check_guards(&r, g);
  jit_free(&r, g);
  rt_tensor_destroy(want);
}

/* ---- reductions ----------------------------------------------------------- */

static double tol_for(ir_dtype dt) { return dt == IR_F32 ? 1e-5 : 1e-12; }

static void check_reduce(ir_op op, ir_dtype dt, int rank, const int64_t *dims, int naxes,
                         const int64_t *axes, bool keep, rt_pool *pool) {
  ir_graph *g = ir_graph_create("red");
  int x = arg(g, "x", ty(dt, rank, dims));
  ir_attr at[2] = {{.kind = IR_ATTR_INTS, .ints = {naxes, (int64_t *)axes}},
                   {.kind = IR_ATTR_BOOL, .b = keep}};
  int y = add(g, op, 1, &x, at);
  ir_set_returns(g, 1, &y);
  rt_tensor *xv = rand_tensor(ty(dt, rank, dims), ir_dtype_is_float(dt) ? -2 : 1,
                              ir_dtype_is_float(dt) ? 2 : 0);
  char what[160];
  int k = snprintf(what, sizeof what, "%s %s rank %d axes [", ir_op_get(op)->name,
                   ir_dtype_name(dt), rank);
  for (int i = 0; i < naxes; i++)
    k += snprintf(what + k, sizeof what - (size_t)k, "%s%lld", i ? "," : "", (long long)axes[i]);
  snprintf(what + k, sizeof what - (size_t)k, "] keepdims %d", keep);
  const rt_tensor *args[] = {xv};
  check_graph(g, args, tol_for(dt), 0, pool, what);
  rt_tensor_destroy(xv);
  ir_graph_destroy(g);
}

typedef struct red_case {
  int rank;
  int64_t dims[IR_MAX_RANK];
  int naxes;
  int64_t axes[IR_MAX_RANK];
} red_case;

static const red_case red_cases[] = {
    {3, {3, 17, 5}, 0, {0}},
    {3, {3, 17, 5}, 1, {0}},
    {3, {3, 17, 5}, 1, {1}},
    {3, {3, 17, 5}, 1, {-1}},
    {3, {3, 17, 5}, 2, {0, 2}},
    {3, {3, 17, 5}, 2, {-1, 1}},
    {3, {3, 17, 5}, 3, {0, 1, 2}},
    {1, {1031}, 1, {0}},
    {1, {1}, 1, {0}},
    {2, {2, 1000}, 1, {1}},
    {2, {1000, 3}, 1, {0}},
    {2, {1031, 1}, 1, {0}},
    {4, {4, 1, 6, 2}, 2, {1, 3}},
    {5, {2, 3, 4, 5, 6}, 2, {1, 3}},
    {5, {2, 3, 4, 5, 6}, 3, {0, 2, 4}},
    {2, {300, 600}, 1, {0}},
    {0, {0}, 0, {0}},
    {2, {3, 0}, 1, {1}},
    {2, {0, 4}, 1, {1}},
    {2, {3, 0}, 1, {0}},
    {3, {2, 0, 3}, 1, {1}},
};

static void reduce_all(ir_op op, ir_dtype dt) {
  for (size_t i = 0; i < sizeof red_cases / sizeof red_cases[0]; i++)
    for (int keep = 0; keep < 2; keep++)
      check_reduce(op, dt, red_cases[i].rank, red_cases[i].dims, red_cases[i].naxes,
                   red_cases[i].axes, keep, NULL);
}

Test(jit_reduce, sum_all_dtypes) {
  const ir_dtype dts[] = {IR_F32, IR_F64, IR_I32, IR_I64};
  for (int i = 0; i < 4; i++)
    reduce_all(IR_OP_SUM, dts[i]);
}

Test(jit_reduce, mean_floats) {
  reduce_all(IR_OP_MEAN, IR_F32);
  reduce_all(IR_OP_MEAN, IR_F64);
}

Test(jit_reduce, max_all_dtypes) {
  const ir_dtype dts[] = {IR_F32, IR_F64, IR_I32, IR_I64};
  for (int i = 0; i < 4; i++)
    reduce_all(IR_OP_REDUCE_MAX, dts[i]);
}

Test(jit_reduce, parallel_pool) {
  rt_pool *pool = rt_pool_create(3);
  cr_assert(pool);
  const int64_t big[] = {257, 1031}, a0[] = {0}, a1[] = {1}, a01[] = {0, 1};
  const ir_op ops[] = {IR_OP_SUM, IR_OP_MEAN, IR_OP_REDUCE_MAX};
  for (int o = 0; o < 3; o++) {
    check_reduce(ops[o], IR_F32, 2, big, 1, a0, false, pool);
    check_reduce(ops[o], IR_F32, 2, big, 1, a1, true, pool);
    check_reduce(ops[o], IR_F64, 2, big, 2, a01, false, pool);
  }
  check_reduce(IR_OP_SUM, IR_I32, 2, big, 1, a0, false, pool);
  rt_pool_destroy(pool);
}

/* NaN and infinities: max propagates NaN; sums of +inf and -inf are NaN. */
Test(jit_reduce, nan_inf) {
  const ir_dtype dts[] = {IR_F32, IR_F64};
  const ir_op ops[] = {IR_OP_SUM, IR_OP_MEAN, IR_OP_REDUCE_MAX};
  int64_t dims[2] = {6, 37};
  const int64_t axes[][1] = {{1}, {0}};
  for (int t = 0; t < 2; t++) {
    for (int o = 0; o < 3; o++) {
      for (int ax = 0; ax < 2; ax++) {
        ir_graph *g = ir_graph_create("nan");
        int x = arg(g, "x", ty(dts[t], 2, dims));
        ir_attr at[2] = {{.kind = IR_ATTR_INTS, .ints = {1, (int64_t *)axes[ax]}},
                         {.kind = IR_ATTR_BOOL, .b = false}};
        int y = add(g, ops[o], 1, &x, at);
        ir_set_returns(g, 1, &y);
        rt_tensor *xv = rand_tensor(ty(dts[t], 2, dims), -3, 3);
        rt_set_f(xv, 0 * 37 + 5, NAN);      /* row 0: one NaN */
        rt_set_f(xv, 1 * 37 + 36, NAN);     /* row 1: NaN last */
        rt_set_f(xv, 2 * 37 + 3, INFINITY); /* row 2: +inf */
        rt_set_f(xv, 3 * 37 + 3, INFINITY); /* row 3: +inf and -inf */
        rt_set_f(xv, 3 * 37 + 9, -INFINITY);
        for (int k = 0; k < 37; k++) /* row 4: all -inf */
          rt_set_f(xv, 4 * 37 + k, -INFINITY);
        const rt_tensor *args[] = {xv};
        check_graph(g, args, tol_for(dts[t]), 0, NULL, ir_op_get(ops[o])->name);
        rt_tensor_destroy(xv);
        ir_graph_destroy(g);
      }
    }
  }
}

/* Integer sums wrap like two's complement; i32 extremes for max. */
Test(jit_reduce, int_wrap_and_extremes) {
  const int64_t dims[] = {4, 1000}, a1[] = {1}, a0[] = {0};
  for (int i = 0; i < 3; i++) {
    rng_state += 77;
    ir_dtype dt = i == 2 ? IR_I64 : IR_I32;
    ir_graph *g = ir_graph_create("wrap");
    int x = arg(g, "x", ty(dt, 2, dims));
    ir_attr at[2] = {{.kind = IR_ATTR_INTS, .ints = {1, (int64_t *)(i == 1 ? a0 : a1)}},
                     {.kind = IR_ATTR_BOOL, .b = false}};
    int s = add(g, IR_OP_SUM, 1, &x, at);
    ir_set_returns(g, 1, &s);
    rt_tensor *xv = rand_tensor(ty(dt, 2, dims), 1, 0); /* full range: sums overflow */
    const rt_tensor *args[] = {xv};
    check_graph(g, args, 0, 0, NULL, "wrapping sum");
    ir_graph_destroy(g);
    g = ir_graph_create("mx");
    x = arg(g, "x", ty(dt, 2, dims));
    s = add(g, IR_OP_REDUCE_MAX, 1, &x, at);
    ir_set_returns(g, 1, &s);
    rt_set_i(xv, 3, dt == IR_I32 ? INT32_MIN : INT64_MIN);
    rt_set_i(xv, 1003, dt == IR_I32 ? INT32_MAX : INT64_MAX);
    check_graph(g, args, 0, 0, NULL, "integer max");
    rt_tensor_destroy(xv);
    ir_graph_destroy(g);
  }
}

/* The f32 sum over a long row is accumulated in double: compare against
 * the exact double sum of the f32 inputs with a tight tolerance. */
Test(jit_reduce, f32_sum_accuracy) {
  const int64_t dims[] = {4000}, ax[] = {0};
  ir_graph *g = ir_graph_create("acc");
  int x = arg(g, "x", ty(IR_F32, 1, dims));
  ir_attr at[2] = {{.kind = IR_ATTR_INTS, .ints = {1, (int64_t *)ax}},
                   {.kind = IR_ATTR_BOOL, .b = false}};
  int y = add(g, IR_OP_SUM, 1, &x, at);
  ir_set_returns(g, 1, &y);
  rt_tensor *xv = rand_tensor(ty(IR_F32, 1, dims), 0, 1);
  for (int i = 0; i < 4000; i += 2) /* heavy cancellation: +big, -big pairs */
    rt_set_f(xv, i, 1e4 + rt_get_f(xv, i)), rt_set_f(xv, i + 1, -1e4 - rt_get_f(xv, i + 1));
  const rt_tensor *args[] = {xv};
  check_graph(g, args, 1e-6, 0, NULL, "f32 sum with cancellation");
  rt_tensor_destroy(xv);
  ir_graph_destroy(g);
}

/* The last-axis f32 sum must reach the loop vectorizer as a reassociable
 * reduction. */
Test(jit_reduce, vectorized) {
  const int64_t dims[] = {64, 1024}, ax[] = {1};
  ir_graph *g = ir_graph_create("vec");
  int x = arg(g, "x", ty(IR_F32, 2, dims));
  ir_attr at[2] = {{.kind = IR_ATTR_INTS, .ints = {1, (int64_t *)ax}},
                   {.kind = IR_ATTR_BOOL, .b = false}};
  int y = add(g, IR_OP_SUM, 1, &x, at);
  ir_set_returns(g, 1, &y);
  ir_diag d = {0};
  char *ir = cg_jit_dump(g, NULL, "llvm", &d);
  cr_assert(ir, "%s", d.msg);
  cr_expect(strstr(ir, "vector.body") && strstr(ir, "x double>"),
            "the f32 row sum was not vectorized:\n%s", ir);
  free(ir);
  ir_graph_destroy(g);
}

/* ---- softmax / log_softmax -------------------------------------------------- */

static void check_softmax(ir_op op, ir_dtype dt, int rank, const int64_t *dims, int64_t axis,
                          double scale, bool specials, rt_pool *pool) {
  ir_graph *g = ir_graph_create("sm");
  int x = arg(g, "x", ty(dt, rank, dims));
  ir_attr at = {.kind = IR_ATTR_INT, .i = axis};
  int y = add(g, op, 1, &x, &at);
  ir_set_returns(g, 1, &y);
  rt_tensor *xv = rand_tensor(ty(dt, rank, dims), -scale, scale);
  int64_t n = rt_numel(xv);
  if (specials && n >= 40) {
    rt_set_f(xv, 3, NAN);
    rt_set_f(xv, n / 2, INFINITY);
    rt_set_f(xv, n - 2, -INFINITY);
    rt_set_f(xv, n - 5, -INFINITY);
  }
  char what[128];
  snprintf(what, sizeof what, "%s %s rank %d axis %lld", ir_op_get(op)->name, ir_dtype_name(dt),
           rank, (long long)axis);
  const rt_tensor *args[] = {xv};
  /* The absolute floor covers log-probabilities near 0: -log(1 + tiny)
   * moves by ulp(1) with the summation order, in either engine. */
  check_graph(g, args, dt == IR_F32 ? 2e-6 : 1e-12, 1e-13, pool, what);
  rt_tensor_destroy(xv);
  ir_graph_destroy(g);
}

typedef struct sm_case {
  int rank;
  int64_t dims[IR_MAX_RANK];
  int64_t axis;
} sm_case;

static const sm_case sm_cases[] = {
    {2, {5, 17}, -1},  {2, {3, 1031}, 1}, {1, {1000}, 0},      {1, {1}, 0},
    {3, {4, 7, 9}, 1}, {2, {300, 3}, 0},  {3, {2, 3, 300}, 1}, {3, {2, 5, 1}, 1},
    {3, {4, 7, 9}, 0}, {2, {0, 5}, 1},    {2, {5, 0}, 0},      {2, {5, 0}, 1},
};

static void softmax_all(ir_op op) {
  const ir_dtype dts[] = {IR_F32, IR_F64};
  for (int t = 0; t < 2; t++)
    for (size_t i = 0; i < sizeof sm_cases / sizeof sm_cases[0]; i++)
      for (int sp = 0; sp < 2; sp++)
        check_softmax(op, dts[t], sm_cases[i].rank, sm_cases[i].dims, sm_cases[i].axis, sp ? 50 : 4,
                      sp, NULL);
}

Test(jit_softmax, softmax) { softmax_all(IR_OP_SOFTMAX); }
Test(jit_softmax, log_softmax) { softmax_all(IR_OP_LOG_SOFTMAX); }

/* Logits in the thousands stay finite (the row max is subtracted). */
Test(jit_softmax, large_logits_and_pool) {
  rt_pool *pool = rt_pool_create(3);
  cr_assert(pool);
  const int64_t rows[] = {200, 1031}, cols[] = {3, 200, 97};
  for (int t = 0; t < 2; t++) {
    ir_dtype dt = t ? IR_F64 : IR_F32;
    check_softmax(IR_OP_SOFTMAX, dt, 2, rows, -1, 3000, false, pool);
    check_softmax(IR_OP_LOG_SOFTMAX, dt, 2, rows, -1, 3000, false, pool);
    check_softmax(IR_OP_SOFTMAX, dt, 3, cols, 1, 30, true, pool);
    check_softmax(IR_OP_LOG_SOFTMAX, dt, 3, cols, 1, 30, true, pool);
  }
  rt_pool_destroy(pool);
}

/* ---- layernorm --------------------------------------------------------------- */

static void check_layernorm(ir_dtype dt, int rank, const int64_t *dims, double eps, rt_pool *pool) {
  ir_graph *g = ir_graph_create("ln");
  int64_t dl = dims[rank - 1];
  int in[3] = {arg(g, "x", ty(dt, rank, dims)), arg(g, "gamma", ty(dt, 1, &dl)),
               arg(g, "beta", ty(dt, 1, &dl))};
  ir_attr at = {.kind = IR_ATTR_FLOAT, .f = eps};
  int y = add(g, IR_OP_LAYERNORM, 3, in, &at);
  ir_set_returns(g, 1, &y);
  rt_tensor *xv = rand_tensor(ty(dt, rank, dims), -3, 5);
  rt_tensor *gv = rand_tensor(ty(dt, 1, &dl), 0.5, 1.5), *bv = rand_tensor(ty(dt, 1, &dl), -1, 1);
  if (rt_numel(xv) > 40) rt_set_f(xv, 7, NAN); /* poisons row 0 only */
  char what[96];
  snprintf(what, sizeof what, "layernorm %s rank %d last %lld", ir_dtype_name(dt), rank,
           (long long)dl);
  const rt_tensor *args[] = {xv, gv, bv};
  check_graph(g, args, dt == IR_F32 ? 2e-6 : 1e-11, dt == IR_F32 ? 1e-6 : 1e-12, pool, what);
  rt_tensor_destroy(xv);
  rt_tensor_destroy(gv);
  rt_tensor_destroy(bv);
  ir_graph_destroy(g);
}

Test(jit_layernorm, shapes_dtypes) {
  const int64_t a[] = {7, 17}, b[] = {3, 1031}, c1[] = {1000, 1}, e[] = {2, 3, 5}, z[] = {0, 8},
                z2[] = {4, 0}, one[] = {1}, big[] = {96, 1000};
  rt_pool *pool = rt_pool_create(2);
  for (int t = 0; t < 2; t++) {
    ir_dtype dt = t ? IR_F64 : IR_F32;
    check_layernorm(dt, 2, a, 1e-5, NULL);
    check_layernorm(dt, 2, b, 1e-5, NULL);
    check_layernorm(dt, 2, c1, 1e-3, NULL);
    check_layernorm(dt, 3, e, 0.5, NULL);
    check_layernorm(dt, 2, z, 1e-5, NULL);
    check_layernorm(dt, 2, z2, 1e-5, NULL);
    check_layernorm(dt, 1, one, 1e-5, NULL);
    check_layernorm(dt, 2, big, 1e-5, pool);
  }
  rt_pool_destroy(pool);
}

/* ---- softmax cross-entropy ---------------------------------------------------- */

static ir_graph *xent_graph(ir_dtype dt, ir_dtype lt, int64_t rows, int64_t v, int64_t ignore,
                            int *node) {
  ir_graph *g = ir_graph_create("xent");
  int64_t ld[2] = {rows, v};
  int in[2] = {arg(g, "logits", ty(dt, 2, ld)), arg(g, "labels", ty(lt, 1, &rows))};
  ir_attr at = {.kind = IR_ATTR_INT, .i = ignore};
  *node = add(g, IR_OP_SOFTMAX_CROSS_ENTROPY, 2, in, &at);
  ir_set_returns(g, 1, node);
  return g;
}

Test(jit_xent, matches_reference) {
  const int64_t shapes[][2] = {{6, 17}, {3, 1031}, {1, 1}, {50, 1000}, {0, 5}};
  rt_pool *pool = rt_pool_create(2);
  for (int t = 0; t < 4; t++) {
    ir_dtype dt = t & 1 ? IR_F64 : IR_F32, lt = t & 2 ? IR_I64 : IR_I32;
    for (int s = 0; s < 5; s++) {
      for (int ig = 0; ig < 2; ig++) {
        int64_t rows = shapes[s][0], v = shapes[s][1], ignore = ig ? 2 : -1;
        int id;
        ir_graph *g = xent_graph(dt, lt, rows, v, ignore, &id);
        int64_t ld[2] = {rows, v};
        rt_tensor *xv = rand_tensor(ty(dt, 2, ld), -20, 20);
        rt_tensor *lv = rand_tensor(ty(lt, 1, &rows), 0, (double)(v - 1));
        if (rows > 2) {
          rt_set_i(lv, 1, ignore);  /* an ignored row */
          rt_set_f(xv, 2 * v, NAN); /* row 2: NaN logit */
        }
        if (rows > 3) rt_set_f(xv, 3 * v, INFINITY);
        const rt_tensor *args[] = {xv, lv};
        check_graph(g, args, dt == IR_F32 ? 2e-6 : 1e-12, dt == IR_F32 ? 1e-6 : 1e-12, pool,
                    "softmax_cross_entropy");
        rt_tensor_destroy(xv);
        rt_tensor_destroy(lv);
        ir_graph_destroy(g);
      }
    }
  }
  rt_pool_destroy(pool);
}

/* A label outside [0, V) that is not ignore_index: the exec error record
 * names the node, position, value and limit; that row's loss is 0; other
 * rows match the reference (run with the bad label ignored). */
Test(jit_xent, bad_label_is_reported) {
  const int64_t bad_vals[] = {17, -5, INT32_MAX};
  for (int b = 0; b < 3; b++) {
    for (int t = 0; t < 2; t++) {
      ir_dtype lt = t ? IR_I64 : IR_I32;
      int id;
      ir_graph *g = xent_graph(IR_F32, lt, 6, 17, -1, &id);
      int64_t ld[2] = {6, 17}, rows = 6;
      rt_tensor *xv = rand_tensor(ty(IR_F32, 2, ld), -5, 5);
      rt_tensor *lv = rand_tensor(ty(lt, 1, &rows), 0, 16);
      rt_set_i(lv, 4, bad_vals[b]);
      const rt_tensor *args[] = {xv, lv};
      rt_tensor *out = NULL;
      ir_diag d = {0};
      cr_assert_not(rt_ref_run(g, args, NULL, NULL, NULL, &out, &d), "reference accepted label");
      jit_run r;
      jit_start(&r, g, args, NULL);
      cr_assert_eq(r.ex.err_node, id);
      cr_assert_eq(r.ex.err_kind, RT_ERR_LABEL);
      cr_assert_eq(r.ex.err_pos, 4);
      cr_assert_eq(r.ex.err_val, bad_vals[b]);
      cr_assert_eq(r.ex.err_limit, 17);
      rt_set_i(lv, 4, -1);
      cr_assert(rt_ref_run(g, args, NULL, NULL, NULL, &out, &d), "%s", d.msg);
      expect_close(out, r.bufs[id], 2e-6, 1e-6, "rows around a bad label");
      jit_check_guards(&r, g);
      jit_free(&r, g);
      rt_tensor_destroy(out);
      rt_tensor_destroy(xv);
      rt_tensor_destroy(lv);
      ir_graph_destroy(g);
    }
  }
}

/* ---- gather ------------------------------------------------------------------ */

static ir_graph *gather_graph(ir_type tt, ir_type it, int *node) {
  ir_graph *g = ir_graph_create("gather");
  int in[2] = {arg(g, "table", tt), arg(g, "idx", it)};
  *node = add(g, IR_OP_GATHER, 2, in, NULL);
  ir_set_returns(g, 1, node);
  return g;
}

Test(jit_gather, all_dtypes_and_shapes) {
  const ir_dtype dts[] = {IR_F32, IR_F64, IR_I32, IR_I64, IR_BOOL};
  const int64_t t3[] = {10, 3, 4}, t1[] = {17}, tz[] = {5, 0}, big[] = {300, 200};
  const int64_t i2[] = {2, 5}, i1[] = {7}, ibig[] = {1031};
  struct {
    int trank;
    const int64_t *td;
    int irank;
    const int64_t *id;
  } cases[] = {{3, t3, 2, i2}, {3, t3, 1, i1},    {3, t3, 0, NULL}, {1, t1, 2, i2},
               {2, tz, 1, i1}, {2, big, 1, ibig}, {1, t1, 1, ibig}};
  rt_pool *pool = rt_pool_create(3);
  for (int t = 0; t < 5; t++) {
    for (int k = 0; k < 2; k++) {
      for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ir_type tt = ty(dts[t], cases[c].trank, cases[c].td);
        ir_type it = ty(k ? IR_I64 : IR_I32, cases[c].irank, cases[c].id);
        int id;
        ir_graph *g = gather_graph(tt, it, &id);
        rt_tensor *tv = rand_tensor(tt, -100, 100);
        rt_tensor *iv = rand_tensor(it, 0, (double)(cases[c].td[0] - 1));
        const rt_tensor *args[] = {tv, iv};
        check_graph(g, args, 0, 0, pool, "gather");
        rt_tensor_destroy(tv);
        rt_tensor_destroy(iv);
        ir_graph_destroy(g);
      }
    }
  }
  rt_pool_destroy(pool);
}

/* Indices outside [0, rows): the first is recorded, those rows are zero,
 * the others are copied; serially and with a pool. */
Test(jit_gather, bad_index_is_reported) {
  rt_pool *pool = rt_pool_create(3);
  for (int par = 0; par < 2; par++) {
    for (int k = 0; k < 2; k++) {
      const int64_t td[] = {10, 64}, nidx = par ? 2000 : 9;
      ir_type tt = ty(IR_F32, 2, td), it = ty(k ? IR_I64 : IR_I32, 1, &nidx);
      int id;
      ir_graph *g = gather_graph(tt, it, &id);
      rt_tensor *tv = rand_tensor(tt, 1, 2), *iv = rand_tensor(it, 0, 9);
      int64_t bad = par ? 1500 : 3;
      rt_set_i(iv, bad, 10);
      if (!par) rt_set_i(iv, 6, -1); /* a second bad one, later: not recorded */
      const rt_tensor *args[] = {tv, iv};
      rt_tensor *out = NULL;
      ir_diag d = {0};
      cr_assert_not(rt_ref_run(g, args, NULL, NULL, NULL, &out, &d), "reference accepted index");
      cr_assert(strstr(d.msg, "out of range"), "%s", d.msg);
      jit_run r;
      jit_start(&r, g, args, par ? pool : NULL);
      cr_assert_eq(r.ex.err_node, id);
      cr_assert_eq(r.ex.err_kind, RT_ERR_INDEX);
      cr_assert_eq(r.ex.err_pos, bad);
      cr_assert_eq(r.ex.err_val, 10);
      cr_assert_eq(r.ex.err_limit, 10);
      const float *o = r.bufs[id];
      for (int64_t p = 0; p < nidx; p++) {
        int64_t ix = rt_get_i(iv, p);
        for (int j = 0; j < 64; j++) {
          float want = ix < 0 || ix >= 10 ? 0.0f : ((const float *)tv->data)[ix * 64 + j];
          cr_assert_eq(o[p * 64 + j], want, "row %lld element %d", (long long)p, j);
        }
      }
      jit_check_guards(&r, g);
      jit_free(&r, g);
      rt_tensor_destroy(tv);
      rt_tensor_destroy(iv);
      ir_graph_destroy(g);
    }
  }
  rt_pool_destroy(pool);
}
