/* The fold-embedding pass: gather(E, ids) [* scalar const] + pe [-> dropout]
 * becomes one embed region (ir/ir.h, "fused ops") whose body is the matched
 * sub-graph, so the reference interpreter runs exactly what it replaced.
 * The intermediates must have no other users; pe is any value that
 * broadcasts to the gathered rows along their last dim (a folded constant
 * in the Transformer, a parameter in GPT). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pipeline.h"
#include "passes/rewrite.h"

typedef struct emb_match {
  int gather, mul, add, drop; /* src ids; mul/drop -1 when absent */
  int sconst, pe;             /* the scale constant (-1: none), pe */
  double scale, p;
  int64_t key; /* the dropout stream, pinned */
} emb_match;

/* The only user of id, when it has exactly one use slot; else -1. */
static int sole_user(const int *uses, const int *user, int id) {
  return uses[id] == 1 ? user[id] : -1;
}

/* A float constant with a single element: its value. */
static bool scalar_const(const ir_graph *g, int id, double *v) {
  const ir_node *n = g->nodes[id];
  if (n->op != IR_OP_CONST || ir_type_numel(&n->type) != 1 || n->type.rank != 0) return false;
  if (n->type.dtype == IR_F32)
    *v = *(const float *)n->data;
  else if (n->type.dtype == IR_F64)
    *v = *(const double *)n->data;
  else
    return false;
  return true;
}

/* pe fits the rows of type r: same dtype, last dim r's, broadcasting to r
 * without growing it. */
static bool pe_fits(const ir_type *pe, const ir_type *r) {
  ir_type b;
  return pe->dtype == r->dtype && pe->rank >= 1 && pe->dims[pe->rank - 1] == r->dims[r->rank - 1] &&
         ir_broadcast(pe, r, &b) && ir_shape_eq(&b, r);
}

static const char *match(const ir_graph *g, const int *uses, const int *user, const int *assigns,
                         int gi, emb_match *m) {
  const ir_node *gn = g->nodes[gi];
  const ir_type *tt = &g->nodes[gn->in[0]]->type;
  memset(m, 0, sizeof *m);
  m->gather = gi, m->mul = m->drop = m->sconst = -1, m->scale = 1, m->key = -1;
  if (tt->rank != 2 || !ir_dtype_is_float(tt->dtype)) return "the table is not a float matrix";
  int cur = gi, u = sole_user(uses, user, gi);
  if (u < 0) return "the gathered rows have other uses";
  const ir_node *un = g->nodes[u];
  if (un->op == IR_OP_MUL) {
    int other = un->in[0] == cur ? un->in[1] : un->in[0];
    if (!scalar_const(g, other, &m->scale) || !ir_type_eq(&un->type, &gn->type))
      return "multiplied by something other than a scalar constant";
    m->mul = u, m->sconst = other, cur = u;
    u = sole_user(uses, user, cur);
    if (u < 0) return "the scaled rows have other uses";
    un = g->nodes[u];
  }
  if (un->op != IR_OP_ADD) return "no positional term is added";
  m->pe = un->in[0] == cur ? un->in[1] : un->in[0];
  if (!ir_type_eq(&un->type, &gn->type) || !pe_fits(&g->nodes[m->pe]->type, &gn->type))
    return "the added term does not broadcast along the rows";
  m->add = u;
  u = sole_user(uses, user, u);
  if (u >= 0 && g->nodes[u]->op == IR_OP_DROPOUT) {
    const ir_node *dn = g->nodes[u];
    m->drop = u, m->p = dn->attrs[0].f;
    m->key = dn->attrs[1].i >= 0 ? dn->attrs[1].i : u;
  }
  /* The region runs where its last node was: the gather must not move
   * past an update of the table it reads. */
  if (pass_assign_in(assigns, gi, m->drop >= 0 ? m->drop : m->add))
    return "an assign lies between the gather and the add";
  return NULL;
}

static int top_of(const emb_match *m) { return m->drop >= 0 ? m->drop : m->add; }

/* The body: the matched nodes with the same operand order, over args
 * (table, ids, pe); the dropout carries the pinned key. */
static ir_graph *body_of(const ir_graph *g, const emb_match *m, ir_diag *d) {
  ir_graph *b = ir_graph_create("embed");
  if (!b) return ir_diag_set(d, "embed: out of memory"), NULL;
  const ir_node *gn = g->nodes[m->gather];
  int t = ir_add_arg(b, "table", &g->nodes[gn->in[0]]->type, d);
  int ids = t < 0 ? -1 : ir_add_arg(b, "ids", &g->nodes[gn->in[1]]->type, d);
  int pe = ids < 0 ? -1 : ir_add_arg(b, "pe", &g->nodes[m->pe]->type, d);
  int x = pe < 0 ? -1 : ir_add_node(b, IR_OP_GATHER, 2, (int[]){t, ids}, NULL, NULL, d);
  if (x >= 0 && m->mul >= 0) {
    const ir_node *c = g->nodes[m->sconst];
    int s = ir_add_const(b, &c->type, c->data, d);
    bool first = g->nodes[m->mul]->in[0] == m->gather;
    x = s < 0 ? -1
              : ir_add_node(b, IR_OP_MUL, 2, first ? (int[]){x, s} : (int[]){s, x}, NULL, NULL, d);
  }
  if (x >= 0) {
    bool first = g->nodes[m->add]->in[0] == (m->mul >= 0 ? m->mul : m->gather);
    x = ir_add_node(b, IR_OP_ADD, 2, first ? (int[]){x, pe} : (int[]){pe, x}, NULL, NULL, d);
  }
  if (x >= 0 && m->drop >= 0) {
    ir_attr a[2] = {{.kind = IR_ATTR_FLOAT, .f = m->p}, {.kind = IR_ATTR_INT, .i = m->key}};
    x = ir_add_node(b, IR_OP_DROPOUT, 1, &x, a, NULL, d);
  }
  if (x < 0) {
    ir_graph_destroy(b);
    return NULL;
  }
  ir_set_returns(b, 1, &x);
  return b;
}

/* Copies src node i; a dropout with key -1 gets key = its old id, so its
 * mask stream survives the renumbering. */
static void copy(pass_rw *rw, int i) {
  const ir_node *n = rw->src->nodes[i];
  if (n->op != IR_OP_DROPOUT || n->attrs[1].i >= 0) {
    pass_rw_copy(rw, i);
    return;
  }
  ir_attr a[2] = {n->attrs[0], {.kind = IR_ATTR_INT, .i = i}};
  int in = rw->map[n->in[0]];
  int id = pass_rw_add(rw, IR_OP_DROPOUT, 1, &in, a, NULL, i);
  if (id >= 0) pass_rw_map(rw, i, id);
}

static bool rewrite(ir_graph **g, const emb_match *ms, int nm, const int *uses, ir_diag *d) {
  const ir_graph *src = *g;
  int nn = src->nnodes;
  int *fused = malloc(sizeof(int) * (size_t)nn), *left = malloc(sizeof(int) * (size_t)nn);
  bool *dead = calloc((size_t)nn, sizeof(bool));
  if (!fused || !left || !dead) {
    free(fused), free(left), free(dead);
    return ir_diag_set(d, "out of memory"), false;
  }
  memcpy(left, uses, sizeof(int) * (size_t)nn);
  for (int i = 0; i < nn; i++)
    fused[i] = -1;
  for (int j = 0; j < nm; j++) {
    const emb_match *m = &ms[j];
    int top = top_of(m);
    fused[top] = j;
    int sw[4] = {m->gather, m->mul, m->add, m->drop};
    for (int k = 0; k < 4; k++)
      if (sw[k] >= 0 && sw[k] != top) dead[sw[k]] = true;
    if (m->sconst >= 0) left[m->sconst]--;
  }
  /* a scale constant only the swallowed products used goes too */
  for (int j = 0; j < nm; j++)
    if (ms[j].sconst >= 0 && left[ms[j].sconst] == 0) dead[ms[j].sconst] = true;
  pass_rw rw;
  bool ok = pass_rw_init(&rw, src, d);
  for (int i = 0; ok && i < nn; i++) {
    if (fused[i] >= 0) {
      const emb_match *m = &ms[fused[i]];
      const ir_node *gn = src->nodes[m->gather];
      ir_graph *body = body_of(src, m, d);
      if (!body) {
        rw.failed = true;
        break;
      }
      ir_attr a[3] = {{.kind = IR_ATTR_FLOAT, .f = m->scale},
                      {.kind = IR_ATTR_FLOAT, .f = m->drop >= 0 ? m->p : 0.0},
                      {.kind = IR_ATTR_INT, .i = m->key}};
      int in[3] = {rw.map[gn->in[0]], rw.map[gn->in[1]], rw.map[m->pe]};
      int id = pass_rw_add_region(&rw, IR_OP_EMBED, 3, in, a, body, i);
      if (id >= 0) pass_rw_map(&rw, i, id);
    } else if (!dead[i]) {
      copy(&rw, i);
    }
    ok = !rw.failed;
  }
  free(fused), free(left), free(dead);
  ir_graph *out = ok ? pass_rw_finish(&rw) : NULL;
  if (!ok) pass_rw_abort(&rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  return true;
}

bool pass_fold_embedding(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  *changed = false;
  const ir_graph *src = *g;
  int nn = src->nnodes, ng = 0;
  for (int i = 0; i < nn; i++)
    ng += src->nodes[i]->op == IR_OP_GATHER;
  if (ng == 0) return true;
  int *uses = pass_use_counts(src), *user = malloc(sizeof(int) * (size_t)nn);
  int *assigns = pass_assign_prefix(src);
  emb_match *ms = malloc(sizeof(emb_match) * (size_t)ng);
  if (!uses || !user || !assigns || !ms) {
    free(uses), free(user), free(assigns), free(ms);
    return ir_diag_set(d, "out of memory"), false;
  }
  for (int i = 0; i < nn; i++)
    user[i] = -1;
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < src->nodes[i]->nin; k++)
      user[src->nodes[i]->in[k]] = i;
  int nm = 0;
  for (int i = 0; i < nn; i++) {
    if (src->nodes[i]->op != IR_OP_GATHER) continue;
    const char *why = match(src, uses, user, assigns, i, &ms[nm]);
    if (o && o->explain) {
      const ir_node *n = src->nodes[i];
      char name[32];
      if (!n->name) snprintf(name, sizeof name, "%d", i);
      fprintf(o->explain, "fold-embedding: gather %%%s: %s%s\n", n->name ? n->name : name,
              why ? "unfused: " : "fused embed", why ? why : "");
    }
    if (!why) nm++;
  }
  bool ok = nm == 0 || rewrite(g, ms, nm, uses, d);
  *changed = ok && nm > 0;
  free(uses), free(user), free(assigns), free(ms);
  return ok;
}
