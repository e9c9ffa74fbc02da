/* `kiln dump-ir`: prints a graph at a stage of the pipeline, as IR text
 * (which parses back to the same graph) or as Graphviz DOT. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/jit.h"
#include "backend/mem_guard.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "models/models.h"
#include "passes/builder.h"
#include "passes/pipeline.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/mem_flag.h"
#include "tools/kiln/pass_flags.h"

static const char usage[] =
    "usage: kiln dump-ir (MODEL | FILE) [--train] [--after PASS | --stage STAGE]\n"
    "                    [--format text|dot] [--max-memory B] [pipeline flags]\n"
    "\n"
    "Prints the graph's IR. FILE is IR text (any name; a MODEL name wins unless the\n"
    "file's name ends in .kir or holds a '/'). A graph whose run would need more than\n"
    "--max-memory gets a warning on stderr naming its largest buffers; it is still\n"
    "printed (dump-ir runs nothing).\n"
    "  --stage S    input (as written), final (after the whole pipeline, with the\n"
    "               memory plan as comments; default), llvm (the optimized LLVM\n"
    "               module) or asm (the host's machine code)\n"
    "  --after P    after pass P of the pipeline (see 'kiln passes'; as --stop-after)\n"
    "  --format F   text (the .kir form; default) or dot (Graphviz)\n"
    "  --train      the training step: gradients and the optimizer update appended.\n"
    "               The loss is the model's; for a .kir file the sum of output 0,\n"
    "               w.r.t. every trainable param, with SGD (lr 0.1)\n";

/* Whether the argument names IR text rather than a model: a .kir name or
 * a path is always a file; any other name is a model when one is shipped
 * under it, else a file if one exists. */
static bool names_file(const char *file) {
  size_t n = strlen(file);
  if ((n >= 4 && !strcmp(file + n - 4, ".kir")) || strchr(file, '/')) return true;
  return !kl_model_find(file) && access(file, F_OK) == 0;
}

/* The graph of MODEL (its default training graph) or of FILE; *loss
 * receives the loss node's id (a file's output 0, summed when it is not a
 * scalar). NULL after printing an error. */
static ir_graph *load(const char *file, bool train, int *loss, double *lr, int *rc) {
  *rc = CLI_ERROR;
  if (names_file(file)) {
    ir_graph *g = cli_load_graph("dump-ir", file);
    if (!g) return NULL;
    *loss = g->rets[0];
    *lr = 0.1;
    const ir_node *o = g->nodes[*loss];
    if (train && o->type.rank > 0 && ir_dtype_is_float(o->type.dtype)) {
      ir_diag d = {0}; /* only out of memory can fail: *loss < 0 says so */
      pass_builder b;
      pb_init(&b, g, &d, "");
      *loss = pb_sum_all(&b, *loss);
    }
    return g;
  }
  const kl_model_info *m = kl_model_find(file);
  if (!m || !m->graph) {
    if (m)
      cli_error("dump-ir", "model '%s' is planned but not built yet", file);
    else
      cli_error("dump-ir",
                "'%s' is neither a shipped model (see 'kiln models') nor an existing file", file);
    return NULL;
  }
  int out = 0;
  kl_graph *kg = m->graph(&out);
  const char *e = kg ? kl_graph_error(kg) : "out of memory";
  ir_diag d = {0};
  ir_graph *g = e ? NULL : ir_graph_clone(kl_graph_ir(kg), &d);
  if (!g)
    cli_error("dump-ir", "model '%s': %s", file, e ? e : d.msg);
  else
    *loss = g->rets[out];
  *lr = m->lr;
  kl_graph_destroy(kg);
  return g;
}

int cmd_dump_ir(int argc, char **argv) {
  cli_args a = {.cmd = "dump-ir", .argc = argc, .argv = argv};
  const char *name, *val, *file = NULL, *stage = "final", *after = NULL, *format = "text";
  bool train = false;
  int64_t max_memory = 0;
  pass_opts po = kl_default_pass_opts();
  po.verify_each = true; /* a dump is for looking: check every stage */
  int k;
  while ((k = cli_next(&a, &name, &val))) {
    if (k == 2) {
      if (file) return cli_usage_error("dump-ir", "more than one graph ('%s')", val);
      file = val;
    } else if (!strcmp(name, "help")) {
      fputs(usage, stdout);
      fputs(cli_max_memory_usage, stdout);
      fputs("Pipeline flags:\n", stdout);
      fputs(cli_pass_flags_usage, stdout);
      return CLI_OK;
    } else if (!strcmp(name, "max-memory")) {
      int rc = cli_max_memory_opt(&a, name, val, &max_memory);
      if (rc) return rc;
    } else if (!strcmp(name, "stage")) {
      if (!(stage = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "after")) {
      if (!(after = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "format")) {
      if (!(format = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "train")) {
      train = true;
    } else {
      int rc = cli_pass_flag(&a, name, val, &po);
      if (rc == CLI_PASS_OTHER) return cli_usage_error("dump-ir", "unknown option '--%s'", name);
      if (rc) return rc;
    }
  }
  if (!file) return cli_usage_error("dump-ir", "no model or graph file given");
  if (strcmp(format, "text") && strcmp(format, "dot"))
    return cli_usage_error("dump-ir", "--format takes text or dot, not '%s'", format);
  const char *stages[] = {"input", "final", "llvm", "asm"};
  bool known = false;
  for (int i = 0; i < 4; i++)
    known |= !strcmp(stage, stages[i]);
  if (!known)
    return cli_usage_error("dump-ir", "--stage takes input, final, llvm or asm, not '%s'", stage);
  if (after && !pass_lookup(after))
    return cli_usage_error("dump-ir", "no pass named '%s' (see 'kiln passes')", after);
  if (after) po.stop_after = after;
  bool run_passes = strcmp(stage, "input") || po.stop_after;
  if (!run_passes && (po.print_after || po.print_dir))
    return cli_usage_error("dump-ir", "--stage input runs no pass to print after");
  int loss, rc;
  double lr;
  ir_graph *g = load(file, train, &loss, &lr, &rc);
  if (!g) return rc;
  ir_diag d = {0};
  if (train) {
    /* the training rows run inside the pipeline, after fusion */
    kl_optim_opts o = {.kind = KL_OPT_SGD, .lr = lr};
    char *err = NULL;
    pass_opts tpo = po;
    tpo.train_only = !run_passes;
    ir_graph *tg = loss >= 0 ? kl_train_graph_with(g, loss, NULL, 0, &o, &tpo, &err) : NULL;
    ir_graph_destroy(g);
    if (!tg) {
      rc = cli_error("dump-ir", "%s: %s", file, err ? err : "cannot sum output 0");
      free(err);
      return rc;
    }
    g = tg;
  } else if (run_passes && !pass_run_pipeline(&g, &po, &d)) {
    ir_graph_destroy(g);
    return cli_error("dump-ir", "%s: %s", file, d.msg);
  }
  /* A warning, not a refusal: dump-ir allocates none of the graph's
   * buffers, and looking at a graph is how one finds why it is too big. */
  if (!cg_mem_check(g, false, max_memory, &d))
    fprintf(stderr, "kiln dump-ir: warning: %s: too big to run: %s\n", file, d.msg);
  rc = CLI_OK;
  if (!strcmp(stage, "llvm") || !strcmp(stage, "asm")) {
    char *text = cg_jit_dump(g, NULL, stage, &d);
    if (text)
      fputs(text, stdout);
    else
      rc = cli_error("dump-ir", "%s: %s", file, d.msg);
    free(text);
  } else if (!strcmp(format, "dot")) {
    ir_print_dot(g, stdout);
  } else {
    ir_print(g, stdout, NULL);
    if (!strcmp(stage, "final") && g->plan) ir_print_plan(g, stdout);
  }
  ir_graph_destroy(g);
  return rc;
}
