/* Reverse-mode automatic differentiation (passes/autodiff.h): marks the
 * float nodes on a path from the wrt nodes to the loss, walks them in
 * reverse topological order calling each op's gradient rule (ops.def's GRAD
 * column), accumulates adjoints with add on fan-out, and provides the node
 * builders the rules (passes/grad_*.c) use. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/autodiff.h"

static const pass_grad_fn grad_rules[IR_NUM_OPS] = {
#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER_, GRAD) [IR_OP_##E] = GRAD,
#include "ir/ops.def"
#undef IR_OP
};

/* Scalar constants are shared within one run: rules ask for 0, 1, 0.5 ...
 * over and over, and one node each keeps the gradient graph readable. */
#define AD_CONST_CACHE 32

struct pass_ad {
  ir_graph *g;
  ir_diag *d;
  const ir_node *cur; /* the forward node whose rule is running */
  const bool *needed; /* per forward node: on a path from a wrt node to the loss */
  int nfwd;
  bool failed;
  struct {
    double v;
    ir_dtype dt;
    int id;
  } consts[AD_CONST_CACHE];
  int nconsts;
};

ir_graph *pass_ad_graph(pass_ad *ad) { return ad->g; }

bool pass_ad_wants(pass_ad *ad, int k) {
  const ir_node *n = ad->cur;
  if (!n || k < 0 || k >= n->nin) return false;
  int id = n->in[k];
  return id >= 0 && id < ad->nfwd && ad->needed[id];
}

/* "%name" or "node #id", plus the source location when known. */
static void node_label(const ir_node *n, char *buf, size_t len) {
  int k = n->name && n->name[0] ? snprintf(buf, len, "%%%s", n->name)
                                : snprintf(buf, len, "node #%d", n->id);
  if (k >= 0 && (size_t)k < len && n->loc.file && n->loc.file[0])
    snprintf(buf + k, len - (size_t)k, " (%s:%d)", n->loc.file, n->loc.line);
}

bool pass_ad_fail(pass_ad *ad, const char *fmt, ...) {
  if (ad->failed) return false;
  ad->failed = true;
  char why[512], who[200] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (ad->cur) {
    node_label(ad->cur, who, sizeof who);
    ir_diag_set(ad->d, "autodiff: gradient of %s, op %s: %s", who, ir_op_get(ad->cur->op)->name,
                why);
  } else {
    ir_diag_set(ad->d, "autodiff: %s", why);
  }
  return false;
}

static int finish_node(pass_ad *ad, int id) {
  if (ad->cur) ad->g->nodes[id]->loc = ad->cur->loc;
  return id;
}

int pass_ad_op(pass_ad *ad, ir_op op, int nin, const int *in, const ir_attr *attrs) {
  if (ad->failed) return -1;
  for (int i = 0; i < nin; i++)
    if (in[i] < 0) return -1;
  ir_diag d = {0};
  int id = ir_add_node(ad->g, op, nin, in, attrs, NULL, &d);
  if (id < 0) {
    pass_ad_fail(ad, "building %s: %s", ir_op_get(op)->name, d.msg);
    return -1;
  }
  return finish_node(ad, id);
}

int pass_ad_unary(pass_ad *ad, ir_op op, int a) { return pass_ad_op(ad, op, 1, &a, NULL); }

int pass_ad_binary(pass_ad *ad, ir_op op, int a, int b) {
  int in[2] = {a, b};
  return pass_ad_op(ad, op, 2, in, NULL);
}

int pass_ad_scalar(pass_ad *ad, double v, ir_dtype dt) {
  if (ad->failed) return -1;
  for (int i = 0; i < ad->nconsts; i++)
    if (ad->consts[i].dt == dt && ad->consts[i].v == v) return ad->consts[i].id;
  union {
    float f;
    double d;
    int32_t i32;
    int64_t i64;
    uint8_t b;
  } u = {0};
  switch (dt) {
  case IR_F32: u.f = (float)v; break;
  case IR_F64: u.d = v; break;
  case IR_I32: u.i32 = (int32_t)v; break;
  case IR_I64: u.i64 = (int64_t)v; break;
  default: u.b = v != 0; break;
  }
  ir_type t = ir_type_make(dt, 0, NULL);
  ir_diag d = {0};
  int id = ir_add_const(ad->g, &t, &u, &d);
  if (id < 0) {
    pass_ad_fail(ad, "building a constant: %s", d.msg);
    return -1;
  }
  finish_node(ad, id);
  if (ad->nconsts < AD_CONST_CACHE) {
    ad->consts[ad->nconsts].v = v;
    ad->consts[ad->nconsts].dt = dt;
    ad->consts[ad->nconsts++].id = id;
  }
  return id;
}

int pass_ad_fill(pass_ad *ad, double v, const ir_type *t) {
  int s = pass_ad_scalar(ad, v, t->dtype);
  if (s < 0 || t->rank == 0) return s;
  int64_t dims[IR_MAX_RANK];
  memcpy(dims, t->dims, sizeof dims);
  ir_attr a = pass_attr_ints(t->rank, dims);
  return pass_ad_op(ad, IR_OP_BROADCAST_TO, 1, &s, &a);
}

int pass_ad_reshape(pass_ad *ad, int x, int rank, const int64_t *dims) {
  if (ad->failed || x < 0) return -1;
  const ir_type *xt = &ad->g->nodes[x]->type;
  ir_type want = ir_type_make(xt->dtype, rank, dims);
  if (ir_type_eq(xt, &want)) return x;
  int64_t v[IR_MAX_RANK] = {0};
  memcpy(v, dims, (size_t)rank * sizeof *v);
  ir_attr a = pass_attr_ints(rank, v);
  return pass_ad_op(ad, IR_OP_RESHAPE, 1, &x, &a);
}

int pass_ad_cast(pass_ad *ad, int x, ir_dtype to) {
  if (ad->failed || x < 0) return -1;
  if (ad->g->nodes[x]->type.dtype == to) return x;
  ir_attr a = pass_attr_dtype(to);
  return pass_ad_op(ad, IR_OP_CAST, 1, &x, &a);
}

int pass_ad_unbroadcast(pass_ad *ad, int x, const ir_type *to) {
  if (ad->failed || x < 0) return -1;
  ir_type xt = ad->g->nodes[x]->type;
  if (ir_shape_eq(&xt, to)) return x;
  int lead = xt.rank - to->rank;
  if (lead < 0) {
    char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
    pass_ad_fail(ad, "cannot sum %s down to %s", ir_type_str(&xt, a, sizeof a),
                 ir_type_str(to, b, sizeof b));
    return -1;
  }
  int64_t axes[IR_MAX_RANK];
  int nax = 0;
  for (int i = 0; i < xt.rank; i++)
    if (i < lead || (to->dims[i - lead] == 1 && xt.dims[i] != 1)) axes[nax++] = i;
  if (nax > 0) {
    ir_attr a[2] = {pass_attr_ints(nax, axes), pass_attr_bool(false)};
    x = pass_ad_op(ad, IR_OP_SUM, 1, &x, a);
  }
  return pass_ad_reshape(ad, x, to->rank, to->dims);
}

/* ---- the driver ---------------------------------------------------------- */

static bool is_float_node(const ir_node *n) { return ir_dtype_is_float(n->type.dtype); }

/* Two PARAM nodes with the same name are one parameter. */
static bool same_param(const ir_node *a, const ir_node *b) {
  return a->op == IR_OP_PARAM && b->op == IR_OP_PARAM &&
         !strcmp(ir_node_attr(a, "name")->s, ir_node_attr(b, "name")->s);
}

/* The forward nodes that are wrt[i] or the same parameter as it. */
static bool is_source(const ir_graph *g, int id, int nwrt, const int *wrt) {
  for (int i = 0; i < nwrt; i++)
    if (wrt[i] == id || same_param(g->nodes[wrt[i]], g->nodes[id])) return true;
  return false;
}

static bool check_args(ir_graph *g, int loss, int nwrt, const int *wrt, const int *grads,
                       ir_diag *d) {
  char t[IR_TYPE_STRLEN], who[200];
  if (loss < 0 || loss >= g->nnodes) {
    ir_diag_set(d, "autodiff: the loss %d is not a node of @%s", loss, g->name);
    return false;
  }
  if (!is_float_node(g->nodes[loss])) {
    node_label(g->nodes[loss], who, sizeof who);
    ir_diag_set(d, "autodiff: the loss %s is %s, not a float tensor", who,
                ir_type_str(&g->nodes[loss]->type, t, sizeof t));
    return false;
  }
  if (nwrt < 0 || (nwrt > 0 && (!wrt || !grads))) {
    ir_diag_set(d, "autodiff: bad list of nodes to differentiate with respect to");
    return false;
  }
  for (int i = 0; i < nwrt; i++) {
    if (wrt[i] < 0 || wrt[i] >= g->nnodes) {
      ir_diag_set(d, "autodiff: wrt[%d] = %d is not a node of @%s", i, wrt[i], g->name);
      return false;
    }
    const ir_node *n = g->nodes[wrt[i]];
    if (!is_float_node(n)) {
      node_label(n, who, sizeof who);
      ir_diag_set(d,
                  "autodiff: cannot differentiate with respect to %s: it is %s, not a float "
                  "tensor",
                  who, ir_type_str(&n->type, t, sizeof t));
      return false;
    }
  }
  return true;
}

/* needed[id]: a float node that depends on a source and that the loss
 * depends on. Gradients flow only through float values: a comparison or a
 * cast to an integer ends a path. */
static void mark_needed(const ir_graph *g, int loss, int nwrt, const int *wrt, bool *from,
                        bool *needed) {
  for (int id = 0; id <= loss; id++) {
    const ir_node *n = g->nodes[id];
    from[id] = false;
    if (!is_float_node(n)) continue;
    if (is_source(g, id, nwrt, wrt)) {
      from[id] = true;
      continue;
    }
    for (int k = 0; k < n->nin && !from[id]; k++)
      from[id] = from[n->in[k]];
  }
  for (int id = 0; id <= loss; id++)
    needed[id] = false;
  needed[loss] = from[loss];
  for (int id = loss; id >= 0; id--) {
    if (!needed[id]) continue;
    const ir_node *n = g->nodes[id];
    for (int k = 0; k < n->nin; k++)
      if (from[n->in[k]]) needed[n->in[k]] = true;
  }
}

static bool accumulate(pass_ad *ad, int *adj, int id, int contrib) {
  if (contrib < 0) return !ad->failed;
  if (adj[id] < 0) {
    adj[id] = contrib;
    return true;
  }
  adj[id] = pass_ad_binary(ad, IR_OP_ADD, adj[id], contrib);
  return adj[id] >= 0;
}

/* Runs the rule of node id and adds its operands' contributions. */
static bool backprop_node(pass_ad *ad, int id, int *adj) {
  ir_graph *g = ad->g;
  const ir_node *n = g->nodes[id];
  ad->cur = n;
  pass_grad_fn rule = grad_rules[n->op];
  if (!rule) return pass_ad_fail(ad, "%s has no gradient rule", ir_op_get(n->op)->name);
  int gx_small[8], *gx = n->nin <= 8 ? gx_small : malloc((size_t)n->nin * sizeof *gx);
  if (!gx) return pass_ad_fail(ad, "out of memory");
  for (int k = 0; k < n->nin; k++)
    gx[k] = -1;
  bool ok = rule(ad, n, adj[id], gx) && !ad->failed;
  for (int k = 0; ok && k < n->nin; k++) {
    if (gx[k] < 0) continue;
    const ir_type *want = &g->nodes[n->in[k]]->type, *got = &g->nodes[gx[k]]->type;
    if (!ir_type_eq(want, got)) {
      char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
      ok = pass_ad_fail(ad, "internal error: the rule made a %s gradient for operand %d of type %s",
                        ir_type_str(got, a, sizeof a), k, ir_type_str(want, b, sizeof b));
      break;
    }
    if (!pass_ad_wants(ad, k)) continue;
    ok = accumulate(ad, adj, n->in[k], gx[k]);
  }
  if (gx != gx_small) free(gx);
  if (ok && ad->failed) ok = false;
  if (!ok && !ad->failed) pass_ad_fail(ad, "the gradient rule failed");
  return ok;
}

/* Forward dropouts on the path keep their mask when the graph is edited or
 * reparsed: key -1 (the node id) becomes that id explicitly, and the
 * backward dropout copies the key. */
static void pin_dropout_keys(ir_graph *g, const bool *needed, int n) {
  for (int id = 0; id < n; id++) {
    ir_node *nd = g->nodes[id];
    if (needed[id] && nd->op == IR_OP_DROPOUT && nd->attrs[1].i < 0) nd->attrs[1].i = id;
  }
}

bool pass_autodiff(ir_graph *g, int loss, int nwrt, const int *wrt, int *grads, ir_diag *d) {
  ir_diag dummy;
  if (!d) d = &dummy;
  if (!g) {
    ir_diag_set(d, "autodiff: no graph");
    return false;
  }
  if (!check_args(g, loss, nwrt, wrt, grads, d)) return false;
  int nfwd = g->nnodes;
  bool *from = calloc((size_t)nfwd, sizeof *from);
  bool *needed = calloc((size_t)nfwd, sizeof *needed);
  int *adj = malloc((size_t)nfwd * sizeof *adj);
  pass_ad ad = {.g = g, .d = d, .needed = needed, .nfwd = nfwd};
  bool ok = from && needed && adj;
  if (!ok) pass_ad_fail(&ad, "out of memory");
  if (ok) {
    mark_needed(g, loss, nwrt, wrt, from, needed);
    pin_dropout_keys(g, needed, loss + 1);
    for (int id = 0; id < nfwd; id++)
      adj[id] = -1;
    ad.cur = g->nodes[loss];
    if (needed[loss]) adj[loss] = pass_ad_fill(&ad, 1.0, &g->nodes[loss]->type);
    ok = !ad.failed;
  }
  for (int id = loss; ok && id >= 0; id--) {
    if (!needed[id] || adj[id] < 0 || g->nodes[id]->nin == 0) continue;
    ok = backprop_node(&ad, id, adj);
  }
  for (int i = 0; ok && i < nwrt; i++) {
    /* the sum over every node of the same parameter */
    int sum = -1;
    ad.cur = g->nodes[wrt[i]];
    for (int id = 0; ok && id <= loss; id++) {
      if (adj[id] < 0 || !(id == wrt[i] || same_param(g->nodes[wrt[i]], g->nodes[id]))) continue;
      if (!ir_type_eq(&g->nodes[id]->type, &g->nodes[wrt[i]]->type)) {
        char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN], who[200];
        node_label(g->nodes[id], who, sizeof who);
        ok = pass_ad_fail(&ad, "parameter \"%s\" appears as %s and as %s (%s)",
                          ir_node_attr(g->nodes[id], "name")->s,
                          ir_type_str(&g->nodes[id]->type, a, sizeof a),
                          ir_type_str(&g->nodes[wrt[i]]->type, b, sizeof b), who);
        break;
      }
      sum = sum < 0 ? adj[id] : pass_ad_binary(&ad, IR_OP_ADD, sum, adj[id]);
    }
    if (ok && sum < 0) sum = pass_ad_fill(&ad, 0.0, &g->nodes[wrt[i]]->type);
    ok = ok && !ad.failed;
    grads[i] = ok ? sum : -1;
  }
  free(from);
  free(needed);
  free(adj);
  return ok;
}
