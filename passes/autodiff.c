/* STUB (replaced by the autodiff work): reverse-mode differentiation. */
#include "passes/autodiff.h"

bool pass_autodiff(ir_graph *g, int loss, int nwrt, const int *wrt, int *grads, ir_diag *d) {
  (void)g, (void)loss, (void)nwrt, (void)wrt, (void)grads;
  ir_diag_set(d, "autodiff: not implemented yet");
  return false;
}
