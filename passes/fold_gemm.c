/* The fold-gemm-epilogue pass: what BLAS's GEMM does for free around a
 * product becomes part of it. A scalar constant scaling the product or one
 * of its operands becomes alpha, a negation flips alpha, and an add or sub
 * of a value of exactly the product's type becomes the accumulator c with
 * beta = +-1 (gemm, ir/ir.h "fused ops"). Only products with no other use
 * are folded. One forward sweep carries each node's "product so far", so
 * chains (gradient accumulation add(add(mm1, mm2), mm3)) nest gemms. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pipeline.h"
#include "passes/rewrite.h"

/* A value that is alpha * op(a) @ op(b) + beta * c (c < 0: none). */
typedef struct prod {
  bool on;     /* the node computes such a value */
  bool folded; /* it differs from the node as written: emit a gemm */
  int a, b, c;
  bool ta, tb;
  double alpha, beta;
} prod;

typedef struct fold_state {
  const ir_graph *g;
  const int *uses;
  const int *assign_at; /* position of the assign writing a param, INT_MAX if none */
  prod *p;
  bool *dead; /* absorbed into a later node's gemm */
} fold_state;

/* The value of a numel-1 float constant of dtype dt, or false. */
static bool scalar_const(const ir_graph *g, int id, ir_dtype dt, double *v) {
  const ir_node *n = g->nodes[id];
  if (n->op != IR_OP_CONST || ir_type_numel(&n->type) != 1 || n->type.dtype != dt || !n->data)
    return false;
  if (dt == IR_F32)
    *v = *(const float *)n->data;
  else if (dt == IR_F64)
    *v = *(const double *)n->data;
  else
    return false;
  return true;
}

/* Whether node j's product may be swallowed by node i: its only use, and
 * reading a and b at i instead of earlier sees the same parameter values. */
static bool absorbable(const fold_state *s, int j, int i) {
  const prod *q = &s->p[j];
  return q->on && s->uses[j] == 1 && s->assign_at[q->a] > i && s->assign_at[q->b] > i;
}

/* matmul or gemm i, with scalar-scaled operands (mul(x, s) of x's type and
 * no other use) folded into alpha. */
static void start_product(fold_state *s, int i) {
  const ir_node *n = s->g->nodes[i];
  prod *p = &s->p[i];
  *p = (prod){.on = true,
              .a = n->in[0],
              .b = n->in[1],
              .c = -1,
              .ta = n->attrs[0].b,
              .tb = n->attrs[1].b,
              .alpha = 1,
              .beta = 0};
  if (n->op == IR_OP_GEMM) {
    p->alpha = n->attrs[2].f, p->beta = n->attrs[3].f;
    if (n->nin == 3) p->c = n->in[2];
  }
  ir_dtype dt = n->type.dtype;
  for (int side = 0; side < 2; side++) {
    int x = n->in[side];
    const ir_node *m = s->g->nodes[x];
    if (m->op != IR_OP_MUL || s->uses[x] != 1) continue;
    for (int k = 0; k < 2; k++) {
      int y = m->in[1 - k];
      double v;
      if (!scalar_const(s->g, m->in[k], dt, &v) || !ir_type_eq(&s->g->nodes[y]->type, &m->type) ||
          s->assign_at[y] <= i)
        continue;
      if (side == 0)
        p->a = y;
      else
        p->b = y;
      p->alpha *= v;
      p->folded = true;
      s->dead[x] = true;
      break;
    }
  }
}

/* n's operand that is an absorbable product of n's exact type (with no
 * accumulator when want_no_c), preferring the later one; -1 if none. */
static int pick_product(const fold_state *s, int i, bool want_no_c) {
  const ir_node *n = s->g->nodes[i];
  int best = -1;
  for (int k = 0; k < n->nin; k++) {
    int j = n->in[k];
    if (!absorbable(s, j, i) || (want_no_c && s->p[j].c >= 0)) continue;
    if (!ir_type_eq(&s->g->nodes[j]->type, &n->type)) continue;
    if (n->nin == 2 && n->in[0] == n->in[1]) continue;
    if (best < 0 || j > best) best = j;
  }
  return best;
}

static void take(fold_state *s, int i, int j) {
  s->p[i] = s->p[j];
  s->p[i].folded = true;
  s->dead[j] = true;
}

/* Extends the product of an operand of node i through i, when i is one of
 * the epilogues the pass folds. */
static void extend(fold_state *s, int i) {
  const ir_node *n = s->g->nodes[i];
  const ir_graph *g = s->g;
  switch (n->op) {
  case IR_OP_MUL: {
    for (int k = 0; k < 2; k++) {
      int j = n->in[1 - k];
      double v;
      if (!scalar_const(g, n->in[k], n->type.dtype, &v) || !absorbable(s, j, i) ||
          !ir_type_eq(&g->nodes[j]->type, &n->type))
        continue;
      take(s, i, j);
      s->p[i].alpha *= v, s->p[i].beta *= v;
      return;
    }
    return;
  }
  case IR_OP_NEG: {
    int j = n->in[0];
    if (!absorbable(s, j, i) || !ir_type_eq(&g->nodes[j]->type, &n->type)) return;
    take(s, i, j);
    s->p[i].alpha = -s->p[i].alpha, s->p[i].beta = -s->p[i].beta;
    return;
  }
  case IR_OP_ADD:
  case IR_OP_SUB: {
    int j = pick_product(s, i, true);
    if (j < 0) return;
    int other = n->in[0] == j ? n->in[1] : n->in[0];
    /* c must be the result's exact type: no broadcasting, same dtype */
    if (!ir_type_eq(&g->nodes[other]->type, &n->type)) return;
    take(s, i, j);
    s->p[i].c = other;
    s->p[i].beta = 1;
    if (n->op == IR_OP_SUB && n->in[0] == j)
      s->p[i].beta = -1; /* product - c */
    else if (n->op == IR_OP_SUB)
      s->p[i].alpha = -s->p[i].alpha; /* c - product */
    return;
  }
  default: return;
  }
}

static bool keeps_state(ir_op op) {
  return op == IR_OP_ARG || op == IR_OP_ASSIGN || op == IR_OP_STEP || op == IR_OP_PARAM;
}

/* Copies src node i; a dropout with key -1 gets key = its old id, so its
 * mask stream survives the renumbering. */
static int copy(pass_rw *rw, int i) {
  const ir_node *n = rw->src->nodes[i];
  if (n->op != IR_OP_DROPOUT || n->attrs[1].i >= 0) return pass_rw_copy(rw, i);
  ir_attr a[2] = {n->attrs[0], {.kind = IR_ATTR_INT, .i = i}};
  int in = rw->map[n->in[0]];
  int id = pass_rw_add(rw, IR_OP_DROPOUT, 1, &in, a, NULL, i);
  if (id >= 0) pass_rw_map(rw, i, id);
  return id;
}

static int emit_gemm(pass_rw *rw, int i, const prod *p) {
  ir_attr at[4] = {{.kind = IR_ATTR_BOOL, .b = p->ta},
                   {.kind = IR_ATTR_BOOL, .b = p->tb},
                   {.kind = IR_ATTR_FLOAT, .f = p->alpha},
                   {.kind = IR_ATTR_FLOAT, .f = p->c >= 0 ? p->beta : 0.0}};
  int in[3] = {rw->map[p->a], rw->map[p->b], p->c >= 0 ? rw->map[p->c] : -1};
  int id = pass_rw_add(rw, IR_OP_GEMM, p->c >= 0 ? 3 : 2, in, at, &rw->src->nodes[i]->type, i);
  if (id >= 0) pass_rw_map(rw, i, id);
  return id;
}

/* Rebuilds the graph: absorbed nodes go, folded tops become gemms, and
 * constants (or anything else stateless) only they used go too. */
static bool rewrite(ir_graph **g, const fold_state *s, ir_diag *d) {
  const ir_graph *src = *g;
  int nn = src->nnodes;
  int *left = malloc(sizeof(int) * (size_t)nn);
  bool *drop = malloc(sizeof(bool) * (size_t)nn);
  if (!left || !drop) {
    free(left), free(drop);
    return ir_diag_set(d, "out of memory"), false;
  }
  memcpy(left, s->uses, sizeof(int) * (size_t)nn);
  memcpy(drop, s->dead, sizeof(bool) * (size_t)nn);
  for (int i = 0; i < nn; i++) {
    const prod *p = &s->p[i];
    if (drop[i] || !p->folded) continue;
    left[p->a]++, left[p->b]++;
    if (p->c >= 0) left[p->c]++;
  }
  for (int i = nn - 1; i >= 0; i--) {
    const ir_node *n = src->nodes[i];
    bool top = !drop[i] && s->p[i].folded;
    if (!drop[i] && !top && !(s->uses[i] > 0 && left[i] == 0 && !keeps_state(n->op))) continue;
    if (!top) drop[i] = true;
    for (int k = 0; k < n->nin; k++)
      left[n->in[k]]--;
  }
  pass_rw rw;
  bool ok = pass_rw_init(&rw, src, d);
  for (int i = 0; ok && i < nn; i++) {
    if (drop[i]) continue;
    if (s->p[i].folded)
      emit_gemm(&rw, i, &s->p[i]);
    else
      copy(&rw, i);
    ok = !rw.failed;
  }
  free(left), free(drop);
  ir_graph *out = ok ? pass_rw_finish(&rw) : NULL;
  if (!ok) pass_rw_abort(&rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  return true;
}

bool pass_fold_gemm(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  (void)o;
  *changed = false;
  const ir_graph *src = *g;
  int nn = src->nnodes, nprod = 0;
  for (int i = 0; i < nn; i++)
    nprod += src->nodes[i]->op == IR_OP_MATMUL || src->nodes[i]->op == IR_OP_GEMM;
  if (nprod == 0) return true;
  size_t cnt = (size_t)nn;
  int *uses = pass_use_counts(src), *assign_at = malloc(sizeof(int) * cnt);
  prod *p = calloc(cnt, sizeof *p);
  bool *dead = calloc(cnt, sizeof *dead);
  if (!uses || !assign_at || !p || !dead) {
    free(uses), free(assign_at), free(p), free(dead);
    return ir_diag_set(d, "out of memory"), false;
  }
  for (int i = 0; i < nn; i++)
    assign_at[i] = INT_MAX;
  for (int i = nn - 1; i >= 0; i--)
    if (src->nodes[i]->op == IR_OP_ASSIGN) assign_at[src->nodes[i]->in[0]] = i;
  fold_state s = {.g = src, .uses = uses, .assign_at = assign_at, .p = p, .dead = dead};
  bool any = false;
  for (int i = 0; i < nn; i++) {
    ir_op op = src->nodes[i]->op;
    if (op == IR_OP_MATMUL || op == IR_OP_GEMM)
      start_product(&s, i);
    else
      extend(&s, i);
    any |= p[i].folded;
  }
  bool ok = !any || rewrite(g, &s, d);
  *changed = ok && any;
  free(uses), free(assign_at), free(p), free(dead);
  return ok;
}
