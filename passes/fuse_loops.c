/* The fuse-loops pass: chains of elementwise and broadcast ops become one
 * loop region (ir.h, "fused ops"), which the backend runs as one pass over
 * memory instead of one per op.
 *
 * Grouping, greedy in topological order. A node of class elementwise or
 * broadcast joins the group of an operand P when
 *   - P is its group's output (the group's last node so far),
 *   - P has no other user (and is not returned): intermediates never escape,
 *   - the node's result has the group's shape (the iteration space; a node
 *     with a smaller or larger result starts a group of its own), and
 *   - the group's external operands (+ one per sequence_mask, whose lengths
 *     the kernel reads a second way) stay within LOOP_MAX_READS, and
 *   - no assign lies between the group's first member and the node: the
 *     region runs where its output was, and a member reading a parameter
 *     must not move past that parameter's update.
 *   - the group stays within LOOP_MAX_BODY members: one kernel per region,
 *     and LLVM's optimizer time grows faster than linearly in a body's size,
 *     so a 10^6-node chain becomes many bounded regions (which the backend
 *     compiles once when they are twins) rather than one unbounded one.
 * Several operands' groups can merge through one node (add(gelu(a),
 * dropout(b))). Otherwise the node starts its own group. So every body node
 * spans the iteration space, and a dropout's mask index is its own flat
 * index, as unfused. Groups of one node, and groups without an external
 * operand, stay plain ops. The body copies the group's nodes in order; its
 * arguments are the external operands (deduplicated); scalar constants are
 * copied in (and copied outside only on demand, so one every user inlined
 * disappears). Dropout keys are pinned to the original node's stream.
 *
 * Reduction prologues: a sum, mean or reduce_max whose input is a group's
 * output with no other user (a single fusible node counts) joins that
 * group as its last member, under the same assign rule; the region then
 * ends in the reduction and the chain's values are never stored. Nothing
 * joins after it (its result is not a fusible node). */
#include <stdlib.h>
#include <string.h>

#include "passes/pipeline.h"
#include "passes/rewrite.h"
#include "runtime/ref.h"

/* The strided-map kernel's argument limit (backend/lower_map.h). */
#define LOOP_MAX_READS 8
/* Members per region. At 512 one kernel compiles in about a second (the
 * README's scale figures) while every fused chain of the shipped models
 * fits in one region (the Transformer step's 336 regions absorb 1265
 * nodes). A multiple of small cycles, so that the regions of a long
 * periodic chain come out as twins, which the JIT compiles once. */
#define LOOP_MAX_BODY 512

/* A group's external reads: the distinct non-member operands its members
 * read (inlined scalar constants excepted), and its sequence_masks, each of
 * which reads its lengths a second way. Kept per group so that a join costs
 * O(LOOP_MAX_READS^2), not a walk over the members: a read never becomes a
 * member later, because every member but the output has exactly one user,
 * inside its group, and a node joins only after all of a group's members. */
typedef struct group_reads {
  int v[LOOP_MAX_READS];
  int n;     /* LOOP_MAX_READS + 1: too many (a group of one very wide node) */
  int masks; /* sequence_mask members */
} group_reads;

typedef struct grouping {
  const ir_graph *g;
  int *users;       /* distinct user nodes, + 1 per return slot */
  int *grp;         /* node -> group (a representative node id), -1 none */
  int *next;        /* members of a group as a list in join order */
  int *head, *tail; /* per group representative */
  int *out, *size;  /* the group's output node and member count */
  int *first;       /* the group's earliest member */
  int *assigns;     /* pass_assign_prefix */
  group_reads *rd;  /* per group representative */
} grouping;

static bool fusible(const ir_node *n) {
  ir_fusion fu = ir_op_get(n->op)->fusion;
  return fu == IR_FUSE_ELEMENTWISE || fu == IR_FUSE_BROADCAST;
}

static bool reduction(const ir_node *n) {
  return n->op == IR_OP_SUM || n->op == IR_OP_MEAN || n->op == IR_OP_REDUCE_MAX;
}

/* Operands that stay inside the body (scalar constants) need no map read;
 * sequence_mask's lengths always come in as an operand. */
static bool inlined_const(const ir_graph *g, const ir_node *n, int k) {
  const ir_node *p = g->nodes[n->in[k]];
  return p->op == IR_OP_CONST && ir_type_numel(&p->type) == 1 &&
         !(n->op == IR_OP_SEQUENCE_MASK && k == 1);
}

static bool member(const grouping *G, int id, const int *gs, int ngs, int self) {
  if (id == self) return true;
  for (int i = 0; i < ngs; i++)
    if (G->grp[id] == gs[i]) return true;
  return false;
}

/* Adds read p to r unless it is there; false when that overflows. */
static bool add_read(group_reads *r, int p) {
  for (int s = 0; s < r->n; s++)
    if (r->v[s] == p) return true;
  if (r->n >= LOOP_MAX_READS) return r->n = LOOP_MAX_READS + 1, false;
  r->v[r->n++] = p;
  return true;
}

/* The reads of the union of groups gs plus node self, into *u; returns
 * their count (distinct reads + sequence_masks), above LOOP_MAX_READS when
 * too many. */
static int reads(const grouping *G, const int *gs, int ngs, int self, group_reads *u) {
  *u = (group_reads){0};
  bool ok = true;
  for (int q = 0; q < ngs && ok; q++) {
    const group_reads *r = &G->rd[gs[q]];
    ok = r->n <= LOOP_MAX_READS;
    u->masks += r->masks;
    for (int s = 0; s < r->n && ok; s++)
      ok = add_read(u, r->v[s]);
  }
  const ir_node *n = G->g->nodes[self];
  u->masks += n->op == IR_OP_SEQUENCE_MASK;
  for (int k = 0; k < n->nin && ok; k++)
    if (!member(G, n->in[k], gs, ngs, self) && !inlined_const(G->g, n, k))
      ok = add_read(u, n->in[k]);
  return ok ? u->n + u->masks : LOOP_MAX_READS + 1;
}

static void join(grouping *G, int rep, int id) {
  G->grp[id] = rep;
  G->next[id] = -1;
  if (G->tail[rep] >= 0)
    G->next[G->tail[rep]] = id;
  else
    G->head[rep] = id;
  G->tail[rep] = id;
  G->out[rep] = id;
  G->size[rep]++;
  if (G->first[rep] < 0 || id < G->first[rep]) G->first[rep] = id;
}

static void merge(grouping *G, int into, int from) {
  for (int m = G->head[from]; m >= 0; m = G->next[m])
    G->grp[m] = into;
  G->next[G->tail[into]] = G->head[from];
  G->tail[into] = G->tail[from];
  G->size[into] += G->size[from];
  G->size[from] = 0;
  if (G->first[from] < G->first[into]) G->first[into] = G->first[from];
}

static void visit(grouping *G, int i) {
  const ir_node *n = G->g->nodes[i];
  int gs[4], ngs = 0, size = 1;
  group_reads u;
  for (int k = 0; k < n->nin && ngs < 4; k++) {
    int p = n->in[k], r = G->grp[p];
    if (r < 0 || G->out[r] != p || G->users[p] != 1) continue;
    if (!fusible(G->g->nodes[p])) continue; /* the group ends in a reduction */
    if (!ir_shape_eq(&G->g->nodes[r]->type, &n->type)) continue;
    if (pass_assign_in(G->assigns, G->first[r], i)) continue;
    if (size + G->size[r] > LOOP_MAX_BODY) continue;
    bool dup = false;
    for (int s = 0; s < ngs && !dup; s++)
      dup = gs[s] == r;
    if (dup) continue;
    gs[ngs++] = r;
    if (reads(G, gs, ngs, i, &u) > LOOP_MAX_READS)
      ngs--; /* too wide with this one */
    else
      size += G->size[r];
  }
  reads(G, gs, ngs, i, &u);
  if (ngs == 0) {
    G->head[i] = G->tail[i] = G->first[i] = -1;
    G->size[i] = 0;
    join(G, i, i);
    G->rd[i] = u;
    return;
  }
  for (int s = 1; s < ngs; s++)
    merge(G, gs[0], gs[s]);
  join(G, gs[0], i);
  G->rd[gs[0]] = u;
}

/* Reduction i joins the group whose output is its input (only user, no
 * assign in between); its reads are the group's. */
static void visit_reduction(grouping *G, int i) {
  int p = G->g->nodes[i]->in[0], r = G->grp[p];
  if (r < 0 || G->out[r] != p || G->users[p] != 1 || !fusible(G->g->nodes[p])) return;
  if (pass_assign_in(G->assigns, G->first[r], i) || G->size[r] + 1 > LOOP_MAX_BODY) return;
  join(G, r, i);
}

static int by_id(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Members of group rep in id order (topological), into ids; returns count. */
static int members(const grouping *G, int rep, int *ids) {
  int k = 0;
  bool sorted = true;
  for (int m = G->head[rep]; m >= 0; m = G->next[m]) {
    sorted = sorted && (k == 0 || ids[k - 1] < m);
    ids[k++] = m;
  }
  if (!sorted) qsort(ids, (size_t)k, sizeof *ids, by_id); /* merged groups interleave */
  return k;
}

/* Every node name of src, sorted, for arg_name's clash test: built once,
 * on the first unnamed operand (a scan per operand is quadratic). */
typedef struct name_index {
  const char **v;
  int n;
  bool built, failed;
} name_index;

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool name_taken(name_index *x, const ir_graph *src, const char *name) {
  if (!x->built) {
    x->built = true;
    x->v = malloc(sizeof *x->v * (size_t)(src->nnodes ? src->nnodes : 1));
    if (!x->v) return x->failed = true, false;
    for (int i = 0; i < src->nnodes; i++)
      if (src->nodes[i]->name) x->v[x->n++] = src->nodes[i]->name;
    qsort(x->v, (size_t)x->n, sizeof *x->v, by_name);
  }
  return x->v && bsearch(&name, x->v, (size_t)x->n, sizeof *x->v, by_name);
}

/* A name for an unnamed operand (body arguments need one) that no node
 * of src has: "v<id>", primed until unique. NULL when out of memory. */
static const char *arg_name(const ir_graph *src, name_index *names, int id, char *buf, size_t len) {
  int n = snprintf(buf, len, "v%d", id);
  for (bool clash = true; clash && n > 0 && (size_t)n + 1 < len;) {
    clash = name_taken(names, src, buf);
    if (clash) buf[n++] = '_', buf[n] = 0;
  }
  return names->failed ? NULL : buf;
}

/* The region replacing group rep (output node o), appended to rw->dst;
 * returns its id, -1 with rw failed on error, -2 when it stays plain (no
 * external operand). */
static int build(pass_rw *rw, const grouping *G, int rep, int *ids, int *bmap, name_index *names) {
  const ir_graph *src = rw->src;
  int nm = members(G, rep, ids), o = G->out[rep];
  int ops[LOOP_MAX_READS], nops = 0;
  for (int q = 0; q < nm; q++) {
    const ir_node *n = src->nodes[ids[q]];
    for (int k = 0; k < n->nin; k++) {
      int p = n->in[k];
      if (G->grp[p] == rep || inlined_const(src, n, k)) continue;
      bool dup = false;
      for (int s = 0; s < nops && !dup; s++)
        dup = ops[s] == p;
      if (!dup && nops < LOOP_MAX_READS) ops[nops++] = p;
    }
  }
  if (nops == 0) return -2;
  ir_diag *d = rw->d;
  ir_graph *body = ir_graph_create("loop");
  if (!body) {
    ir_diag_set(d, "fuse-loops: out of memory");
    return rw->failed = true, -1;
  }
  bool ok = true;
  for (int s = 0; ok && s < nops; s++) {
    const ir_node *p = src->nodes[ops[s]];
    char nm_[32];
    const char *name = p->name ? p->name : arg_name(src, names, ops[s], nm_, sizeof nm_);
    if (!name) ir_diag_set(d, "fuse-loops: out of memory");
    int a = name ? ir_add_arg(body, name, &p->type, d) : -1;
    ok = a >= 0;
    bmap[ops[s]] = a;
  }
  for (int q = 0; ok && q < nm; q++) {
    const ir_node *n = src->nodes[ids[q]];
    int in[3] = {-1, -1, -1};
    for (int k = 0; ok && k < n->nin && k < 3; k++) {
      if (inlined_const(src, n, k)) {
        const ir_node *c = src->nodes[n->in[k]];
        in[k] = ir_add_const(body, &c->type, c->data, d);
        ok = in[k] >= 0;
      } else {
        in[k] = bmap[n->in[k]];
      }
    }
    ir_attr a[IR_MAX_ATTRS];
    int na = ir_op_get(n->op)->nattrs;
    memcpy(a, n->attrs, sizeof(ir_attr) * (size_t)na);
    if (n->op == IR_OP_DROPOUT) a[1].i = (int64_t)rt_dropout_key(n); /* the stream it had */
    int id = ok ? ir_add_node(body, n->op, n->nin, in, a, NULL, d) : -1;
    ok = id >= 0;
    if (ok) {
      ir_node_set_name(body, id, n->name);
      ir_node_copy_loc(body, id, &n->loc);
      bmap[ids[q]] = id;
    }
  }
  if (!ok) {
    ir_graph_destroy(body);
    return rw->failed = true, -1;
  }
  ir_set_returns(body, 1, &bmap[o]);
  int in[LOOP_MAX_READS];
  for (int s = 0; s < nops; s++)
    in[s] = pass_rw_get(rw, ops[s]);
  const ir_type *t = &src->nodes[o]->type;
  ir_attr la[2] = {{.kind = IR_ATTR_INTS, .ints = {t->rank, (int64_t *)t->dims}},
                   {.kind = IR_ATTR_DTYPE, .dt = t->dtype}};
  return pass_rw_add_region(rw, IR_OP_LOOP, nops, in, la, body, o);
}

/* Rebuilds *g with every group of two or more nodes as one loop region;
 * *nloops counts the regions. */
static bool rewrite(ir_graph **g, const grouping *G, int *nloops, ir_diag *d) {
  const ir_graph *src = *g;
  int nn = src->nnodes;
  int *ids = malloc(sizeof(int) * (size_t)nn), *bmap = malloc(sizeof(int) * (size_t)nn);
  if (!ids || !bmap) {
    free(ids), free(bmap);
    ir_diag_set(d, "fuse-loops: out of memory");
    return false;
  }
  pass_rw rw;
  bool ok = pass_rw_init(&rw, src, d);
  name_index names = {0};
  *nloops = 0;
  for (int i = 0; ok && i < nn; i++) {
    int r = G->grp[i];
    if (r >= 0 && G->size[r] >= 2 && G->out[r] == i) {
      int id = build(&rw, G, r, ids, bmap, &names);
      if (id == -2) { /* stays plain: copy its members in order */
        int nm = members(G, r, ids);
        for (int q = 0; q < nm; q++)
          pass_rw_get(&rw, ids[q]);
      } else {
        pass_rw_map(&rw, i, id);
        ++*nloops;
      }
    } else if ((r < 0 || G->size[r] < 2) && src->nodes[i]->op != IR_OP_CONST) {
      pass_rw_get(&rw, i);
    }
    ok = !rw.failed;
  }
  free(ids), free(bmap), free(names.v);
  ir_graph *out = ok ? pass_rw_finish(&rw) : NULL;
  if (!ok) pass_rw_abort(&rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  return true;
}

bool pass_fuse_loops(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  (void)o;
  *changed = false;
  const ir_graph *src = *g;
  int nn = src->nnodes;
  grouping G = {.g = src};
  int **arrays[] = {&G.users, &G.grp, &G.next, &G.head, &G.tail, &G.out, &G.size, &G.first};
  bool ok = true;
  for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++) {
    *arrays[a] = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
    ok = ok && *arrays[a];
  }
  G.assigns = pass_assign_prefix(src);
  G.rd = malloc(sizeof *G.rd * (size_t)(nn ? nn : 1));
  ok = ok && G.assigns && G.rd;
  if (!ok) ir_diag_set(d, "fuse-loops: out of memory");
  for (int i = 0; ok && i < nn; i++) {
    G.users[i] = 0, G.grp[i] = -1, G.next[i] = -1;
  }
  for (int i = 0; ok && i < nn; i++) {
    const ir_node *n = src->nodes[i];
    for (int k = 0; k < n->nin; k++) {
      bool again = false;
      for (int j = 0; j < k && !again; j++)
        again = n->in[j] == n->in[k];
      if (!again) G.users[n->in[k]]++;
    }
  }
  for (int r = 0; ok && r < src->nrets; r++)
    G.users[src->rets[r]]++;
  int groups = 0, nloops = 0;
  for (int i = 0; ok && i < nn; i++) {
    if (fusible(src->nodes[i]))
      visit(&G, i);
    else if (reduction(src->nodes[i]))
      visit_reduction(&G, i);
  }
  for (int i = 0; ok && i < nn; i++)
    groups += G.grp[i] == i && G.size[i] >= 2;
  if (ok && groups > 0) ok = rewrite(g, &G, &nloops, d);
  *changed = ok && nloops > 0;
  for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++)
    free(*arrays[a]);
  free(G.assigns), free(G.rd);
  return ok;
}
