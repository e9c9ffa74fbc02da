/* bench_embed: the fused embedding (fold-embedding's embed + embed_grad)
 * against the unfused gather * sqrt(d) + PE -> dropout and its backward
 * (scatter_add), forward + backward with gradients for E and a learned PE,
 * JIT, training mode, same process, medians of N runs.
 * Usage: bench_embed [B T D V [runs [p]]] (default 64 64 512 10000 20 0.1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "passes/autodiff.h"
#include "passes/pipeline.h"

/* The forward, folded into an embed region when fold (before autodiff, as
 * the pipeline does), then gradients for E and pe as the outputs. */
static double drop_p = 0.1;

static ir_graph *graph(long b, long t, long d, long v, bool fold, ir_diag *err) {
  char text[1024];
  snprintf(text, sizeof text,
           "graph @emb(%%E: f32[%ld,%ld], %%ids: i32[%ld,%ld], %%pe: f32[%ld,%ld]) {\n"
           "  %%g = gather(%%E, %%ids) : f32[%ld,%ld,%ld]\n"
           "  %%s = const(%.9g) : f32[]\n"
           "  %%m = mul(%%g, %%s) : f32[%ld,%ld,%ld]\n"
           "  %%a = add(%%m, %%pe) : f32[%ld,%ld,%ld]\n"
           "  %%x = dropout(%%a) {p = %g} : f32[%ld,%ld,%ld]\n"
           "  return %%x\n}\n",
           v, d, b, t, t, d, b, t, d, sqrt((double)d), b, t, d, b, t, d, drop_p, b, t, d);
  ir_graph *g = ir_parse(text, strlen(text), "bench_embed", err);
  bool changed = false;
  if (g && fold && (!pass_fold_embedding(&g, NULL, &changed, err) || !changed)) {
    if (!changed) ir_diag_set(err, "nothing folded");
    return ir_graph_destroy(g), NULL;
  }
  if (!g) return NULL;
  int args[3], grads[2], wrt[2];
  ir_graph_args(g, args);
  wrt[0] = args[0], wrt[1] = args[2];
  if (!pass_autodiff(g, g->rets[0], 2, wrt, grads, err)) return ir_graph_destroy(g), NULL;
  ir_set_returns(g, 2, grads);
  return g;
}

/* Median seconds of one run of g (JIT, training). */
static double time_graph(const ir_graph *g, kl_tensor **in, int runs) {
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .seed = 1, .training = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &co, &err);
  if (!p) {
    fprintf(stderr, "compile: %s\n", err ? err : "");
    free(err);
    exit(1);
  }
  kl_tensor *out[2] = {0};
  const char *m = kl_run(p, in, 3, out, 2); /* warm-up, allocates outputs */
  if (m) fprintf(stderr, "run: %s\n", m), exit(1);
  double *ts = malloc(sizeof(double) * (size_t)runs);
  for (int r = 0; r < runs; r++) {
    double t0 = now_s();
    m = kl_run_into(p, in, 3, out, 2);
    ts[r] = now_s() - t0;
    if (m) fprintf(stderr, "run: %s\n", m), exit(1);
  }
  double med = median(ts, runs);
  free(ts);
  kl_tensor_destroy(out[0]), kl_tensor_destroy(out[1]);
  kl_program_destroy(p);
  return med;
}

int main(int argc, char **argv) {
  long b = 64, t = 64, d = 512, v = 10000;
  int runs = 20;
  if (argc >= 5) b = atol(argv[1]), t = atol(argv[2]), d = atol(argv[3]), v = atol(argv[4]);
  if (argc >= 6) runs = atoi(argv[5]);
  if (argc >= 7) drop_p = atof(argv[6]);
  if (b < 1 || t < 1 || d < 1 || v < 1 || runs < 1) return fprintf(stderr, "bad sizes\n"), 2;
  ir_diag err = {0};
  ir_graph *unfused = graph(b, t, d, v, false, &err);
  ir_graph *fused = unfused ? graph(b, t, d, v, true, &err) : NULL;
  if (!fused) return fprintf(stderr, "graph: %s\n", err.msg), 1;
  int64_t ed[2] = {v, d}, id[2] = {b, t}, pd[2] = {t, d};
  kl_tensor *in[3] = {kl_tensor_create(KL_TENSOR_F32, 2, ed),
                      kl_tensor_create(KL_TENSOR_I32, 2, id),
                      kl_tensor_create(KL_TENSOR_F32, 2, pd)};
  float *e = kl_tensor_data(in[0]), *pe = kl_tensor_data(in[2]);
  int32_t *ids = kl_tensor_data(in[1]);
  uint64_t s = 88172645463325252ull;
  for (long i = 0; i < v * d; i++)
    s ^= s << 13, s ^= s >> 7, s ^= s << 17, e[i] = (float)(s >> 40) / 16777216.0f - 0.5f;
  for (long i = 0; i < t * d; i++)
    pe[i] = (float)((i % 7) - 3) * 0.1f;
  for (long i = 0; i < b * t; i++)
    s ^= s << 13, s ^= s >> 7, s ^= s << 17, ids[i] = (int32_t)(s % (uint64_t)v);
  double tu = time_graph(unfused, in, runs), tf = time_graph(fused, in, runs);
  printf("embedding fwd+bwd B=%ld T=%ld D=%ld V=%ld (f32, training, dropout %g), median of %d:\n",
         b, t, d, v, drop_p, runs);
  printf("  unfused (gather, mul, add, dropout; scatter_add): %8.3f ms\n", tu * 1e3);
  printf("  fused   (embed; embed_grad):                      %8.3f ms  (%.2fx)\n", tf * 1e3,
         tu / tf);
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(in[i]);
  ir_graph_destroy(unfused), ir_graph_destroy(fused);
  return 0;
}
