/* The pass table and the driver that runs it with --verify-each,
 * --print-after and --stop-after semantics. Later issues add rows here
 * (canonicalize, constant-fold, CSE, DCE, fuse-attention, ...). */
#include <string.h>

#include "passes/pipeline.h"

static const pass_info pipeline[] = {
    {"verify", pass_verify, false, "reject malformed graphs before any rewrite"},
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

bool pass_run_pipeline(ir_graph **g, const pass_opts *opts, ir_diag *d) {
  pass_opts none = {0};
  if (!opts) opts = &none;
  int n;
  const pass_info *p = pass_pipeline(&n);
  for (int i = 0; i < n; i++) {
    bool changed;
    int rounds = 0;
    do {
      changed = false;
      ir_diag pd = {0};
      if (!p[i].run(g, &changed, &pd)) {
        ir_diag_set(d, "pass %s: %s", p[i].name, pd.msg);
        return false;
      }
      if (opts->verify_each && !ir_verify(*g, &pd)) {
        ir_diag_set(d, "after pass %s: %s", p[i].name, pd.msg);
        return false;
      }
    } while (p[i].fixpoint && changed && ++rounds < 100);
    if (opts->print_after &&
        (strcmp(opts->print_after, "all") == 0 || strcmp(opts->print_after, p[i].name) == 0)) {
      FILE *f = opts->print_to ? opts->print_to : stderr;
      fprintf(f, "# after %s\n", p[i].name);
      ir_print(*g, f, NULL);
    }
    if (opts->stop_after && strcmp(opts->stop_after, p[i].name) == 0) break;
  }
  return true;
}
