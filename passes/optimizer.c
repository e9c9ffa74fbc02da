/* The optimizer pass: appends global-norm gradient clipping, SGD (with
 * momentum), Adam or AdamW updates and one `assign` per parameter and per
 * state slot to a graph that already holds the gradients. PyTorch 1.13's
 * update formulas (torch.optim, clip_grad_norm_), op for op, so training
 * curves match it; the learning rate comes from lr_schedule.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/optim_build.h"

static const char *param_name(const ir_node *n) { return ir_node_attr(n, "name")->s; }

/* Applies PyTorch's defaults for 0 fields and rejects what it would. */
static bool resolve(const pass_optim *in, pass_optim *o, ir_diag *d) {
  *o = *in;
  bool adam = o->kind == PASS_OPT_ADAM || o->kind == PASS_OPT_ADAMW;
  if (o->kind != PASS_OPT_SGD && !adam) {
    ir_diag_set(d, "optimizer: unknown optimizer kind %d", (int)o->kind);
    return false;
  }
  if (adam) {
    if (o->lr == 0) o->lr = 1e-3;
    if (o->beta1 == 0) o->beta1 = 0.9;
    if (o->beta2 == 0) o->beta2 = 0.999;
    if (o->eps == 0) o->eps = 1e-8;
  }
  const char *bad = NULL;
  double v = 0;
  if (!(o->lr > 0))
    bad = "lr must be > 0", v = o->lr;
  else if (!(o->momentum >= 0))
    bad = "momentum must be >= 0", v = o->momentum;
  else if (!(o->weight_decay >= 0))
    bad = "weight_decay must be >= 0", v = o->weight_decay;
  else if (o->decay_min_rank < 0)
    bad = "decay_min_rank must be >= 0", v = o->decay_min_rank;
  else if (!(o->clip_norm >= 0))
    bad = "clip_norm must be >= 0", v = o->clip_norm;
  else if (adam && !(o->beta1 >= 0 && o->beta1 < 1))
    bad = "beta1 must be in [0, 1)", v = o->beta1;
  else if (adam && !(o->beta2 >= 0 && o->beta2 < 1))
    bad = "beta2 must be in [0, 1)", v = o->beta2;
  else if (adam && !(o->eps > 0))
    bad = "eps must be > 0", v = o->eps;
  if (bad) {
    ir_diag_set(d, "optimizer: %s, got %g", bad, v);
    return false;
  }
  return true;
}

static bool has_param(const ir_graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_PARAM && strcmp(param_name(g->nodes[i]), name) == 0) return true;
  return false;
}

static bool check_inputs(const ir_graph *g, const pass_optim *o, int n, const int *params,
                         const int *grads, ir_diag *d) {
  static const char *const slots[] = {"m", "v", "momentum"};
  for (int i = 0; i < n; i++) {
    if (params[i] < 0 || params[i] >= g->nnodes || g->nodes[params[i]]->op != IR_OP_PARAM) {
      ir_diag_set(d, "optimizer: parameter %d (node %d) is not a param node", i, params[i]);
      return false;
    }
    const ir_node *p = g->nodes[params[i]];
    const char *pn = param_name(p);
    char ts[IR_TYPE_STRLEN], tg[IR_TYPE_STRLEN];
    if (!ir_dtype_is_float(p->type.dtype) || !ir_node_attr(p, "trainable")->b) {
      ir_diag_set(d, "optimizer: param \"%s\" (%s) is not a trainable float parameter", pn,
                  ir_type_str(&p->type, ts, sizeof ts));
      return false;
    }
    if (grads[i] < 0 || grads[i] >= g->nnodes || !ir_type_eq(&g->nodes[grads[i]]->type, &p->type)) {
      ir_diag_set(d, "optimizer: the gradient of param \"%s\" (%s) is %s", pn,
                  ir_type_str(&p->type, ts, sizeof ts),
                  grads[i] < 0 || grads[i] >= g->nnodes
                      ? "no node"
                      : ir_type_str(&g->nodes[grads[i]]->type, tg, sizeof tg));
      return false;
    }
    for (int j = 0; j < i; j++) {
      if (strcmp(param_name(g->nodes[params[j]]), pn) == 0) {
        ir_diag_set(d, "optimizer: param \"%s\" is given twice", pn);
        return false;
      }
    }
    for (int s = 0; s < 3; s++) {
      bool used = (s == 2) ? o->kind == PASS_OPT_SGD && o->momentum > 0 : o->kind != PASS_OPT_SGD;
      char name[512];
      snprintf(name, sizeof name, "%s@%s", pn, slots[s]);
      if (used && has_param(g, name)) {
        ir_diag_set(d, "optimizer: the state of param \"%s\" would be \"%s\", which already exists",
                    pn, name);
        return false;
      }
    }
  }
  return true;
}

/* A new state slot "<param>@<slot>": zeros, not trainable. */
static int new_slot(ob *b, const ir_node *p, const char *slot) {
  pass_builder *pb = &b->pb;
  char name[512];
  snprintf(name, sizeof name, "%s@%s", param_name(p), slot);
  ir_attr a[4] = {{.kind = IR_ATTR_STR, .s = name},
                  {.kind = IR_ATTR_STR, .s = "zeros"},
                  {.kind = IR_ATTR_FLOAT, .f = 0.0},
                  {.kind = IR_ATTR_BOOL, .b = false}};
  return pb_node(pb, IR_OP_PARAM, 0, NULL, a, &p->type);
}

/* The step's scalars, built once in f64 and cast once per dtype used. */
typedef struct scalars {
  int lr, step_size, bc2_sqrt, decay; /* f64 */
  int cast[IR_NUM_DTYPES][4];
} scalars;

static int scalar_as(ob *b, scalars *s, int which, ir_dtype dt) {
  pass_builder *pb = &b->pb;
  int src[4] = {s->lr, s->step_size, s->bc2_sqrt, s->decay};
  if (s->cast[dt][which] < 0) s->cast[dt][which] = pb_cast(pb, src[which], dt);
  return s->cast[dt][which];
}

enum { S_LR, S_STEP_SIZE, S_BC2_SQRT, S_DECAY };

/* torch.nn.utils.clip_grad_norm_: every gradient times
 * min(1, clip / (||all gradients||_2 + 1e-6)). */
static void clip(ob *b, double clip_norm, int n, int *g) {
  pass_builder *pb = &b->pb;
  int total = -1;
  for (int i = 0; i < n; i++) {
    int sq = pb_cast(pb, pb_sum_all(pb, pb_binary(pb, IR_OP_MUL, g[i], g[i])), IR_F64);
    total = i == 0 ? sq : pb_binary(pb, IR_OP_ADD, total, sq);
  }
  int norm = pb_unary(pb, IR_OP_SQRT, total);
  int coef = pb_binary(pb, IR_OP_DIV, pb_scalar(pb, clip_norm, IR_F64),
                       pb_binary(pb, IR_OP_ADD, norm, pb_scalar(pb, 1e-6, IR_F64)));
  coef = pb_binary(pb, IR_OP_MIN, coef, pb_scalar(pb, 1.0, IR_F64));
  int per[IR_NUM_DTYPES];
  for (int k = 0; k < IR_NUM_DTYPES; k++)
    per[k] = -1;
  for (int i = 0; i < n && !pb->failed; i++) {
    ir_dtype dt = pb->g->nodes[g[i]]->type.dtype;
    if (per[dt] < 0) per[dt] = pb_cast(pb, coef, dt);
    g[i] = pb_binary(pb, IR_OP_MUL, g[i], per[dt]);
  }
}

/* Whether p's group decays: nanoGPT's grouping by rank (decay_min_rank). */
static bool decays(const pass_optim *o, const ir_node *p) {
  return o->weight_decay > 0 && p->type.rank >= o->decay_min_rank;
}

typedef struct update {
  int param, value; /* a PARAM node and its new value */
} update;

/* torch.optim.SGD: g += wd p; buf = momentum buf + g; p -= lr buf. */
static int sgd(ob *b, const pass_optim *o, scalars *s, int p, int g, update *slots, int *ns) {
  pass_builder *pb = &b->pb;
  const ir_node *pn = pb->g->nodes[p];
  ir_dtype dt = pn->type.dtype;
  if (decays(o, pn))
    g = pb_binary(pb, IR_OP_ADD, g,
                  pb_binary(pb, IR_OP_MUL, p, pb_scalar(pb, o->weight_decay, dt)));
  if (o->momentum > 0) {
    int buf = new_slot(b, pn, "momentum");
    g = pb_binary(pb, IR_OP_ADD, pb_binary(pb, IR_OP_MUL, buf, pb_scalar(pb, o->momentum, dt)), g);
    slots[(*ns)++] = (update){buf, g};
  }
  return pb_binary(pb, IR_OP_SUB, p, pb_binary(pb, IR_OP_MUL, scalar_as(b, s, S_LR, dt), g));
}

/* torch.optim.Adam / AdamW (non-amsgrad): moments m, v; p -= lr/bc1 m /
 * (sqrt(v)/sqrt(bc2) + eps); Adam adds wd p to g, AdamW scales p by
 * 1 - lr wd first. */
static int adam(ob *b, const pass_optim *o, scalars *s, int p, int g, update *slots, int *ns) {
  pass_builder *pb = &b->pb;
  const ir_node *pn = pb->g->nodes[p];
  ir_dtype dt = pn->type.dtype;
  bool decoupled = o->kind == PASS_OPT_ADAMW;
  if (decays(o, pn) && !decoupled)
    g = pb_binary(pb, IR_OP_ADD, g,
                  pb_binary(pb, IR_OP_MUL, p, pb_scalar(pb, o->weight_decay, dt)));
  int m0 = new_slot(b, pn, "m"), v0 = new_slot(b, pn, "v");
  int m = pb_binary(pb, IR_OP_ADD, pb_binary(pb, IR_OP_MUL, m0, pb_scalar(pb, o->beta1, dt)),
                    pb_binary(pb, IR_OP_MUL, g, pb_scalar(pb, 1 - o->beta1, dt)));
  int gg = pb_binary(pb, IR_OP_MUL, g, g);
  int v = pb_binary(pb, IR_OP_ADD, pb_binary(pb, IR_OP_MUL, v0, pb_scalar(pb, o->beta2, dt)),
                    pb_binary(pb, IR_OP_MUL, gg, pb_scalar(pb, 1 - o->beta2, dt)));
  slots[(*ns)++] = (update){m0, m};
  slots[(*ns)++] = (update){v0, v};
  int denom = pb_binary(
      pb, IR_OP_ADD,
      pb_binary(pb, IR_OP_DIV, pb_unary(pb, IR_OP_SQRT, v), scalar_as(b, s, S_BC2_SQRT, dt)),
      pb_scalar(pb, o->eps, dt));
  int step = pb_binary(pb, IR_OP_MUL, pb_binary(pb, IR_OP_DIV, m, denom),
                       scalar_as(b, s, S_STEP_SIZE, dt));
  if (decays(o, pn) && decoupled) p = pb_binary(pb, IR_OP_MUL, p, scalar_as(b, s, S_DECAY, dt));
  return pb_binary(pb, IR_OP_SUB, p, step);
}

static void build_scalars(ob *b, const pass_optim *o, scalars *s) {
  pass_builder *pb = &b->pb;
  for (int k = 0; k < IR_NUM_DTYPES; k++)
    for (int j = 0; j < 4; j++)
      s->cast[k][j] = -1;
  s->lr = ob_lr_schedule(b, o);
  s->step_size = s->bc2_sqrt = s->decay = -1;
  if (o->kind == PASS_OPT_SGD) return;
  /* bias corrections 1 - beta^t1, in f64 as PyTorch computes them */
  int t1 = ob_t1(b);
  int one = pb_scalar(pb, 1.0, IR_F64);
  int bc1 =
      pb_binary(pb, IR_OP_SUB, one, pb_binary(pb, IR_OP_POW, pb_scalar(pb, o->beta1, IR_F64), t1));
  int bc2 =
      pb_binary(pb, IR_OP_SUB, one, pb_binary(pb, IR_OP_POW, pb_scalar(pb, o->beta2, IR_F64), t1));
  s->step_size = pb_binary(pb, IR_OP_DIV, s->lr, bc1);
  s->bc2_sqrt = pb_unary(pb, IR_OP_SQRT, bc2);
  if (o->kind == PASS_OPT_ADAMW && o->weight_decay > 0)
    s->decay = pb_binary(pb, IR_OP_SUB, one,
                         pb_binary(pb, IR_OP_MUL, s->lr, pb_scalar(pb, o->weight_decay, IR_F64)));
}

bool pass_optimizer(ir_graph *g, const pass_optim *opts, int n, const int *params, const int *grads,
                    ir_diag *d) {
  pass_optim o;
  ob b = {.t1 = -1};
  pb_init(&b.pb, g, d, "optimizer: ");
  if (!g || !opts || n < 0 || (n > 0 && (!params || !grads))) {
    ir_diag_set(d, "optimizer: no graph, options or parameter list");
    return false;
  }
  if (!resolve(opts, &o, d) || !ob_lr_check(&b, &o) || !check_inputs(g, &o, n, params, grads, d))
    return false;
  if (n == 0) return true;
  int *gr = malloc((size_t)n * sizeof *gr);
  update *ups = malloc((size_t)n * 3 * sizeof *ups);
  if (!gr || !ups) {
    free(gr);
    free(ups);
    ir_diag_set(d, "optimizer: out of memory");
    return false;
  }
  memcpy(gr, grads, (size_t)n * sizeof *gr);
  if (o.clip_norm > 0) clip(&b, o.clip_norm, n, gr);
  scalars s;
  build_scalars(&b, &o, &s);
  /* New parameter values first, then slots: ups[0..n) and ups[n..). */
  int ns = n;
  for (int i = 0; i < n && !b.pb.failed; i++) {
    int v = o.kind == PASS_OPT_SGD ? sgd(&b, &o, &s, params[i], gr[i], ups, &ns)
                                   : adam(&b, &o, &s, params[i], gr[i], ups, &ns);
    ups[i] = (update){params[i], v};
  }
  /* Every read of a parameter comes before all assigns (verify.c). */
  for (int i = 0; i < ns && !b.pb.failed; i++) {
    int in[2] = {ups[i].param, ups[i].value};
    pb_node(&b.pb, IR_OP_ASSIGN, 2, in, NULL, NULL);
  }
  free(gr);
  free(ups);
  return !b.pb.failed;
}
