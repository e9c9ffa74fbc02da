/* JIT backend benchmark, all in one process: elementwise add of 16M floats
 * through the public API against memcpy of the same bytes (bandwidth),
 * matmul through kiln against a direct cblas_sgemm (one GEMM and a batch
 * of them), and compiling 500-node graphs without cache and on a cache
 * hit. kiln and its baseline run alternately and each reports the median
 * of its runs, so drift on a shared machine hits both alike.
 * Usage: bench_jit [--reps N] [--bmm B M K N (that batched matmul only)]. */
#define _XOPEN_SOURCE 700
#include <cblas.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "ir/ir.h"

static int reps = 11;

static void fill(float *p, int64_t n) {
  uint32_t s = 12345;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
  }
}

static kl_program *compile_threads(const ir_graph *g, bool no_cache, const char *cache_dir,
                                   int threads) {
  kl_compile_opts o = {
      .backend = KL_BACKEND_JIT, .no_cache = no_cache, .cache_dir = cache_dir, .threads = threads};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &o, &err);
  if (!p) {
    fprintf(stderr, "bench_jit: kl_compile failed: %s\n", err ? err : "(no message)");
    free(err);
  }
  return p;
}

static kl_program *compile(const ir_graph *g, bool no_cache, const char *cache_dir) {
  return compile_threads(g, no_cache, cache_dir, 0);
}

/* One measured thing: a function and its context. */
typedef struct timed {
  void (*run)(void *ctx);
  void *ctx;
} timed;

/* Runs a and b alternately `reps` times after a warm-up of each; medians in
 * seconds. */
/* Alternates a and b in blocks of BENCH_BLOCK runs (bench_util.h); medians
 * over every run of each. */
static void time_pair(timed a, timed b, double *ma, double *mb) {
  int n = (reps + BENCH_BLOCK - 1) / BENCH_BLOCK * BENCH_BLOCK;
  double *ta = malloc((size_t)n * sizeof *ta), *tb = malloc((size_t)n * sizeof *tb);
  a.run(a.ctx);
  b.run(b.ctx);
  for (int r0 = 0; r0 < n; r0 += BENCH_BLOCK) {
    timed side[2] = {a, b};
    double *out[2] = {ta, tb};
    for (int s = 0; s < 2; s++) {
      bench_pause();
      for (int r = r0; r < r0 + BENCH_BLOCK; r++) {
        double t0 = now_s();
        side[s].run(side[s].ctx);
        out[s][r] = now_s() - t0;
      }
    }
  }
  *ma = median(ta, n);
  *mb = median(tb, n);
  free(ta);
  free(tb);
}

typedef struct kiln_run_ctx {
  kl_program *p;
  kl_tensor **in;
  kl_tensor *out;
} kiln_run_ctx;

static void run_kiln(void *ctx) {
  kiln_run_ctx *k = ctx;
  const char *msg = kl_run_into(k->p, k->in, 2, &k->out, 1);
  if (msg) {
    fprintf(stderr, "bench_jit: kl_run_into failed: %s\n", msg);
    exit(1);
  }
}

/* A graph of two arguments and one binary op or matmul. */
static ir_graph *two_arg_graph(ir_op op, int64_t m, int64_t k, int64_t n) {
  ir_graph *g = ir_graph_create("bench");
  ir_diag d = {0};
  ir_type at =
      op == IR_OP_MATMUL ? ir_type_make(IR_F32, 2, (int64_t[]){m, k}) : ir_type_make(IR_F32, 1, &m);
  ir_type bt = op == IR_OP_MATMUL ? ir_type_make(IR_F32, 2, (int64_t[]){k, n}) : at;
  int in[2] = {ir_add_arg(g, "a", &at, &d), ir_add_arg(g, "b", &bt, &d)};
  int r = ir_add_node(g, op, 2, in, NULL, NULL, &d);
  if (r < 0) {
    fprintf(stderr, "bench_jit: %s\n", d.msg);
    exit(1);
  }
  ir_set_returns(g, 1, &r);
  return g;
}

typedef struct copy_ctx {
  void *dst;
  const void *src;
  size_t bytes;
} copy_ctx;

static void run_memcpy(void *ctx) {
  copy_ctx *c = ctx;
  memcpy(c->dst, c->src, c->bytes);
}

/* kiln's add on `threads` threads (0: all cores) against a single-threaded
 * memcpy. */
static void bench_add_threads(int threads) {
  const int64_t n = 16 << 20;
  ir_graph *g = two_arg_graph(IR_OP_ADD, n, 0, 0);
  kl_program *p = compile_threads(g, true, NULL, threads);
  ir_graph_destroy(g);
  if (!p) return;
  kl_tensor *in[2] = {kl_tensor_create(KL_TENSOR_F32, 1, &n),
                      kl_tensor_create(KL_TENSOR_F32, 1, &n)};
  kl_tensor *out = kl_tensor_create(KL_TENSOR_F32, 1, &n);
  kl_tensor *dst = kl_tensor_create(KL_TENSOR_F32, 1, &n);
  fill(kl_tensor_data(in[0]), n);
  fill(kl_tensor_data(in[1]), n);
  double bytes = (double)n * sizeof(float), tk, tm;
  kiln_run_ctx kc = {p, in, out};
  copy_ctx cc = {kl_tensor_data(dst), kl_tensor_data(in[0]), (size_t)bytes};
  time_pair((timed){run_kiln, &kc}, (timed){run_memcpy, &cc}, &tk, &tm);
  /* add reads two arrays and writes one; memcpy reads one and writes one */
  double gk = 3 * bytes / tk / 1e9, gm = 2 * bytes / tm / 1e9;
  char what[32];
  snprintf(what, sizeof what, threads ? "%d thread" : "all cores", threads);
  printf("add 16M f32 (kiln, %-9s) %8.3f ms  %6.2f GB/s\n", what, tk * 1e3, gk);
  printf("memcpy 64 MB (1 thread)      %8.3f ms  %6.2f GB/s\n", tm * 1e3, gm);
  printf("  add bandwidth / memcpy bandwidth = %.2f (target >= 0.80)\n", gk / gm);
  kl_program_destroy(p);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
  kl_tensor_destroy(out);
  kl_tensor_destroy(dst);
}

static void bench_add(void) {
  bench_add_threads(1);
  bench_add_threads(0);
}

/* The baselines' OpenBLAS threads, set before every baseline call: a kiln
 * run leaves OpenBLAS on one thread (its pool owns the cores), which would
 * otherwise weaken the baseline that follows it. */
typedef struct gemm_ctx {
  int m, n, k, threads;
  const float *a, *b;
  float *c;
} gemm_ctx;

static void run_cblas(void *ctx) {
  gemm_ctx *g = ctx;
  openblas_set_num_threads(g->threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b,
              g->n, 0.0f, g->c, g->n);
}

static void bench_matmul(int64_t m, int64_t k, int64_t n) {
  ir_graph *g = two_arg_graph(IR_OP_MATMUL, m, k, n);
  kl_program *p = compile(g, true, NULL);
  ir_graph_destroy(g);
  if (!p) return;
  kl_tensor *in[2] = {kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){m, k}),
                      kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){k, n})};
  kl_tensor *out = kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){m, n});
  kl_tensor *out2 = kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){m, n});
  fill(kl_tensor_data(in[0]), m * k);
  fill(kl_tensor_data(in[1]), k * n);
  double flop = 2.0 * (double)m * (double)n * (double)k, tk, tc;
  kiln_run_ctx kc = {p, in, out};
  gemm_ctx gc = {(int)m,
                 (int)n,
                 (int)k,
                 (int)sysconf(_SC_NPROCESSORS_ONLN), /* kiln's threads 0: every core */
                 kl_tensor_data(in[0]),
                 kl_tensor_data(in[1]),
                 kl_tensor_data(out2)};
  time_pair((timed){run_kiln, &kc}, (timed){run_cblas, &gc}, &tk, &tc);
  printf("matmul %4lldx%4lldx%4lld (kiln)  %8.3f ms  %6.1f GFLOP/s\n", (long long)m, (long long)k,
         (long long)n, tk * 1e3, flop / tk / 1e9);
  printf("matmul %4lldx%4lldx%4lld (cblas) %8.3f ms  %6.1f GFLOP/s\n", (long long)m, (long long)k,
         (long long)n, tc * 1e3, flop / tc / 1e9);
  printf("  kiln time / cblas time = %.3f (target <= 1.05)\n", tk / tc);
  kl_program_destroy(p);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
  kl_tensor_destroy(out);
  kl_tensor_destroy(out2);
}

typedef struct batch_gemm_ctx {
  int batch, m, n, k, threads;
  const float *a, *b;
  float *c;
} batch_gemm_ctx;

static void run_cblas_batch(void *ctx) {
  batch_gemm_ctx *g = ctx;
  openblas_set_num_threads(g->threads);
  for (int i = 0; i < g->batch; i++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m, g->n, g->k, 1.0f,
                g->a + (size_t)i * g->m * g->k, g->k, g->b + (size_t)i * g->k * g->n, g->n, 0.0f,
                g->c + (size_t)i * g->m * g->n, g->n);
}

/* [B,M,K] @ [B,K,N] through kiln on 2 threads (the batch split over its
 * pool, single-threaded GEMMs) against a serial loop of cblas_sgemm on
 * OpenBLAS's 2 threads. */
static void bench_batched_matmul(int64_t batch, int64_t m, int64_t k, int64_t n) {
  ir_graph *g = ir_graph_create("bench");
  ir_diag d = {0};
  ir_type at = ir_type_make(IR_F32, 3, (int64_t[]){batch, m, k});
  ir_type bt = ir_type_make(IR_F32, 3, (int64_t[]){batch, k, n});
  int in[2] = {ir_add_arg(g, "a", &at, &d), ir_add_arg(g, "b", &bt, &d)};
  int r = ir_add_node(g, IR_OP_MATMUL, 2, in, NULL, NULL, &d);
  if (r < 0) {
    fprintf(stderr, "bench_jit: %s\n", d.msg);
    exit(1);
  }
  ir_set_returns(g, 1, &r);
  kl_program *p = compile_threads(g, true, NULL, 2);
  ir_graph_destroy(g);
  if (!p) return;
  kl_tensor *ins[2] = {kl_tensor_create(KL_TENSOR_F32, 3, (int64_t[]){batch, m, k}),
                       kl_tensor_create(KL_TENSOR_F32, 3, (int64_t[]){batch, k, n})};
  kl_tensor *out = kl_tensor_create(KL_TENSOR_F32, 3, (int64_t[]){batch, m, n});
  kl_tensor *out2 = kl_tensor_create(KL_TENSOR_F32, 3, (int64_t[]){batch, m, n});
  fill(kl_tensor_data(ins[0]), batch * m * k);
  fill(kl_tensor_data(ins[1]), batch * k * n);
  double flop = 2.0 * (double)batch * (double)m * (double)n * (double)k, tk, tc;
  kiln_run_ctx kc = {p, ins, out};
  batch_gemm_ctx gc = {(int)batch,
                       (int)m,
                       (int)n,
                       (int)k,
                       2,
                       kl_tensor_data(ins[0]),
                       kl_tensor_data(ins[1]),
                       kl_tensor_data(out2)};
  int saved = reps;
  if (reps < 21) reps = 21;
  time_pair((timed){run_kiln, &kc}, (timed){run_cblas_batch, &gc}, &tk, &tc);
  reps = saved;
  printf("bmm [%3lld,%4lld,%3lld]@[%3lld,%3lld,%4lld] (kiln, 2 thr)  %8.3f ms  %6.1f GFLOP/s\n",
         (long long)batch, (long long)m, (long long)k, (long long)batch, (long long)k, (long long)n,
         tk * 1e3, flop / tk / 1e9);
  printf("bmm [%3lld,%4lld,%3lld]@[%3lld,%3lld,%4lld] (cblas loop) %8.3f ms  %6.1f GFLOP/s\n",
         (long long)batch, (long long)m, (long long)k, (long long)batch, (long long)k, (long long)n,
         tc * 1e3, flop / tc / 1e9);
  printf("  kiln time / cblas loop time = %.3f\n", tk / tc);
  kl_program_destroy(p);
  kl_tensor_destroy(ins[0]);
  kl_tensor_destroy(ins[1]);
  kl_tensor_destroy(out);
  kl_tensor_destroy(out2);
}

/* 500 nodes: one argument, then a chain cycling through add, mul, tanh and
 * sub so that no pass can fold it away. */
static ir_graph *chain_graph(int nnodes) {
  ir_graph *g = ir_graph_create("chain");
  ir_diag d = {0};
  ir_type t = ir_type_make(IR_F32, 2, (int64_t[]){64, 64});
  int x = ir_add_arg(g, "x", &t, &d), h = x;
  static const ir_op ops[] = {IR_OP_ADD, IR_OP_MUL, IR_OP_TANH, IR_OP_SUB};
  for (int i = 0; g->nnodes < nnodes; i++) {
    ir_op op = ops[i % 4];
    int in[2] = {h, x};
    h = ir_add_node(g, op, op == IR_OP_TANH ? 1 : 2, in, NULL, NULL, &d);
    if (h < 0) {
      fprintf(stderr, "bench_jit: %s\n", d.msg);
      exit(1);
    }
  }
  ir_set_returns(g, 1, &h);
  return g;
}

/* 501 nodes none of whose kernels can be shared: slices of an argument to
 * 250 different lengths, each followed by a tanh of its own shape. The
 * worst case for compile time. */
static ir_graph *distinct_graph(void) {
  ir_graph *g = ir_graph_create("distinct");
  ir_diag d = {0};
  ir_type t = ir_type_make(IR_F32, 1, (int64_t[]){1024});
  int x = ir_add_arg(g, "x", &t, &d), h = x;
  for (int i = 0; i < 250; i++) {
    ir_attr at[2];
    ir_attrs_default(g, IR_OP_SLICE, at);
    int64_t starts[] = {0}, ends[] = {1024 - i};
    at[0].ints = (ir_ints){1, starts};
    at[1].ints = (ir_ints){1, ends};
    int s = ir_add_node(g, IR_OP_SLICE, 1, &x, at, NULL, &d);
    h = s < 0 ? -1 : ir_add_node(g, IR_OP_TANH, 1, &s, NULL, NULL, &d);
    if (h < 0) {
      fprintf(stderr, "bench_jit: %s\n", d.msg);
      exit(1);
    }
  }
  ir_set_returns(g, 1, &h);
  return g;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* Median milliseconds of compiling g `n` times; -1 if a compile fails.
 * *hits counts the compiles the disk cache answered. */
static double time_compiles(const ir_graph *g, int n, bool no_cache, const char *dir, int *hits) {
  double *t = malloc((size_t)n * sizeof *t);
  *hits = 0;
  for (int r = 0; r < n; r++) {
    double t0 = now_s();
    kl_program *p = compile(g, no_cache, dir);
    t[r] = now_s() - t0;
    if (!p) {
      free(t);
      return -1;
    }
    *hits += kl_program_stats(p)->cache_hit;
    kl_program_destroy(p);
  }
  double m = median(t, n);
  free(t);
  return m * 1e3;
}

static void bench_compile_graph(const char *what, ir_graph *g) {
  int hits;
  /* A cold compile can take seconds: fewer repetitions. */
  double cold = time_compiles(g, reps < 5 ? reps : 5, true, NULL, &hits);
  if (cold >= 0) printf("compile %s, no cache %8.1f ms (target < 1000)\n", what, cold);
  char dir[] = "/tmp/kiln-bench-XXXXXX";
  if (cold >= 0 && mkdtemp(dir)) {
    double warm = time_compiles(g, 1, false, dir, &hits); /* fills the cache */
    if (warm >= 0) warm = time_compiles(g, reps, false, dir, &hits);
    if (warm >= 0)
      printf("compile %s, cache hit %8.1f ms (target < 50; %d/%d hits)\n", what, warm, hits, reps);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  ir_graph_destroy(g);
}

static void bench_compile(void) {
  bench_compile_graph("500-node chain (4 distinct kernels)", chain_graph(500));
  bench_compile_graph("501 nodes, 500 distinct kernels   ", distinct_graph());
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--bmm") == 0 && i + 4 < argc) {
      /* one batched matmul [B,M,K] @ [B,K,N] only */
      int64_t v[4];
      for (int j = 0; j < 4; j++)
        v[j] = atoll(argv[++i]);
      bench_batched_matmul(v[0], v[1], v[2], v[3]);
      return 0;
    } else {
      fprintf(stderr, "usage: %s [--reps N] [--bmm B M K N]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  printf("bench_jit: medians of %d runs\n", reps);
  bench_add();
  bench_matmul(1024, 1024, 1024);
  bench_matmul(1152, 256, 256);
  bench_batched_matmul(64, 128, 64, 128);
  bench_batched_matmul(16, 512, 64, 512);
  bench_compile();
  return 0;
}
