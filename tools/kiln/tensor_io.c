/* The safetensors side of `kiln run` and `kiln grad` (tensor_io.h). */
#include <stdio.h>
#include <string.h>

#include "backend/tensor_bridge.h"
#include "runtime/philox.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/tensor_io.h"

/* Each argument has its own stream (its position), so supplying one input
 * does not change the others. */
static void fill_missing(rt_tensor *t, uint64_t seed, uint32_t stream) {
  if (ir_dtype_is_float(t->type.dtype)) {
    rt_fill_normal(t, seed, stream, 0.0, 1.0);
  } else if (t->type.dtype == IR_BOOL) {
    rt_fill_uniform(t, seed, stream, 0.0, 2.0);
  } else {
    rt_fill_uniform(t, seed, stream, 0.0, 5.0);
  }
}

void tio_print(const char *name, const rt_tensor *t) {
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

int tio_bind_inputs(const char *cmd, const ir_graph *g, const rt_safetensors *st, const char *path,
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
        return cli_error(cmd, "%s: tensor '%s' is %s, but input %%%s of @%s is %s", path, name,
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
              "kiln %s: %s: tensor '%s' is neither an input nor a parameter of @%s (inputs:", cmd,
              path, name, g->name);
      for (int k = 0; k < nargs; k++)
        fprintf(stderr, "%s %s", k ? "," : "", g->nodes[arg_ids[k]]->name);
      fprintf(stderr, ")\n");
      return CLI_ERROR;
    }
    kl_tensor *kt = cg_tensor_adopt(rt_tensor_clone(t));
    const char *err = kt ? kl_program_set_param(prog, name, kt) : "out of memory";
    kl_tensor_destroy(kt);
    if (err) return cli_error(cmd, "%s: %s", path, err);
  }
  return CLI_OK;
}

int tio_make_inputs(const char *cmd, const char *file, const ir_graph *g, const int *arg_ids,
                    int nargs, const rt_tensor *const *args, uint64_t seed, kl_tensor **ins) {
  for (int i = 0; i < nargs; i++) {
    rt_tensor *t =
        args[i] ? rt_tensor_clone(args[i]) : rt_tensor_create(&g->nodes[arg_ids[i]]->type);
    if (t && !args[i]) fill_missing(t, seed, (uint32_t)i);
    if (!t || !(ins[i] = cg_tensor_adopt(t))) {
      const ir_node *n = g->nodes[arg_ids[i]];
      char sz[IR_TYPE_STRLEN + 40];
      return cli_error(cmd, "%s: out of memory for input %%%s (%s)", file, n->name,
                       rt_type_size_str(&n->type, sz, sizeof sz));
    }
  }
  return CLI_OK;
}

int tio_write(const char *cmd, const char *path, int n, const char *const *names,
              kl_tensor *const *ts) {
  ir_diag d = {0};
  rt_safetensors *st = rt_st_create();
  for (int i = 0; i < n && st; i++)
    if (!rt_st_add(st, names[i], cg_tensor_rt(ts[i]), &d)) break;
  int rc = CLI_OK;
  if (!st || d.msg[0] || !rt_st_write(st, path, &d))
    rc = cli_error(cmd, "%s", d.msg[0] ? d.msg : "out of memory");
  rt_st_destroy(st);
  return rc;
}
