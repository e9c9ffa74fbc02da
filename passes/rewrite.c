/* Copy-based graph rewriting (passes/rewrite.h). */
#include <stdlib.h>
#include <string.h>

#include "passes/rewrite.h"

bool pass_rw_init(pass_rw *rw, const ir_graph *src, ir_diag *d) {
  memset(rw, 0, sizeof *rw);
  rw->src = src;
  rw->d = d;
  rw->dst = ir_graph_create(src->name);
  rw->map = malloc(sizeof(int) * (size_t)(src->nnodes ? src->nnodes : 1));
  if (!rw->dst || !rw->map) {
    ir_diag_set(d, "out of memory");
    pass_rw_abort(rw);
    rw->failed = true;
    return false;
  }
  for (int i = 0; i < src->nnodes; i++)
    rw->map[i] = -1;
  return true;
}

static void like(pass_rw *rw, int id, int src) {
  if (src < 0) return;
  const ir_node *s = rw->src->nodes[src];
  if (s->name) rw->dst->nodes[id]->name = ir_strdup(rw->dst, s->name);
  ir_node_copy_loc(rw->dst, id, &s->loc);
}

int pass_rw_add(pass_rw *rw, ir_op op, int nin, const int *in, const ir_attr *attrs,
                const ir_type *declared, int src) {
  if (rw->failed) return -1;
  for (int i = 0; i < nin; i++)
    if (in[i] < 0) return rw->failed = true, -1;
  int id = ir_add_node(rw->dst, op, nin, in, attrs, declared, rw->d);
  if (id < 0) return rw->failed = true, -1;
  like(rw, id, src);
  return id;
}

int pass_rw_add_region(pass_rw *rw, ir_op op, int nin, const int *in, const ir_attr *attrs,
                       ir_graph *body, int src) {
  if (rw->failed) {
    ir_graph_destroy(body);
    return -1;
  }
  int id = ir_add_region(rw->dst, op, nin, in, attrs, body, rw->d);
  if (id < 0) return rw->failed = true, -1;
  like(rw, id, src);
  return id;
}

int pass_rw_copy(pass_rw *rw, int sid) {
  if (rw->failed) return -1;
  const ir_node *n = rw->src->nodes[sid];
  int stack[16], *in = n->nin <= 16 ? stack : malloc(sizeof(int) * (size_t)n->nin);
  if (!in) {
    ir_diag_set(rw->d, "out of memory");
    return rw->failed = true, -1;
  }
  bool ok = true;
  for (int i = 0; i < n->nin && ok; i++) {
    in[i] = rw->map[n->in[i]];
    if (in[i] < 0) {
      ir_diag_set(rw->d, "rewrite: operand %d of node %d was not mapped", i, sid);
      ok = false;
    }
  }
  int id = -1;
  if (ok && n->op == IR_OP_CONST) {
    id = ir_add_const(rw->dst, &n->type, n->data, rw->d);
  } else if (ok && n->body) {
    ir_graph *b = ir_graph_clone(n->body, rw->d);
    id = b ? ir_add_region(rw->dst, n->op, n->nin, in, n->attrs, b, rw->d) : -1;
  } else if (ok) {
    bool leaf = ir_op_get(n->op)->shape == NULL;
    id = ir_add_node(rw->dst, n->op, n->nin, in, n->attrs, leaf ? &n->type : NULL, rw->d);
  }
  if (in != stack) free(in);
  if (id < 0) return rw->failed = true, -1;
  like(rw, id, sid);
  rw->map[sid] = id;
  return id;
}

int pass_rw_get(pass_rw *rw, int sid) {
  if (rw->failed) return -1;
  if (rw->map[sid] >= 0) return rw->map[sid];
  const ir_node *n = rw->src->nodes[sid];
  for (int i = 0; i < n->nin; i++)
    if (pass_rw_get(rw, n->in[i]) < 0) return -1;
  return pass_rw_copy(rw, sid);
}

ir_graph *pass_rw_finish(pass_rw *rw) {
  if (!rw->failed) {
    int *rets = malloc(sizeof(int) * (size_t)(rw->src->nrets ? rw->src->nrets : 1));
    if (!rets) {
      ir_diag_set(rw->d, "out of memory");
      rw->failed = true;
    }
    for (int i = 0; i < rw->src->nrets && !rw->failed; i++)
      rets[i] = pass_rw_get(rw, rw->src->rets[i]);
    if (!rw->failed) ir_set_returns(rw->dst, rw->src->nrets, rets);
    free(rets);
  }
  if (rw->failed) {
    pass_rw_abort(rw);
    return NULL;
  }
  free(rw->map);
  rw->map = NULL;
  ir_graph *g = rw->dst;
  rw->dst = NULL;
  return g;
}

void pass_rw_abort(pass_rw *rw) {
  free(rw->map);
  rw->map = NULL;
  ir_graph_destroy(rw->dst);
  rw->dst = NULL;
}

int *pass_use_counts(const ir_graph *g) {
  int *u = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *u);
  if (!u) return NULL;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++)
      u[g->nodes[i]->in[k]]++;
  for (int r = 0; r < g->nrets; r++)
    u[g->rets[r]]++;
  return u;
}

int *pass_assign_prefix(const ir_graph *g) {
  int *p = malloc(sizeof(int) * (size_t)(g->nnodes + 1));
  if (!p) return NULL;
  p[0] = 0;
  for (int i = 0; i < g->nnodes; i++)
    p[i + 1] = p[i] + (g->nodes[i]->op == IR_OP_ASSIGN);
  return p;
}
