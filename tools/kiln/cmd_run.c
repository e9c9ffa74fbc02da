/* `kiln run FILE.kir`: evaluates a graph. Inputs come from a safetensors
 * file by argument name (parameters by their names); missing ones are drawn
 * from a seeded RNG. Outputs out0, out1, ... go to a safetensors file,
 * written atomically, and/or to stdout. */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/run_common.h"

static const char usage[] =
    "usage: kiln run FILE.kir [--inputs IN.safetensors] [--outputs OUT.safetensors]\n"
    "                [--backend jit|ref] [--threads N] [--no-cache] [--time] [--seed N]\n"
    "                [--train] [--print] [--max-memory B] [--check-numerics]\n"
    "                [pipeline flags]\n"
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
    "  --print       print the outputs (the default when --outputs is not given)\n"
    "  --check-numerics  stop at the first node whose result holds a NaN or inf and\n"
    "                name it (op, value, source line, index); no output is written\n";

typedef struct run_opts {
  run_common_opts c;
  bool time;
} run_opts;

static int run_opt(cli_args *a, const char *name, const char *val, void *ctx) {
  (void)a, (void)val;
  if (strcmp(name, "time")) return RUN_OPT_OTHER;
  ((run_opts *)ctx)->time = true;
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
  int rc = run_emit("run", &o->c, nouts, np, outs);
  free(names);
  free(np);
  return rc;
}

int cmd_run(int argc, char **argv) {
  run_opts o = {0};
  int rc = run_parse_opts("run", argc, argv, usage, &o.c, run_opt, &o);
  if (rc) return rc < 0 ? CLI_OK : rc;
  run_session s;
  if (!(rc = run_open("run", &o.c, &s)) && !(rc = run_prepare("run", &o.c, &s)) &&
      !(rc = run_exec("run", &o.c, &s, s.g->nrets))) {
    if (o.time) {
      const kl_compile_stats *st = kl_program_stats(s.prog);
      fprintf(stderr, "kiln run: compile %.1f ms", s.compile_ms);
      if (!o.c.ref)
        fprintf(stderr, " (%s: lower %.1f, optimize %.1f, codegen %.1f, link %.1f)",
                st->cache_hit ? "cache hit" : "cache miss", st->lower_ms, st->optimize_ms,
                st->codegen_ms, st->link_ms);
      fprintf(stderr, ", run %.3f ms\n", s.run_ms);
    }
    rc = write_outputs(&o, s.outs, s.g->nrets);
  }
  run_close(&s);
  return rc;
}
