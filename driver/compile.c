/* The public compile of kiln_compile.h: the inference pipeline on a copy of
 * the graph, then the backend's compile. Also the mapping from the public
 * kl_pass_options to the pipeline's own pass_opts, which the train step
 * shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/train_internal.h"
#include "ir/ir.h"

pass_opts kl_default_pass_opts(void) {
#ifdef NDEBUG
  return (pass_opts){.verify_each = false};
#else
  return (pass_opts){.verify_each = true};
#endif
}

static bool known_pass(const char *field, const char *name, bool all_ok, ir_diag *d) {
  if (!name || pass_lookup(name) || (all_ok && strcmp(name, "all") == 0)) return true;
  ir_diag_set(d, "kl_pass_options.%s: no pass named '%.200s' (see 'kiln passes')", field, name);
  return false;
}

bool kl_pass_opts_from(const kl_pass_options *in, pass_opts *out, ir_diag *d) {
  *out = kl_default_pass_opts();
  if (!in) return true;
  if (!known_pass("print_after", in->print_after, true, d) ||
      !known_pass("stop_after", in->stop_after, false, d))
    return false;
  if (in->fold_limit < 0) {
    ir_diag_set(d, "kl_pass_options.fold_limit: %lld is negative (0 means the default)",
                (long long)in->fold_limit);
    return false;
  }
  /* Debug builds verify after every pass whatever the caller says. */
  out->verify_each = out->verify_each || in->verify_each;
  out->no_fusion = in->no_fusion;
  out->no_plan = in->no_plan;
  out->fold_limit = in->fold_limit;
  out->print_after = in->print_after;
  out->print_to = in->print_to ? in->print_to : stderr;
  out->stop_after = in->stop_after;
  out->explain = in->explain_fusion;
  return true;
}

/* "kl_compile: MSG", malloc'd (NULL when out of memory). */
static char *compile_error(const char *msg) {
  size_t n = strlen(msg) + sizeof "kl_compile: ";
  char *s = malloc(n);
  if (s) snprintf(s, n, "kl_compile: %s", msg);
  return s;
}

kl_program *kl_compile_with(const ir_graph *g, const pass_opts *po, const kl_compile_opts *copts,
                            char **err) {
  if (err) *err = NULL;
  if (!g || g->has_error) return kl_compile_unoptimized(g, copts, err); /* its message */
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  pass_opts o = po ? *po : kl_default_pass_opts();
  o.train = NULL;
  if (c && !pass_run_pipeline(&c, &o, &d)) {
    ir_graph_destroy(c);
    c = NULL;
  }
  if (!c) {
    if (err) *err = compile_error(d.msg[0] ? d.msg : "out of memory");
    return NULL;
  }
  kl_program *p = kl_compile_unoptimized(c, copts, err);
  ir_graph_destroy(c);
  return p;
}

kl_program *kl_compile(const kl_graph *g, const kl_compile_opts *opts, char **err) {
  if (err) *err = NULL;
  ir_diag d = {0};
  pass_opts po;
  if (!kl_pass_opts_from(opts ? opts->passes : NULL, &po, &d)) {
    if (err) *err = compile_error(d.msg);
    return NULL;
  }
  return kl_compile_with(kl_graph_ir(g), &po, opts, err);
}
