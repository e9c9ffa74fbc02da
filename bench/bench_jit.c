/* JIT backend benchmark, all in one process, medians of repeated runs:
 * elementwise add of 16M floats through the public API against memcpy of
 * the same bytes (memory bandwidth), matmul through kiln against a direct
 * cblas_sgemm (the lowering's overhead), and compiling a 500-node graph
 * without cache and on a cache hit. Usage: bench_jit [--reps N]. */
#define _XOPEN_SOURCE 700
#include <cblas.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/kiln_run.h"
#include "ir/ir.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int reps = 11;

static void fill(float *p, int64_t n) {
  uint32_t s = 12345;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
  }
}

static kl_program *compile(const ir_graph *g, bool no_cache, const char *cache_dir) {
  kl_compile_opts o = {.backend = KL_BACKEND_JIT, .no_cache = no_cache, .cache_dir = cache_dir};
  char *err = NULL;
  kl_program *p = kl_compile(g, &o, &err);
  if (!p) {
    fprintf(stderr, "bench_jit: kl_compile failed: %s\n", err ? err : "(no message)");
    free(err);
  }
  return p;
}

/* Median seconds of kl_run_into over `reps` runs after one warm-up. */
static double time_runs(kl_program *p, kl_tensor *const *in, int nin, kl_tensor *out) {
  const char *msg = kl_run_into(p, in, nin, &out, 1);
  if (msg) {
    fprintf(stderr, "bench_jit: kl_run_into failed: %s\n", msg);
    return -1;
  }
  double *t = malloc((size_t)reps * sizeof *t);
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    kl_run_into(p, in, nin, &out, 1);
    t[r] = now_s() - t0;
  }
  double m = median(t, reps);
  free(t);
  return m;
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

static void bench_add(void) {
  const int64_t n = 16 << 20;
  ir_graph *g = two_arg_graph(IR_OP_ADD, n, 0, 0);
  kl_program *p = compile(g, true, NULL);
  ir_graph_destroy(g);
  kl_tensor *in[2] = {kl_tensor_create(KL_TENSOR_F32, 1, &n),
                      kl_tensor_create(KL_TENSOR_F32, 1, &n)};
  kl_tensor *out = kl_tensor_create(KL_TENSOR_F32, 1, &n);
  fill(kl_tensor_data(in[0]), n);
  fill(kl_tensor_data(in[1]), n);
  double bytes = (double)n * sizeof(float);
  if (p) {
    double t = time_runs(p, in, 2, out);
    if (t > 0)
      printf("add 16M f32 (kiln)      %8.3f ms  %7.2f GB/s\n", t * 1e3, 3 * bytes / t / 1e9);
    kl_program_destroy(p);
  }
  double *t = malloc((size_t)reps * sizeof *t);
  memcpy(kl_tensor_data(out), kl_tensor_data(in[0]), (size_t)bytes);
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    memcpy(kl_tensor_data(out), kl_tensor_data(in[r % 2]), (size_t)bytes);
    t[r] = now_s() - t0;
  }
  double tm = median(t, reps);
  printf("memcpy 64 MB            %8.3f ms  %7.2f GB/s\n", tm * 1e3, 2 * bytes / tm / 1e9);
  free(t);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
  kl_tensor_destroy(out);
}

static void bench_matmul(int64_t m, int64_t k, int64_t n) {
  ir_graph *g = two_arg_graph(IR_OP_MATMUL, m, k, n);
  kl_program *p = compile(g, true, NULL);
  ir_graph_destroy(g);
  kl_tensor *in[2] = {kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){m, k}),
                      kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){k, n})};
  kl_tensor *out = kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){m, n});
  fill(kl_tensor_data(in[0]), m * k);
  fill(kl_tensor_data(in[1]), k * n);
  double flop = 2.0 * (double)m * (double)n * (double)k;
  if (p) {
    double t = time_runs(p, in, 2, out);
    if (t > 0)
      printf("matmul %4lldx%4lldx%4lld (kiln)   %8.3f ms  %7.1f GFLOP/s\n", (long long)m,
             (long long)k, (long long)n, t * 1e3, flop / t / 1e9);
    kl_program_destroy(p);
  }
  const float *a = kl_tensor_data(in[0]), *b = kl_tensor_data(in[1]);
  float *c = kl_tensor_data(out);
  double *t = malloc((size_t)reps * sizeof *t);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b,
              (int)n, 0.0f, c, (int)n);
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k,
                b, (int)n, 0.0f, c, (int)n);
    t[r] = now_s() - t0;
  }
  double tm = median(t, reps);
  printf("matmul %4lldx%4lldx%4lld (cblas)  %8.3f ms  %7.1f GFLOP/s\n", (long long)m, (long long)k,
         (long long)n, tm * 1e3, flop / tm / 1e9);
  free(t);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
  kl_tensor_destroy(out);
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

static void bench_compile(void) {
  ir_graph *g = chain_graph(500);
  int hits;
  /* A cold compile takes seconds: fewer repetitions. */
  double cold = time_compiles(g, reps < 5 ? reps : 5, true, NULL, &hits);
  if (cold >= 0) printf("compile 500 nodes, no cache  %8.1f ms\n", cold);
  char dir[] = "/tmp/kiln-bench-XXXXXX";
  if (cold >= 0 && mkdtemp(dir)) {
    double warm = time_compiles(g, 1, false, dir, &hits); /* fills the cache */
    if (warm >= 0) warm = time_compiles(g, reps, false, dir, &hits);
    if (warm >= 0)
      printf("compile 500 nodes, cache hit %8.1f ms  (%d/%d hits)\n", warm, hits, reps);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  ir_graph_destroy(g);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: %s [--reps N]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  printf("bench_jit: medians of %d runs\n", reps);
  bench_add();
  bench_matmul(1024, 1024, 1024);
  bench_matmul(1152, 256, 256);
  bench_compile();
  return 0;
}
