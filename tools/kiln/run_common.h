/* What `kiln run` and `kiln grad` share around tensor_io.h: the options both
 * take, and a session that loads the graph, compiles it, binds the inputs,
 * runs it and frees it all. Functions returning int give a CLI exit status
 * with the message already printed ("kiln CMD: ..."). */
#ifndef KILN_CLI_RUN_COMMON_H
#define KILN_CLI_RUN_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/kiln_run.h"
#include "ir/ir.h"
#include "passes/pipeline.h"
#include "runtime/safetensors.h"
#include "tools/kiln/cli.h"

typedef struct run_common_opts {
  const char *file, *inputs, *outputs;
  unsigned long long seed, threads;
  int64_t max_memory; /* --max-memory: kl_compile_opts.max_memory */
  bool train, print, ref, no_cache, check_numerics;
  pass_opts passes; /* the pipeline flags (pass_flags.h) */
} run_common_opts;

/* A command's own option (name, with val when given inline): returns CLI_OK
 * when taken, CLI_USAGE on a bad value, RUN_OPT_OTHER when unknown. */
enum { RUN_OPT_OTHER = 3 };
typedef int (*run_extra_opt_fn)(cli_args *a, const char *name, const char *val, void *ctx);

/* Scans the command's arguments: the graph file, --help (prints usage;
 * returns -1), --inputs, --outputs, --backend, --threads, --no-cache,
 * --seed, --train, --print, --max-memory, --check-numerics, the pipeline flags, and through
 * extra the command's own options; the rest are usage errors, as is a missing graph file. */
int run_parse_opts(const char *cmd, int argc, char **argv, const char *usage, run_common_opts *o,
                   run_extra_opt_fn extra, void *ctx);

typedef struct run_session {
  ir_graph *g;
  int nargs, nouts;
  int *arg_ids;
  const rt_tensor **args; /* borrowed from st */
  kl_tensor **ins, **outs;
  rt_safetensors *st;
  kl_program *prog;
  char *err;
  double compile_ms, run_ms;
} run_session;

/* Parses o->file into s->g and finds its arguments. */
int run_open(const char *cmd, const run_common_opts *o, run_session *s);
/* Compiles s->g and makes its inputs: --inputs bound by name, the rest
 * drawn from o->seed. */
int run_prepare(const char *cmd, const run_common_opts *o, run_session *s);
/* Runs the program into s->outs (nouts results). */
int run_exec(const char *cmd, const run_common_opts *o, run_session *s, int nouts);
/* Writes outs as names to --outputs and prints them when --print or
 * without --outputs. */
int run_emit(const char *cmd, const run_common_opts *o, int n, const char *const *names,
             kl_tensor *const *outs);
void run_close(run_session *s);

#endif
