/* `kiln run FILE.kir`: evaluates a graph. Inputs come from a safetensors
 * file by argument name (parameters by their names); missing ones are drawn
 * from a seeded RNG. Outputs out0, out1, ... go to a safetensors file,
 * written atomically, and/or to stdout. */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "backend/tensor_bridge.h"
#include "runtime/safetensors.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/tensor_io.h"

static const char usage[] =
    "usage: kiln run FILE.kir [--inputs IN.safetensors] [--outputs OUT.safetensors]\n"
    "                [--backend jit|ref] [--threads N] [--no-cache] [--time] [--seed N]\n"
    "                [--train] [--print]\n"
    "\n"
    "Evaluates the graph in FILE.kir.\n"
    "  --inputs F    tensors named after the graph's arguments (without %) or its\n"
    "                parameters; arguments left out are drawn from a seeded RNG\n"
    "                (floats normal(0,1), integers uniform in [0,4], bools fair)\n"
    "  --outputs F   write the results as out0, out1, ... (safetensors, atomically)\n"
    "  --backend B   jit (LLVM-compiled native code; default) or ref (the reference\n"
    "                interpreter, the oracle)\n"
    "  --threads N   threads for kernels and OpenBLAS (default: all cores)\n"
    "  --no-cache    do not read or write the compiled-code cache ($XDG_CACHE_HOME/kiln)\n"
    "  --time        print compile and run times to stderr\n"
    "  --seed N      seed for missing inputs, parameter initialisation, dropout (0)\n"
    "  --train       run dropout as in training\n"
    "  --print       print the outputs (the default when --outputs is not given)\n";

typedef struct run_opts {
  const char *file, *inputs, *outputs;
  unsigned long long seed, threads;
  bool train, print, ref, no_cache, time;
} run_opts;

static int parse_opts(int argc, char **argv, run_opts *o) {
  cli_args a = {.cmd = "run", .argc = argc, .argv = argv};
  const char *name, *val;
  int k;
  while ((k = cli_next(&a, &name, &val))) {
    if (k == 2) {
      if (o->file) return cli_usage_error("run", "more than one graph file ('%s')", val);
      o->file = val;
    } else if (!strcmp(name, "help")) {
      fputs(usage, stdout);
      return -1;
    } else if (!strcmp(name, "inputs")) {
      if (!(o->inputs = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "outputs")) {
      if (!(o->outputs = cli_value(&a, name, val))) return CLI_USAGE;
    } else if (!strcmp(name, "backend")) {
      const char *b = cli_value(&a, name, val);
      if (!b) return CLI_USAGE;
      if (strcmp(b, "ref") && strcmp(b, "jit"))
        return cli_usage_error("run", "--backend takes jit or ref, not '%s'", b);
      o->ref = !strcmp(b, "ref");
    } else if (!strcmp(name, "threads")) {
      const char *s = cli_value(&a, name, val);
      if (!s) return CLI_USAGE;
      if (!cli_parse_u64(s, &o->threads) || o->threads < 1 || o->threads > 1024)
        return cli_usage_error("run", "--threads takes a number from 1 to 1024, not '%s'", s);
    } else if (!strcmp(name, "no-cache")) {
      o->no_cache = true;
    } else if (!strcmp(name, "time")) {
      o->time = true;
    } else if (!strcmp(name, "seed")) {
      const char *s = cli_value(&a, name, val);
      if (!s) return CLI_USAGE;
      if (!cli_parse_u64(s, &o->seed))
        return cli_usage_error("run", "--seed takes a non-negative integer, not '%s'", s);
    } else if (!strcmp(name, "train")) {
      o->train = true;
    } else if (!strcmp(name, "print")) {
      o->print = true;
    } else {
      return cli_usage_error("run", "unknown option '--%s'", name);
    }
  }
  if (!o->file) return cli_usage_error("run", "no graph file given");
  return CLI_OK;
}

static int write_outputs(const run_opts *o, kl_tensor **outs, int nouts) {
  char(*names)[32] = calloc((size_t)nouts + 1, sizeof *names);
  const char **np = calloc((size_t)nouts + 1, sizeof *np);
  if (!names || !np) {
    free(names);
    free(np);
    return cli_error("run", "out of memory");
  }
  for (int i = 0; i < nouts; i++) {
    snprintf(names[i], sizeof names[i], "out%d", i);
    np[i] = names[i];
  }
  int rc = o->outputs ? tio_write("run", o->outputs, nouts, np, outs) : CLI_OK;
  if (rc == CLI_OK && (o->print || !o->outputs)) {
    for (int i = 0; i < nouts; i++)
      tio_print(np[i], cg_tensor_rt(outs[i]));
  }
  free(names);
  free(np);
  return rc;
}

int cmd_run(int argc, char **argv) {
  run_opts o = {0};
  int rc = parse_opts(argc, argv, &o);
  if (rc) return rc < 0 ? CLI_OK : rc;
  ir_graph *g = cli_load_graph("run", o.file);
  if (!g) return CLI_ERROR;
  int nargs = ir_graph_args(g, NULL);
  int *arg_ids = calloc((size_t)nargs + 1, sizeof *arg_ids);
  const rt_tensor **args = calloc((size_t)nargs + 1, sizeof *args);
  kl_tensor **ins = calloc((size_t)nargs + 1, sizeof *ins);
  kl_tensor **outs = calloc((size_t)g->nrets + 1, sizeof *outs);
  rt_safetensors *st = NULL;
  kl_program *prog = NULL;
  char *err = NULL;
  ir_diag d = {0};
  if (!arg_ids || !args || !ins || !outs) {
    rc = cli_error("run", "out of memory");
    goto done;
  }
  ir_graph_args(g, arg_ids);
  kl_compile_opts co = {.backend = o.ref ? KL_BACKEND_REF : KL_BACKEND_JIT,
                        .seed = o.seed,
                        .training = o.train,
                        .threads = (int)o.threads,
                        .no_cache = o.no_cache};
  double t0 = cli_now_ms();
  if (!(prog = kl_compile(g, &co, &err))) {
    rc = cli_error("run", "%s: %s", o.file, err ? err : "out of memory");
    goto done;
  }
  double t_compile = cli_now_ms() - t0;
  if (o.inputs) {
    if (!(st = rt_st_read(o.inputs, &d))) {
      rc = cli_error("run", "%s", d.msg);
      goto done;
    }
    if ((rc = tio_bind_inputs("run", g, st, o.inputs, arg_ids, nargs, args, prog))) goto done;
  }
  if ((rc = tio_make_inputs("run", g, arg_ids, nargs, args, o.seed, ins))) goto done;
  t0 = cli_now_ms();
  const char *msg = kl_run(prog, ins, nargs, outs, g->nrets);
  double t_run = cli_now_ms() - t0;
  if (msg) {
    rc = cli_error("run", "%s: %s", o.file, msg);
    goto done;
  }
  if (o.time) {
    const kl_compile_stats *st = kl_program_stats(prog);
    fprintf(stderr, "kiln run: compile %.1f ms", t_compile);
    if (!o.ref)
      fprintf(stderr, " (%s: lower %.1f, optimize %.1f, codegen %.1f, link %.1f)",
              st->cache_hit ? "cache hit" : "cache miss", st->lower_ms, st->optimize_ms,
              st->codegen_ms, st->link_ms);
    fprintf(stderr, ", run %.3f ms\n", t_run);
  }
  rc = write_outputs(&o, outs, g->nrets);
done:
  for (int i = 0; ins && i < nargs; i++)
    kl_tensor_destroy(ins[i]);
  for (int i = 0; outs && i < g->nrets; i++)
    kl_tensor_destroy(outs[i]);
  free(ins);
  free(outs);
  free(args);
  free(arg_ids);
  free(err);
  rt_st_destroy(st);
  kl_program_destroy(prog);
  ir_graph_destroy(g);
  return rc;
}
