/* STUB (replaced by the optimizer work): optimizer update nodes. */
#include "passes/optimizer.h"

bool pass_optimizer(ir_graph *g, const pass_optim *o, int n, const int *params, const int *grads,
                    ir_diag *d) {
  (void)g, (void)o, (void)n, (void)params, (void)grads;
  ir_diag_set(d, "optimizer: not implemented yet");
  return false;
}
