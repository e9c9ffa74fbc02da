/* kiln — the command-line driver (DESIGN.md, "The CLI"). Dispatches to one
 * function per command; exit status 0 ok, 1 error, 2 usage error. */
#include <stdio.h>
#include <string.h>

#include "tools/kiln/cli.h"
#include "tools/kiln/train.h"

int cmd_grad(int argc, char **argv);      /* cmd_grad.c */
int cmd_translate(int argc, char **argv); /* cmd_translate.c */

static const char usage[] =
    "usage: kiln COMMAND [OPTIONS]\n"
    "\n"
    "kiln compiles computation graphs written in a small C DSL or in .kir text.\n"
    "\n"
    "commands:\n"
    "  run FILE.kir       evaluate a graph (inputs/outputs as safetensors)\n"
    "  dump-ir FILE.kir   print a graph's IR at a pipeline stage, as text or DOT\n"
    "  passes             list the compilation pipeline's passes\n"
    "  models             list the shipped models and their settings\n"
    "  train MODEL        train a shipped model on its built-in data (nw-kernel)\n"
    "  grad FILE.kir      gradients of a graph's output 0 by reverse-mode autodiff\n"
    "  translate MODEL    translate sentences with a trained checkpoint (seq2seq-attn)\n"
    "  bench: not built yet (it says what it needs)\n"
    "\n"
    "'kiln COMMAND --help' describes a command.\n";

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return CLI_OK;
  }
  if (!strcmp(cmd, "--version")) {
    puts("kiln 0.1.0");
    return CLI_OK;
  }
  if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
  if (!strcmp(cmd, "grad")) return cmd_grad(argc - 2, argv + 2);
  if (!strcmp(cmd, "dump-ir")) return cmd_dump_ir(argc - 2, argv + 2);
  if (!strcmp(cmd, "models")) return cmd_models(argc - 2, argv + 2);
  if (!strcmp(cmd, "passes")) return cmd_passes(argc - 2, argv + 2);
  if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
  if (!strcmp(cmd, "translate")) return cmd_translate(argc - 2, argv + 2);
  return cmd_not_yet(cmd, argc - 2, argv + 2);
}
