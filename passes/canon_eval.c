/* Compile-time evaluation of constant sub-graphs (passes/canon_eval.h):
 * the reference interpreter, node by node, over the cone that is asked for. */
#include <stdlib.h>

#include "passes/canon_eval.h"
#include "runtime/ref.h"

static bool foldable_op(const ir_node *n) {
  switch (n->op) {
  case IR_OP_ARG:
  case IR_OP_PARAM:
  case IR_OP_STEP:
  case IR_OP_ASSIGN:
  case IR_OP_DROPOUT: return false;
  default: return n->body == NULL && ir_op_get(n->op)->fusion != IR_FUSE_REGION;
  }
}

bool *pass_const_mask(const ir_graph *g, int64_t limit) {
  bool *c = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *c);
  if (!c) return NULL;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!foldable_op(n) || ir_type_numel(&n->type) > limit) continue;
    if (n->op == IR_OP_CONST) {
      c[i] = n->data != NULL;
      continue;
    }
    bool all = true;
    for (int k = 0; k < n->nin && all; k++)
      all = c[n->in[k]];
    /* iota is the only non-const leaf that is a value */
    c[i] = all && (n->nin > 0 || n->op == IR_OP_IOTA);
  }
  return c;
}

static int by_id(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Marks, in vals, a node collected for evaluation but not evaluated yet;
 * so the walk costs the cone's size, not a sweep of the whole graph per
 * question (canonicalize asks once per candidate mask). */
static const char pending_tag;
#define PENDING ((rt_tensor *)&pending_tag)

/* Appends id to the cone list unless it has a value or is listed. */
static bool collect(int id, rt_tensor **vals, int **list, int *n, int *cap) {
  if (vals[id]) return true;
  if (*n == *cap) {
    int c = *cap ? 2 * *cap : 64;
    int *l = realloc(*list, sizeof(int) * (size_t)c);
    if (!l) return false;
    *list = l, *cap = c;
  }
  vals[id] = PENDING;
  (*list)[(*n)++] = id;
  return true;
}

/* Evaluates the roots and the part of their cone without values, in id
 * (topological) order. */
static bool eval_cone(const ir_graph *g, const bool *is_const, const int *roots, int nroots,
                      rt_tensor **vals, ir_diag *d) {
  int *list = NULL, n = 0, cap = 0;
  bool ok = true;
  for (int r = 0; r < nroots && ok; r++)
    ok = collect(roots[r], vals, &list, &n, &cap);
  for (int j = 0; j < n && ok; j++) {
    const ir_node *x = g->nodes[list[j]];
    for (int k = 0; k < x->nin && ok; k++)
      ok = collect(x->in[k], vals, &list, &n, &cap);
  }
  if (!ok) ir_diag_set(d, "out of memory");
  if (ok) qsort(list, (size_t)n, sizeof *list, by_id);
  for (int j = 0; j < n && ok; j++) {
    int i = list[j];
    const ir_node *nd = g->nodes[i];
    if (!is_const[i]) {
      ir_diag_set(d, "%%%d (%s) is not a compile-time constant", i, ir_op_get(nd->op)->name);
      ok = false;
      break;
    }
    const rt_tensor *stack[8], **in = stack;
    if (nd->nin > 8 && !(in = malloc(sizeof *in * (size_t)nd->nin))) {
      ir_diag_set(d, "out of memory");
      ok = false;
      break;
    }
    for (int k = 0; k < nd->nin; k++)
      in[k] = vals[nd->in[k]];
    rt_tensor *out = rt_tensor_create(&nd->type);
    if (!out) {
      ir_diag_set(d, "out of memory");
      ok = false;
    } else if (!rt_ref_eval_node(nd, in, out, NULL, d)) {
      rt_tensor_destroy(out);
      ok = false;
    } else {
      vals[i] = out;
    }
    if (in != stack) free(in);
  }
  for (int j = 0; j < n; j++) /* after a failure: not evaluated after all */
    if (vals[list[j]] == PENDING) vals[list[j]] = NULL;
  free(list);
  return ok;
}

bool pass_const_eval(const ir_graph *g, const bool *is_const, const bool *want, rt_tensor **vals,
                     ir_diag *d) {
  int *roots = malloc(sizeof(int) * (size_t)(g->nnodes ? g->nnodes : 1)), n = 0;
  if (!roots) {
    ir_diag_set(d, "out of memory");
    return false;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (want[i]) roots[n++] = i;
  bool ok = eval_cone(g, is_const, roots, n, vals, d);
  free(roots);
  return ok;
}

bool pass_const_eval_one(const ir_graph *g, const bool *is_const, int id, rt_tensor **vals,
                         ir_diag *d) {
  return eval_cone(g, is_const, &id, 1, vals, d);
}

void pass_const_free(rt_tensor **vals, int n) {
  if (!vals) return;
  for (int i = 0; i < n; i++)
    rt_tensor_destroy(vals[i]);
  free(vals);
}
