/* Gradient checking for the autodiff tests (test_autodiff.c,
 * test_grad_composite.c): a forward graph with seeded inputs, the analytic
 * gradient from pass_autodiff evaluated by the reference interpreter, and
 * central differences of the same interpreter in f64 as the oracle. Every
 * gradient graph is also verified and round-tripped through text. */
#ifndef KILN_TEST_GRAD_HARNESS_H
#define KILN_TEST_GRAD_HARNESS_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "ir/ir.h"
#include "passes/autodiff.h"
#include "runtime/ref.h"

#define GH_MAX 16

typedef struct gh {
  ir_graph *g; /* forward graph (owned); output 0 is the loss */
  int nargs;
  int arg_ids[GH_MAX];
  rt_tensor *args[GH_MAX];
  int np; /* distinct parameter names */
  const char *pnames[GH_MAX];
  rt_tensor *params[GH_MAX];
  rt_tensor *w; /* loss = sum(out0 * w): a random seed exercises more than ones */
  rt_ref_opts opts;
  uint64_t rng;
  double eps, rtol, atol;
  int grad_nodes; /* nodes pass_autodiff appended in the last gh_grads */
} gh;

static inline double gh_rand(gh *h) { /* splitmix64 -> [0, 1) */
  uint64_t z = (h->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

static inline void gh_uniform(gh *h, rt_tensor *t, double lo, double hi) {
  for (int64_t i = 0; i < rt_numel(t); i++)
    rt_set_f(t, i, lo + (hi - lo) * gh_rand(h));
}

static inline const rt_tensor *gh_lookup(void *ctx, const ir_node *p) {
  gh *h = ctx;
  for (int i = 0; i < h->np; i++)
    if (!strcmp(h->pnames[i], ir_node_attr(p, "name")->s)) return h->params[i];
  return NULL;
}

/* Takes ownership of g. Float inputs and parameters start uniform in
 * [-1, 1], integers at 0; output 0 is weighted by a random tensor. */
static inline void gh_init(gh *h, ir_graph *g, uint64_t seed) {
  memset(h, 0, sizeof *h);
  h->g = g;
  h->rng = seed;
  h->eps = 1e-6;
  /* Central differences in f64: truncation ~eps^2 |f'''| ~ 1e-12, rounding
   * ~ 2^-52 |L| / eps ~ 2e-10 |L|; atol adds the latter (gh_check). */
  h->rtol = 1e-6;
  h->atol = 1e-8;
  cr_assert(g && g->nrets >= 1, "graph without outputs");
  h->nargs = ir_graph_args(g, NULL);
  cr_assert(h->nargs <= GH_MAX);
  ir_graph_args(g, h->arg_ids);
  for (int i = 0; i < h->nargs; i++) {
    h->args[i] = rt_tensor_create(&g->nodes[h->arg_ids[i]]->type);
    cr_assert(h->args[i]);
    if (ir_dtype_is_float(h->args[i]->type.dtype)) gh_uniform(h, h->args[i], -1, 1);
  }
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = g->nodes[id];
    if (n->op != IR_OP_PARAM || gh_lookup(h, n)) continue;
    cr_assert(h->np < GH_MAX);
    h->pnames[h->np] = ir_node_attr(n, "name")->s;
    h->params[h->np] = rt_tensor_create(&n->type);
    cr_assert(h->params[h->np]);
    gh_uniform(h, h->params[h->np], -1, 1);
    h->np++;
  }
  h->w = rt_tensor_create(&g->nodes[g->rets[0]]->type);
  cr_assert(h->w);
  gh_uniform(h, h->w, -1.5, 1.5);
}

static inline void gh_init_text(gh *h, const char *text, uint64_t seed) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "test", &d);
  cr_assert(g, "parse: %s\n%s", d.msg, text);
  gh_init(h, g, seed);
}

/* Takes the DSL graph (destroyed here); its outputs must be set. */
static inline void gh_init_dsl(gh *h, kl_graph *kg, uint64_t seed) {
  cr_assert(!kl_graph_error(kg), "DSL error: %s", kl_graph_error(kg));
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(kl_graph_ir(kg), &d);
  cr_assert(g, "%s", d.msg);
  kl_graph_destroy(kg);
  gh_init(h, g, seed);
}

static inline void gh_free(gh *h) {
  for (int i = 0; i < h->nargs; i++)
    rt_tensor_destroy(h->args[i]);
  for (int i = 0; i < h->np; i++)
    rt_tensor_destroy(h->params[i]);
  rt_tensor_destroy(h->w);
  ir_graph_destroy(h->g);
}

/* The input (argument or parameter) called name. */
static inline rt_tensor *gh_tensor(gh *h, const char *name) {
  for (int i = 0; i < h->nargs; i++)
    if (!strcmp(h->g->nodes[h->arg_ids[i]]->name, name)) return h->args[i];
  for (int i = 0; i < h->np; i++)
    if (!strcmp(h->pnames[i], name)) return h->params[i];
  cr_assert_fail("no input or parameter '%s'", name);
  return NULL;
}

static inline void gh_fill(gh *h, const char *name, double lo, double hi) {
  gh_uniform(h, gh_tensor(h, name), lo, hi);
}

/* Magnitudes in [lo, hi] with random signs: away from a kink at 0. */
static inline void gh_fill_away0(gh *h, const char *name, double lo, double hi) {
  rt_tensor *t = gh_tensor(h, name);
  for (int64_t i = 0; i < rt_numel(t); i++) {
    double m = lo + (hi - lo) * gh_rand(h);
    rt_set_f(t, i, gh_rand(h) < 0.5 ? -m : m);
  }
}

static inline void gh_set(gh *h, const char *name, const double *v) {
  rt_tensor *t = gh_tensor(h, name);
  for (int64_t i = 0; i < rt_numel(t); i++) {
    if (ir_dtype_is_float(t->type.dtype))
      rt_set_f(t, i, v[i]);
    else
      rt_set_i(t, i, (int64_t)v[i]);
  }
}

/* The node an input name refers to: an argument, else the first parameter
 * of that name. */
static inline int gh_node(const ir_graph *g, const char *name) {
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = g->nodes[id];
    if (n->op == IR_OP_ARG && n->name && !strcmp(n->name, name)) return id;
  }
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = g->nodes[id];
    if (n->op == IR_OP_PARAM && !strcmp(ir_node_attr(n, "name")->s, name)) return id;
  }
  cr_assert_fail("no node '%s'", name);
  return -1;
}

/* sum(out0 * w) of the forward graph at the current inputs. */
static inline double gh_loss(gh *h, double *mag) {
  rt_tensor *outs[GH_MAX] = {0};
  ir_diag d = {0};
  cr_assert(h->g->nrets <= GH_MAX);
  bool ok = rt_ref_run(h->g, (const rt_tensor *const *)h->args, gh_lookup, h, &h->opts, outs, &d);
  cr_assert(ok, "forward run: %s", d.msg);
  double s = 0, m = 0;
  for (int64_t i = 0; i < rt_numel(outs[0]); i++) {
    double v = rt_get_f(outs[0], i) * rt_get_f(h->w, i);
    s += v;
    m += fabs(v);
  }
  for (int i = 0; i < h->g->nrets; i++)
    rt_tensor_destroy(outs[i]);
  if (mag) *mag = m;
  return s;
}

/* The gradient graph must verify and print -> parse -> print identically. */
static inline void gh_check_text(const ir_graph *g) {
  ir_diag d = {0};
  cr_assert(ir_verify(g, &d), "gradient graph does not verify: %s", d.msg);
  char *t1 = ir_print_str(g, NULL);
  cr_assert(t1);
  ir_graph *g2 = ir_parse(t1, strlen(t1), "grad", &d);
  cr_assert(g2, "gradient graph does not parse back: %s\n%s", d.msg, t1);
  char *t2 = ir_print_str(g2, NULL);
  cr_assert(t2);
  cr_expect_str_eq(t1, t2, "print(parse(print(g))) differs");
  free(t1);
  free(t2);
  ir_graph_destroy(g2);
}

/* Appends the weighted loss and the gradients of the named inputs to a
 * clone, checks its text form, runs it: out[i] receives grad i (owned).
 * Returns false (with d) when pass_autodiff fails. */
static inline bool gh_grads_d(gh *h, int nwrt, const char *const *names, rt_tensor **out,
                              ir_diag *d) {
  ir_graph *c = ir_graph_clone(h->g, d);
  cr_assert(c, "%s", d->msg);
  int out0 = c->rets[0];
  int w = ir_add_const(c, &h->w->type, h->w->data, d);
  cr_assert(w >= 0, "%s", d->msg);
  int in[2] = {out0, w};
  int loss = ir_add_node(c, IR_OP_MUL, 2, in, NULL, NULL, d);
  cr_assert(loss >= 0, "%s", d->msg);
  int wrt[GH_MAX], grads[GH_MAX];
  cr_assert(nwrt <= GH_MAX);
  for (int i = 0; i < nwrt; i++)
    wrt[i] = gh_node(c, names[i]);
  int before = c->nnodes;
  if (!pass_autodiff(c, loss, nwrt, wrt, grads, d)) {
    ir_graph_destroy(c);
    return false;
  }
  h->grad_nodes = c->nnodes - before;
  for (int i = 0; i < nwrt; i++) {
    cr_assert(grads[i] >= 0 && grads[i] < c->nnodes);
    cr_assert(ir_type_eq(&c->nodes[grads[i]]->type, &c->nodes[wrt[i]]->type),
              "gradient of %s has the wrong type", names[i]);
  }
  ir_set_returns(c, nwrt, grads);
  gh_check_text(c);
  bool ok = rt_ref_run(c, (const rt_tensor *const *)h->args, gh_lookup, h, &h->opts, out, d);
  cr_assert(ok, "gradient run: %s", d->msg);
  ir_graph_destroy(c);
  return true;
}

static inline void gh_grads(gh *h, int nwrt, const char *const *names, rt_tensor **out) {
  ir_diag d = {0};
  cr_assert(gh_grads_d(h, nwrt, names, out, &d), "pass_autodiff: %s", d.msg);
}

/* Analytic vs numeric gradients of every named input; what = test label. */
static inline void gh_check(gh *h, const char *what, int nwrt, const char *const *names) {
  rt_tensor *an[GH_MAX] = {0};
  gh_grads(h, nwrt, names, an);
  double mag;
  gh_loss(h, &mag);
  double atol = h->atol + 4e-10 * mag;
  for (int k = 0; k < nwrt; k++) {
    rt_tensor *x = gh_tensor(h, names[k]);
    int bad = 0;
    for (int64_t i = 0; i < rt_numel(x); i++) {
      double v = rt_get_f(x, i);
      rt_set_f(x, i, v + h->eps);
      double lp = gh_loss(h, NULL);
      rt_set_f(x, i, v - h->eps);
      double lm = gh_loss(h, NULL);
      rt_set_f(x, i, v);
      double num = (lp - lm) / (2 * h->eps), got = rt_get_f(an[k], i);
      if (!(fabs(got - num) <= atol + h->rtol * fabs(num)) && bad++ < 5)
        cr_expect_fail("%s: d/d%s[%lld]: autodiff %.12g, numeric %.12g", what, names[k],
                       (long long)i, got, num);
    }
    cr_expect(bad == 0, "%s: %d of %lld elements of d/d%s differ", what, bad,
              (long long)rt_numel(x), names[k]);
    rt_tensor_destroy(an[k]);
  }
}

#endif
