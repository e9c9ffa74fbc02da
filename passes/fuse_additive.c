/* fuse-additive-attention: Bahdanau scoring and the weighted sum,
 *   softmax(mask(reshape(matmul(tanh(add(q, k)), w_v)))) [dropout] @ v,
 * as seq2seq_attn.c writes it (q [B,1,H] + keys [B,Tk,H]) or as d2l does
 * in general ([B,Tq,1,H] + [B,1,Tk,H]), becomes one additive_attention
 * region that never holds the [.., Tq, Tk, H] features. Anchored at each
 * softmax; every swallowed intermediate must have exactly one live use. */
#include <stdlib.h>
#include <string.h>

#include "passes/fused_build_additive.h"
#include "passes/pipeline.h"
#include "passes/rewrite.h"

typedef struct match {
  int sm, m;           /* the softmax and the final matmul it feeds */
  int q, k, w, v, len; /* operands in the source graph (len -1: none) */
  bool reshape_qk;     /* d2l's form: q and k need [.., T, H] views */
  int64_t qdims[IR_MAX_RANK], kdims[IR_MAX_RANK];
  int rank; /* the region's rank */
  double mask_value, p;
  int64_t key;
  int swallowed[12];
  int nswallowed;
} match;

typedef struct ctx {
  const ir_graph *g;
  const int *uses;    /* live uses */
  const int *user;    /* per node: its first live user, -1 none */
  const int *assigns; /* pass_assign_prefix */
} ctx;

static const ir_node *nd(const ctx *c, int id) { return c->g->nodes[id]; }

/* The one live user of id, or -1 (also when a return is the use). */
static int only_user(const ctx *c, int id) { return c->uses[id] == 1 ? c->user[id] : -1; }

static bool one_use(const ctx *c, match *mt, int id) {
  if (c->uses[id] != 1) return false;
  mt->swallowed[mt->nswallowed++] = id;
  return true;
}

/* Fills mt for softmax s, or returns why not. */
static const char *match_at(const ctx *c, int s, match *mt) {
  memset(mt, 0, sizeof *mt);
  mt->sm = s, mt->len = -1, mt->mask_value = -1e6, mt->key = -1;
  const ir_node *sn = nd(c, s);
  int sr = sn->type.rank;
  int64_t ax = sn->attrs[0].i;
  if (ax != -1 && ax != sr - 1) return "the softmax is not over the last axis";
  /* upwards: [sequence_mask], reshape, matmul(tanh(add(q, k)), w_v) */
  int x = sn->in[0];
  if (nd(c, x)->op == IR_OP_SEQUENCE_MASK) {
    const ir_node *mk = nd(c, x);
    if (!ir_dtype_is_int(nd(c, mk->in[1])->type.dtype)) return "the mask lengths are not integers";
    if (!one_use(c, mt, x)) return "the masked scores have other uses";
    mt->len = mk->in[1], mt->mask_value = mk->attrs[0].f;
    x = mk->in[0];
  }
  if (nd(c, x)->op != IR_OP_RESHAPE) return "the scores are not a reshape of matmul(tanh(..), w_v)";
  if (!one_use(c, mt, x)) return "the scores have other uses";
  int ms = nd(c, x)->in[0];
  const ir_node *msn = nd(c, ms);
  if (msn->op != IR_OP_MATMUL || msn->attrs[0].b) return "the scores are not matmul(tanh(..), w_v)";
  int f = msn->in[0], w = msn->in[1];
  const ir_type *wt = &nd(c, w)->type;
  if (nd(c, f)->op != IR_OP_TANH) return "the scored features are not tanh(..)";
  const ir_node *an = nd(c, nd(c, f)->in[0]);
  if (an->op != IR_OP_ADD) return "the features are not tanh(add(q, k))";
  int ra = an->type.rank;
  int64_t h = an->type.dims[ra - 1];
  if (wt->rank != 2 || (msn->attrs[1].b ? wt->dims[0] != 1 || wt->dims[1] != h
                                        : wt->dims[0] != h || wt->dims[1] != 1))
    return "w_v is not one output column over the features";
  const ir_type *mst = &msn->type;
  if (mst->rank != ra || mst->dims[ra - 1] != 1) return "the scores are not one per feature row";
  if (sn->type.rank != ra - 1) return "the scores do not drop the trailing 1";
  for (int i = 0; i < ra - 1; i++)
    if (sn->type.dims[i] != an->type.dims[i]) return "the scores do not drop the trailing 1";
  if (ra < 2) return "the features have rank < 2";
  if (!one_use(c, mt, ms) || !one_use(c, mt, f) || !one_use(c, mt, an->id))
    return "the features or raw scores have other uses";
  /* which side of the add is the query (1 on the key axis) */
  int q = an->in[0], k = an->in[1];
  if (nd(c, q)->type.dims[ra - 2] != 1 && nd(c, k)->type.dims[ra - 2] == 1)
    q = an->in[1], k = an->in[0];
  const ir_type *qt = &nd(c, q)->type, *kt = &nd(c, k)->type;
  if (qt->rank != ra || kt->rank != ra || qt->dims[ra - 1] != h || kt->dims[ra - 1] != h ||
      qt->dims[ra - 2] != 1)
    return "the add does not pair one query with every key";
  int64_t tk = kt->dims[ra - 2], tq = 1;
  int nbatch = ra - 2;
  for (int i = 0; i < ra - 3; i++)
    if (qt->dims[i] != kt->dims[i]) return "queries and keys differ in a batch dimension";
  if (ra >= 3 && qt->dims[ra - 3] != kt->dims[ra - 3]) {
    if (kt->dims[ra - 3] != 1) return "queries and keys differ in a batch dimension";
    mt->reshape_qk = true, tq = qt->dims[ra - 3], nbatch = ra - 3;
  }
  mt->rank = nbatch + 2;
  memcpy(mt->qdims, qt->dims, sizeof mt->qdims);
  memcpy(mt->kdims, kt->dims, sizeof mt->kdims);
  mt->qdims[nbatch] = tq, mt->qdims[nbatch + 1] = h;
  mt->kdims[nbatch] = tk, mt->kdims[nbatch + 1] = h;
  /* d2l's unsqueezed views: use what they view when they have no other use */
  int *src[2] = {&q, &k};
  const int64_t *want[2] = {mt->qdims, mt->kdims};
  for (int s2 = 0; s2 < 2 && mt->reshape_qk; s2++) {
    const ir_node *rn = nd(c, *src[s2]);
    const ir_type *it = rn->op == IR_OP_RESHAPE ? &nd(c, rn->in[0])->type : NULL;
    if (it && it->rank == mt->rank && c->uses[rn->id] == 1 &&
        memcmp(it->dims, want[s2], sizeof(int64_t) * (size_t)mt->rank) == 0) {
      mt->swallowed[mt->nswallowed++] = rn->id;
      *src[s2] = rn->in[0];
    }
  }
  mt->q = q, mt->k = k, mt->w = w;
  /* downwards: [dropout], [reshape], matmul(weights, v) */
  int y = s;
  int u = only_user(c, y);
  if (u < 0) return "the attention weights have other uses (e.g. exported for a heatmap)";
  if (nd(c, u)->op == IR_OP_DROPOUT) {
    mt->p = nd(c, u)->attrs[0].f;
    mt->key = (int64_t)(nd(c, u)->attrs[1].i >= 0 ? nd(c, u)->attrs[1].i : u);
    if (!one_use(c, mt, s)) return "the attention weights have other uses";
    y = u;
    if ((u = only_user(c, y)) < 0) return "the dropped-out weights have other uses";
  }
  if (nd(c, u)->op == IR_OP_RESHAPE) {
    if (!one_use(c, mt, y)) return "the attention weights have other uses";
    y = u;
    if ((u = only_user(c, y)) < 0) return "the reshaped weights have other uses";
  }
  const ir_node *mn = nd(c, u);
  if (mn->op != IR_OP_MATMUL || mn->in[0] != y || mn->attrs[0].b || mn->attrs[1].b)
    return "the weights do not feed matmul(weights, values)";
  if (!one_use(c, mt, y)) return "the attention weights have other uses";
  const ir_type *yt = &nd(c, y)->type, *vt = &nd(c, mn->in[1])->type;
  if (yt->rank != mt->rank || vt->rank != mt->rank)
    return "weights and values do not have the batched [.., Tq, Tk] x [.., Tk, dv] form";
  for (int i = 0; i < nbatch; i++)
    if (yt->dims[i] != mt->qdims[i] || vt->dims[i] != mt->qdims[i])
      return "the values' batch dimensions differ from the queries'";
  if (yt->dims[nbatch] != tq || yt->dims[nbatch + 1] != tk || vt->dims[nbatch] != tk)
    return "the weights are not [.., Tq, Tk] over the values' keys";
  if (mt->len >= 0) {
    const ir_type *lt = &nd(c, mt->len)->type;
    if (lt->rank > nbatch + 1) return "the lengths do not fit the region's [.., Tq] rows";
    for (int i = 0; i < lt->rank; i++)
      if (lt->dims[i] != mt->qdims[i]) return "the lengths do not fit the region's [.., Tq] rows";
  }
  mt->v = mn->in[1], mt->m = u;
  int first = u;
  for (int i = 0; i < mt->nswallowed; i++)
    if (mt->swallowed[i] < first) first = mt->swallowed[i];
  if (pass_assign_in(c->assigns, first, u)) return "an assign lies inside the pattern";
  return NULL;
}

static void where(FILE *f, const ir_node *n) {
  if (n->name)
    fprintf(f, "%%%s", n->name);
  else
    fprintf(f, "%%%d", n->id);
  if (n->loc.file) fprintf(f, " (%s:%d)", n->loc.file, n->loc.line);
}

/* Live uses: pass_use_counts minus uses by nodes no return or assign
 * needs (a dead export must not block a fusion); -1 marks dead nodes. */
static int *live_uses(const ir_graph *g) {
  int *uses = pass_use_counts(g);
  char *live = calloc((size_t)g->nnodes + 1, 1);
  if (!uses || !live) {
    free(uses), free(live);
    return NULL;
  }
  for (int i = 0; i < g->nrets; i++)
    live[g->rets[i]] = 1;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_ASSIGN || n->op == IR_OP_ARG || n->op == IR_OP_PARAM) live[i] = 1;
    if (!live[i]) continue;
    for (int k = 0; k < n->nin; k++)
      live[n->in[k]] = 1;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (!live[i])
      for (int k = 0; k < g->nodes[i]->nin; k++)
        uses[g->nodes[i]->in[k]]--;
  for (int i = 0; i < g->nnodes; i++)
    if (!live[i]) uses[i] = -1;
  free(live);
  return uses;
}

static int view(pass_rw *rw, int src, int rank, const int64_t *dims) {
  int id = pass_rw_get(rw, src);
  const ir_type *t = &rw->dst->nodes[id]->type;
  if (t->rank == rank && memcmp(t->dims, dims, sizeof(int64_t) * (size_t)rank) == 0) return id;
  ir_attr a = {.kind = IR_ATTR_INTS, .ints = {rank, (int64_t *)dims}};
  return pass_rw_add(rw, IR_OP_RESHAPE, 1, &id, &a, NULL, -1);
}

static bool emit(pass_rw *rw, const match *mt) {
  int q = view(rw, mt->q, mt->rank, mt->qdims), k = view(rw, mt->k, mt->rank, mt->kdims);
  int w = pass_rw_get(rw, mt->w), v = pass_rw_get(rw, mt->v);
  int len = mt->len >= 0 ? pass_rw_get(rw, mt->len) : -1;
  if (rw->failed || q < 0 || k < 0 || w < 0 || v < 0 || (mt->len >= 0 && len < 0)) return false;
  ir_attr at[3] = {{.kind = IR_ATTR_FLOAT, .f = mt->mask_value},
                   {.kind = IR_ATTR_FLOAT, .f = mt->p},
                   {.kind = IR_ATTR_INT, .i = mt->p > 0 ? mt->key : -1}};
  const ir_node *mn = rw->src->nodes[mt->m];
  int id = pass_build_additive_attention(rw->dst, q, k, w, v, len, at, &mn->loc, rw->d);
  if (id < 0) return rw->failed = true, false;
  if (mn->name) ir_node_set_name(rw->dst, id, mn->name);
  pass_rw_map(rw, mt->m, id);
  return true;
}

bool pass_fuse_additive(ir_graph **gp, const pass_opts *o, bool *changed, ir_diag *d) {
  *changed = false;
  const ir_graph *g = *gp;
  ctx c = {.g = g};
  int *uses = live_uses(g), *assigns = pass_assign_prefix(g);
  int *user = malloc(sizeof(int) * (size_t)(g->nnodes + 1));
  match *ms = malloc(sizeof *ms * (size_t)(g->nnodes + 1));
  int *at = malloc(sizeof(int) * (size_t)(g->nnodes + 1)); /* -2 swallowed, >= 0 match index */
  if (!uses || !assigns || !user || !ms || !at) {
    free(uses), free(assigns), free(user), free(ms), free(at);
    ir_diag_set(d, "fuse-additive-attention: out of memory");
    return false;
  }
  for (int i = 0; i < g->nnodes; i++)
    user[i] = -1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin && uses[i] >= 0; k++)
      if (user[g->nodes[i]->in[k]] < 0) user[g->nodes[i]->in[k]] = i;
  c.uses = uses, c.user = user, c.assigns = assigns;
  int nm = 0;
  for (int i = 0; i < g->nnodes; i++)
    at[i] = -1;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i]->op != IR_OP_SOFTMAX || uses[i] < 0) continue;
    const char *why = match_at(&c, i, &ms[nm]);
    if (o && o->explain) {
      fprintf(o->explain, "fuse-additive-attention: softmax ");
      where(o->explain, g->nodes[i]);
      if (why)
        fprintf(o->explain, " left unfused: %s\n", why);
      else
        fprintf(o->explain, " fused into additive_attention (%d nodes%s%s)\n",
                ms[nm].nswallowed + 1, ms[nm].len >= 0 ? ", masked" : "",
                ms[nm].p > 0 ? ", dropout" : "");
    }
    if (why) continue;
    for (int s = 0; s < ms[nm].nswallowed; s++)
      at[ms[nm].swallowed[s]] = -2;
    at[ms[nm].m] = nm;
    nm++;
  }
  if (nm == 0) {
    free(uses), free(assigns), free(user), free(ms), free(at);
    return true;
  }
  pass_rw rw;
  bool ok = pass_rw_init(&rw, g, d);
  char *dropped = ok ? calloc((size_t)g->nnodes + 1, 1) : NULL;
  if (ok && !dropped) {
    ir_diag_set(d, "fuse-additive-attention: out of memory");
    pass_rw_abort(&rw);
    ok = false;
  }
  for (int i = 0; ok && i < g->nnodes; i++) {
    if (at[i] == -2) {
      dropped[i] = 1;
      continue;
    }
    if (at[i] >= 0) {
      ok = emit(&rw, &ms[at[i]]);
      continue;
    }
    if (rw.map[i] >= 0) continue; /* copied early as a fused operand */
    bool skip = false;            /* dead readers of swallowed values go too */
    for (int k = 0; k < g->nodes[i]->nin; k++)
      skip |= dropped[g->nodes[i]->in[k]] != 0;
    if (skip && uses[i] < 0) {
      dropped[i] = 1;
      continue;
    }
    ok = pass_rw_copy(&rw, i) >= 0;
  }
  ir_graph *out = NULL;
  if (ok)
    out = pass_rw_finish(&rw);
  else if (!rw.failed && dropped)
    pass_rw_abort(&rw);
  else if (dropped)
    pass_rw_abort(&rw);
  free(dropped), free(uses), free(assigns), free(user), free(ms), free(at);
  if (!out) {
    if (!d->msg[0]) ir_diag_set(d, "fuse-additive-attention: out of memory");
    return false;
  }
  ir_graph_destroy(*gp);
  *gp = out;
  *changed = true;
  return true;
}
