/* The compile/run API of programs (backend/kiln_run.h, and the raw compile
 * of backend/kiln_backend.h). A program owns a copy of
 * the graph and the values of its parameters, and runs on the reference
 * interpreter or on JIT-compiled code (program_jit.c). */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/mem_guard.h"
#include "backend/program.h"
#include "backend/tensor_bridge.h"
#include "runtime/init.h"
#include "runtime/ref.h"

_Static_assert((int)KL_TENSOR_F32 == (int)IR_F32 && (int)KL_TENSOR_BOOL == (int)IR_BOOL,
               "kl_tensor_dtype follows ir_dtype");

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

/* The index slot of name: where it is, or the empty one it would take
 * (a scan of the names per lookup was O(params^2) per compile and run). */
static size_t param_slot(const kl_program *p, const char *name) {
  size_t i = (size_t)ir_str_hash(name) & (p->picap - 1);
  while (p->pindex[i] >= 0 && strcmp(p->param_names[p->pindex[i]], name) != 0)
    i = (i + 1) & (p->picap - 1);
  return i;
}

int cg_program_param(const kl_program *p, const char *name) {
  return p->picap ? p->pindex[param_slot(p, name)] : -1;
}

void kl_program_destroy(kl_program *p) {
  if (!p) return;
  for (int i = 0; i < p->nparams; i++)
    rt_tensor_destroy(p->params[i]);
  free(p->params);
  free(p->param_names);
  free(p->pindex);
  cg_exec_destroy(p->jit);
  ir_graph_destroy(p->g);
  free(p);
}

/* One tensor per distinct parameter name, initialised as its first node's
 * init and scale say from its own seeded stream (the parameter's ordinal),
 * so adding a parameter later in the graph does not change the earlier
 * ones. */
static bool init_params(kl_program *p, ir_diag *d) {
  int cap = p->g->nnodes;
  p->param_names = calloc((size_t)(cap ? cap : 1), sizeof *p->param_names);
  p->params = calloc((size_t)(cap ? cap : 1), sizeof *p->params);
  size_t icap = 16;
  while (icap < 2 * (size_t)cap + 2)
    icap *= 2;
  p->pindex = malloc(icap * sizeof *p->pindex);
  if (!p->param_names || !p->params || !p->pindex) {
    ir_diag_set(d, "out of memory");
    return false;
  }
  for (size_t i = 0; i < icap; i++)
    p->pindex[i] = -1;
  p->picap = icap;
  for (int i = 0; i < p->g->nnodes; i++) {
    const ir_node *n = p->g->nodes[i];
    if (n->op != IR_OP_PARAM) continue;
    const char *name = ir_node_attr(n, "name")->s;
    if (cg_program_param(p, name) >= 0) continue;
    rt_tensor *t = rt_tensor_create(&n->type);
    if (!t) {
      ir_diag_set(d, "out of memory for parameter '%s'", name);
      return false;
    }
    p->param_names[p->nparams] = name;
    p->pindex[param_slot(p, name)] = p->nparams;
    p->params[p->nparams] = t;
    ir_diag e = {0};
    if (!rt_param_init(t, n->attrs[1].s, n->attrs[2].f, p->opts.seed, (uint32_t)p->nparams, &e)) {
      ir_diag_set(d, "param \"%.200s\": %s", name, e.msg);
      rt_tensor_destroy(t);
      return false;
    }
    p->nparams++;
  }
  return true;
}

kl_program *kl_compile_unoptimized(const ir_graph *g, const kl_compile_opts *opts, char **err) {
  ir_diag d = {0};
  kl_compile_opts defaults = {.backend = KL_BACKEND_REF};
  if (err) *err = NULL;
  if (!opts) opts = &defaults;
  if (!g) {
    if (err) *err = strdup("kl_compile: no graph");
    return NULL;
  }
  if (opts->backend != KL_BACKEND_REF && opts->backend != KL_BACKEND_JIT) {
    if (err) *err = strdup("kl_compile: unknown backend");
    return NULL;
  }
  if (g->has_error) {
    if (err) *err = strdup(g->error.msg);
    return NULL;
  }
  if (!ir_verify(g, &d)) {
    if (err) *err = strdup(d.msg);
    return NULL;
  }
  kl_program *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->opts = *opts;
  p->opts.passes = NULL; /* borrowed for the compile only */
  p->g = ir_graph_clone(g, &d);
  if (!p->g || !cg_mem_check(p->g, opts->backend == KL_BACKEND_REF, opts->max_memory, &d) ||
      !init_params(p, &d) || (opts->backend == KL_BACKEND_JIT && !cg_exec_create(p, &d))) {
    if (err) *err = strdup(d.msg);
    kl_program_destroy(p);
    return NULL;
  }
  for (int i = 0; i < p->g->nnodes; i++)
    p->stats.regions += p->g->nodes[i]->body != NULL;
  return p;
}

const char *kl_program_set_param(kl_program *p, const char *name, const kl_tensor *t) {
  int i = cg_program_param(p, name);
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

int kl_program_num_params(const kl_program *p) { return p ? p->nparams : 0; }

const char *kl_program_param_name(const kl_program *p, int i) {
  return p && i >= 0 && i < p->nparams ? p->param_names[i] : NULL;
}

const char *kl_program_get_param(kl_program *p, const char *name, kl_tensor **out) {
  *out = NULL;
  int i = cg_program_param(p, name ? name : "");
  if (i < 0) {
    ir_diag_set(&p->err, "no parameter named '%.200s'", name ? name : "(null)");
    return p->err.msg;
  }
  rt_tensor *copy = rt_tensor_clone(p->params[i]);
  if (!copy || !(*out = cg_tensor_adopt(copy))) {
    ir_diag_set(&p->err, "out of memory copying parameter '%.200s'", name);
    return p->err.msg;
  }
  return NULL;
}

int kl_program_copy_params(kl_program *dst, const kl_program *src) {
  int copied = 0;
  for (int i = 0; dst && src && i < src->nparams; i++) {
    int j = cg_program_param(dst, src->param_names[i]);
    if (j < 0 || !ir_type_eq(&dst->params[j]->type, &src->params[i]->type)) continue;
    /* Same storage (a program copied onto itself) needs no copy. */
    if (dst->params[j]->data != src->params[i]->data)
      memcpy(dst->params[j]->data, src->params[i]->data, src->params[i]->bytes);
    copied++;
  }
  return copied;
}

uint64_t kl_program_step(const kl_program *p) { return p ? p->runs : 0; }

void kl_program_set_step(kl_program *p, uint64_t step) {
  if (p) p->runs = step;
}

static const rt_tensor *lookup_param(void *ctx, const ir_node *n) {
  kl_program *p = ctx;
  int i = cg_program_param(p, ir_node_attr(n, "name")->s);
  return i < 0 ? NULL : p->params[i];
}

const kl_compile_stats *kl_program_stats(const kl_program *p) { return &p->stats; }

typedef struct in_ptr {
  const void *data;
  int index;
} in_ptr;

static int by_ptr_only(const void *pa, const void *pb) {
  uintptr_t a = (uintptr_t)((const in_ptr *)pa)->data, b = (uintptr_t)((const in_ptr *)pb)->data;
  return (a > b) - (a < b);
}

static int by_ptr(const void *pa, const void *pb) {
  int c = by_ptr_only(pa, pb);
  if (c) return c;
  int a = ((const in_ptr *)pa)->index, b = ((const in_ptr *)pb)->index;
  return (a > b) - (a < b);
}

/* Counts and types of inputs and outputs, with messages naming the value. */
static bool check_io(kl_program *p, kl_tensor *const *inputs, int ninputs,
                     kl_tensor *const *outputs, int noutputs) {
  const ir_graph *g = p->g;
  char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
  int nargs = ir_graph_args(g, NULL);
  if (ninputs != nargs) {
    ir_diag_set(&p->err, "@%s takes %d input%s, got %d", g->name, nargs, nargs == 1 ? "" : "s",
                ninputs);
    return false;
  }
  if (noutputs != g->nrets) {
    ir_diag_set(&p->err, "@%s has %d output%s, room was given for %d", g->name, g->nrets,
                g->nrets == 1 ? "" : "s", noutputs);
    return false;
  }
  for (int i = 0, k = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_ARG) continue;
    const ir_type *got = &inputs[k++]->t->type;
    if (!ir_type_eq(got, &n->type)) {
      ir_diag_set(&p->err, "input %%%s: expected %s, got %s", n->name,
                  ir_type_str(&n->type, a, sizeof a), ir_type_str(got, b, sizeof b));
      return false;
    }
  }
  /* Kernels write outputs directly: one that is also an input would be
   * read and written by the same kernel. The inputs' storage sorted once
   * (a scan of the inputs per output was O(inputs * outputs)). */
  in_ptr *by_data = outputs ? malloc(sizeof *by_data * (size_t)(ninputs ? ninputs : 1)) : NULL;
  if (outputs && !by_data) {
    ir_diag_set(&p->err, "out of memory");
    return false;
  }
  for (int i = 0; outputs && i < ninputs; i++)
    by_data[i] = (in_ptr){inputs[i]->t->data, i};
  if (outputs) qsort(by_data, (size_t)ninputs, sizeof *by_data, by_ptr);
  for (int r = 0; outputs && r < noutputs; r++) {
    in_ptr key = {outputs[r]->t->data, -1};
    const in_ptr *hit = bsearch(&key, by_data, (size_t)ninputs, sizeof *by_data, by_ptr_only);
    /* the first input sharing the storage, as a scan in order finds it */
    while (hit && hit > by_data && hit[-1].data == key.data)
      hit--;
    if (hit) {
      ir_diag_set(&p->err, "output %d is the same tensor as input %d", r, hit->index);
      free(by_data);
      return false;
    }
    const ir_type *want = &g->nodes[g->rets[r]]->type, *got = &outputs[r]->t->type;
    if (!ir_type_eq(got, want)) {
      ir_diag_set(&p->err, "output %d: expected %s, got %s", r, ir_type_str(want, a, sizeof a),
                  ir_type_str(got, b, sizeof b));
      free(by_data);
      return false;
    }
  }
  free(by_data);
  return true;
}

/* The reference's write-back of an assign: the run has finished, so the
 * parameter's storage can take the new value. */
static bool write_param(void *ctx, const ir_node *param, const rt_tensor *value, ir_diag *d) {
  kl_program *p = ctx;
  const char *name = ir_node_attr(param, "name")->s;
  int i = cg_program_param(p, name);
  if (i < 0 || !ir_type_eq(&p->params[i]->type, &value->type)) {
    ir_diag_set(d, "assign: no parameter '%.200s' of the value's type", name);
    return false;
  }
  memcpy(p->params[i]->data, value->data, value->bytes);
  return true;
}

static bool run_ref(kl_program *p, kl_tensor *const *inputs, kl_tensor *const *outputs) {
  int nargs = ir_graph_args(p->g, NULL), nrets = p->g->nrets;
  const rt_tensor **args = calloc((size_t)nargs + 1, sizeof *args);
  rt_tensor **outs = calloc((size_t)nrets + 1, sizeof *outs);
  bool ok = args && outs;
  if (!ok) ir_diag_set(&p->err, "out of memory");
  for (int i = 0; ok && i < nargs; i++)
    args[i] = inputs[i]->t;
  rt_ref_opts ro = {.training = p->opts.training,
                    .seed = p->opts.seed,
                    .step = p->runs,
                    .check_numerics = p->opts.check_numerics,
                    .assign = write_param,
                    .assign_ctx = p};
  ok = ok && rt_ref_run(p->g, args, lookup_param, p, &ro, outs, &p->err);
  for (int r = 0; ok && r < nrets; r++) {
    memcpy(outputs[r]->t->data, outs[r]->data, outs[r]->bytes);
    rt_tensor_destroy(outs[r]);
  }
  free(args);
  free(outs);
  return ok;
}

const char *kl_run_into(kl_program *p, kl_tensor *const *inputs, int ninputs,
                        kl_tensor *const *outputs, int noutputs) {
  if (!check_io(p, inputs, ninputs, outputs, noutputs)) return p->err.msg;
  bool ok = p->jit ? cg_exec_run(p, inputs, outputs) : run_ref(p, inputs, outputs);
  p->runs++;
  return ok ? NULL : p->err.msg;
}

const char *kl_run(kl_program *p, kl_tensor *const *inputs, int ninputs, kl_tensor **outputs,
                   int noutputs) {
  if (!check_io(p, inputs, ninputs, NULL, noutputs)) return p->err.msg;
  kl_tensor **outs = calloc((size_t)noutputs + 1, sizeof *outs);
  const char *msg = outs ? NULL : "out of memory";
  for (int r = 0; !msg && r < noutputs; r++) {
    const ir_type *t = &p->g->nodes[p->g->rets[r]]->type;
    if (!(outs[r] = kl_tensor_create((kl_tensor_dtype)t->dtype, t->rank, t->dims))) {
      char sz[IR_TYPE_STRLEN + 40];
      ir_diag_set(&p->err, "out of memory for output %d (%s)", r,
                  rt_type_size_str(t, sz, sizeof sz));
      msg = p->err.msg;
    }
  }
  if (!msg) msg = kl_run_into(p, inputs, ninputs, outs, noutputs);
  for (int r = 0; outs && r < noutputs; r++) {
    if (msg)
      kl_tensor_destroy(outs[r]);
    else
      outputs[r] = outs[r];
  }
  free(outs);
  return msg;
}
