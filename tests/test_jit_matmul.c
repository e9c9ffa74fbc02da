/* matmul on the JIT backend (cblas_sgemm / cblas_dgemm) against the
 * reference interpreter: f32 and f64, every transpose combination, odd
 * sizes, batch broadcasting, the folded x[B,M,K] @ w[K,N] case and
 * zero-size dims. Buffers are allocated here (one per node, the rt_exec
 * last) with guard bytes after every output that must stay untouched. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/jit.h"
#include "runtime/exec.h"
#include "runtime/ref.h"
#include "runtime/tensor.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

typedef struct mm_case {
  int arank, brank;
  int64_t adims[IR_MAX_RANK], bdims[IR_MAX_RANK];
} mm_case;

/* The graph: per case two arguments and one matmul, all results returned. */
static ir_graph *build(ir_dtype dt, bool ta, bool tb, const mm_case *cs, int ncases) {
  ir_graph *g = ir_graph_create("mm");
  cr_assert_not_null(g);
  ir_diag d = {0};
  int *rets = calloc((size_t)ncases, sizeof *rets);
  for (int i = 0; i < ncases; i++) {
    char name[32];
    ir_type at = ir_type_make(dt, cs[i].arank, cs[i].adims);
    ir_type bt = ir_type_make(dt, cs[i].brank, cs[i].bdims);
    snprintf(name, sizeof name, "a%d", i);
    int in[2];
    in[0] = ir_add_arg(g, name, &at, &d);
    snprintf(name, sizeof name, "b%d", i);
    in[1] = ir_add_arg(g, name, &bt, &d);
    cr_assert(in[0] >= 0 && in[1] >= 0, "%s", d.msg);
    ir_attr attrs[IR_MAX_ATTRS];
    ir_attrs_default(g, IR_OP_MATMUL, attrs);
    attrs[0].b = ta;
    attrs[1].b = tb;
    rets[i] = ir_add_node(g, IR_OP_MATMUL, 2, in, attrs, NULL, &d);
    cr_assert(rets[i] >= 0, "case %d: %s", i, d.msg);
  }
  ir_set_returns(g, ncases, rets);
  free(rets);
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  return g;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double next_uniform(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

/* Compiles g, runs it on fresh random arguments with the given pool and
 * compares every result with the reference interpreter. */
static void run_and_compare(ir_graph *g, rt_pool *pool) {
  ir_diag d = {0};
  cg_jit_opts o = {.no_cache = true};
  cg_jit *j = cg_jit_compile(g, &o, NULL, &d);
  cr_assert_not_null(j, "compile: %s", d.msg);
  cg_step_fn step = cg_jit_step(j);
  cr_assert_not_null(step);

  int nn = g->nnodes, nargs = ir_graph_args(g, NULL);
  void **bufs = calloc((size_t)nn + 1, sizeof *bufs);
  rt_tensor **args = calloc((size_t)nargs + 1, sizeof *args);
  cr_assert(bufs && args);
  int ai = 0;
  for (int i = 0; i < nn; i++) {
    const ir_node *n = g->nodes[i];
    size_t bytes = (size_t)ir_type_numel(&n->type) * ir_dtype_size(n->type.dtype);
    if (n->op == IR_OP_ARG) {
      rt_tensor *t = rt_tensor_create(&n->type);
      cr_assert_not_null(t);
      for (int64_t e = 0; e < ir_type_numel(&n->type); e++)
        rt_set_f(t, e, next_uniform());
      args[ai++] = t;
      bufs[i] = t->data;
    } else {
      bufs[i] = rt_alloc(bytes + GUARD);
      cr_assert_not_null(bufs[i]);
      /* NaN-ish garbage: every element must be written. */
      memset(bufs[i], 0xFF, bytes);
      memset((char *)bufs[i] + bytes, GUARD_BYTE, GUARD);
    }
  }
  rt_exec x;
  rt_exec_init(&x, pool, 0, 0);
  bufs[nn] = &x;
  step(bufs);
  cr_assert_eq(x.err_node, -1);

  rt_tensor **ref = calloc((size_t)g->nrets + 1, sizeof *ref);
  cr_assert(rt_ref_run(g, (const rt_tensor *const *)args, NULL, NULL, NULL, ref, &d), "%s", d.msg);
  for (int r = 0; r < g->nrets; r++) {
    const ir_node *n = g->nodes[g->rets[r]];
    const ir_node *a = g->nodes[n->in[0]];
    int64_t k = a->type.dims[a->type.rank - (n->attrs[0].b ? 2 : 1)];
    bool f32 = n->type.dtype == IR_F32;
    double tol = (f32 ? 2e-6 : 1e-13) * (double)(k + 1);
    char ts[IR_TYPE_STRLEN];
    ir_type_str(&n->type, ts, sizeof ts);
    for (int64_t e = 0, ne = ir_type_numel(&n->type); e < ne; e++) {
      double got = f32 ? ((float *)bufs[n->id])[e] : ((double *)bufs[n->id])[e];
      double want = rt_get_f(ref[r], e);
      cr_assert(fabs(got - want) <= tol,
                "result %d %s ta=%d tb=%d element %lld: got %.9g, want %.9g", r, ts, n->attrs[0].b,
                n->attrs[1].b, (long long)e, got, want);
    }
    const unsigned char *guard = (const unsigned char *)bufs[n->id] + ref[r]->bytes;
    for (int b = 0; b < GUARD; b++)
      cr_assert_eq(guard[b], GUARD_BYTE, "result %d %s: guard byte %d overwritten", r, ts, b);
    rt_tensor_destroy(ref[r]);
  }
  for (int i = 0; i < nn; i++)
    if (g->nodes[i]->op != IR_OP_ARG) rt_free(bufs[i]);
  for (int i = 0; i < nargs; i++)
    rt_tensor_destroy(args[i]);
  free(ref);
  free(args);
  free(bufs);
  cg_jit_destroy(j);
}

/* A rank-2 case computing [m,k] x [k,n] with the operands stored as the
 * transposes say. */
static mm_case rank2(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  mm_case c = {.arank = 2, .brank = 2};
  c.adims[0] = ta ? k : m;
  c.adims[1] = ta ? m : k;
  c.bdims[0] = tb ? n : k;
  c.bdims[1] = tb ? k : n;
  return c;
}

/* The same with batch dims in front: the last two dims are laid out per
 * the transposes. */
static mm_case batched(bool ta, bool tb, int abr, const int64_t *ab, int bbr, const int64_t *bb,
                       int64_t m, int64_t n, int64_t k) {
  mm_case r2 = rank2(ta, tb, m, n, k), c = {.arank = abr + 2, .brank = bbr + 2};
  for (int i = 0; i < abr; i++)
    c.adims[i] = ab[i];
  for (int i = 0; i < bbr; i++)
    c.bdims[i] = bb[i];
  c.adims[abr] = r2.adims[0];
  c.adims[abr + 1] = r2.adims[1];
  c.bdims[bbr] = r2.bdims[0];
  c.bdims[bbr + 1] = r2.bdims[1];
  return c;
}

static void odd_sizes(ir_dtype dt, bool ta, bool tb) {
  static const int64_t sizes[] = {1, 3, 17, 129};
  mm_case cs[64];
  int nc = 0;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      for (int l = 0; l < 4; l++)
        cs[nc++] = rank2(ta, tb, sizes[i], sizes[j], sizes[l]);
  ir_graph *g = build(dt, ta, tb, cs, nc);
  run_and_compare(g, NULL);
  ir_graph_destroy(g);
}

Test(jit_matmul, odd_sizes_f32) {
  for (int t = 0; t < 4; t++)
    odd_sizes(IR_F32, t & 1, t & 2);
}

Test(jit_matmul, odd_sizes_f64) {
  for (int t = 0; t < 4; t++)
    odd_sizes(IR_F64, t & 1, t & 2);
}

static void broadcasting(ir_dtype dt, bool ta, bool tb, rt_pool *pool) {
  static const int64_t b2131[] = {2, 1}, b5[] = {5}, b23[] = {2, 3}, b1[] = {1}, b3[] = {3},
                       b41[] = {4, 1}, b17[] = {1, 7};
  mm_case cs[] = {
      batched(ta, tb, 2, b2131, 1, b5, 3, 6, 4), /* [2,1,3,4] x [5,4,6] -> [2,5,3,6] */
      batched(ta, tb, 2, b23, 0, NULL, 4, 6, 5), /* b shared: folds when a is not transposed */
      batched(ta, tb, 2, b23, 1, b1, 4, 6, 5),   /* the same with a unit batch dim on b */
      batched(ta, tb, 0, NULL, 1, b3, 4, 6, 5),  /* a shared across b's batch */
      batched(ta, tb, 1, b3, 1, b3, 7, 2, 9),    /* both batched, same batch */
      batched(ta, tb, 2, b41, 2, b17, 3, 5, 2),  /* [4,1] x [1,7] -> [4,7] */
      batched(ta, tb, 1, b5, 0, NULL, 1, 1, 1),
  };
  ir_graph *g = build(dt, ta, tb, cs, (int)(sizeof cs / sizeof cs[0]));
  run_and_compare(g, pool);
  ir_graph_destroy(g);
}

Test(jit_matmul, batch_broadcast) {
  rt_pool *pool = rt_pool_create(2);
  cr_assert_not_null(pool);
  for (int t = 0; t < 4; t++) {
    broadcasting(IR_F32, t & 1, t & 2, NULL);
    broadcasting(IR_F64, t & 1, t & 2, pool);
  }
  rt_pool_destroy(pool);
}

/* Zero-size M, N, K and batch: K = 0 must give zeros (the output starts as
 * NaN garbage), the rest must write nothing and touch no guard byte. */
Test(jit_matmul, zero_sizes) {
  static const int64_t b0[] = {0}, b2[] = {2};
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    mm_case cs[] = {
        rank2(ta, tb, 0, 3, 4),
        rank2(ta, tb, 3, 0, 4),
        rank2(ta, tb, 3, 4, 0),
        rank2(ta, tb, 0, 0, 0),
        rank2(ta, tb, 1, 17, 0),
        batched(ta, tb, 1, b0, 0, NULL, 3, 4, 5),
        batched(ta, tb, 1, b2, 1, b2, 3, 4, 0),
        batched(ta, tb, 1, b2, 0, NULL, 3, 4, 0),
    };
    for (int dt = 0; dt < 2; dt++) {
      ir_graph *g = build(dt ? IR_F64 : IR_F32, ta, tb, cs, (int)(sizeof cs / sizeof cs[0]));
      run_and_compare(g, NULL);
      ir_graph_destroy(g);
    }
  }
}

/* kiln's pool owns the cores (OpenBLAS runs on one thread): a large batch
 * is split over the pool by items, a large single matrix by rows, each
 * chunk one call of the dtype's BLAS routine; a small product stays one
 * direct call. */
static bool dump_has(const ir_graph *g, const char *what) {
  ir_diag d = {0};
  char *text = cg_jit_dump(g, NULL, "llvm", &d);
  cr_assert_not_null(text, "%s", d.msg);
  bool has = strstr(text, what) != NULL;
  free(text);
  return has;
}

Test(jit_matmul, large_products_split_over_the_pool) {
  static const int64_t b[] = {4096};
  mm_case batch = batched(false, false, 1, b, 1, b, 8, 8, 8);
  mm_case tall = rank2(false, false, 4096, 16, 16), small = rank2(false, false, 8, 8, 8);
  for (int dt = 0; dt < 2; dt++) {
    ir_dtype t = dt ? IR_F64 : IR_F32;
    ir_graph *g = build(t, false, false, &batch, 1);
    cr_expect(dump_has(g, "rt_parallel_for"), "a batch of 4096 runs on the pool");
    cr_expect(dump_has(g, dt ? "cblas_dgemm" : "cblas_sgemm"));
    cr_expect(!dump_has(g, dt ? "cblas_sgemm" : "cblas_dgemm"));
    ir_graph_destroy(g);
    g = build(t, false, false, &tall, 1);
    cr_expect(dump_has(g, "rt_parallel_for"), "4096 rows run on the pool");
    ir_graph_destroy(g);
    g = build(t, false, false, &small, 1);
    cr_expect(!dump_has(g, "rt_parallel_for"), "an 8x8x8 product is one direct call");
    ir_graph_destroy(g);
  }
}

/* Row chunks of one matrix on a 2-thread pool, against the serial
 * reference: a transposed a is stored [K, M], so a chunk's rows are a
 * column offset there; odd M splits unevenly. */
Test(jit_matmul, row_chunks_match_the_reference) {
  rt_pool *pool = rt_pool_create(2);
  cr_assert_not_null(pool);
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    mm_case cs[] = {rank2(ta, tb, 4097, 24, 40), rank2(ta, tb, 1001, 64, 33)};
    for (int dt = 0; dt < 2; dt++) {
      ir_graph *g = build(dt ? IR_F64 : IR_F32, ta, tb, cs, 2);
      cr_assert(dump_has(g, "rt_parallel_for"));
      run_and_compare(g, pool);
      ir_graph_destroy(g);
    }
  }
  rt_pool_destroy(pool);
}
