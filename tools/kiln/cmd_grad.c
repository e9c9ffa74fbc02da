/* `kiln grad FILE.kir --wrt NAME[,NAME...]`: the gradient of the sum of
 * output 0 with respect to arguments or parameters, by pass_autodiff on a
 * copy of the graph whose returns become out0 and the gradients. Inputs and
 * outputs are exchanged as `kiln run` does (run_common.h); gradients are
 * written as grad.NAME. */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "passes/autodiff.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/run_common.h"

static const char usage[] =
    "usage: kiln grad FILE.kir --wrt NAME[,NAME...] [--inputs IN.safetensors]\n"
    "                 [--outputs OUT.safetensors] [--backend jit|ref] [--seed N]\n"
    "                 [--threads N] [--no-cache] [--train] [--print] [--max-memory B]\n"
    "                 [--check-numerics]\n"
    "                 [pipeline flags]\n"
    "\n"
    "Differentiates the sum of the graph's first output with respect to each NAME,\n"
    "an argument (without %) or a parameter name, by reverse-mode autodiff.\n"
    "  --wrt NAMES   comma-separated arguments or parameters (float tensors)\n"
    "  --inputs F    tensors named after the graph's arguments or its parameters;\n"
    "                arguments left out are drawn from a seeded RNG as in `kiln run`\n"
    "  --outputs F   write out0 (output 0) and grad.NAME for each NAME (safetensors,\n"
    "                atomically)\n"
    "  --backend B   jit (default) or ref (the reference interpreter)\n"
    "  --seed N      seed for missing inputs, parameter initialisation, dropout (0)\n"
    "  --threads N   threads for kernels and OpenBLAS (default: all cores)\n"
    "  --no-cache    do not read or write the compiled-code cache\n"
    "  --train       run dropout as in training (the backward uses the same masks)\n"
    "  --print       print out0 and the gradients (the default without --outputs)\n"
    "  --check-numerics  stop at the first node (forward or backward) whose result\n"
    "                holds a NaN or inf and name it; no output is written\n";

typedef struct grad_opts {
  run_common_opts c;
  const char *wrt;
} grad_opts;

static int grad_opt(cli_args *a, const char *name, const char *val, void *ctx) {
  if (strcmp(name, "wrt")) return RUN_OPT_OTHER;
  return (((grad_opts *)ctx)->wrt = cli_value(a, name, val)) ? CLI_OK : CLI_USAGE;
}

/* Splits --wrt into names (pointers into buf, a copy); usage errors for
 * empty or repeated names. */
static int split_names(const char *list, char *buf, const char **names, int *n) {
  strcpy(buf, list);
  *n = 0;
  for (char *p = buf;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = 0;
    if (!*p) return cli_usage_error("grad", "--wrt has an empty name in '%s'", list);
    for (int i = 0; i < *n; i++)
      if (!strcmp(names[i], p)) return cli_usage_error("grad", "--wrt names '%s' twice", p);
    names[(*n)++] = p;
    if (!comma) return CLI_OK;
    p = comma + 1;
  }
}

/* The node NAME refers to: an argument, else a parameter of that name. */
static int resolve(const char *file, const ir_graph *g, const char *name, int *id) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_ARG && g->nodes[i]->name && !strcmp(g->nodes[i]->name, name))
      *id = i;
  for (int i = 0; *id < 0 && i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_PARAM && !strcmp(ir_node_attr(g->nodes[i], "name")->s, name))
      *id = i;
  if (*id < 0) {
    fprintf(stderr, "kiln grad: %s: @%s has no argument or parameter '%s' (arguments:", file,
            g->name, name);
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == IR_OP_ARG) fprintf(stderr, "%s %s", k++ ? "," : "", g->nodes[i]->name);
    fprintf(stderr, "%s; parameters:", k ? "" : " none");
    k = 0;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == IR_OP_PARAM)
        fprintf(stderr, "%s %s", k++ ? "," : "", ir_node_attr(g->nodes[i], "name")->s);
    fprintf(stderr, "%s)\n", k ? "" : " none");
    return CLI_ERROR;
  }
  const ir_type *t = &g->nodes[*id]->type;
  if (!ir_dtype_is_float(t->dtype)) {
    char ts[IR_TYPE_STRLEN];
    return cli_error("grad",
                     "%s: cannot differentiate with respect to '%s': it is %s, not a float "
                     "tensor",
                     file, name, ir_type_str(t, ts, sizeof ts));
  }
  return CLI_OK;
}

/* Appends the gradients to g and makes its returns out0, grad 0, ... */
static int differentiate(const grad_opts *o, ir_graph *g, int nw, const char *const *names) {
  int *ids = calloc((size_t)nw * 2 + 1, sizeof *ids), *rets = calloc((size_t)nw + 1, sizeof *rets);
  int rc = ids && rets ? CLI_OK : cli_error("grad", "out of memory");
  for (int i = 0; rc == CLI_OK && i < nw; i++) {
    ids[i] = -1;
    rc = resolve(o->c.file, g, names[i], &ids[i]);
  }
  ir_diag d = {0};
  if (rc == CLI_OK && !pass_autodiff(g, g->rets[0], nw, ids, rets + 1, &d))
    rc = cli_error("grad", "%s: %s", o->c.file, d.msg);
  if (rc == CLI_OK) {
    rets[0] = g->rets[0];
    ir_set_returns(g, nw + 1, rets);
  }
  free(ids);
  free(rets);
  return rc;
}

static int write_results(const grad_opts *o, int nw, const char *const *wrt, kl_tensor **outs) {
  int n = nw + 1;
  char *buf = malloc((size_t)n * 160);
  const char **names = calloc((size_t)n, sizeof *names);
  if (!buf || !names) {
    free(buf);
    free(names);
    return cli_error("grad", "out of memory");
  }
  for (int i = 0; i < n; i++) {
    char *s = buf + (size_t)i * 160;
    if (i == 0)
      snprintf(s, 160, "out0");
    else
      snprintf(s, 160, "grad.%s", wrt[i - 1]);
    names[i] = s;
  }
  int rc = run_emit("grad", &o->c, n, names, outs);
  free(buf);
  free(names);
  return rc;
}

int cmd_grad(int argc, char **argv) {
  grad_opts o = {0};
  int rc = run_parse_opts("grad", argc, argv, usage, &o.c, grad_opt, &o);
  if (!rc && !o.wrt)
    rc = cli_usage_error("grad", "--wrt is required (the names to differentiate by)");
  if (rc) return rc < 0 ? CLI_OK : rc;
  size_t len = strlen(o.wrt);
  char *buf = malloc(len + 1);
  const char **wrt = calloc(len / 2 + 2, sizeof *wrt);
  int nw = 0;
  if (!buf || !wrt) {
    free(buf);
    free(wrt);
    return cli_error("grad", "out of memory");
  }
  if ((rc = split_names(o.wrt, buf, wrt, &nw))) {
    free(buf);
    free(wrt);
    return rc;
  }
  run_session s;
  if (!(rc = run_open("grad", &o.c, &s)) && !(rc = differentiate(&o, s.g, nw, wrt)) &&
      !(rc = run_prepare("grad", &o.c, &s)) && !(rc = run_exec("grad", &o.c, &s, nw + 1)))
    rc = write_results(&o, nw, wrt, s.outs);
  run_close(&s);
  free(buf);
  free(wrt);
  return rc;
}
