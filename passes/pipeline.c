/* The pass table and the driver that runs it with --verify-each,
 * --print-after(-all) and --stop-after semantics. The order is DESIGN.md's:
 * clean-ups, then fusion (before autodiff, so the backward of a fused
 * region is fused as well), then the training step, then planning. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pipeline.h"

static bool fusing(const pass_opts *o) { return !o->no_fusion; }
static bool training(const pass_opts *o) { return o->train != NULL; }
static bool planning(const pass_opts *o) { return !o->no_plan; }

static const pass_info pipeline[] = {
    {"verify", pass_verify, false, "reject malformed graphs before any rewrite", NULL},
    {"canonicalize", pass_canonicalize, true,
     "one spelling per idea: x / c becomes x * (1/c), every mask spelling one form, transposes "
     "next to the matmuls that absorb them, so fusion matches what real models write",
     NULL},
    {"constant-fold", pass_constant_fold, false,
     "evaluate constant sub-graphs with the reference interpreter (the positional-encoding "
     "table becomes one constant)",
     NULL},
    {"cse", pass_cse, false, "one node per distinct computation (W_k(keys) once, not per step)",
     NULL},
    {"dce", pass_dce, false, "drop what no return and no assign needs", NULL},
    {"fuse-attention", pass_fuse_attention, false,
     "matmul, scale, mask, softmax, [dropout], matmul becomes one streaming attention region; "
     "scale, mask, softmax alone becomes scale_mask_softmax",
     fusing},
    {"fuse-additive-attention", pass_fuse_additive, false,
     "Bahdanau scoring and the weighted sum become one additive_attention region that never "
     "holds the [B, Tq, Tk, H] features",
     fusing},
    {"fold-embedding", pass_fold_embedding, false,
     "gather(E, ids) * scale + PE [+ dropout] becomes one embed region: one pass over the "
     "output, and a backward that scatters straight into E",
     fusing},
    {"autodiff", pass_autodiff_step, false,
     "training only: gradients of the loss (fused regions by their own rules), clipping and the "
     "optimizer update",
     training},
    {"save-attention-stats", pass_save_attention_stats, false,
     "an attention whose gradient follows keeps its row log-sum-exp (attention_lse), so the "
     "backward does not recompute it",
     fusing},
    {"fold-gemm-epilogue", pass_fold_gemm, false,
     "a scalar scale around a matmul becomes BLAS's alpha, and an add of a matmul's result "
     "becomes its beta accumulation (gemm)",
     fusing},
    {"fuse-loops", pass_fuse_loops, false,
     "chains of elementwise and broadcast ops become one loop region: one pass over memory "
     "instead of one per op",
     fusing},
    {"memory-plan", pass_memory_plan, false,
     "liveness-based offsets of every intermediate in one arena, reusing dead buffers", planning},
};

const pass_info *pass_pipeline(int *n) {
  *n = (int)(sizeof pipeline / sizeof pipeline[0]);
  return pipeline;
}

const pass_info *pass_lookup(const char *name) {
  int n;
  const pass_info *p = pass_pipeline(&n);
  for (int i = 0; i < n; i++)
    if (strcmp(p[i].name, name) == 0) return &p[i];
  return NULL;
}

/* DIR/NN-NAME.kir, written whole or not at all (a failed write is an
 * error: the user asked for these files). */
static bool dump_to_dir(const ir_graph *g, const char *dir, int k, const char *name, ir_diag *d) {
  char path[4096];
  int len = snprintf(path, sizeof path, "%s/%02d-%s.kir", dir, k, name);
  if (len < 0 || (size_t)len >= sizeof path) {
    ir_diag_set(d, "--print-after-all: directory name too long");
    return false;
  }
  char *text = ir_print_str(g, NULL);
  FILE *f = text ? fopen(path, "w") : NULL;
  bool ok = f && fputs(text, f) >= 0;
  if (f && fclose(f) != 0) ok = false;
  free(text);
  if (!ok) {
    ir_diag_set(d, "--print-after-all: cannot write %s: %s", path,
                text ? strerror(errno) : "out of memory");
    remove(path);
  }
  return ok;
}

bool pass_run_pipeline(ir_graph **g, const pass_opts *opts, ir_diag *d) {
  pass_opts none = {0};
  if (!opts) opts = &none;
  int n;
  const pass_info *p = pass_pipeline(&n);
  for (int i = 0, k = 0; i < n; i++) {
    if (p[i].enabled && !p[i].enabled(opts)) continue;
    if (opts->train_only && p[i].run != pass_verify && p[i].run != pass_autodiff_step) continue;
    bool changed;
    int rounds = 0;
    do {
      changed = false;
      ir_diag pd = {0};
      if (!p[i].run(g, opts, &changed, &pd)) {
        ir_diag_set(d, "pass %s: %s", p[i].name, pd.msg);
        return false;
      }
      if (changed && p[i].run != pass_memory_plan) ir_graph_drop_plan(*g);
      if (opts->verify_each && !ir_verify(*g, &pd)) {
        ir_diag_set(d, "after pass %s: %s", p[i].name, pd.msg);
        return false;
      }
    } while (p[i].fixpoint && changed && ++rounds < 100);
    const char *pa = opts->print_after;
    if (pa && (strcmp(pa, "all") == 0 || strcmp(pa, p[i].name) == 0)) {
      FILE *f = opts->print_to ? opts->print_to : stderr;
      fprintf(f, "# after %s\n", p[i].name);
      ir_print(*g, f, NULL);
    }
    if (opts->print_dir && !dump_to_dir(*g, opts->print_dir, k, p[i].name, d)) return false;
    k++;
    if (opts->stop_after && strcmp(opts->stop_after, p[i].name) == 0) break;
  }
  return true;
}
