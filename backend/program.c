/* The public compile/run API (backend/kiln_run.h). A program owns a copy of
 * the graph and the values of its parameters; until the JIT lands it runs
 * on the reference interpreter, so results are the oracle's own. */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "backend/tensor_bridge.h"
#include "ir/ir.h"
#include "runtime/philox.h"
#include "runtime/ref.h"
#include "runtime/tensor.h"

_Static_assert((int)KL_TENSOR_F32 == (int)IR_F32 && (int)KL_TENSOR_BOOL == (int)IR_BOOL,
               "kl_tensor_dtype follows ir_dtype");

struct kl_tensor {
  rt_tensor *t;
};

struct kl_program {
  ir_graph *g;
  kl_compile_opts opts;
  int nparams;
  const char **param_names; /* borrowed from g */
  rt_tensor **params;
  ir_diag err;
};

kl_tensor *kl_tensor_create(kl_tensor_dtype dt, int rank, const int64_t *dims) {
  if ((unsigned)dt > KL_TENSOR_BOOL || rank < 0 || rank > IR_MAX_RANK) return NULL;
  for (int i = 0; i < rank; i++)
    if (dims[i] < 0) return NULL;
  ir_type ty = ir_type_make((ir_dtype)dt, rank, dims);
  kl_tensor *t = malloc(sizeof *t);
  if (!t) return NULL;
  t->t = rt_tensor_create(&ty);
  if (!t->t) {
    free(t);
    return NULL;
  }
  return t;
}

kl_tensor *kl_tensor_from(kl_tensor_dtype dt, int rank, const int64_t *dims, const void *data) {
  kl_tensor *t = kl_tensor_create(dt, rank, dims);
  if (t && data) memcpy(t->t->data, data, t->t->bytes);
  return t;
}

void kl_tensor_destroy(kl_tensor *t) {
  if (!t) return;
  rt_tensor_destroy(t->t);
  free(t);
}

const rt_tensor *cg_tensor_rt(const kl_tensor *t) { return t->t; }

kl_tensor *cg_tensor_adopt(rt_tensor *t) {
  kl_tensor *k = malloc(sizeof *k);
  if (!k) {
    rt_tensor_destroy(t);
    return NULL;
  }
  k->t = t;
  return k;
}

void *kl_tensor_data(kl_tensor *t) { return t->t->data; }
int64_t kl_tensor_numel(const kl_tensor *t) { return rt_numel(t->t); }
int kl_tensor_rank(const kl_tensor *t) { return t->t->type.rank; }
int64_t kl_tensor_dim(const kl_tensor *t, int axis) {
  int r = t->t->type.rank;
  if (axis < 0) axis += r;
  return axis < 0 || axis >= r ? -1 : t->t->type.dims[axis];
}

static char *dup_msg(const char *m) {
  char *s = malloc(strlen(m) + 1);
  if (s) strcpy(s, m);
  return s;
}

static int find_param(const kl_program *p, const char *name) {
  for (int i = 0; i < p->nparams; i++)
    if (strcmp(p->param_names[i], name) == 0) return i;
  return -1;
}

void kl_program_destroy(kl_program *p) {
  if (!p) return;
  for (int i = 0; i < p->nparams; i++)
    rt_tensor_destroy(p->params[i]);
  free(p->params);
  free(p->param_names);
  ir_graph_destroy(p->g);
  free(p);
}

/* One tensor per distinct parameter name, initialised from its own seeded
 * stream (the parameter's ordinal), so adding a parameter later in the
 * graph does not change the earlier ones. */
static bool init_params(kl_program *p, ir_diag *d) {
  int cap = p->g->nnodes;
  p->param_names = calloc((size_t)(cap ? cap : 1), sizeof *p->param_names);
  p->params = calloc((size_t)(cap ? cap : 1), sizeof *p->params);
  if (!p->param_names || !p->params) {
    ir_diag_set(d, "out of memory");
    return false;
  }
  for (int i = 0; i < p->g->nnodes; i++) {
    const ir_node *n = p->g->nodes[i];
    if (n->op != IR_OP_PARAM) continue;
    const char *name = ir_node_attr(n, "name")->s;
    if (find_param(p, name) >= 0) continue;
    rt_tensor *t = rt_tensor_create(&n->type);
    if (!t) {
      ir_diag_set(d, "out of memory for parameter '%s'", name);
      return false;
    }
    rt_fill_normal(t, p->opts.seed, (uint32_t)p->nparams, 0.0, 0.1);
    p->param_names[p->nparams] = name;
    p->params[p->nparams++] = t;
  }
  return true;
}

kl_program *kl_compile(const struct ir_graph *g, const kl_compile_opts *opts, char **err) {
  ir_diag d = {0};
  kl_compile_opts defaults = {.backend = KL_BACKEND_REF};
  if (err) *err = NULL;
  if (!opts) opts = &defaults;
  if (!g) {
    if (err) *err = dup_msg("kl_compile: no graph");
    return NULL;
  }
  if (opts->backend != KL_BACKEND_REF) {
    if (err) *err = dup_msg("kl_compile: the JIT backend is not built yet; use KL_BACKEND_REF");
    return NULL;
  }
  if (g->has_error) {
    if (err) *err = dup_msg(g->error.msg);
    return NULL;
  }
  if (!ir_verify(g, &d)) {
    if (err) *err = dup_msg(d.msg);
    return NULL;
  }
  kl_program *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->opts = *opts;
  p->g = ir_graph_clone(g, &d);
  if (!p->g || !init_params(p, &d)) {
    if (err) *err = dup_msg(d.msg);
    kl_program_destroy(p);
    return NULL;
  }
  return p;
}

const char *kl_program_set_param(kl_program *p, const char *name, const kl_tensor *t) {
  int i = find_param(p, name);
  if (i < 0) {
    ir_diag_set(&p->err, "no parameter named '%s'", name);
    return p->err.msg;
  }
  if (!ir_type_eq(&p->params[i]->type, &t->t->type)) {
    char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
    ir_diag_set(&p->err, "parameter '%s' is %s, the tensor is %s", name,
                ir_type_str(&p->params[i]->type, a, sizeof a),
                ir_type_str(&t->t->type, b, sizeof b));
    return p->err.msg;
  }
  memcpy(p->params[i]->data, t->t->data, t->t->bytes);
  return NULL;
}

static const rt_tensor *lookup_param(void *ctx, const ir_node *n) {
  kl_program *p = ctx;
  int i = find_param(p, ir_node_attr(n, "name")->s);
  return i < 0 ? NULL : p->params[i];
}

const char *kl_run(kl_program *p, kl_tensor *const *inputs, int ninputs, kl_tensor **outputs,
                   int noutputs) {
  int nargs = ir_graph_args(p->g, NULL);
  if (ninputs != nargs) {
    ir_diag_set(&p->err, "@%s takes %d input%s, got %d", p->g->name, nargs, nargs == 1 ? "" : "s",
                ninputs);
    return p->err.msg;
  }
  if (noutputs != p->g->nrets) {
    ir_diag_set(&p->err, "@%s has %d output%s, room was given for %d", p->g->name, p->g->nrets,
                p->g->nrets == 1 ? "" : "s", noutputs);
    return p->err.msg;
  }
  const rt_tensor **args = calloc((size_t)(nargs ? nargs : 1), sizeof *args);
  rt_tensor **outs = calloc((size_t)(noutputs ? noutputs : 1), sizeof *outs);
  kl_tensor **wrapped = calloc((size_t)(noutputs ? noutputs : 1), sizeof *wrapped);
  const char *result = NULL;
  if (!args || !outs || !wrapped) {
    ir_diag_set(&p->err, "out of memory");
    result = p->err.msg;
    goto done;
  }
  for (int i = 0; i < nargs; i++)
    args[i] = inputs[i]->t;
  rt_ref_opts ro = {.training = p->opts.training, .seed = p->opts.seed};
  if (!rt_ref_run(p->g, args, lookup_param, p, &ro, outs, &p->err)) {
    result = p->err.msg;
    goto done;
  }
  for (int i = 0; i < noutputs; i++) {
    wrapped[i] = malloc(sizeof *wrapped[i]);
    if (!wrapped[i]) {
      for (int j = 0; j < i; j++)
        free(wrapped[j]);
      for (int j = 0; j < noutputs; j++)
        rt_tensor_destroy(outs[j]);
      ir_diag_set(&p->err, "out of memory");
      result = p->err.msg;
      goto done;
    }
    wrapped[i]->t = outs[i];
  }
  for (int i = 0; i < noutputs; i++)
    outputs[i] = wrapped[i];
done:
  free(args);
  free(outs);
  free(wrapped);
  return result;
}
