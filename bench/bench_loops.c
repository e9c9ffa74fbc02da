/* What loop fusion buys: (1) bias add + GELU + dropout + residual add on
 * [64*64, 512] f32 as one loop region against four kernels, in training
 * (dropout draws its mask) and eval mode (dropout is a copy), and a
 * memory-bound chain of the same shape (bias, relu, scale, residual); (2) the
 * Transformer's JIT training step (registry defaults) with fuse-loops
 * against the pipeline stopped just before it. Both variants run in one
 * process, alternating, and report medians. Memory planning is off in
 * both steps of (2): stopping before fuse-loops also skips it, so the
 * difference is the pass alone.
 *   bench_loops [--reps 20] [--warmup 3] [--threads 2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "bench/bench_tf.h"
#include "bench/bench_util.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "models/transformer.h"
#include "passes/pipeline.h"

static int int_flag(int argc, char **argv, const char *name, int def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
  return def;
}

static const char *micro_text =
    "graph @ffn_tail(%x: f32[4096,512], %b: f32[512], %r: f32[4096,512]) {\n"
    "  %h = add(%x, %b) : f32[4096,512]\n"
    "  %g = gelu(%h) : f32[4096,512]\n"
    "  %d = dropout(%g) {p = 0.1} : f32[4096,512]\n"
    "  %y = add(%d, %r) : f32[4096,512]\n"
    "  return %y\n}\n";

/* The same shapes without the compute-heavy ops (erf, the Philox mask):
 * what fusion saves when the chain is bound by memory traffic. */
static const char *memory_text =
    "graph @ffn_tail(%x: f32[4096,512], %b: f32[512], %r: f32[4096,512]) {\n"
    "  %h = add(%x, %b) : f32[4096,512]\n"
    "  %g = relu(%h) : f32[4096,512]\n"
    "  %c = const(0.5) : f32[]\n"
    "  %d = mul(%g, %c) : f32[4096,512]\n"
    "  %y = add(%d, %r) : f32[4096,512]\n"
    "  return %y\n}\n";

static int micro(int reps, int warmup, int threads, bool training, const char *text,
                 const char *what) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "micro.kir", &d);
  ir_graph *f = g ? ir_graph_clone(g, &d) : NULL;
  bool changed = false;
  if (!f || !pass_fuse_loops(&f, NULL, &changed, &d) || !changed) {
    fprintf(stderr, "bench_loops: micro graph: %s\n", d.msg[0] ? d.msg : "nothing fused");
    return 1;
  }
  kl_compile_opts co = {.backend = KL_BACKEND_JIT,
                        .seed = 1,
                        .training = training,
                        .threads = threads,
                        .no_cache = true};
  char *err = NULL;
  kl_program *p[2] = {kl_compile_unoptimized(g, &co, &err), NULL};
  if (p[0]) p[1] = kl_compile_unoptimized(f, &co, &err);
  if (!p[0] || !p[1]) {
    fprintf(stderr, "bench_loops: %s\n", err);
    return 1;
  }
  int64_t big[2] = {4096, 512}, row[1] = {512};
  kl_tensor *in[3] = {kl_tensor_create(KL_TENSOR_F32, 2, big),
                      kl_tensor_create(KL_TENSOR_F32, 1, row),
                      kl_tensor_create(KL_TENSOR_F32, 2, big)};
  kl_tensor *out[2] = {kl_tensor_create(KL_TENSOR_F32, 2, big),
                       kl_tensor_create(KL_TENSOR_F32, 2, big)};
  for (int i = 0; i < 3; i++) {
    float *v = kl_tensor_data(in[i]);
    for (int64_t e = 0; e < kl_tensor_numel(in[i]); e++)
      v[e] = (float)((e * 7919 + i * 104729) % 2001 - 1000) / 500.0f;
  }
  double *ms[2] = {malloc(sizeof(double) * (size_t)reps), malloc(sizeof(double) * (size_t)reps)};
  for (int r = 0; r < warmup + reps; r++)
    for (int k = 0; k < 2; k++) {
      double t0 = now_s();
      const char *e = kl_run_into(p[k], in, 3, &out[k], 1);
      double dt = (now_s() - t0) * 1e3;
      if (e) {
        fprintf(stderr, "bench_loops: %s\n", e);
        return 1;
      }
      if (r >= warmup) ms[k][r - warmup] = dt;
    }
  bool same = memcmp(kl_tensor_data(out[0]), kl_tensor_data(out[1]), 4096 * 512 * 4) == 0;
  double a = median(ms[0], reps), b = median(ms[1], reps);
  printf("%s [4096,512] f32, %s (%d threads, median of %d): 4 kernels %.3f ms, 1 loop %.3f ms "
         "(%.2fx); results %s\n",
         what, training ? "training" : "eval", threads, reps, a, b, a / b,
         same ? "identical" : "DIFFER");
  free(ms[0]), free(ms[1]);
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(in[i]);
  kl_tensor_destroy(out[0]), kl_tensor_destroy(out[1]);
  kl_program_destroy(p[0]), kl_program_destroy(p[1]);
  ir_graph_destroy(g), ir_graph_destroy(f);
  return same ? 0 : 1;
}

static kl_train_step *compile(const tf_train *t, bool loops, int threads, char **err) {
  static const kl_optim_opts adam = {.kind = KL_OPT_ADAM, .lr = 0.001, .clip_norm = 1.0};
  pass_opts po = kl_default_pass_opts();
  po.verify_each = false;
  po.no_plan = true;
  if (!loops) po.stop_after = "fold-gemm-epilogue";
  kl_compile_opts co = {
      .backend = KL_BACKEND_JIT, .seed = 1, .training = true, .threads = threads, .no_cache = true};
  return kl_compile_train_with(kl_graph_ir(t->g), t->loss.id, NULL, 0, &adam, &po, &co, err);
}

static int step(int reps, int warmup, int threads) {
  tf_config c = TF_DATES_DEFAULTS;
  tf_train t = tf_build_train(&c);
  kl_tensor *in[5] = {0};
  if (!t.g || kl_graph_error(t.g) || !bench_tf_batch(in, &c)) {
    fprintf(stderr, "bench_loops: cannot build the transformer\n");
    return 1;
  }
  char *err = NULL;
  kl_train_step *s[2] = {compile(&t, false, threads, &err), NULL};
  if (s[0]) s[1] = compile(&t, true, threads, &err);
  kl_graph_destroy(t.g);
  if (!s[0] || !s[1]) {
    fprintf(stderr, "bench_loops: %s\n", err ? err : "compile failed");
    return 1;
  }
  double *ms[2] = {malloc(sizeof(double) * (size_t)reps), malloc(sizeof(double) * (size_t)reps)};
  double loss[2] = {0, 0};
  for (int r = 0; r < warmup + reps; r++)
    for (int k = 0; k < 2; k++) {
      double t0 = now_s();
      const char *e = kl_train_step_run(s[k], in, 5, &loss[k]);
      double dt = (now_s() - t0) * 1e3;
      if (e) {
        fprintf(stderr, "bench_loops: %s\n", e);
        return 1;
      }
      if (r >= warmup) ms[k][r - warmup] = dt;
    }
  const ir_graph *g[2] = {kl_train_step_graph(s[0]), kl_train_step_graph(s[1])};
  int nloops = 0;
  for (int i = 0; i < g[1]->nnodes; i++)
    nloops += g[1]->nodes[i]->op == IR_OP_LOOP;
  double a = median(ms[0], reps), b = median(ms[1], reps);
  double ca = kl_program_stats(kl_train_step_program(s[0]))->total_ms;
  double cb = kl_program_stats(kl_train_step_program(s[1]))->total_ms;
  printf("transformer step (batch %lld, %d threads, median of %d, no plan): %d nodes %.3f ms, "
         "with fuse-loops %d nodes (%d loops) %.3f ms (%.2fx); JIT compile %.0f / %.0f ms; last "
         "losses %.9g / %.9g\n",
         (long long)c.batch, threads, reps, g[0]->nnodes, a, g[1]->nnodes, nloops, b, a / b, ca, cb,
         loss[0], loss[1]);
  free(ms[0]), free(ms[1]);
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s[0]), kl_train_step_destroy(s[1]);
  return 0;
}

int main(int argc, char **argv) {
  int reps = int_flag(argc, argv, "--reps", 20), warmup = int_flag(argc, argv, "--warmup", 3);
  int threads = int_flag(argc, argv, "--threads", 2);
  if (reps < 1 || warmup < 0 || threads < 1) {
    fprintf(stderr, "usage: bench_loops [--reps N>=1] [--warmup N] [--threads N>=1]\n");
    return 2;
  }
  const char *ffn = "bias+gelu+dropout+residual", *mem = "bias+relu+scale+residual";
  return micro(reps, warmup, threads, true, micro_text, ffn) |
         micro(reps, warmup, threads, false, micro_text, ffn) |
         micro(reps, warmup, threads, false, memory_text, mem) | step(reps, warmup, threads);
}
