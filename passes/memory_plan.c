/* The memory_plan pass (passes/pipeline.h): liveness over the node order,
 * then one arena offset per intermediate so that values alive at the same
 * time never share bytes, with elementwise results written over a dying
 * operand of the same type. The graph itself is unchanged; the result is
 * g->plan (ir/ir.h), which the JIT backend follows. */
#include <stdlib.h>

#include "passes/pipeline.h"

#define ALIGN 64

/* A storage block: one or more values that use the same bytes one after
 * another (an in-place chain), alive over node positions [start, end]. */
typedef struct block {
  int start, end;
  int64_t size; /* rounded up to ALIGN */
  int64_t offset;
  int rank; /* place_blocks' placing order */
} block;

static int64_t value_bytes(const ir_node *n) {
  return ir_type_numel(&n->type) * (int64_t)ir_dtype_size(n->type.dtype);
}

/* Leaves, the step counter and assigns keep storage of their own (bound per
 * run, the graph's payload, the parameter's); returned values are written
 * straight into the caller's tensors. */
static bool has_own_storage(const ir_node *n) {
  switch (n->op) {
  case IR_OP_ARG:
  case IR_OP_CONST:
  case IR_OP_PARAM:
  case IR_OP_STEP:
  case IR_OP_ASSIGN: return true;
  default: return false;
  }
}

/* Ops whose JIT kernel is one strided map (backend/lower_map.c): each
 * output element is computed from the operands' elements at affine offsets
 * and stored once, so an operand of exactly the result's type is read at
 * element i just before element i is written and never elsewhere. Listed
 * by name rather than taken from the fusion class so that a new
 * elementwise op stays out of place until someone checks its kernel. */
static bool map_kernel(ir_op op) {
  /* a loop region is one map too (backend/lower_loop.c): all of an
   * element's loads come before its store */
  if (op == IR_OP_LOOP) return true;
  const ir_op_info *info = ir_op_get(op);
  if (info->fusion != IR_FUSE_ELEMENTWISE && info->fusion != IR_FUSE_BROADCAST) return false;
  switch (op) {
  case IR_OP_ADD:
  case IR_OP_SUB:
  case IR_OP_MUL:
  case IR_OP_DIV:
  case IR_OP_POW:
  case IR_OP_MAX:
  case IR_OP_MIN:
  case IR_OP_CMP_LT:
  case IR_OP_CMP_LE:
  case IR_OP_CMP_GT:
  case IR_OP_CMP_GE:
  case IR_OP_CMP_EQ:
  case IR_OP_SELECT:
  case IR_OP_NEG:
  case IR_OP_ABS:
  case IR_OP_RELU:
  case IR_OP_EXP:
  case IR_OP_LOG:
  case IR_OP_TANH:
  case IR_OP_SIGMOID:
  case IR_OP_SQRT:
  case IR_OP_RSQRT:
  case IR_OP_SIN:
  case IR_OP_COS:
  case IR_OP_ERF:
  case IR_OP_GELU:
  case IR_OP_GELU_DERIV:
  case IR_OP_CAST:
  case IR_OP_DROPOUT:
  case IR_OP_BROADCAST_TO:
  case IR_OP_SEQUENCE_MASK: return true;
  default: return false;
  }
}

static int by_size_desc(const void *pa, const void *pb) {
  const block *a = *(block *const *)pa, *b = *(block *const *)pb;
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  return (a->start > b->start) - (a->start < b->start); /* starts are distinct */
}

/* The placed blocks as a segment tree over start positions (starts are
 * distinct): each tree node keeps the latest end among the placed blocks
 * starting in its range, so the blocks alive at some time in [s, e] are
 * found in O((k + 1) log n) for k of them, not by a scan of all placed. */
typedef struct live_tree {
  int *maxend; /* 2 * leaves entries, -1 = none placed */
  block **at;  /* start position -> the placed block starting there */
  int leaves;
} live_tree;

static void tree_insert(live_tree *t, block *b) {
  t->at[b->start] = b;
  for (int i = b->start + t->leaves; i >= 1; i /= 2)
    if (t->maxend[i] < b->end) t->maxend[i] = b->end;
}

/* Appends to out the placed blocks starting in [lo, hi] of tree node i
 * (covering [nlo, nhi]) that end at or after s. */
static void tree_alive(const live_tree *t, int i, int nlo, int nhi, int hi, int s, block **out,
                       int *n) {
  if (nlo > hi || t->maxend[i] < s) return;
  if (nlo == nhi) {
    out[(*n)++] = t->at[nlo];
    return;
  }
  int mid = nlo + (nhi - nlo) / 2;
  tree_alive(t, 2 * i, nlo, mid, hi, s, out, n);
  tree_alive(t, 2 * i + 1, mid + 1, nhi, hi, s, out, n);
}

/* Placed order: by offset, ties in the order they were placed. */
static int by_offset(const void *pa, const void *pb) {
  const block *a = *(block *const *)pa, *b = *(block *const *)pb;
  if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
  return (a->rank > b->rank) - (a->rank < b->rank);
}

/* Greedy by size over the interval graph (the TFLite arena planner's
 * choice): the biggest blocks are placed first, each at the best-fitting
 * gap (the smallest that holds it) between the already placed blocks whose
 * lifetimes overlap its own, else above the highest of them. Big buffers
 * settle at the bottom; the many small ones fill the holes their lifetimes
 * leave. The overlapping blocks come from the live tree, sorted by offset
 * for the gap scan: O(sum of overlaps * log), where a scan of every placed
 * block per block was quadratic in a graph's values.
 * When many values live at once (the forward values of a long chain's
 * gradient all wait for the backward), the sum of overlaps is itself
 * quadratic; past a budget far above what the shipped models' training
 * steps need, the remaining blocks are stacked above the arena instead
 * (valid, one buffer each, as without planning), so a big graph costs
 * O(budget) more, not hours. Returns the arena size, or -1 when out of
 * memory. npos is the number of node positions. */
static int64_t place_blocks(block **order, int nb, int npos, block **alive) {
  qsort(order, (size_t)nb, sizeof *order, by_size_desc);
  live_tree t = {.leaves = 1};
  while (t.leaves < npos)
    t.leaves *= 2;
  t.maxend = malloc(sizeof *t.maxend * 2 * (size_t)t.leaves);
  t.at = malloc(sizeof *t.at * (size_t)t.leaves);
  if (!t.maxend || !t.at) {
    free(t.maxend), free(t.at);
    return -1;
  }
  for (int i = 0; i < 2 * t.leaves; i++)
    t.maxend[i] = -1;
  int64_t arena = 0, visited = 0, budget = 64 * (int64_t)nb + ((int64_t)1 << 22);
  for (int k = 0; k < nb; k++) {
    block *b = order[k];
    b->rank = k;
    if (visited > budget) {
      b->offset = arena;
      arena += b->size;
      continue;
    }
    int np = 0;
    tree_alive(&t, 1, 0, t.leaves - 1, b->end, b->start, alive, &np);
    visited += np;
    qsort(alive, (size_t)np, sizeof *alive, by_offset);
    int64_t prev_end = 0, best = -1, best_gap = INT64_MAX;
    for (int q = 0; q < np; q++) {
      const block *o = alive[q];
      int64_t gap = o->offset - prev_end;
      if (gap >= b->size && gap < best_gap) best = prev_end, best_gap = gap;
      if (o->offset + o->size > prev_end) prev_end = o->offset + o->size;
    }
    b->offset = best >= 0 ? best : prev_end;
    if (b->offset + b->size > arena) arena = b->offset + b->size;
    tree_insert(&t, b);
  }
  free(t.maxend), free(t.at);
  return arena;
}

bool pass_memory_plan(ir_graph **gp, const pass_opts *o, bool *changed, ir_diag *d) {
  (void)o;
  ir_graph *g = *gp;
  *changed = false;
  int n = g->nnodes;
  size_t cnt = (size_t)(n ? n : 1);
  int *last = malloc(cnt * sizeof *last);      /* last reader's position */
  int *blk = malloc(cnt * sizeof *blk);        /* value -> block, -1 unplanned */
  bool *ret = calloc(cnt, sizeof *ret);        /* returned */
  block *bl = malloc(cnt * sizeof *bl);        /* at most one block per value */
  block **order = malloc(cnt * sizeof *order); /* blocks by size */
  block **placed = malloc(cnt * sizeof *placed);
  ir_mem_plan *plan = calloc(1, sizeof *plan);
  int64_t *off = plan ? malloc(cnt * sizeof *off) : NULL;
  if (!last || !blk || !ret || !bl || !order || !placed || !off) {
    free(last), free(blk), free(ret), free(bl), free(order), free(placed), free(off), free(plan);
    ir_diag_set(d, "out of memory planning %d values", n);
    return false;
  }
  for (int i = 0; i < n; i++)
    last[i] = i; /* a value nobody reads still gets written */
  for (int i = 0; i < n; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++)
      last[g->nodes[i]->in[k]] = i;
  for (int r = 0; r < g->nrets; r++)
    ret[g->rets[r]] = true;

  int nb = 0;
  int64_t naive = 0;
  for (int i = 0; i < n; i++) {
    const ir_node *node = g->nodes[i];
    blk[i] = -1;
    if (has_own_storage(node) || ret[i]) continue;
    int64_t bytes = value_bytes(node);
    naive += bytes;
    /* In place: extend a dying operand's block when this node is the
     * operand's last reader and the operand has exactly our type. */
    /* gemm(a, b, c) may write over c: BLAS reads each C element before
     * writing it, and c has the result's type and layout; never when c is
     * also a or b, which BLAS reads throughout. */
    bool gemm_c = node->op == IR_OP_GEMM && node->nin == 3 && node->in[2] != node->in[0] &&
                  node->in[2] != node->in[1];
    /* a loop ending in a reduction is no map: an operand of the result's
     * type may be read (broadcast) for many outputs, e.g. y[8] in
     * sum(mul(x[8,8], y), axes=[1]) : [8] */
    bool map = map_kernel(node->op) && !ir_loop_reduction(node);
    if (map || gemm_c) {
      for (int k = gemm_c ? 2 : 0; k < node->nin; k++) {
        int a = node->in[k];
        if (blk[a] < 0 || last[a] != i || bl[blk[a]].end != i) continue;
        if (!ir_type_eq(&g->nodes[a]->type, &node->type)) continue;
        blk[i] = blk[a];
        bl[blk[i]].end = last[i];
        break;
      }
      if (blk[i] >= 0) continue;
    }
    bl[nb] = (block){.start = i, .end = last[i], .size = (bytes + ALIGN - 1) / ALIGN * ALIGN};
    order[nb] = &bl[nb];
    blk[i] = nb++;
  }
  int64_t arena = place_blocks(order, nb, n, placed);
  if (arena < 0) {
    free(last), free(blk), free(ret), free(bl), free(order), free(placed), free(off), free(plan);
    ir_diag_set(d, "out of memory planning %d values", n);
    return false;
  }
  for (int i = 0; i < n; i++)
    off[i] = blk[i] < 0 ? -1 : bl[blk[i]].offset;
  *plan = (ir_mem_plan){.offset = off, .nnodes = n, .arena_bytes = arena, .naive_bytes = naive};
  ir_graph_drop_plan(g);
  g->plan = plan;
  free(last), free(blk), free(ret), free(bl), free(order), free(placed);
  return true;
}
