/* The options and the load-compile-bind-run sequence shared by `kiln run`
 * and `kiln grad` (run_common.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/tensor_bridge.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "tools/kiln/mem_flag.h"
#include "tools/kiln/pass_flags.h"
#include "tools/kiln/run_common.h"
#include "tools/kiln/tensor_io.h"

/* One step of the scan; RUN_OPT_OTHER when the option is not a shared one. */
static int common_opt(cli_args *a, int k, const char *name, const char *val, const char *usage,
                      run_common_opts *o) {
  if (k == 2) {
    if (o->file) return cli_usage_error(a->cmd, "more than one graph file ('%s')", val);
    o->file = val;
  } else if (!strcmp(name, "help")) {
    fputs(usage, stdout);
    fputs(cli_max_memory_usage, stdout);
    fputs("Pipeline flags:\n", stdout);
    fputs(cli_pass_flags_usage, stdout);
    return -1;
  } else if (!strcmp(name, "inputs")) {
    if (!(o->inputs = cli_value(a, name, val))) return CLI_USAGE;
  } else if (!strcmp(name, "outputs")) {
    if (!(o->outputs = cli_value(a, name, val))) return CLI_USAGE;
  } else if (!strcmp(name, "backend")) {
    const char *b = cli_value(a, name, val);
    if (!b) return CLI_USAGE;
    if (strcmp(b, "ref") && strcmp(b, "jit"))
      return cli_usage_error(a->cmd, "--backend takes jit or ref, not '%s'", b);
    o->ref = !strcmp(b, "ref");
  } else if (!strcmp(name, "threads")) {
    const char *s = cli_value(a, name, val);
    if (!s) return CLI_USAGE;
    if (!cli_parse_u64(s, &o->threads) || o->threads < 1 || o->threads > 1024)
      return cli_usage_error(a->cmd, "--threads takes a number from 1 to 1024, not '%s'", s);
  } else if (!strcmp(name, "seed")) {
    const char *s = cli_value(a, name, val);
    if (!s) return CLI_USAGE;
    if (!cli_parse_u64(s, &o->seed))
      return cli_usage_error(a->cmd, "--seed takes a non-negative integer, not '%s'", s);
  } else if (!strcmp(name, "max-memory")) {
    return cli_max_memory_opt(a, name, val, &o->max_memory);
  } else if (!strcmp(name, "no-cache")) {
    o->no_cache = true;
  } else if (!strcmp(name, "train")) {
    o->train = true;
  } else if (!strcmp(name, "print")) {
    o->print = true;
  } else if (!strcmp(name, "check-numerics")) {
    o->check_numerics = true;
  } else {
    int rc = cli_pass_flag(a, name, val, &o->passes);
    return rc == CLI_PASS_OTHER ? RUN_OPT_OTHER : rc;
  }
  return CLI_OK;
}

int run_parse_opts(const char *cmd, int argc, char **argv, const char *usage, run_common_opts *o,
                   run_extra_opt_fn extra, void *ctx) {
  cli_args a = {.cmd = cmd, .argc = argc, .argv = argv};
  const char *name, *val;
  int k;
  while ((k = cli_next(&a, &name, &val))) {
    int rc = common_opt(&a, k, name, val, usage, o);
    if (rc == RUN_OPT_OTHER) rc = extra(&a, name, val, ctx);
    if (rc == RUN_OPT_OTHER) return cli_usage_error(cmd, "unknown option '--%s'", name);
    if (rc) return rc;
  }
  if (!o->file) return cli_usage_error(cmd, "no graph file given");
  return CLI_OK;
}

int run_open(const char *cmd, const run_common_opts *o, run_session *s) {
  memset(s, 0, sizeof *s);
  if (!(s->g = cli_load_graph(cmd, o->file))) return CLI_ERROR;
  s->nargs = ir_graph_args(s->g, NULL);
  s->arg_ids = calloc((size_t)s->nargs + 1, sizeof *s->arg_ids);
  s->args = calloc((size_t)s->nargs + 1, sizeof *s->args);
  s->ins = calloc((size_t)s->nargs + 1, sizeof *s->ins);
  if (!s->arg_ids || !s->args || !s->ins) return cli_error(cmd, "out of memory");
  ir_graph_args(s->g, s->arg_ids);
  return CLI_OK;
}

int run_prepare(const char *cmd, const run_common_opts *o, run_session *s) {
  kl_compile_opts co = {.backend = o->ref ? KL_BACKEND_REF : KL_BACKEND_JIT,
                        .seed = o->seed,
                        .training = o->train,
                        .threads = (int)o->threads,
                        .no_cache = o->no_cache,
                        .max_memory = o->max_memory,
                        .check_numerics = o->check_numerics};
  double t0 = cli_now_ms();
  if (!(s->prog = kl_compile_with(s->g, &o->passes, &co, &s->err)))
    return cli_error(cmd, "%s: %s", o->file, s->err ? s->err : "out of memory");
  s->compile_ms = cli_now_ms() - t0;
  if (o->inputs) {
    ir_diag d = {0};
    if (!(s->st = rt_st_read(o->inputs, &d))) return cli_error(cmd, "%s", d.msg);
    int rc = tio_bind_inputs(cmd, s->g, s->st, o->inputs, s->arg_ids, s->nargs, s->args, s->prog);
    if (rc) return rc;
  }
  return tio_make_inputs(cmd, o->file, s->g, s->arg_ids, s->nargs, s->args, o->seed, s->ins);
}

int run_exec(const char *cmd, const run_common_opts *o, run_session *s, int nouts) {
  if (!(s->outs = calloc((size_t)nouts + 1, sizeof *s->outs)))
    return cli_error(cmd, "out of memory");
  s->nouts = nouts;
  double t0 = cli_now_ms();
  const char *msg = kl_run(s->prog, s->ins, s->nargs, s->outs, nouts);
  s->run_ms = cli_now_ms() - t0;
  if (msg) return cli_error(cmd, "%s: %s", o->file, msg);
  return CLI_OK;
}

int run_emit(const char *cmd, const run_common_opts *o, int n, const char *const *names,
             kl_tensor *const *outs) {
  int rc = o->outputs ? tio_write(cmd, o->outputs, n, names, outs) : CLI_OK;
  if (rc == CLI_OK && (o->print || !o->outputs))
    for (int i = 0; i < n; i++)
      tio_print(names[i], cg_tensor_rt(outs[i]));
  return rc;
}

void run_close(run_session *s) {
  for (int i = 0; s->ins && i < s->nargs; i++)
    kl_tensor_destroy(s->ins[i]);
  for (int i = 0; s->outs && i < s->nouts; i++)
    kl_tensor_destroy(s->outs[i]);
  free(s->ins);
  free(s->outs);
  free(s->args);
  free(s->arg_ids);
  free(s->err);
  rt_st_destroy(s->st);
  kl_program_destroy(s->prog);
  ir_graph_destroy(s->g);
  memset(s, 0, sizeof *s);
}
