/* Batched matmul on the JIT backend (one GEMM per batch item) against the
 * reference interpreter: broadcast batch dims, transposes, odd sizes, f32
 * and f64, on 1 and 2 threads; and bit for bit against a serial loop of
 * single-threaded cblas_sgemm calls, which is what the thread count must
 * not change for GEMMs too small for OpenBLAS to thread. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "ir/ir.h"

typedef struct mm_case {
  int arank, brank;
  int64_t adims[IR_MAX_RANK], bdims[IR_MAX_RANK];
} mm_case;

/* [batch.., m, k] x [batch.., k, n] with the last two dims of each operand
 * stored as the transposes say. */
static mm_case batched(bool ta, bool tb, int abr, const int64_t *ab, int bbr, const int64_t *bb,
                       int64_t m, int64_t n, int64_t k) {
  mm_case c = {.arank = abr + 2, .brank = bbr + 2};
  for (int i = 0; i < abr; i++)
    c.adims[i] = ab[i];
  for (int i = 0; i < bbr; i++)
    c.bdims[i] = bb[i];
  c.adims[abr] = ta ? k : m;
  c.adims[abr + 1] = ta ? m : k;
  c.bdims[bbr] = tb ? n : k;
  c.bdims[bbr + 1] = tb ? k : n;
  return c;
}

/* Per case two arguments and one matmul, all results returned. */
static ir_graph *build(ir_dtype dt, bool ta, bool tb, const mm_case *cs, int ncases) {
  ir_graph *g = ir_graph_create("bmm");
  cr_assert_not_null(g);
  ir_diag d = {0};
  int rets[16];
  cr_assert(ncases <= 16);
  for (int i = 0; i < ncases; i++) {
    ir_type at = ir_type_make(dt, cs[i].arank, cs[i].adims);
    ir_type bt = ir_type_make(dt, cs[i].brank, cs[i].bdims);
    char an[16], bn[16];
    snprintf(an, sizeof an, "a%d", i);
    snprintf(bn, sizeof bn, "b%d", i);
    int in[2] = {ir_add_arg(g, an, &at, &d), ir_add_arg(g, bn, &bt, &d)};
    cr_assert(in[0] >= 0 && in[1] >= 0, "%s", d.msg);
    ir_attr attrs[IR_MAX_ATTRS];
    ir_attrs_default(g, IR_OP_MATMUL, attrs);
    attrs[0].b = ta;
    attrs[1].b = tb;
    rets[i] = ir_add_node(g, IR_OP_MATMUL, 2, in, attrs, NULL, &d);
    cr_assert(rets[i] >= 0, "case %d: %s", i, d.msg);
  }
  ir_set_returns(g, ncases, rets);
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  return g;
}

/* Small batched cases: broadcast on either side, unit dims, odd sizes. */
static int small_cases(bool ta, bool tb, mm_case *cs) {
  static const int64_t b3[] = {3}, b2x1[] = {2, 1}, b1x5[] = {1, 5}, b4x3[] = {4, 3}, b1[] = {1},
                       b7[] = {7}, b2x3x2[] = {2, 3, 2}, b3x1[] = {3, 1};
  int n = 0;
  cs[n++] = batched(ta, tb, 1, b3, 1, b3, 5, 7, 9);         /* plain batch */
  cs[n++] = batched(ta, tb, 2, b2x1, 2, b1x5, 3, 6, 4);     /* [2,1] x [1,5] -> [2,5] */
  cs[n++] = batched(ta, tb, 0, NULL, 2, b4x3, 17, 1, 13);   /* a shared by every item */
  cs[n++] = batched(ta, tb, 2, b4x3, 1, b1, 2, 11, 3);      /* b's unit batch dim */
  cs[n++] = batched(ta, tb, 1, b7, 1, b7, 1, 1, 1);         /* 1x1 matrices */
  cs[n++] = batched(ta, tb, 3, b2x3x2, 2, b3x1, 10, 10, 8); /* rank 3 batch, inner broadcast */
  cs[n++] = batched(ta, tb, 1, b7, 0, NULL, 33, 19, 65);    /* b shared (folds unless ta) */
  return n;
}

static kl_tensor_dtype kl_dtype(ir_dtype dt) {
  return dt == IR_F64 ? KL_TENSOR_F64 : KL_TENSOR_F32;
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double next_uniform(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

/* One random tensor per graph argument. */
static kl_tensor **make_inputs(const ir_graph *g, int *nin) {
  int n = ir_graph_args(g, NULL);
  kl_tensor **in = calloc((size_t)n, sizeof *in);
  cr_assert_not_null(in);
  for (int i = 0, k = 0; i < g->nnodes; i++) {
    const ir_node *a = g->nodes[i];
    if (a->op != IR_OP_ARG) continue;
    in[k] = kl_tensor_create(kl_dtype(a->type.dtype), a->type.rank, a->type.dims);
    cr_assert_not_null(in[k]);
    void *p = kl_tensor_data(in[k]);
    for (int64_t e = 0; e < kl_tensor_numel(in[k]); e++) {
      if (a->type.dtype == IR_F64)
        ((double *)p)[e] = next_uniform();
      else
        ((float *)p)[e] = (float)next_uniform();
    }
    k++;
  }
  *nin = n;
  return in;
}

/* Compiles g for the backend (JIT: on `threads` threads, with guard bytes)
 * and runs it; outs receives g->nrets owned tensors. */
static void run_backend(const ir_graph *g, kl_backend be, int threads, kl_tensor **in, int nin,
                        kl_tensor **outs) {
  kl_compile_opts o = {.backend = be, .threads = threads, .no_cache = true, .guard_bytes = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &o, &err);
  cr_assert_not_null(p, "compile: %s", err ? err : "?");
  const char *msg = kl_run(p, in, nin, outs, g->nrets);
  cr_assert_null(msg, "run: %s", msg);
  kl_program_destroy(p);
}

static void free_all(kl_tensor **t, int n) {
  for (int i = 0; i < n; i++)
    kl_tensor_destroy(t[i]);
}

/* Against the reference interpreter on 1 and 2 threads, and the two
 * schedules bit for bit against each other. */
static void check_against_reference(ir_dtype dt, bool ta, bool tb) {
  mm_case cs[16];
  int nc = small_cases(ta, tb, cs);
  ir_graph *g = build(dt, ta, tb, cs, nc);
  int nin;
  kl_tensor **in = make_inputs(g, &nin);
  kl_tensor *ref[16], *one[16], *two[16];
  run_backend(g, KL_BACKEND_REF, 0, in, nin, ref);
  run_backend(g, KL_BACKEND_JIT, 1, in, nin, one);
  run_backend(g, KL_BACKEND_JIT, 2, in, nin, two);
  for (int r = 0; r < nc; r++) {
    const ir_node *n = g->nodes[g->rets[r]];
    int64_t k = cs[r].adims[cs[r].arank - (ta ? 2 : 1)];
    double tol = (dt == IR_F32 ? 2e-6 : 1e-13) * (double)(k + 1);
    size_t bytes = (size_t)kl_tensor_numel(ref[r]) * ir_dtype_size(dt);
    for (int64_t e = 0; e < kl_tensor_numel(ref[r]); e++) {
      double want, got;
      if (dt == IR_F64) {
        want = ((double *)kl_tensor_data(ref[r]))[e];
        got = ((double *)kl_tensor_data(one[r]))[e];
      } else {
        want = ((float *)kl_tensor_data(ref[r]))[e];
        got = ((float *)kl_tensor_data(one[r]))[e];
      }
      cr_assert(fabs(got - want) <= tol, "case %d (node %d) ta=%d tb=%d elem %lld: %.9g vs %.9g", r,
                n->id, ta, tb, (long long)e, got, want);
    }
    /* The per-item GEMMs here are below OpenBLAS's own threading
     * threshold, so 2 threads must give the same bits. A folded batch is
     * one larger GEMM that OpenBLAS may thread, and its threaded sgemm
     * need not match the serial one bit for bit (case 6 does not). */
    int64_t bnum = 1;
    for (int i = 0; i < cs[r].brank - 2; i++)
      bnum *= cs[r].bdims[i];
    bool folds = !ta && bnum == 1;
    cr_assert(folds || memcmp(kl_tensor_data(one[r]), kl_tensor_data(two[r]), bytes) == 0,
              "case %d ta=%d tb=%d: 2 threads differ from 1 thread", r, ta, tb);
  }
  free_all(ref, nc);
  free_all(one, nc);
  free_all(two, nc);
  free_all(in, nin);
  free(in);
  ir_graph_destroy(g);
}

Test(jit_matmul_batch, reference_f32) {
  for (int t = 0; t < 4; t++)
    check_against_reference(IR_F32, t & 1, t & 2);
}

Test(jit_matmul_batch, reference_f64) {
  for (int t = 0; t < 4; t++)
    check_against_reference(IR_F64, t & 1, t & 2);
}

/* kiln on 2 threads against the serial schedule written out here: one
 * cblas_sgemm per item on one OpenBLAS thread, in item order. */
Test(jit_matmul_batch, bit_identical_to_serial_loop) {
  const int B = 12, M = 24, K = 40, N = 16;
  static const int64_t bb[] = {12};
  mm_case c = batched(false, true, 1, bb, 1, bb, M, N, K);
  ir_graph *g = build(IR_F32, false, true, &c, 1);
  int nin;
  kl_tensor **in = make_inputs(g, &nin);
  kl_tensor *out;
  run_backend(g, KL_BACKEND_JIT, 2, in, nin, &out);
  float *want = calloc((size_t)B * M * N, sizeof *want);
  cr_assert_not_null(want);
  const float *a = kl_tensor_data(in[0]), *b = kl_tensor_data(in[1]);
  openblas_set_num_threads(1);
  for (int i = 0; i < B; i++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a + (size_t)i * M * K, K,
                b + (size_t)i * N * K, K, 0.0f, want + (size_t)i * M * N, N);
  cr_assert(memcmp(kl_tensor_data(out), want, (size_t)B * M * N * sizeof *want) == 0);
  free(want);
  kl_tensor_destroy(out);
  free_all(in, nin);
  free(in);
  ir_graph_destroy(g);
}
