/* Attention forward + backward, unfused vs fused: q, k, v [B, H, T, d]
 * trainable, causal in the models' spelling (sequence_mask with per-query
 * lengths iota + 1, as models/gpt.c), loss = sum(attention * w), one SGD
 * step with lr 1e-30 (the update is O(B H T d), negligible). The unfused graph
 * is the DSL graph compiled by kl_compile_train_with with fusion off; the
 * fused one holds the attention region (pass_build_attention) over the same
 * lengths. The headline compares the DSL graph compiled by the whole
 * pipeline ("auto") with the same graph with fusion off, in alternating
 * rounds. Each variant runs in a fresh process so its peak RSS is its own;
 * "values" is the sum of the compiled graph's value sizes (and the memory
 * plan's arena when planned). The fused variant also runs at 2T to show
 * its memory grows linearly. Usage: bench_attention [--t T] [--reps N]
 * [--threads N]; bench_attention --child fused|unfused|auto ... runs one
 * (auto: the unfused graph with the pipeline's fuse-attention on).
 * OpenBLAS 0.3.21 does not recognise some virtualised Xeons and falls back
 * to its SSE3 (Prescott) kernels; OPENBLAS_CORETYPE=SkylakeX fixes that for
 * both variants alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "frontend/kiln.h"
#include "ir/ir.h"
#include "passes/fused_build.h"
#include "passes/pipeline.h"

enum { B = 8, H = 8, D = 64 };

typedef struct built {
  kl_graph *dsl;
  ir_graph *ir; /* owned copy when fused; NULL: use the DSL's */
  int loss;
} built;

static bool build(bool fused, int64_t t, built *out) {
  kl_graph *g = kl_graph_create(fused ? "attn_fused" : "attn_unfused");
  kl_value q = kl_param_init(g, "q", KL_F32, KL_SHAPE(B, H, t, D), KL_INIT_NORMAL, 1.0);
  kl_value k = kl_param_init(g, "k", KL_F32, KL_SHAPE(B, H, t, D), KL_INIT_NORMAL, 1.0);
  kl_value v = kl_param_init(g, "v", KL_F32, KL_SHAPE(B, H, t, D), KL_INIT_NORMAL, 1.0);
  kl_value w = kl_input(g, "w", KL_F32, KL_SHAPE(B, H, t, D));
  kl_value len = kl_add_scalar(kl_iota(g, KL_SHAPE(B, H, t), 2, KL_I32), 1);
  out->dsl = g;
  out->ir = NULL;
  if (!fused) {
    kl_value s = kl_mul_scalar(kl_matmul_t(q, k, false, true), 0.125);
    kl_value a = kl_softmax(kl_sequence_mask(s, len, -1e6), -1);
    kl_value loss = kl_sum_all(kl_mul(kl_matmul(a, v), w));
    kl_output(loss);
    out->loss = loss.id;
    return true;
  }
  ir_diag d = {0};
  ir_graph *ir = ir_graph_clone(kl_graph_ir(g), &d);
  if (!ir) return false;
  ir_attr a[IR_MAX_ATTRS];
  ir_attrs_default(ir, IR_OP_ATTENTION, a);
  a[0].f = 0.125;
  int o = pass_build_attention(ir, q.id, k.id, v.id, len.id, a, NULL, &d);
  int ow = o < 0 ? -1 : ir_add_node(ir, IR_OP_MUL, 2, (int[]){o, w.id}, NULL, NULL, &d);
  ir_attr sa[2] = {{.kind = IR_ATTR_INTS, .ints = {4, (int64_t[]){0, 1, 2, 3}}},
                   {.kind = IR_ATTR_BOOL, .b = false}};
  out->loss = ow < 0 ? -1 : ir_add_node(ir, IR_OP_SUM, 1, &ow, sa, NULL, &d);
  if (out->loss < 0) {
    fprintf(stderr, "fused graph: %s\n", d.msg);
    ir_graph_destroy(ir);
    return false;
  }
  ir_set_returns(ir, 1, &out->loss);
  out->ir = ir;
  return true;
}

/* What a child reports to the parent (through a pipe). */
typedef struct result {
  double ms, values_mib, arena_mib, rss_mib;
} result;

/* auto: the unfused graph with the pipeline's fusion on (fuse-attention). */
static int child(bool fused, bool autofuse, int64_t t, int reps, int threads, int report_fd) {
  built b;
  if (!build(fused, t, &b)) return 1;
  const ir_graph *g = b.ir ? b.ir : kl_graph_ir(b.dsl);
  int params[3] = {0, 1, 2}; /* q, k, v are the first nodes */
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 1e-30};
  pass_opts po = kl_default_pass_opts();
  po.no_fusion = !fused && !autofuse;
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .seed = 1, .threads = threads};
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(g, b.loss, params, 3, &opt, &po, &co, &err);
  if (!s) {
    fprintf(stderr, "%s: %s\n", fused ? "fused" : "unfused", err ? err : "?");
    free(err);
    return 1;
  }
  const ir_graph *cg = kl_train_step_graph(s);
  int64_t values = 0, biggest = 0;
  for (int i = 0; i < cg->nnodes; i++) {
    int64_t bytes =
        ir_type_numel(&cg->nodes[i]->type) * (int64_t)ir_dtype_size(cg->nodes[i]->type.dtype);
    values += bytes;
    if (bytes > biggest) biggest = bytes;
  }
  kl_tensor *w = kl_tensor_create(KL_TENSOR_F32, 4, (int64_t[]){B, H, t, D});
  float *wd = kl_tensor_data(w);
  for (int64_t i = 0; i < kl_tensor_numel(w); i++)
    wd[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  double *ms = malloc((size_t)reps * sizeof *ms), loss = 0;
  for (int r = -2; r < reps; r++) {
    double t0 = now_s();
    const char *m = kl_train_step_run(s, &w, 1, &loss);
    if (m) {
      fprintf(stderr, "run: %s\n", m);
      return 1;
    }
    if (r >= 0) ms[r] = (now_s() - t0) * 1e3;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("%-8s T=%-5lld median %9.2f ms  values %8.1f MiB (largest %7.1f MiB)%s  peak RSS %7.1f MiB"
         "  loss %.4g\n",
         autofuse ? "auto"
         : fused  ? "fused"
                  : "unfused",
         (long long)t, median(ms, reps), (double)values / 1048576.0, (double)biggest / 1048576.0,
         cg->plan ? "" : " (unplanned)", (double)ru.ru_maxrss / 1024.0, loss);
  if (cg->plan)
    printf("         planned arena %8.1f MiB\n", (double)cg->plan->arena_bytes / 1048576.0);
  fflush(stdout);
  if (report_fd >= 0) {
    result res = {median(ms, reps), (double)values / 1048576.0,
                  cg->plan ? (double)cg->plan->arena_bytes / 1048576.0 : 0,
                  (double)ru.ru_maxrss / 1024.0};
    if (write(report_fd, &res, sizeof res) != (ssize_t)sizeof res) return 1;
  }
  free(ms);
  kl_tensor_destroy(w);
  kl_train_step_destroy(s);
  if (b.ir) ir_graph_destroy(b.ir);
  kl_graph_destroy(b.dsl);
  return 0;
}

/* Runs one variant in a fresh process; false when it failed. */
static bool spawn(const char *self, const char *variant, int64_t t, int reps, int threads,
                  result *res) {
  char ts[32], rs[32], th[32], fd[32];
  int pfd[2];
  if (pipe(pfd) < 0) return false;
  snprintf(ts, sizeof ts, "%lld", (long long)t);
  snprintf(rs, sizeof rs, "%d", reps);
  snprintf(th, sizeof th, "%d", threads);
  snprintf(fd, sizeof fd, "%d", pfd[1]);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[0]);
    execl(self, self, "--child", variant, "--t", ts, "--reps", rs, "--threads", th, "--report-fd",
          fd, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  bool ok = pid > 0 && read(pfd[0], res, sizeof *res) == (ssize_t)sizeof *res;
  close(pfd[0]);
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) < 0) return false;
  return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv) {
  int64_t t = 512;
  int reps = 10, threads = 2, report_fd = -1;
  const char *variant = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--t"))
      t = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps"))
      reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--threads"))
      threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--child"))
      variant = argv[i + 1];
    else if (!strcmp(argv[i], "--report-fd"))
      report_fd = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: bench_attention [--t T] [--reps N] [--threads N]\n");
      return 2;
    }
  }
  if (reps < 1 || t < 1) return 2;
  if (variant)
    return child(!strcmp(variant, "fused"), !strcmp(variant, "auto"), t, reps, threads, report_fd);
  printf("attention forward+backward (one SGD step, lr 1e-30): B=%d H=%d d=%d causal f32, "
         "%d threads\n",
         B, H, D, threads);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  self[n] = 0;
  /* Alternating rounds, so drift in a shared machine's load hits both. */
  enum { ROUNDS = 3 };
  result u[ROUNDS], f[ROUNDS], f2;
  double um[ROUNDS], fm[ROUNDS], ratio[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    if (!spawn(self, "unfused", t, reps, threads, &u[r]) ||
        !spawn(self, "auto", t, reps, threads, &f[r]))
      return 1;
    um[r] = u[r].ms, fm[r] = f[r].ms, ratio[r] = u[r].ms / f[r].ms;
    printf("round %d: %.2fx\n", r + 1, ratio[r]);
  }
  printf("T=%lld: the pipeline's fused graph is %.2fx faster than fusion off (medians of %d "
         "rounds: %.1f vs %.1f ms); values %.1f vs %.1f MiB, peak RSS %.1f vs %.1f MiB\n",
         (long long)t, median(ratio, ROUNDS), ROUNDS, median(fm, ROUNDS), median(um, ROUNDS),
         f[0].values_mib, u[0].values_mib, f[0].rss_mib, u[0].rss_mib);
  /* The fused variant's memory at twice the length: linear in T, not T^2. */
  if (!spawn(self, "fused", t, reps < 3 ? reps : 3, threads, f) ||
      !spawn(self, "fused", 2 * t, reps < 3 ? reps : 3, threads, &f2))
    return 1;
  printf("fused values at T=%lld: %.1f MiB (%.2fx of T=%lld; T^2 would be 4x)\n",
         (long long)(2 * t), f2.values_mib, f2.values_mib / f[0].values_mib, (long long)t);
  return 0;
}
