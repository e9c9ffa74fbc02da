/* Pattern matching for fuse-attention: walks down from a softmax through the
 * canonical scale and mask layers (canonicalize has already rewritten other
 * spellings), then up through [dropout] to the matmul with V, and says in
 * words which node broke the attention or scale_mask_softmax pattern. */
#include "passes/fuse_match.h"
#include "passes/rewrite.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { L_CAUSAL, L_LEN, L_BIAS, L_SCALE };

typedef struct layer {
  int id, kind;
  double v;  /* scale, causal fill or lengths' value */
  int mask;  /* lengths / bias operand */
  int below; /* the chain operand */
} layer;

void fm_node_str(const ir_graph *g, int id, char *buf, size_t len) {
  const ir_node *n = g->nodes[id];
  if (n->name && n->name[0])
    snprintf(buf, len, "%%%s", n->name);
  else
    snprintf(buf, len, "%%%d (%s)", id, ir_op_get(n->op)->name);
}

static void why(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(char *buf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, 240, fmt, ap);
  va_end(ap);
}

static bool returned(const ir_graph *g, int id) {
  for (int r = 0; r < g->nrets; r++)
    if (g->rets[r] == id) return true;
  return false;
}

static void uses_why(const ir_graph *g, int id, const int *uses, char *buf) {
  char s[128];
  fm_node_str(g, id, s, sizeof s);
  if (uses[id] == 1 && returned(g, id))
    why(buf, "%s is returned", s);
  else
    why(buf, "%s has %d uses%s", s, uses[id], returned(g, id) ? " (returned)" : "");
}

/* A one-element float constant. */
static bool scalar_const(const ir_graph *g, int id, double *v) {
  const ir_node *n = g->nodes[id];
  if (n->op != IR_OP_CONST || ir_type_numel(&n->type) != 1 || !n->data) return false;
  if (n->type.dtype == IR_F32)
    *v = *(const float *)n->data;
  else if (n->type.dtype == IR_F64)
    *v = *(const double *)n->data;
  else
    return false;
  return true;
}

static bool iota_over(const ir_graph *g, int id, int axis, int64_t tq, int64_t tk) {
  const ir_node *n = g->nodes[id];
  if (n->op != IR_OP_IOTA || !ir_dtype_is_int(n->type.dtype) || n->type.rank != 2) return false;
  return n->type.dims[0] == tq && n->type.dims[1] == tk && ir_node_attr(n, "axis")->i == axis;
}

/* select(cmp_gt(%j, %i), const(V), x) with %i, %j iotas over [Tq, Tk]
 * along axes 0 and 1: key j after query i gets V. */
static bool causal_select(const ir_graph *g, const ir_node *n, layer *l) {
  if (n->op != IR_OP_SELECT || n->type.rank < 2) return false;
  const ir_node *c = g->nodes[n->in[0]];
  const ir_type *xt = &g->nodes[n->in[2]]->type;
  int64_t tq = xt->dims[xt->rank - 2], tk = xt->dims[xt->rank - 1];
  if (c->op != IR_OP_CMP_GT || !ir_type_eq(xt, &n->type)) return false;
  if (!iota_over(g, c->in[0], 1, tq, tk) || !iota_over(g, c->in[1], 0, tq, tk)) return false;
  if (!scalar_const(g, n->in[1], &l->v)) return false;
  l->kind = L_CAUSAL;
  l->below = n->in[2];
  return true;
}

/* add(scores, bias): the chain operand has the sum's type and is what
 * scores are made of; the other one is a float bias. */
static bool bias_add(const ir_graph *g, const ir_node *n, layer *l) {
  if (n->op != IR_OP_ADD || !ir_dtype_is_float(n->type.dtype)) return false;
  int pick = -1;
  for (int k = 0; k < 2 && pick < 0; k++) {
    const ir_node *a = g->nodes[n->in[k]];
    if (!ir_type_eq(&a->type, &n->type)) continue;
    ir_op op = a->op;
    if (op == IR_OP_MUL || op == IR_OP_MATMUL || op == IR_OP_SELECT || op == IR_OP_SEQUENCE_MASK)
      pick = k;
  }
  if (pick < 0) pick = ir_type_eq(&g->nodes[n->in[0]]->type, &n->type) ? 0 : 1;
  if (!ir_type_eq(&g->nodes[n->in[pick]]->type, &n->type)) return false;
  if (g->nodes[n->in[1 - pick]]->type.dtype != n->type.dtype) return false;
  l->kind = L_BIAS;
  l->below = n->in[pick];
  l->mask = n->in[1 - pick];
  return true;
}

static bool scale_mul(const ir_graph *g, const ir_node *n, layer *l) {
  if (n->op != IR_OP_MUL) return false;
  for (int k = 0; k < 2; k++)
    if (scalar_const(g, n->in[1 - k], &l->v) && ir_type_eq(&g->nodes[n->in[k]]->type, &n->type)) {
      l->kind = L_SCALE;
      l->below = n->in[k];
      return true;
    }
  return false;
}

/* The canonical layers under a softmax, top first, in an order with one
 * meaning: scale innermost, then lengths or bias, with causal anywhere
 * above the scale but never under a bias (bias + V is not V). Stops at
 * the first node that does not fit; *stop_why says why when that node
 * looks like a mask or scale. */
static int walk(const ir_graph *g, int cur, layer *ls, char *stop_why) {
  int n = 0;
  bool causal = false, lenbias = false, scale = false, bias = false;
  double value = 0;
  bool has_value = false;
  stop_why[0] = 0;
  char s[128];
  while (n < 4) {
    const ir_node *nd = g->nodes[cur];
    layer l = {.id = cur, .mask = -1};
    fm_node_str(g, cur, s, sizeof s);
    if (scale) break;
    if (causal_select(g, nd, &l)) {
      if (causal || bias) {
        why(stop_why, "causal mask %s is under the %s (canonical: bias or lengths, then causal)", s,
            causal ? "causal mask" : "bias add");
        break;
      }
      if (has_value && l.v != value) {
        why(stop_why, "mask %s fills %g, the lengths mask %g", s, l.v, value);
        break;
      }
      causal = true;
    } else if (nd->op == IR_OP_SEQUENCE_MASK && ir_dtype_is_float(nd->type.dtype)) {
      l.kind = L_LEN;
      l.v = nd->attrs[0].f;
      l.mask = nd->in[1];
      l.below = nd->in[0];
      if (lenbias) {
        why(stop_why, "mask %s is a second mask (canonicalize merges masks)", s);
        break;
      }
      if (has_value && l.v != value) {
        why(stop_why, "mask %s fills %g, the causal mask %g", s, l.v, value);
        break;
      }
      lenbias = true;
    } else if (bias_add(g, nd, &l)) {
      if (lenbias) {
        why(stop_why, "bias %s is a second mask (canonicalize merges masks)", s);
        break;
      }
      lenbias = bias = true;
    } else if (scale_mul(g, nd, &l)) {
      scale = true;
    } else {
      if (nd->op == IR_OP_MUL) why(stop_why, "scale %s is not a scalar constant", s);
      if (nd->op == IR_OP_SELECT || nd->op == IR_OP_SEQUENCE_MASK || nd->op == IR_OP_ADD)
        why(stop_why, "mask %s is not a canonical mask (run canonicalize)", s);
      break;
    }
    if (l.kind == L_CAUSAL || l.kind == L_LEN) {
      value = l.v;
      has_value = true;
    }
    ls[n++] = l;
    cur = l.below;
  }
  return n;
}

static fm_params params_of(const layer *ls, int n) {
  fm_params p = {.scale = 1.0, .mask_value = -1e6, .mask = -1};
  for (int i = 0; i < n; i++) {
    switch (ls[i].kind) {
    case L_SCALE: p.scale = ls[i].v; break;
    case L_CAUSAL: p.causal = true, p.mask_value = ls[i].v; break;
    case L_LEN: p.mask = ls[i].mask, p.mask_value = ls[i].v; break;
    case L_BIAS: p.mask = ls[i].mask; break;
    }
  }
  return p;
}

static bool swap_last_two(const ir_node *t) {
  const ir_ints *perm = &t->attrs[0].ints;
  int r = perm->n;
  if (r < 2) return false;
  for (int i = 0; i < r - 2; i++)
    if (perm->v[i] != i) return false;
  return perm->v[r - 2] == r - 1 && perm->v[r - 1] == r - 2;
}

static bool same_batch(const ir_type *a, const ir_type *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank - 2; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

/* The weights' side: softmax -> [dropout] -> matmul(., V). */
static bool weights_side(const ir_graph *g, int sm, const int *uses, const int *users,
                         fm_match *m) {
  char s[128];
  if (uses[sm] != 1 || users[sm] < 0) return uses_why(g, sm, uses, m->why_att), false;
  int w = sm, u = users[sm];
  m->p = 0;
  m->key = -1;
  const ir_node *un = g->nodes[u];
  if (un->op == IR_OP_DROPOUT) {
    m->p = un->attrs[0].f;
    m->key = un->attrs[1].i >= 0 ? un->attrs[1].i : u;
    if (uses[u] != 1 || users[u] < 0) return uses_why(g, u, uses, m->why_att), false;
    m->swallow[m->nswallow++] = u;
    w = u;
    u = users[u];
    un = g->nodes[u];
  }
  fm_node_str(g, u, s, sizeof s);
  if (un->op != IR_OP_MATMUL || un->in[0] != w || un->in[1] == w) {
    why(m->why_att, "the weights feed %s (%s), not matmul(weights, V)", s, ir_op_get(un->op)->name);
    return false;
  }
  if (un->attrs[0].b || un->attrs[1].b) {
    why(m->why_att, "matmul %s with V transposes an operand", s);
    return false;
  }
  m->top = u;
  m->v = un->in[1];
  return true;
}

/* The scores' side: x = matmul(Q, K^T) or matmul(Q, transpose(K)). */
static bool scores_side(const ir_graph *g, int x, const int *uses, fm_match *m) {
  char s[128];
  fm_node_str(g, x, s, sizeof s);
  const ir_node *n = g->nodes[x];
  if (n->op != IR_OP_MATMUL) {
    why(m->why_att, "scores %s are %s, not matmul(Q, K^T)", s, ir_op_get(n->op)->name);
    return false;
  }
  if (uses[x] != 1) return uses_why(g, x, uses, m->why_att), false;
  if (n->attrs[0].b) return why(m->why_att, "matmul %s transposes Q", s), false;
  m->q = n->in[0];
  m->k = n->in[1];
  const ir_node *kt = g->nodes[m->k];
  if (!n->attrs[1].b) {
    if (kt->op != IR_OP_TRANSPOSE || !swap_last_two(kt)) {
      why(m->why_att, "matmul %s does not transpose K (no transpose_b, no transpose)", s);
      return false;
    }
    m->k = kt->in[0];
  }
  return true;
}

/* A float PARAM that node id depends on through float values, or -1 (also
 * when out of memory: then nothing is claimed about it). */
static int param_source(const ir_graph *g, int id) {
  bool *seen = calloc((size_t)g->nnodes, sizeof *seen);
  int *stack = malloc(sizeof(int) * (size_t)g->nnodes), top = 0, found = -1;
  if (seen && stack) stack[top++] = id, seen[id] = true;
  while (top > 0 && found < 0) {
    const ir_node *n = g->nodes[stack[--top]];
    if (!ir_dtype_is_float(n->type.dtype)) continue;
    if (n->op == IR_OP_PARAM) found = n->id;
    for (int k = 0; k < n->nin; k++)
      if (!seen[n->in[k]]) seen[n->in[k]] = true, stack[top++] = n->in[k];
  }
  free(seen), free(stack);
  return found;
}

/* Whether the weights reach a matmul through single-use dropout, reshape
 * and transpose nodes (a weighted sum of values in some layout). */
static bool feeds_matmul(const ir_graph *g, int w, const int *uses, const int *users) {
  for (int step = 0; step < 6 && uses[w] == 1; step++) {
    if (users[w] < 0) return false;
    const ir_node *u = g->nodes[users[w]];
    if (u->op == IR_OP_MATMUL) return true;
    if (u->op != IR_OP_DROPOUT && u->op != IR_OP_RESHAPE && u->op != IR_OP_TRANSPOSE) return false;
    w = users[w];
  }
  return false;
}

void fm_match_softmax(const ir_graph *g, int sm, const int *uses, const int *users,
                      const int *assigns, fm_match *m) {
  memset(m, 0, sizeof *m);
  m->kind = FM_NONE;
  m->top = sm;
  m->q = m->k = m->v = -1;
  const ir_node *n = g->nodes[sm];
  int64_t ax = n->attrs[0].i;
  if (n->type.rank < 1 || (ax != -1 && ax != n->type.rank - 1)) {
    why(m->why_att, "softmax axis is not the last");
    why(m->why_sms, "softmax axis is not the last");
    return;
  }
  layer ls[4];
  char stop[240];
  int nl = walk(g, n->in[0], ls, stop);
  int bottom = nl ? ls[nl - 1].below : n->in[0];
  int first_multi = nl;
  for (int i = 0; i < nl; i++)
    if (uses[ls[i].id] != 1) {
      first_multi = i;
      break;
    }

  /* the whole attention */
  bool att = first_multi == nl;
  if (!att) uses_why(g, ls[first_multi].id, uses, m->why_att);
  if (att && stop[0]) why(m->why_att, "%s", stop), att = false;
  if (att) att = scores_side(g, bottom, uses, m);
  char before[240];
  memcpy(before, m->why_att, sizeof before);
  bool wside = weights_side(g, sm, uses, users, m);
  if (!att) memcpy(m->why_att, before, sizeof before); /* the first break is the one to report */
  if (att) att = wside;
  if (att) {
    const ir_type *q = &g->nodes[m->q]->type, *k = &g->nodes[m->k]->type,
                  *v = &g->nodes[m->v]->type;
    char qs[IR_TYPE_STRLEN], ks[IR_TYPE_STRLEN], vs[IR_TYPE_STRLEN];
    if (q->rank < 2 || !same_batch(q, k) || !same_batch(q, v)) {
      /* The fused kernel (and attention's shape rule) walks one batch
       * index over q, k and v together; a broadcast batch would need it
       * to recompute strides per operand. The matmuls handle it. */
      why(m->why_att,
          "Q %s, K %s, V %s have different batch dims (broadcast): the attention kernel takes "
          "equal ones",
          ir_type_str(q, qs, sizeof qs), ir_type_str(k, ks, sizeof ks),
          ir_type_str(v, vs, sizeof vs));
      att = false;
    } else if (q->dtype != k->dtype || q->dtype != v->dtype || !ir_dtype_is_float(q->dtype)) {
      why(m->why_att, "Q, K and V are not all f32 or all f64");
      att = false;
    }
  }
  fm_params full = params_of(ls, nl);
  int param = att && full.mask >= 0 ? param_source(g, full.mask) : -1;
  if (param >= 0) {
    /* attention_grad returns dq, dk, dv only: a learned bias would lose
     * its gradient (scale_mask_softmax's rule gives it one). */
    char b[128], p[128];
    fm_node_str(g, full.mask, b, sizeof b);
    fm_node_str(g, param, p, sizeof p);
    why(m->why_att, "bias %s depends on parameter %s, and attention gives a bias no gradient", b,
        p);
    att = false;
  }
  if (att && pass_assign_in(assigns, bottom, m->top)) {
    why(m->why_att, "an assign lies between the scores and the weighted sum");
    att = false;
  }
  if (att) {
    m->kind = FM_ATTENTION;
    m->prm = params_of(ls, nl);
    for (int i = 0; i < nl; i++)
      m->swallow[m->nswallow++] = ls[i].id;
    m->swallow[m->nswallow++] = bottom;
    m->swallow[m->nswallow++] = sm;
    return;
  }

  /* scale_mask_softmax over the single-use layers */
  m->nswallow = 0;
  m->top = sm;
  m->p = 0;
  int take = first_multi;
  if (take == 0) {
    if (nl == 0)
      why(m->why_sms, "no scale or mask under the softmax%s%s", stop[0] ? ": " : "", stop);
    else
      uses_why(g, ls[0].id, uses, m->why_sms);
    return;
  }
  int x = ls[take - 1].below;
  /* A masked softmax whose weights feed a weighted sum but whose scores
   * are not q k^T may be Bahdanau's: fuse-additive-attention runs next and
   * needs the unfused form. */
  if (feeds_matmul(g, sm, uses, users) && g->nodes[x]->op != IR_OP_MATMUL) {
    why(m->why_sms, "left for fuse-additive-attention (the weights feed a matmul)");
    return;
  }
  if (pass_assign_in(assigns, ls[take - 1].id, sm)) {
    why(m->why_sms, "an assign lies between the scores and the softmax");
    return;
  }
  m->kind = FM_SMS;
  m->x = x;
  m->prm = params_of(ls, take);
  for (int i = 0; i < take; i++)
    m->swallow[m->nswallow++] = ls[i].id;
}
