/* `kiln run FILE.kir`: evaluates a graph. Inputs come from a safetensors
 * file by argument name (parameters by their names); missing ones are drawn
 * from a seeded RNG. Outputs out0, out1, ... go to a safetensors file,
 * written atomically, and/or to stdout. */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "backend/tensor_bridge.h"
#include "runtime/philox.h"
#include "runtime/safetensors.h"
#include "tools/kiln/cli.h"

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

/* Fills an argument nobody supplied. Each argument has its own stream (its
 * position), so supplying one input does not change the others. */
static void fill_missing(rt_tensor *t, uint64_t seed, uint32_t stream) {
  if (ir_dtype_is_float(t->type.dtype)) {
    rt_fill_normal(t, seed, stream, 0.0, 1.0);
  } else if (t->type.dtype == IR_BOOL) {
    rt_fill_uniform(t, seed, stream, 0.0, 2.0);
  } else {
    rt_fill_uniform(t, seed, stream, 0.0, 5.0);
  }
}

static void print_tensor(const char *name, const rt_tensor *t) {
  char ty[IR_TYPE_STRLEN];
  int64_t n = rt_numel(t), shown = n < 64 ? n : 64;
  printf("%s: %s = [", name, ir_type_str(&t->type, ty, sizeof ty));
  for (int64_t i = 0; i < shown; i++) {
    if (i) printf(", ");
    if (ir_dtype_is_float(t->type.dtype))
      printf("%.6g", rt_get_f(t, i));
    else if (t->type.dtype == IR_BOOL)
      printf("%s", rt_get_i(t, i) ? "true" : "false");
    else
      printf("%lld", (long long)rt_get_i(t, i));
  }
  printf(shown < n ? ", ... (%lld more)]\n" : "]\n", (long long)(n - shown));
}

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

/* Matches every tensor of the inputs file to an argument or a parameter.
 * args[i] is set (borrowed from st) for supplied arguments. */
static int bind_inputs(const ir_graph *g, const rt_safetensors *st, const char *path,
                       const int *arg_ids, int nargs, const rt_tensor **args, kl_program *prog) {
  char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
  for (int i = 0; i < rt_st_count(st); i++) {
    const char *name = rt_st_name(st, i);
    const rt_tensor *t = rt_st_get(st, name);
    int j = 0;
    while (j < nargs && strcmp(g->nodes[arg_ids[j]]->name, name))
      j++;
    if (j < nargs) {
      const ir_type *want = &g->nodes[arg_ids[j]]->type;
      if (!ir_type_eq(want, &t->type))
        return cli_error("run", "%s: tensor '%s' is %s, but input %%%s of @%s is %s", path, name,
                         ir_type_str(&t->type, a, sizeof a), name, g->name,
                         ir_type_str(want, b, sizeof b));
      args[j] = t;
      continue;
    }
    bool is_param = false;
    for (int n = 0; n < g->nnodes && !is_param; n++)
      is_param =
          g->nodes[n]->op == IR_OP_PARAM && !strcmp(ir_node_attr(g->nodes[n], "name")->s, name);
    if (!is_param) {
      fprintf(stderr,
              "kiln run: %s: tensor '%s' is neither an input nor a parameter of @%s (inputs:", path,
              name, g->name);
      for (int k = 0; k < nargs; k++)
        fprintf(stderr, "%s %s", k ? "," : "", g->nodes[arg_ids[k]]->name);
      fprintf(stderr, ")\n");
      return CLI_ERROR;
    }
    kl_tensor *kt = cg_tensor_adopt(rt_tensor_clone(t));
    const char *err = kt ? kl_program_set_param(prog, name, kt) : "out of memory";
    kl_tensor_destroy(kt);
    if (err) return cli_error("run", "%s: %s", path, err);
  }
  return CLI_OK;
}

static int write_outputs(const run_opts *o, kl_tensor **outs, int nouts) {
  ir_diag d = {0};
  int rc = CLI_OK;
  if (o->outputs) {
    rt_safetensors *st = rt_st_create();
    for (int i = 0; i < nouts && st; i++) {
      char name[32];
      snprintf(name, sizeof name, "out%d", i);
      if (!rt_st_add(st, name, cg_tensor_rt(outs[i]), &d)) break;
    }
    if (!st || d.msg[0] || !rt_st_write(st, o->outputs, &d))
      rc = cli_error("run", "%s", d.msg[0] ? d.msg : "out of memory");
    rt_st_destroy(st);
  }
  if (rc == CLI_OK && (o->print || !o->outputs)) {
    for (int i = 0; i < nouts; i++) {
      char name[32];
      snprintf(name, sizeof name, "out%d", i);
      print_tensor(name, cg_tensor_rt(outs[i]));
    }
  }
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
    if ((rc = bind_inputs(g, st, o.inputs, arg_ids, nargs, args, prog))) goto done;
  }
  for (int i = 0; i < nargs; i++) {
    rt_tensor *t =
        args[i] ? rt_tensor_clone(args[i]) : rt_tensor_create(&g->nodes[arg_ids[i]]->type);
    if (t && !args[i]) fill_missing(t, o.seed, (uint32_t)i);
    if (!t || !(ins[i] = cg_tensor_adopt(t))) {
      rc = cli_error("run", "out of memory");
      goto done;
    }
  }
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
