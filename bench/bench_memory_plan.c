/* What memory planning saves: arena bytes against one buffer per value for
 * the training graphs of the shipped sequence models (registry defaults),
 * and the Transformer's median JIT training-step time with and without the
 * plan (steps alternate between the two programs so drift on a shared
 * machine hits both alike).
 *   bench_memory_plan [--reps 20] [--warmup 3] [--threads 2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "bench/bench_tf.h"
#include "bench/bench_util.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "models/models.h"
#include "models/transformer.h"
#include "passes/pipeline.h"

static int int_flag(int argc, char **argv, const char *name, int def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
  return def;
}

static const kl_optim_opts adam = {.kind = KL_OPT_ADAM, .lr = 0.001, .clip_norm = 1.0};

static int report_plan(const char *name) {
  const kl_model_info *m = kl_model_find(name);
  int out = 0;
  kl_graph *kg = m && m->graph ? m->graph(&out) : NULL;
  if (!kg || kl_graph_error(kg)) {
    fprintf(stderr, "bench_memory_plan: %s: %s\n", name, kg ? kl_graph_error(kg) : "no graph");
    return 1;
  }
  const struct ir_graph *fwd = kl_graph_ir(kg);
  pass_opts po = kl_default_pass_opts();
  po.verify_each = false;
  char *err = NULL;
  double t0 = now_s();
  ir_graph *tg = kl_train_graph_with(fwd, fwd->rets[out], NULL, 0, &adam, &po, &err);
  double ms = (now_s() - t0) * 1e3;
  kl_graph_destroy(kg);
  if (!tg || !tg->plan) {
    fprintf(stderr, "bench_memory_plan: %s: %s\n", name, err ? err : "no plan");
    free(err);
    ir_graph_destroy(tg);
    return 1;
  }
  const ir_mem_plan *p = tg->plan;
  int nv = 0;
  for (int i = 0; i < p->nnodes; i++)
    nv += p->offset[i] >= 0;
  printf("%-13s nodes %5d  planned %5d  arena %10lld B  one-buffer-each %10lld B  %5.1f%% "
         "smaller  (pipeline %.0f ms)\n",
         name, tg->nnodes, nv, (long long)p->arena_bytes, (long long)p->naive_bytes,
         100.0 * (1.0 - (double)p->arena_bytes / (double)p->naive_bytes), ms);
  ir_graph_destroy(tg);
  return 0;
}

static kl_train_step *compile(const tf_train *t, bool plan, bool fusion, int threads, char **err) {
  pass_opts po = kl_default_pass_opts();
  po.verify_each = false;
  po.no_plan = !plan;
  po.no_fusion = !fusion;
  kl_compile_opts co = {
      .backend = KL_BACKEND_JIT, .seed = 1, .training = true, .threads = threads, .no_cache = true};
  return kl_compile_train_with(kl_graph_ir(t->g), t->loss.id, NULL, 0, &adam, &po, &co, err);
}

int main(int argc, char **argv) {
  int reps = int_flag(argc, argv, "--reps", 20), warmup = int_flag(argc, argv, "--warmup", 3);
  int threads = int_flag(argc, argv, "--threads", 2);
  if (reps < 1 || warmup < 0 || threads < 1) {
    fprintf(stderr, "usage: bench_memory_plan [--reps N>=1] [--warmup N] [--threads N>=1]\n");
    return 2;
  }
  int rc = 0;
  const char *models[] = {"transformer", "seq2seq-attn", "gpt"};
  for (int i = 0; i < 3; i++)
    rc |= report_plan(models[i]);

  tf_config c = TF_DATES_DEFAULTS;
  tf_train t = tf_build_train(&c);
  kl_tensor *in[5] = {0};
  if (!t.g || kl_graph_error(t.g) || !bench_tf_batch(in, &c)) {
    fprintf(stderr, "bench_memory_plan: cannot build the transformer\n");
    return 1;
  }
  /* Fused kernels may not exist yet in every build: fall back to the
   * unfused graph, and say which one was timed. */
  bool fusion = true;
  char *err = NULL;
  kl_train_step *s[2] = {compile(&t, false, true, threads, &err), NULL};
  if (!s[0]) {
    fprintf(stderr, "bench_memory_plan: fused compile failed (%s); timing unfused\n", err);
    free(err), err = NULL;
    fusion = false;
    s[0] = compile(&t, false, false, threads, &err);
  }
  if (s[0]) s[1] = compile(&t, true, fusion, threads, &err);
  kl_graph_destroy(t.g);
  if (!s[0] || !s[1]) {
    fprintf(stderr, "bench_memory_plan: %s\n", err ? err : "compile failed");
    return 1;
  }
  double *ms[2] = {malloc(sizeof(double) * (size_t)reps), malloc(sizeof(double) * (size_t)reps)};
  double loss[2] = {0, 0};
  for (int r = 0; r < warmup + reps && ms[0] && ms[1]; r++) {
    for (int k = 0; k < 2; k++) {
      double t0 = now_s();
      const char *e = kl_train_step_run(s[k], in, 5, &loss[k]);
      double dt = (now_s() - t0) * 1e3;
      if (e) {
        fprintf(stderr, "bench_memory_plan: %s\n", e);
        return 1;
      }
      if (r >= warmup) ms[k][r - warmup] = dt;
    }
  }
  const ir_mem_plan *p = kl_train_step_graph(s[1])->plan;
  printf("transformer step (%s, batch %lld, %d threads, median of %d): one buffer each %.3f ms, "
         "planned %.3f ms (arena %lld B of %lld B); last losses %.9g / %.9g\n",
         fusion ? "fused" : "unfused", (long long)c.batch, threads, reps, median(ms[0], reps),
         median(ms[1], reps), p ? (long long)p->arena_bytes : 0LL,
         p ? (long long)p->naive_bytes : 0LL, loss[0], loss[1]);
  free(ms[0]), free(ms[1]);
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s[0]);
  kl_train_step_destroy(s[1]);
  return rc;
}
