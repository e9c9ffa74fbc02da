/* Optimizer update as graph nodes: global-norm clipping, the learning-rate
 * schedule (from the `step` node), SGD with momentum, Adam and AdamW, and
 * one `assign` per parameter that writes its new value in place. The
 * semantics are kl_optim_opts' in backend/kiln_run.h (PyTorch's). */
#ifndef KILN_PASS_OPTIMIZER_H
#define KILN_PASS_OPTIMIZER_H

#include "ir/ir.h"

typedef enum { PASS_OPT_SGD, PASS_OPT_ADAM, PASS_OPT_ADAMW } pass_opt_kind;
typedef enum {
  PASS_LR_CONSTANT,
  PASS_LR_WARMUP_RSQRT,
  PASS_LR_COSINE,
  PASS_LR_NANOGPT
} pass_lr_kind;

/* Field for field the same as kl_optim_opts (0 = PyTorch's default). */
typedef struct pass_optim {
  pass_opt_kind kind;
  double lr;
  double momentum;
  double beta1, beta2, eps;
  double weight_decay;
  double clip_norm;
  pass_lr_kind schedule;
  int64_t warmup, total_steps;
  double min_lr;
  int decay_min_rank; /* weight decay only on params of at least this rank */
} pass_optim;

/* Appends to g the update of params[i] (PARAM node ids, float, trainable)
 * from grads[i] (pass_autodiff's result ids, same types). State slots are
 * new PARAM nodes named "<param>@m", "<param>@v", "<param>@momentum" with
 * init "zeros" and trainable = false. Every parameter and every slot gets
 * exactly one assign, placed after all other nodes that read it (the
 * verifier's rule). The returns of g are unchanged; assign nodes are roots
 * that later passes (DCE) must keep. On failure returns false with d set. */
bool pass_optimizer(ir_graph *g, const pass_optim *o, int n, const int *params, const int *grads,
                    ir_diag *d);

#endif
