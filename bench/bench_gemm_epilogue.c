/* The GEMM epilogue fold on one linear layer with a scale and a residual:
 * out = (x @ w) * 0.5 + r, x [M, K], w [K, N], r [M, N] (default
 * [4096x512] x [512x512]), on the JIT. The unfolded graph runs matmul, mul
 * and add as three kernels; the folded one (pass_fold_gemm) is one gemm
 * with alpha 0.5, beta 1 and r copied into the result. Both compiled in
 * this process without other passes; prints the median run time of each.
 * Usage: bench_gemm_epilogue [--m N] [--k N] [--n N] [--threads N] [--reps N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "ir/ir.h"
#include "passes/pipeline.h"

static int int_flag(int argc, char **argv, const char *name, int def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
  return def;
}

static void die(const char *what, const char *msg) {
  fprintf(stderr, "bench_gemm_epilogue: %s: %s\n", what, msg ? msg : "?");
  exit(1);
}

static kl_tensor *filled(int64_t rows, int64_t cols, int salt) {
  int64_t dims[2] = {rows, cols};
  kl_tensor *t = kl_tensor_create(KL_TENSOR_F32, 2, dims);
  if (!t) die("tensor", "out of memory");
  float *p = kl_tensor_data(t);
  for (int64_t i = 0; i < rows * cols; i++)
    p[i] = (float)(((i + salt) * 7919) % 1000) / 500.0f - 1.0f;
  return t;
}

/* Median ms of reps runs of g after three warm-up runs. */
static double time_runs(const ir_graph *g, int threads, int reps, kl_tensor **in, kl_tensor *out) {
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .threads = threads, .no_cache = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &co, &err);
  if (!p) die("compile", err);
  double *t = malloc(sizeof(double) * (size_t)reps);
  if (!t) die("timing", "out of memory");
  for (int i = 0; i < 3 + reps; i++) {
    double t0 = now_s();
    const char *msg = kl_run_into(p, in, 3, &out, 1);
    if (msg) die("run", msg);
    if (i >= 3) t[i - 3] = (now_s() - t0) * 1e3;
  }
  double m = median(t, reps);
  free(t);
  kl_program_destroy(p);
  return m;
}

static int count(const ir_graph *g, ir_op op) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++)
    n += g->nodes[i]->op == op;
  return n;
}

int main(int argc, char **argv) {
  int m = int_flag(argc, argv, "--m", 4096), k = int_flag(argc, argv, "--k", 512);
  int n = int_flag(argc, argv, "--n", 512), threads = int_flag(argc, argv, "--threads", 0);
  int reps = int_flag(argc, argv, "--reps", 15);
  if (m < 1 || k < 1 || n < 1 || reps < 1) die("usage", "sizes and --reps must be positive");
  char text[1024];
  snprintf(text, sizeof text,
           "graph @layer(%%x: f32[%d,%d], %%w: f32[%d,%d], %%r: f32[%d,%d]) {\n"
           "  %%m = matmul(%%x, %%w) : f32[%d,%d]\n"
           "  %%h = const(0.5) : f32[]\n"
           "  %%s = mul(%%m, %%h) : f32[%d,%d]\n"
           "  %%o = add(%%s, %%r) : f32[%d,%d]\n"
           "  return %%o\n}\n",
           m, k, k, n, m, n, m, n, m, n, m, n);
  ir_diag d = {0};
  ir_graph *plain = ir_parse(text, strlen(text), "bench.kir", &d);
  if (!plain) die("parse", d.msg);
  ir_graph *folded = ir_graph_clone(plain, &d);
  bool changed = false;
  if (!folded || !pass_fold_gemm(&folded, NULL, &changed, &d)) die("fold", d.msg);
  if (count(folded, IR_OP_GEMM) != 1 || count(folded, IR_OP_MATMUL) != 0)
    die("fold", "the layer did not become one gemm");
  kl_tensor *in[3] = {filled(m, k, 1), filled(k, n, 2), filled(m, n, 3)};
  kl_tensor *out = filled(m, n, 4);
  double t_plain = time_runs(plain, threads, reps, in, out);
  double t_folded = time_runs(folded, threads, reps, in, out);
  printf("gemm epilogue [%dx%d] x [%dx%d], scale + residual, %d reps (medians):\n", m, k, k, n,
         reps);
  printf("  unfolded (matmul, mul, add): %8.3f ms\n", t_plain);
  printf("  folded (one gemm):           %8.3f ms\n", t_folded);
  printf("  speedup: %.2fx\n", t_plain / t_folded);
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(in[i]);
  kl_tensor_destroy(out);
  ir_graph_destroy(plain);
  ir_graph_destroy(folded);
  return 0;
}
