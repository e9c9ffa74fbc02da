/* The train-step API of kiln_train.h (and its internal variants in
 * train_internal.h): one program that runs forward,
 * backward (pass_autodiff), clipping and the optimizer update
 * (pass_optimizer) per call, with the loss written into a tensor made once
 * so that steps allocate nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/train_internal.h"
#include "ir/ir.h"
#include "passes/autodiff.h"
#include "passes/optimizer.h"
#include "passes/pipeline.h"

struct kl_train_step {
  kl_program *p;
  ir_graph *g; /* the compiled graph, for kl_train_step_graph */
  kl_tensor *loss;
  bool f64;
};

static char *message(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, a, b ? b : "");
  return s;
}

static const char *pname(const ir_node *n) { return ir_node_attr(n, "name")->s; }

/* The explicitly chosen parameters' names (copies: passes replace the
 * graph, and free its strings, before autodiff runs), each checked to be a
 * trainable float param. Returns the count, or -1 with d set. Without ids
 * the autodiff row picks every trainable parameter itself. */
static int chosen_names(const ir_graph *g, const int *ids, int nids, const char **out, ir_diag *d) {
  for (int k = 0; k < nids; k++) {
    int id = ids[k];
    if (id < 0 || id >= g->nnodes) {
      ir_diag_set(d, "parameter %d: node %d does not exist", k, id);
      return -1;
    }
    const ir_node *p = g->nodes[id];
    if (p->op != IR_OP_PARAM) {
      ir_diag_set(d, "parameter %d: node %d (%s) is not a param", k, id, ir_op_get(p->op)->name);
      return -1;
    }
    if (!ir_dtype_is_float(p->type.dtype) || !ir_node_attr(p, "trainable")->b) {
      char t[IR_TYPE_STRLEN];
      ir_diag_set(d, "parameter %d: param \"%s\" (%s) is not a trainable float parameter", k,
                  pname(p), ir_type_str(&p->type, t, sizeof t));
      return -1;
    }
    if (!(out[k] = strdup(pname(p)))) {
      ir_diag_set(d, "out of memory");
      return -1;
    }
  }
  return nids;
}

static pass_optim to_pass(const kl_optim_opts *o) {
  return (pass_optim){.kind = (pass_opt_kind)o->kind,
                      .lr = o->lr,
                      .momentum = o->momentum,
                      .beta1 = o->beta1,
                      .beta2 = o->beta2,
                      .eps = o->eps,
                      .weight_decay = o->weight_decay,
                      .clip_norm = o->clip_norm,
                      .schedule = (pass_lr_kind)o->schedule,
                      .warmup = o->warmup,
                      .total_steps = o->total_steps,
                      .min_lr = o->min_lr,
                      .decay_min_rank = o->decay_min_rank};
}

/* Clone, set the loss as the only return, and run the pipeline with the
 * training rows on (autodiff, optimizer) under po's options. */
static ir_graph *training_graph(const ir_graph *src, int loss, const int *ids, int nids,
                                const kl_optim_opts *opt, const pass_opts *po, ir_diag *d) {
  if (!ir_verify(src, d)) return NULL;
  char t[IR_TYPE_STRLEN];
  if (loss < 0 || loss >= src->nnodes) {
    ir_diag_set(d, "the loss (node %d) does not exist", loss);
    return NULL;
  }
  const ir_node *ln = src->nodes[loss];
  if (ln->type.rank != 0 || !ir_dtype_is_float(ln->type.dtype)) {
    ir_diag_set(d, "the loss must be a float scalar, %s %%%s is %s", ir_op_get(ln->op)->name,
                ln->name ? ln->name : "(unnamed)", ir_type_str(&ln->type, t, sizeof t));
    return NULL;
  }
  if (!ids || nids < 0) nids = 0;
  ir_graph *g = ir_graph_clone(src, d);
  const char **names = g ? calloc((size_t)nids + 1, sizeof *names) : NULL;
  if (!names) {
    if (g) ir_diag_set(d, "out of memory");
    ir_graph_destroy(g);
    return NULL;
  }
  int n = chosen_names(g, ids, nids, names, d);
  pass_train tr = {.optim = to_pass(opt), .params = n > 0 ? names : NULL, .nparams = n};
  pass_opts o = po ? *po : kl_default_pass_opts();
  o.train = &tr;
  ir_set_returns(g, 1, &loss);
  bool ok = n >= 0 && pass_run_pipeline(&g, &o, d);
  if (ok && (o.stop_after == NULL || g->nrets == 1)) ok = ir_verify(g, d);
  for (int i = 0; i < nids; i++)
    free((char *)names[i]);
  free(names);
  if (!ok) {
    ir_graph_destroy(g);
    return NULL;
  }
  return g;
}

ir_graph *kl_train_graph_with(const ir_graph *g, int loss, const int *params, int nparams,
                              const kl_optim_opts *opt, const pass_opts *po, char **err) {
  if (err) *err = NULL;
  const char *what = !g ? "no graph" : !opt ? "no optimizer options" : NULL;
  if (!what && g->has_error) what = g->error.msg;
  if (what) {
    if (err) *err = message("kl_compile_train: %s%s", what, NULL);
    return NULL;
  }
  ir_diag d = {0};
  ir_graph *tg = training_graph(g, loss, params, nparams, opt, po, &d);
  if (!tg && err) *err = message("kl_compile_train: %s%s", d.msg, NULL);
  return tg;
}

/* The public call: the values become node ids of g's IR, copts->passes the
 * pipeline's options. */
kl_train_step *kl_compile_train(const kl_graph *g, kl_value loss, const kl_value *params,
                                int nparams, const kl_optim_opts *opt, const kl_compile_opts *copts,
                                char **err) {
  if (err) *err = NULL;
  const ir_graph *ig = kl_graph_ir(g);
  if (ig && ig->has_error) return kl_compile_train_with(ig, -1, NULL, 0, opt, NULL, copts, err);
  ir_diag d = {0};
  pass_opts po;
  if (!params || nparams < 0) nparams = 0;
  int *ids = calloc((size_t)nparams + 1, sizeof *ids);
  if (!ids)
    ir_diag_set(&d, "out of memory");
  else if (!ig)
    ir_diag_set(&d, "no graph");
  else if (loss.g != g || !kl_value_ok(loss))
    ir_diag_set(&d, "the loss is not a value of the graph");
  for (int k = 0; ids && !d.msg[0] && k < nparams; k++) {
    if (params[k].g != g || !kl_value_ok(params[k]))
      ir_diag_set(&d, "parameter %d is not a value of the graph", k);
    ids[k] = params[k].id;
  }
  if (!d.msg[0]) kl_pass_opts_from(copts ? copts->passes : NULL, &po, &d);
  if (d.msg[0]) {
    free(ids);
    if (err) *err = message("kl_compile_train: %s%s", d.msg, NULL);
    return NULL;
  }
  kl_train_step *s = kl_compile_train_with(ig, loss.id, ids, nparams, opt, &po, copts, err);
  free(ids);
  return s;
}

kl_train_step *kl_compile_train_with(const ir_graph *g, int loss, const int *params, int nparams,
                                     const kl_optim_opts *opt, const pass_opts *po,
                                     const kl_compile_opts *copts, char **err) {
  ir_graph *tg = kl_train_graph_with(g, loss, params, nparams, opt, po, err);
  if (!tg) return NULL;
  kl_compile_opts co = copts ? *copts : (kl_compile_opts){.backend = KL_BACKEND_REF};
  co.training = true;
  kl_train_step *s = calloc(1, sizeof *s);
  if (!s) {
    ir_graph_destroy(tg);
    return NULL;
  }
  s->g = tg;
  const ir_type *lt = &tg->nodes[tg->rets[0]]->type;
  s->f64 = lt->dtype == IR_F64;
  s->loss = kl_tensor_create(s->f64 ? KL_TENSOR_F64 : KL_TENSOR_F32, 0, NULL);
  char *cerr = NULL;
  if (s->loss) s->p = kl_compile_unoptimized(tg, &co, &cerr);
  if (!s->p) {
    if (err) *err = message("kl_compile_train: %s%s", cerr ? cerr : "out of memory", NULL);
    free(cerr);
    kl_train_step_destroy(s);
    return NULL;
  }
  return s;
}

void kl_train_step_destroy(kl_train_step *s) {
  if (!s) return;
  kl_program_destroy(s->p);
  kl_tensor_destroy(s->loss);
  ir_graph_destroy(s->g);
  free(s);
}

const char *kl_train_step_run(kl_train_step *s, kl_tensor *const *inputs, int ninputs,
                              double *loss) {
  if (!s) return "kl_train_step_run: no train step";
  const char *msg = kl_run_into(s->p, inputs, ninputs, &s->loss, 1);
  if (!msg && loss) {
    void *v = kl_tensor_data(s->loss);
    *loss = s->f64 ? *(const double *)v : (double)*(const float *)v;
  }
  return msg;
}

kl_program *kl_train_step_program(kl_train_step *s) { return s ? s->p : NULL; }

const ir_graph *kl_train_step_graph(const kl_train_step *s) { return s ? s->g : NULL; }
