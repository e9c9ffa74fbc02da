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
#include "passes/builder.h"

static const pass_grad_fn grad_rules[IR_NUM_OPS] = {
#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER_, GRAD) [IR_OP_##E] = GRAD,
#include "ir/ops.def"
#undef IR_OP
};

struct pass_ad {
  pass_builder b;     /* its prefix and location follow the node being differentiated */
  const ir_node *cur; /* the forward node whose rule is running */
  const bool *needed; /* per forward node: on a path from a wrt node to the loss */
  int nfwd;
};

ir_graph *pass_ad_graph(pass_ad *ad) { return ad->b.g; }

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

/* Errors name the forward node, and new nodes carry its source location. */
static void set_cur(pass_ad *ad, const ir_node *n) {
  char who[200];
  ad->cur = n;
  ad->b.loc = n->loc;
  node_label(n, who, sizeof who);
  snprintf(ad->b.prefix, sizeof ad->b.prefix, "autodiff: gradient of %s, op %s: ", who,
           ir_op_get(n->op)->name);
}

bool pass_ad_fail(pass_ad *ad, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return pb_fail(&ad->b, "%s", why);
}

int pass_ad_op(pass_ad *ad, ir_op op, int nin, const int *in, const ir_attr *attrs) {
  return pb_node(&ad->b, op, nin, in, attrs, NULL);
}
int pass_ad_unary(pass_ad *ad, ir_op op, int a) { return pb_unary(&ad->b, op, a); }
int pass_ad_binary(pass_ad *ad, ir_op op, int a, int b) { return pb_binary(&ad->b, op, a, b); }
int pass_ad_scalar(pass_ad *ad, double v, ir_dtype dt) { return pb_scalar(&ad->b, v, dt); }
int pass_ad_fill(pass_ad *ad, double v, const ir_type *t) { return pb_fill(&ad->b, v, t); }
int pass_ad_reshape(pass_ad *ad, int x, int rank, const int64_t *dims) {
  return pb_reshape(&ad->b, x, rank, dims);
}
int pass_ad_cast(pass_ad *ad, int x, ir_dtype to) { return pb_cast(&ad->b, x, to); }
int pass_ad_unbroadcast(pass_ad *ad, int x, const ir_type *to) {
  return pb_unbroadcast(&ad->b, x, to);
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
  if (contrib < 0) return !ad->b.failed;
  if (adj[id] < 0) {
    adj[id] = contrib;
    return true;
  }
  adj[id] = pass_ad_binary(ad, IR_OP_ADD, adj[id], contrib);
  return adj[id] >= 0;
}

/* Runs the rule of node id and adds its operands' contributions. */
static bool backprop_node(pass_ad *ad, int id, int *adj) {
  ir_graph *g = ad->b.g;
  const ir_node *n = g->nodes[id];
  set_cur(ad, n);
  pass_grad_fn rule = grad_rules[n->op];
  if (!rule) return pass_ad_fail(ad, "%s has no gradient rule", ir_op_get(n->op)->name);
  int gx_small[8], *gx = n->nin <= 8 ? gx_small : malloc((size_t)n->nin * sizeof *gx);
  if (!gx) return pass_ad_fail(ad, "out of memory");
  for (int k = 0; k < n->nin; k++)
    gx[k] = -1;
  bool ok = rule(ad, n, adj[id], gx) && !ad->b.failed;
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
  if (ok && ad->b.failed) ok = false;
  if (!ok && !ad->b.failed) pass_ad_fail(ad, "the gradient rule failed");
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
  pass_ad ad = {.needed = needed, .nfwd = nfwd};
  pb_init(&ad.b, g, d, "autodiff: ");
  bool ok = from && needed && adj;
  if (!ok) pass_ad_fail(&ad, "out of memory");
  if (ok) {
    mark_needed(g, loss, nwrt, wrt, from, needed);
    pin_dropout_keys(g, needed, loss + 1);
    for (int id = 0; id < nfwd; id++)
      adj[id] = -1;
    set_cur(&ad, g->nodes[loss]);
    if (needed[loss]) adj[loss] = pass_ad_fill(&ad, 1.0, &g->nodes[loss]->type);
    ok = !ad.b.failed;
  }
  for (int id = loss; ok && id >= 0; id--) {
    if (!needed[id] || adj[id] < 0 || g->nodes[id]->nin == 0) continue;
    ok = backprop_node(&ad, id, adj);
  }
  for (int i = 0; ok && i < nwrt; i++) {
    /* the sum over every node of the same parameter */
    int sum = -1;
    set_cur(&ad, g->nodes[wrt[i]]);
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
    ok = ok && !ad.b.failed;
    grads[i] = ok ? sum : -1;
  }
  free(from);
  free(needed);
  free(adj);
  return ok;
}
