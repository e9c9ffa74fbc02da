/* The shipped models: a registry (name, summary, --set keys) that the CLI
 * lists and validates against, and each model's graph builders. Models are
 * user code: they see only the public DSL (frontend/kiln.h). */
#ifndef KILN_MODELS_H
#define KILN_MODELS_H

#include "frontend/kiln.h"

/* ---- registry ------------------------------------------------------------ */

/* One --set key: its name, default (as the text a user would type) and a
 * one-line help. */
typedef struct kl_model_key {
  const char *name, *dflt, *help;
} kl_model_key;

typedef struct kl_model_info {
  const char *name;    /* "nw-kernel" */
  const char *summary; /* one line */
  const char *detail;  /* a paragraph for --describe: data, training, outputs */
  bool shipped;        /* false: planned (DESIGN.md names it), not built yet */
  int epochs;          /* defaults of `kiln train` */
  double lr;
  bool full_batch;        /* one step per epoch: --steps means --epochs, no --batch */
  bool takes_data;        /* accepts --data PATH */
  bool takes_checkpoints; /* accepts --save / --load */
  int nkeys;
  const kl_model_key *keys;
  /* The training graph at the default settings (owned by the caller), with
   * *loss_output set to the index of the output that is the loss; for
   * `kiln dump-ir MODEL`. NULL for planned models. */
  kl_graph *(*graph)(int *loss_output);
} kl_model_info;

/* Every model, shipped and planned, in a fixed order; *n receives the count. */
const kl_model_info *kl_models(int *n);
/* The model called `name`, or NULL. */
const kl_model_info *kl_model_find(const char *name);
/* The key called `key` of model m, or NULL. */
const kl_model_key *kl_model_key_find(const kl_model_info *m, const char *key);

/* ---- nw-kernel: Nadaraya-Watson attention pooling (d2l 11.2) ------------- */

/* The three estimators of d2l's section:
 * AVERAGE     f(x) = mean_i y_i (attention weights all 1/K)
 * GAUSSIAN    f(x) = sum_i softmax_i(-(x - x_i)^2 / 2) y_i
 * PARAMETRIC  f(x) = sum_i softmax_i(-((x - x_i) w)^2 / 2) y_i, with the
 *             learnable scalar parameter "w" (f32[1]). */
typedef enum { NW_AVERAGE, NW_GAUSSIAN, NW_PARAMETRIC } nw_kind;

/* The parameter's name. d2l initialises it with torch.rand (U[0, 1)); the
 * DSL's initialisers are symmetric, so the graph declares U(-1, 1) and
 * trainers set U[0, 1) explicitly with kl_program_set_param. */
#define NW_PARAM_W "w"

typedef struct nw_graph {
  kl_graph *g;   /* owned by the caller: kl_graph_destroy */
  kl_value pred; /* f32[Q]: the estimate at each query */
  kl_value attn; /* f32[Q, K]: attention weights, rows sum to 1 */
  kl_value loss; /* f32 scalar sum_q (pred_q - target_q)^2 (with_loss only) */
  kl_value w;    /* the parameter (PARAMETRIC only) */
} nw_graph;

/* Builds one estimator's graph. Arguments, in order:
 *   queries f32[Q], keys f32[R, K], values f32[R, K]  (R = Q: each query
 *   has its own keys, as in d2l's leave-one-out training; R = 1: one key
 *   set broadcast over the queries, as at test time),
 *   targets f32[Q] when with_loss.
 * Returns pred, attn and then (with_loss) loss, in that order; the loss is
 * the sum of squared errors, which is what d2l prints and differentiates
 * (nn.MSELoss(reduction='none') then l.sum().backward()). On a bad shape
 * the graph carries the DSL error (kl_graph_error); NULL g only when out of
 * memory. */
nw_graph nw_kernel_build(nw_kind kind, int64_t queries, int64_t key_rows, int64_t keys,
                         bool with_loss);
/* The registry's graph hook: the parametric kernel trained leave-one-out on
 * 50 points. */
kl_graph *nw_kernel_default_graph(int *loss_output);

#endif
