/* Additive (Bahdanau) attention, forward + backward, fused against unfused:
 * d2l's AdditiveAttention (W_q, W_k projections, features = q + k over
 * [B, Tq, Tk, H], tanh, w_v, masked softmax, dropout 0.1, @ values) with a
 * sum loss, as one SGD training step on the JIT; the unfused baseline is
 * the same graph compiled with pass_opts.no_fusion. Prints the median step
 * time of each and the ratio. Usage: bench_additive [--batch N] [--tq N]
 * [--tk N] [--hidden N] [--threads N] [--reps N] [--proj 1: include W_q, W_k]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "frontend/kiln.h"
#include "ir/ir.h"
#include "passes/pipeline.h"

static int int_flag(int argc, char **argv, const char *name, int def) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
  return def;
}

static kl_tensor *filled(kl_tensor_dtype dt, int rank, const int64_t *dims, int64_t mod) {
  kl_tensor *t = kl_tensor_create(dt, rank, dims);
  if (!t) return NULL;
  for (int64_t i = 0; i < kl_tensor_numel(t); i++)
    if (dt == KL_TENSOR_F32)
      ((float *)kl_tensor_data(t))[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    else
      ((int32_t *)kl_tensor_data(t))[i] = (int32_t)(mod - i % 4);
  return t;
}

/* Median ms of reps training steps after warm-up. */
static double time_steps(const struct ir_graph *g, int loss, bool fused, int threads, int reps,
                         kl_tensor **in, int nin, int *regions) {
  pass_opts po = kl_default_pass_opts();
  po.no_fusion = !fused;
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 1e-3};
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .seed = 1, .threads = threads, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(g, loss, NULL, 0, &opt, &po, &co, &err);
  if (!s) {
    fprintf(stderr, "bench_additive: %s\n", err ? err : "?");
    exit(1);
  }
  const struct ir_graph *tg = kl_train_step_graph(s);
  *regions = 0;
  for (int i = 0; i < tg->nnodes; i++)
    *regions += tg->nodes[i]->op == IR_OP_ADDITIVE_ATTENTION;
  double *t = malloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < 3 + reps; i++) {
    double t0 = now_s();
    const char *msg = kl_train_step_run(s, in, nin, NULL);
    if (msg) {
      fprintf(stderr, "bench_additive: %s\n", msg);
      exit(1);
    }
    if (i >= 3) t[i - 3] = (now_s() - t0) * 1e3;
  }
  double m = median(t, reps);
  free(t);
  kl_train_step_destroy(s);
  return m;
}

int main(int argc, char **argv) {
  int64_t b = int_flag(argc, argv, "--batch", 128), tq = int_flag(argc, argv, "--tq", 10);
  int64_t tk = int_flag(argc, argv, "--tk", 10), h = int_flag(argc, argv, "--hidden", 256);
  int threads = int_flag(argc, argv, "--threads", 2), reps = int_flag(argc, argv, "--reps", 20);
  if (reps < 1) reps = 1;
  bool proj = int_flag(argc, argv, "--proj", 0) != 0;
  kl_graph *g = kl_graph_create("d2l_additive");
  kl_value q = kl_input(g, "queries", KL_F32, KL_SHAPE(b, tq, h));
  kl_value k = kl_input(g, "keys", KL_F32, KL_SHAPE(b, tk, h));
  kl_value v = kl_param(g, "values", KL_F32, KL_SHAPE(b, tk, h));
  kl_value len = kl_input(g, "valid_lens", KL_I32, KL_SHAPE(b));
  kl_value wv = kl_param(g, "w_v", KL_F32, KL_SHAPE(1, h));
  kl_value qp, kp;
  if (proj) { /* d2l's W_q, W_k: two GEMMs each way, the same in both graphs */
    kl_value wq = kl_param(g, "W_q", KL_F32, KL_SHAPE(h, h));
    kl_value wk = kl_param(g, "W_k", KL_F32, KL_SHAPE(h, h));
    qp = kl_matmul_t(q, wq, false, true), kp = kl_matmul_t(k, wk, false, true);
  } else { /* the attention alone: trainable projected queries and keys */
    qp = kl_add(q, kl_param(g, "q_bias", KL_F32, KL_SHAPE(b, tq, h)));
    kp = kl_add(k, kl_param(g, "k_bias", KL_F32, KL_SHAPE(b, tk, h)));
  }
  qp = kl_reshape(qp, KL_SHAPE(b, tq, 1, h));
  kp = kl_reshape(kp, KL_SHAPE(b, 1, tk, h));
  kl_value f = kl_tanh(kl_add(qp, kp));
  kl_value s = kl_reshape(kl_matmul_t(f, wv, false, true), KL_SHAPE(b, tq, tk));
  kl_value a = kl_dropout(kl_softmax(kl_sequence_mask(s, len, -1e6), -1), 0.1);
  kl_value loss = kl_sum_all(kl_matmul(a, v));
  kl_output(loss);
  if (kl_graph_error(g)) {
    fprintf(stderr, "bench_additive: %s\n", kl_graph_error(g));
    return 1;
  }
  kl_tensor *in[3] = {filled(KL_TENSOR_F32, 3, (int64_t[]){b, tq, h}, 0),
                      filled(KL_TENSOR_F32, 3, (int64_t[]){b, tk, h}, 0),
                      filled(KL_TENSOR_I32, 1, &b, tk)};
  int rf = 0, ru = 0;
  int only = int_flag(argc, argv, "--only", 0); /* 1: fused, 2: unfused (profiling) */
  double fused =
      only == 2 ? 0 : time_steps(kl_graph_ir(g), loss.id, true, threads, reps, in, 3, &rf);
  double unfused =
      only == 1 ? 0 : time_steps(kl_graph_ir(g), loss.id, false, threads, reps, in, 3, &ru);
  printf("additive attention B=%lld Tq=%lld Tk=%lld H=dv=%lld, %d threads, %s, "
         "forward+backward+SGD (median of %d):\n",
         (long long)b, (long long)tq, (long long)tk, (long long)h, threads,
         proj ? "with the W_q/W_k projections" : "attention alone", reps);
  printf("  fused   (%d region)  %8.3f ms\n", rf, fused);
  printf("  unfused (%d regions) %8.3f ms\n", ru, unfused);
  printf("  speed-up %.2fx\n", unfused / fused);
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(in[i]);
  kl_graph_destroy(g);
  return 0;
}
