/* kiln_train.h — the public train-step API: one compiled program that runs
 * forward, backward, gradient clipping and the optimizer update per call.
 * It lives in driver/, the layer above passes/ and backend/, because it
 * runs passes (autodiff, optimizer, the pipeline) and then compiles.
 * Ownership as in kiln_run.h: create/destroy pairs; returned messages are
 * borrowed. */
#ifndef KILN_TRAIN_H
#define KILN_TRAIN_H

#include <kiln/kiln_compile.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- training steps ------------------------------------------------------ */

typedef enum { KL_OPT_SGD, KL_OPT_ADAM, KL_OPT_ADAMW } kl_optimizer;

/* Learning rate at step t (0-based; t1 = t + 1):
 * CONSTANT      lr
 * WARMUP_RSQRT  lr * sqrt(warmup) * min(t1^-0.5, t1 * warmup^-1.5): linear
 *               warm-up to lr at t1 = warmup, then inverse square root
 *               ("Attention Is All You Need" with lr = d^-0.5 warmup^-0.5)
 * COSINE        linear warm-up over `warmup` steps to lr, then
 *               min_lr + (lr - min_lr) (1 + cos(pi s / S)) / 2 with
 *               s = min(t - warmup, S), S = total_steps - warmup.
 * NANOGPT       nanoGPT's get_lr (train.py): COSINE with the warm-up
 *               lr (t + 1) / (warmup + 1) while t < warmup; total_steps is
 *               its lr_decay_iters. */
typedef enum { KL_LR_CONSTANT, KL_LR_WARMUP_RSQRT, KL_LR_COSINE, KL_LR_NANOGPT } kl_lr_schedule;

/* PyTorch's semantics and defaults where a field is 0:
 * SGD: momentum buffer b = momentum b + g (no dampening), p -= lr_t b
 *      (plain SGD when momentum is 0); weight_decay adds wd p to g.
 * ADAM: beta1 0.9, beta2 0.999, eps 1e-8 when 0; weight_decay adds wd p to
 *      g. ADAMW: the same moments, decay applied as p *= 1 - lr_t wd.
 * clip_norm > 0: global-norm clipping of all gradients together before the
 *      update, as torch.nn.utils.clip_grad_norm_ (coef = clip / (norm +
 *      1e-6), applied when below 1).
 * decay_min_rank: weight decay applies only to parameters of at least this
 *      rank (0 or 1: all); 2 is nanoGPT's configure_optimizers grouping
 *      (matrices and embeddings decay; biases and LayerNorm gains do not),
 *      i.e. two torch param groups, one with weight_decay 0. */
typedef struct kl_optim_opts {
  kl_optimizer kind;
  double lr;
  double momentum;
  double beta1, beta2, eps;
  double weight_decay;
  double clip_norm;
  kl_lr_schedule schedule;
  int64_t warmup, total_steps;
  double min_lr;
  int decay_min_rank;
} kl_optim_opts;

typedef struct kl_train_step kl_train_step;

/* Differentiates `loss` (a float scalar of g) with respect to `params`
 * (values of kl_param/kl_param_init; NULL or nparams 0 = every trainable
 * parameter), appends clipping and the optimizer update, runs the pass
 * pipeline (copts->passes as for kl_compile) and compiles forward, backward
 * and update into one program in training mode (dropout on). copts as for
 * kl_compile (training is forced on). Optimizer state lives in parameters
 * named "<param>@<slot>" (slots m, v, momentum), zero-initialised. NULL
 * with *err (malloc'd) on failure. */
kl_train_step *kl_compile_train(const kl_graph *g, kl_value loss, const kl_value *params,
                                int nparams, const kl_optim_opts *opt, const kl_compile_opts *copts,
                                char **err);
void kl_train_step_destroy(kl_train_step *s);
/* One step: forward, backward, clipping, update. inputs: one per graph
 * argument, as kl_run. *loss (may be NULL) receives the loss computed
 * before the update. Allocates nothing. NULL or a message (borrowed). */
const char *kl_train_step_run(kl_train_step *s, kl_tensor *const *inputs, int ninputs,
                              double *loss);
/* The program inside (borrowed): parameters, step counter. */
kl_program *kl_train_step_program(kl_train_step *s);

#ifdef __cplusplus
}
#endif
#endif
