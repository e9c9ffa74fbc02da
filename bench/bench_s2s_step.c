/* Compile time and step time of the seq2seq-attn training step (models/
 * seq2seq_attn.h, d2l's GRU encoder-decoder with Bahdanau attention,
 * unrolled): kl_compile_train with Adam (lr 0.005, clip_norm 1) on the JIT
 * with the disk cache bypassed, its phases, then the median of --reps steps
 * on fixed synthetic ids after warm-up. Usage: bench_s2s_step [--hidden N]
 * [--layers N] [--batch N] [--threads N] [--reps N] [--warmup N]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "ir/ir.h"
/* The benchmarks link kiln but not kiln_models; the model is one file that
 * only needs the public DSL, so it is compiled in here. */
#include "models/seq2seq_attn.h"

static int int_flag(int argc, char **argv, const char *name, int def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
  return def;
}

static kl_tensor *ids(int rank, int64_t d0, int64_t d1, int base, int mod, int shift) {
  int64_t dims[2] = {d0, d1};
  kl_tensor *t = kl_tensor_create(KL_TENSOR_I32, rank, dims);
  if (!t) return NULL;
  int32_t *p = kl_tensor_data(t);
  for (int64_t i = 0; i < d0 * (rank == 2 ? d1 : 1); i++)
    p[i] = base + (int32_t)((i + shift) % mod);
  return t;
}

int main(int argc, char **argv) {
  s2s_config c = S2S_DATES_DEFAULTS;
  c.hidden = int_flag(argc, argv, "--hidden", (int)c.hidden);
  c.layers = int_flag(argc, argv, "--layers", (int)c.layers);
  c.batch = int_flag(argc, argv, "--batch", (int)c.batch);
  int threads = int_flag(argc, argv, "--threads", 1);
  int reps = int_flag(argc, argv, "--reps", 20);
  int warmup = int_flag(argc, argv, "--warmup", 3);
  if (reps < 1) reps = 1;
  const char *bad = s2s_config_check(&c);
  if (bad) {
    fprintf(stderr, "bench_s2s_step: %s\n", bad);
    return 1;
  }
  double t0 = now_s();
  s2s_train tr = s2s_build_train(&c);
  if (kl_graph_error(tr.g)) {
    fprintf(stderr, "bench_s2s_step: %s\n", kl_graph_error(tr.g));
    return 1;
  }
  const struct ir_graph *ig = kl_graph_ir(tr.g);
  printf("seq2seq-attn hidden %d layers %d batch %d threads %d: %d forward nodes, built in "
         "%.1f ms\n",
         (int)c.hidden, (int)c.layers, (int)c.batch, threads, ig->nnodes, (now_s() - t0) * 1e3);

  kl_optim_opts o = {.kind = KL_OPT_ADAM, .lr = 0.005, .clip_norm = 1};
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .seed = 1, .threads = threads, .no_cache = true};
  char *err = NULL;
  t0 = now_s();
  kl_train_step *s = kl_compile_train(tr.g, tr.loss, NULL, 0, &o, &co, &err);
  double compile_ms = (now_s() - t0) * 1e3;
  if (!s) {
    fprintf(stderr, "bench_s2s_step: %s\n", err ? err : "compile failed");
    free(err);
    return 1;
  }
  const kl_compile_stats *st = kl_program_stats(kl_train_step_program(s));
  printf("compile %.0f ms (lower %.0f, optimize %.0f, codegen %.0f, link %.0f; %d train nodes)\n",
         compile_ms, st->lower_ms, st->optimize_ms, st->codegen_ms, st->link_ms,
         kl_train_step_graph(s)->nnodes);

  int64_t B = c.batch, ts = c.src_steps, tt = c.tgt_steps;
  kl_tensor *in[5] = {ids(2, B, ts, 4, 30, 0), ids(1, B, 1, 20, 10, 0), ids(2, B, tt, 4, 10, 0),
                      ids(2, B, tt, 4, 10, 1), ids(1, B, 1, 11, 1, 0)};
  for (int i = 0; i < 5; i++)
    if (!in[i]) return fprintf(stderr, "bench_s2s_step: out of memory\n"), 1;
  double *ms = malloc((size_t)reps * sizeof *ms);
  double loss = 0, first = 0;
  for (int i = 0; i < warmup + reps; i++) {
    t0 = now_s();
    const char *e = kl_train_step_run(s, in, 5, &loss);
    double dt = (now_s() - t0) * 1e3;
    if (e) {
      fprintf(stderr, "bench_s2s_step: step %d: %s\n", i, e);
      return 1;
    }
    if (i == 0) first = loss;
    if (i >= warmup) ms[i - warmup] = dt;
  }
  printf("loss %.4f -> %.4f over %d steps\n", first, loss, warmup + reps);
  printf("median step %.2f ms over %d reps (threads %d)\n", median(ms, reps), reps, threads);
  free(ms);
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s);
  kl_graph_destroy(tr.g);
  return 0;
}
