/* The driver's internal entry points, for tools/kiln, tests and benches:
 * the pipeline on an ir_graph under the internal pass_opts (dump stages to
 * a directory, the training rows alone), the training graph without
 * compiling it, and the graph a train step compiled. It also brings the
 * raw backend compile and the DSL graph's IR, which those callers need
 * alongside. Not installed; users have kiln_compile.h and kiln_train.h. */
#ifndef KILN_DRIVER_TRAIN_INTERNAL_H
#define KILN_DRIVER_TRAIN_INTERNAL_H

#include "backend/kiln_backend.h"
#include "driver/kiln_train.h"
#include "frontend/graph_ir.h"
#include "passes/pipeline.h"

/* What kl_compile and kl_compile_train run with when given no options:
 * fusion and planning on, verify-each in debug builds. */
pass_opts kl_default_pass_opts(void);
/* kl_default_pass_opts() under the public options (NULL: unchanged);
 * false with d set for a pass name that does not exist or a negative fold
 * limit. */
bool kl_pass_opts_from(const kl_pass_options *in, pass_opts *out, ir_diag *d);

/* kl_compile after the inference pipeline (no autodiff rows) on a copy of
 * g under po (NULL: the defaults; copts->passes is ignored). */
kl_program *kl_compile_with(const ir_graph *g, const pass_opts *po, const kl_compile_opts *copts,
                            char **err);
/* kl_compile_train on an ir_graph: loss and params are node ids, po the
 * pipeline's options (NULL: the defaults; copts->passes is ignored). */
kl_train_step *kl_compile_train_with(const ir_graph *g, int loss, const int *params, int nparams,
                                     const kl_optim_opts *opt, const pass_opts *po,
                                     const kl_compile_opts *copts, char **err);
/* The graph kl_compile_train_with would compile, without compiling it: a
 * copy of g plus the gradient nodes, clipping and the update, returning the
 * loss (for dump-ir and tests). Owned by the caller (ir_graph_destroy);
 * NULL with *err (malloc'd) on failure. */
ir_graph *kl_train_graph_with(const ir_graph *g, int loss, const int *params, int nparams,
                              const kl_optim_opts *opt, const pass_opts *po, char **err);
/* The graph compiled: the forward graph plus gradient and update nodes
 * (borrowed), for dump-ir and tests. */
const ir_graph *kl_train_step_graph(const kl_train_step *s);

#endif
