/* The verify pass: the pipeline's first step, so that every later pass may
 * assume a well-formed graph. It changes nothing. */
#include "passes/pipeline.h"

bool pass_verify(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  (void)o;
  *changed = false;
  return ir_verify(*g, d);
}
