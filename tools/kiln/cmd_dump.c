/* `kiln dump-ir`: prints a graph at a stage of the pipeline, as IR text
 * (which parses back to the same graph) or as Graphviz DOT. */
#include <string.h>

#include <stdlib.h>

#include "backend/jit.h"
#include "passes/pipeline.h"
#include "tools/kiln/cli.h"

static const char usage[] =
    "usage: kiln dump-ir (MODEL | FILE.kir) [--train] [--after PASS | --stage STAGE]\n"
    "                    [--format text|dot]\n"
    "\n"
    "Prints the graph's IR.\n"
    "  --stage S    input (as written), final (after the whole pipeline; default),\n"
    "               llvm (the optimized LLVM module) or asm (the host's machine code)\n"
    "  --after P    after pass P of the pipeline (see 'kiln passes')\n"
    "  --format F   text (the .kir form; default) or dot (Graphviz)\n"
    "  --train      the training graph (needs autodiff, not built yet)\n";

int cmd_dump_ir(int argc, char **argv) {
  cli_args a = {.cmd = "dump-ir", .argc = argc, .argv = argv};
  const char *name, *val, *file = NULL, *stage = "final", *after = NULL, *format = "text";
  bool train = false;
  int k;
  while ((k = cli_next(&a, &name, &val))) {
    if (k == 2) {
      if (file) return cli_usage_error("dump-ir", "more than one graph ('%s')", val);
      file = val;
    } else if (!strcmp(name, "help")) {
      fputs(usage, stdout);
      return CLI_OK;
    } else if (!strcmp(name, "stage")) {
      if (!(stage = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "after")) {
      if (!(after = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "format")) {
      if (!(format = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "train")) {
      train = true;
    } else {
      return cli_usage_error("dump-ir", "unknown option '--%s'", name);
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
  if (train) return cli_error("dump-ir", "--train needs autodiff, which is not built yet");
  size_t n = strlen(file);
  if (n < 4 || strcmp(file + n - 4, ".kir"))
    return cli_error("dump-ir", "unknown model '%s' (no models are shipped yet; give a .kir file)",
                     file);

  ir_graph *g = cli_load_graph("dump-ir", file);
  if (!g) return CLI_ERROR;
  ir_diag d = {0};
  if (strcmp(stage, "input") || after) {
    pass_opts po = {.verify_each = true, .stop_after = after};
    if (!pass_run_pipeline(&g, &po, &d)) {
      ir_graph_destroy(g);
      return cli_error("dump-ir", "%s: %s", file, d.msg);
    }
  }
  int rc = CLI_OK;
  if (!strcmp(stage, "llvm") || !strcmp(stage, "asm")) {
    char *text = cg_jit_dump(g, false, stage, &d);
    if (text)
      fputs(text, stdout);
    else
      rc = cli_error("dump-ir", "%s: %s", file, d.msg);
    free(text);
  } else if (!strcmp(format, "dot")) {
    ir_print_dot(g, stdout);
  } else {
    ir_print(g, stdout, NULL);
  }
  ir_graph_destroy(g);
  return rc;
}
