/* The IR verifier: checks a graph's structural invariants (ids, topological
 * order, arity, attribute kinds, types against the shape rules, leaf
 * payloads and names, returns) so passes can rely on them. Messages name the
 * node as "%name (op) at file:line". */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/shape_util.h"

/* Regions nest a few levels at most; the limit turns a body that contains
 * itself into an error instead of a stack overflow. */
#define MAX_REGION_DEPTH 32

/* ---- a string -> node id map (open addressing) for names ----------------- */

typedef struct name_map {
  const char **keys;
  int *vals;
  size_t cap; /* power of two, or 0 when allocation failed */
} name_map;

static bool map_init(name_map *m, int n) {
  size_t cap = 16;
  while (cap < (size_t)n * 2)
    cap *= 2;
  m->keys = calloc(cap, sizeof *m->keys);
  m->vals = calloc(cap, sizeof *m->vals);
  m->cap = cap;
  return m->keys && m->vals;
}

static void map_free(name_map *m) {
  free(m->keys);
  free(m->vals);
}

static size_t hash_str(const char *s) {
  size_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Returns the id stored under key, or inserts val and returns -1. */
static int map_get_or_put(name_map *m, const char *key, int val) {
  size_t i = hash_str(key) & (m->cap - 1);
  while (m->keys[i]) {
    if (strcmp(m->keys[i], key) == 0) return m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  m->keys[i] = key;
  m->vals[i] = val;
  return -1;
}

/* ---- messages --------------------------------------------------------------- */

static const char *op_name(ir_op op) {
  return (unsigned)op < IR_NUM_OPS ? ir_op_get(op)->name : "?";
}

/* "%name" or "%<index>" for unnamed nodes. */
static void node_ref(const ir_graph *g, int i, char *buf, size_t len) {
  const ir_node *n = g->nodes[i];
  if (n && n->name && n->name[0])
    snprintf(buf, len, "%%%.120s", n->name);
  else
    snprintf(buf, len, "%%%d", i);
}

static bool node_fail(const ir_graph *g, int i, ir_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool node_fail(const ir_graph *g, int i, ir_diag *d, const char *fmt, ...) {
  if (!d) return false;
  const ir_node *n = g->nodes[i];
  char ref[136], where[300] = "", why[600];
  node_ref(g, i, ref, sizeof ref);
  if (n->loc.file) snprintf(where, sizeof where, " at %.200s:%d", n->loc.file, n->loc.line);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  ir_diag_set(d, "%s (%s)%s: %s", ref, op_name(n->op), where, why);
  d->line = n->loc.text_line;
  d->col = n->loc.text_line ? n->loc.text_col : 0;
  return false;
}

static bool graph_fail(const ir_graph *g, ir_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool graph_fail(const ir_graph *g, ir_diag *d, const char *fmt, ...) {
  if (!d) return false;
  char why[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  ir_diag_set(d, "graph @%.120s: %s", g->name ? g->name : "?", why);
  d->line = d->col = 0;
  return false;
}

/* ---- per-node checks --------------------------------------------------------- */

static bool check_type(const ir_graph *g, int i, ir_diag *d) {
  const ir_type *t = &g->nodes[i]->type;
  if ((unsigned)t->dtype >= IR_NUM_DTYPES)
    return node_fail(g, i, d, "unknown dtype %d in its type", (int)t->dtype);
  if (t->rank < 0 || t->rank > IR_MAX_RANK)
    return node_fail(g, i, d, "bad rank %d in its type (must be 0..%d)", t->rank, IR_MAX_RANK);
  for (int k = 0; k < t->rank; k++)
    if (t->dims[k] < 0)
      return node_fail(g, i, d, "negative dimension %lld in its type", (long long)t->dims[k]);
  return true;
}

static bool check_operands(const ir_graph *g, int i, ir_diag *d) {
  const ir_node *n = g->nodes[i];
  const ir_op_info *info = ir_op_get(n->op);
  if (info->arity >= 0 ? n->nin != info->arity : n->nin < 1)
    return node_fail(g, i, d, "takes %s%d operand%s, has %d", info->arity < 0 ? "at least " : "",
                     info->arity < 0 ? 1 : info->arity, info->arity == 1 ? "" : "s", n->nin);
  if (n->nin > 0 && !n->in) return node_fail(g, i, d, "operand list is missing");
  for (int k = 0; k < n->nin; k++) {
    int o = n->in[k];
    if (o < 0 || o >= g->nnodes)
      return node_fail(g, i, d, "operand %d refers to %%%d, which does not exist", k, o);
    if (o >= i)
      return node_fail(g, i, d, "operand %d is %%%d, defined after it (operands must come first)",
                       k, o);
  }
  return true;
}

static bool check_attrs(const ir_graph *g, int i, ir_diag *d) {
  const ir_node *n = g->nodes[i];
  const ir_op_info *info = ir_op_get(n->op);
  if (info->nattrs > 0 && !n->attrs) return node_fail(g, i, d, "attributes are missing");
  for (int k = 0; k < info->nattrs; k++) {
    const ir_attr_spec *s = &info->attrs[k];
    const ir_attr *a = &n->attrs[k];
    if (a->kind != s->kind)
      return node_fail(g, i, d, "attribute '%s' is a %s, the schema says %s", s->name,
                       ir_attr_kind_name(a->kind), ir_attr_kind_name(s->kind));
    if (a->kind == IR_ATTR_INTS && (a->ints.n < 0 || (a->ints.n > 0 && !a->ints.v)))
      return node_fail(g, i, d, "attribute '%s' has %d entries but no list", s->name, a->ints.n);
    if (a->kind == IR_ATTR_STR && !a->s)
      return node_fail(g, i, d, "attribute '%s' has no string", s->name);
    if (a->kind == IR_ATTR_DTYPE && (unsigned)a->dt >= IR_NUM_DTYPES)
      return node_fail(g, i, d, "attribute '%s' is not a dtype (%d)", s->name, (int)a->dt);
  }
  return true;
}

/* Re-runs the op's shape rule on the operands' (already verified) types. */
static bool check_inferred(const ir_graph *g, int i, ir_diag *d) {
  const ir_node *n = g->nodes[i];
  const ir_op_info *info = ir_op_get(n->op);
  if (!info->shape) return true;
  ir_type local[16], *tp = local;
  if (n->nin > 16) {
    tp = malloc((size_t)n->nin * sizeof *tp);
    if (!tp) return node_fail(g, i, d, "out of memory");
  }
  for (int k = 0; k < n->nin; k++)
    tp[k] = g->nodes[n->in[k]]->type;
  ir_diag sd = {0};
  ir_type t;
  bool ok = info->shape(n->op, n->nin, tp, n->attrs, &t, &sd);
  if (tp != local) free(tp);
  if (!ok) return node_fail(g, i, d, "%s", sd.msg);
  if (!ir_type_eq(&t, &n->type)) {
    char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
    return node_fail(g, i, d, "declared type %s does not match the inferred type %s",
                     ir_type_str(&n->type, a, sizeof a), ir_type_str(&t, b, sizeof b));
  }
  return true;
}

static bool verify_graph(const ir_graph *g, ir_diag *d, int depth);

/* A region's body (already verified as a graph) against the node: one
 * argument per operand with its type, one return of the node's type, and
 * no state (params, steps, assigns), which lives outside regions. */
static bool check_body(const ir_graph *g, int i, ir_diag *d) {
  const ir_node *n = g->nodes[i];
  const ir_graph *b = n->body;
  char x[IR_TYPE_STRLEN], y[IR_TYPE_STRLEN];
  int k = 0;
  for (int j = 0; j < b->nnodes; j++) {
    const ir_node *m = b->nodes[j];
    if (m->op == IR_OP_PARAM || m->op == IR_OP_STEP || m->op == IR_OP_ASSIGN)
      return node_fail(g, i, d, "its body holds a %s (state stays outside regions)",
                       op_name(m->op));
    ir_fusion fu = ir_op_get(m->op)->fusion;
    if (n->op == IR_OP_LOOP && m->op != IR_OP_ARG && m->op != IR_OP_CONST &&
        fu != IR_FUSE_ELEMENTWISE && fu != IR_FUSE_BROADCAST && m != ir_loop_reduction(n))
      return node_fail(g, i, d,
                       "its loop body holds a %s (only elementwise and broadcast ops, and one "
                       "returned sum, mean or reduce_max)",
                       op_name(m->op));
    if (m->op != IR_OP_ARG) continue;
    if (k >= n->nin)
      return node_fail(g, i, d, "its body has more arguments than the node's %d operands", n->nin);
    const ir_type *t = &g->nodes[n->in[k]]->type;
    if (!ir_type_eq(&m->type, t))
      return node_fail(g, i, d, "body argument %d is %s, operand %d is %s", k,
                       ir_type_str(&m->type, x, sizeof x), k, ir_type_str(t, y, sizeof y));
    k++;
  }
  if (k != n->nin)
    return node_fail(g, i, d, "its body has %d arguments for %d operands", k, n->nin);
  if (b->nrets != 1) return node_fail(g, i, d, "its body returns %d values, not 1", b->nrets);
  const ir_type *r = &b->nodes[b->rets[0]]->type;
  if (!ir_type_eq(r, &n->type))
    return node_fail(g, i, d, "its body returns %s, the node is %s", ir_type_str(r, x, sizeof x),
                     ir_type_str(&n->type, y, sizeof y));
  if (n->op == IR_OP_LOOP) { /* operands reach the iteration space */
    const ir_node *red = ir_loop_reduction(n);
    const ir_type *sp = red ? &b->nodes[red->in[0]]->type : &n->type;
    for (k = 0; k < n->nin; k++)
      if (!ir_loop_reaches(&g->nodes[n->in[k]]->type, sp))
        return node_fail(g, i, d, "operand %d (%s) does not broadcast to the iteration space %s", k,
                         ir_type_str(&g->nodes[n->in[k]]->type, x, sizeof x),
                         ir_type_str(sp, y, sizeof y));
  }
  return true;
}

static bool check_param_init(const ir_graph *g, int i, ir_diag *d) {
  static const char *const inits[] = {
      "normal",         "uniform",       "zeros",           "ones",
      "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"};
  const ir_node *n = g->nodes[i];
  const char *init = n->attrs[1].s;
  bool known = false;
  for (size_t k = 0; k < sizeof inits / sizeof *inits; k++)
    known = known || strcmp(init, inits[k]) == 0;
  if (!known) return node_fail(g, i, d, "unknown init \"%.64s\"", init);
  double sc = n->attrs[2].f;
  if (!(sc >= 0.0 && sc < 1e30)) return node_fail(g, i, d, "init scale must be >= 0, got %g", sc);
  return true;
}

static const char *param_name(const ir_graph *g, int id) {
  const ir_node *p = g->nodes[id];
  return p->op == IR_OP_PARAM ? p->attrs[0].s : NULL;
}

/* The id stored under key, or -1. */
static int map_get(const name_map *m, const char *key) {
  size_t i = hash_str(key) & (m->cap - 1);
  for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
    if (strcmp(m->keys[i], key) == 0) return m->vals[i];
  return -1;
}

/* An assign writes its parameter in place when it runs, so nothing after it
 * may read that parameter, and a parameter is assigned at most once. One
 * forward sweep records, per parameter's first assign, the first node
 * after it that assigns or reads that parameter again; the error reported
 * is the earliest assign's, as a scan from each assign would find it. */
static bool check_assigns(const ir_graph *g, ir_diag *d) {
  int nassigns = 0;
  for (int i = 0; i < g->nnodes; i++)
    nassigns += g->nodes[i]->op == IR_OP_ASSIGN;
  if (nassigns == 0) return true;
  name_map first = {0}; /* param name -> its first assign */
  int *offender = malloc(sizeof(int) * (size_t)g->nnodes);
  if (!offender || !map_init(&first, nassigns)) {
    free(offender);
    map_free(&first);
    return graph_fail(g, d, "out of memory");
  }
  for (int j = 0; j < g->nnodes; j++) {
    const ir_node *m = g->nodes[j];
    offender[j] = -1;
    if (m->op == IR_OP_ASSIGN) {
      int a = map_get_or_put(&first, param_name(g, m->in[0]), j);
      if (a >= 0 && offender[a] < 0) offender[a] = j;
    }
    for (int k = 0; k < m->nin; k++) {
      const char *q = param_name(g, m->in[k]);
      int a = q ? map_get(&first, q) : -1;
      if (a >= 0 && a < j && offender[a] < 0) offender[a] = j;
    }
  }
  map_free(&first);
  int i = 0;
  while (i < g->nnodes && (g->nodes[i]->op != IR_OP_ASSIGN || offender[i] < 0))
    i++;
  int j = i < g->nnodes ? offender[i] : -1;
  free(offender);
  if (j < 0) return true;
  const char *pn = param_name(g, g->nodes[i]->in[0]);
  const ir_node *m = g->nodes[j];
  if (m->op == IR_OP_ASSIGN && strcmp(param_name(g, m->in[0]), pn) == 0)
    return node_fail(g, j, d, "assigns param \"%.120s\" a second time", pn);
  return node_fail(g, j, d, "reads param \"%.120s\" after its assign", pn);
}

static bool check_node(const ir_graph *g, int i, name_map *names, name_map *params, ir_diag *d,
                       int depth) {
  const ir_node *n = g->nodes[i];
  if ((unsigned)n->op >= IR_NUM_OPS) return node_fail(g, i, d, "unknown op %d", (int)n->op);
  if (n->id != i) return node_fail(g, i, d, "has id %d but sits at index %d", n->id, i);
  if (!check_type(g, i, d) || !check_operands(g, i, d) || !check_attrs(g, i, d)) return false;

  if (n->op == IR_OP_CONST && !n->data) return node_fail(g, i, d, "constant has no data");
  if (n->op == IR_OP_ARG && (!n->name || !n->name[0]))
    return node_fail(g, i, d, "argument has no name");
  if (n->name) {
    if (!n->name[0]) return node_fail(g, i, d, "empty SSA name");
    int prev = map_get_or_put(names, n->name, i);
    if (prev >= 0)
      return node_fail(g, i, d, "duplicate name %%%s (also node %d, %s)", n->name, prev,
                       op_name(g->nodes[prev]->op));
  }
  if (n->op == IR_OP_PARAM) {
    const char *pname = n->attrs[0].s;
    if (!pname[0]) return node_fail(g, i, d, "param has an empty name");
    int prev = map_get_or_put(params, pname, i);
    if (prev >= 0 && !ir_type_eq(&g->nodes[prev]->type, &n->type)) {
      char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN], ref[136];
      node_ref(g, prev, ref, sizeof ref);
      return node_fail(g, i, d, "param \"%.120s\" has type %s here but %s at %s", pname,
                       ir_type_str(&n->type, a, sizeof a),
                       ir_type_str(&g->nodes[prev]->type, b, sizeof b), ref);
    }
  }
  if (n->op == IR_OP_PARAM && !check_param_init(g, i, d)) return false;
  if (n->op == IR_OP_STEP && (n->type.rank != 0 || n->type.dtype == IR_BOOL))
    return node_fail(g, i, d, "step is a numeric scalar, not %s",
                     ir_type_str(&n->type, (char[IR_TYPE_STRLEN]){0}, IR_TYPE_STRLEN));
  if (n->op == IR_OP_ASSIGN && g->nodes[n->in[0]]->op != IR_OP_PARAM)
    return node_fail(g, i, d, "assign's first operand must be a param, got %s",
                     op_name(g->nodes[n->in[0]]->op));
  if (!check_inferred(g, i, d)) return false;

  bool region = ir_op_get(n->op)->fusion == IR_FUSE_REGION;
  if (region && !n->body) return node_fail(g, i, d, "a region op needs a body");
  if (!region && n->body) return node_fail(g, i, d, "only region ops have a body");
  if (n->body) {
    if (depth >= MAX_REGION_DEPTH)
      return node_fail(g, i, d, "regions nest deeper than %d", MAX_REGION_DEPTH);
    ir_diag inner = {0};
    if (!verify_graph(n->body, &inner, depth + 1)) {
      node_fail(g, i, d, "in its region body: %s", inner.msg);
      if (inner.line) d->line = inner.line, d->col = inner.col; /* the body node is nearer */
      return false;
    }
    if (!check_body(g, i, d)) return false;
  }
  return true;
}

static bool verify_graph(const ir_graph *g, ir_diag *d, int depth) {
  if (!g) {
    ir_diag_set(d, "no graph (NULL)");
    return false;
  }
  if (g->nnodes < 0 || (g->nnodes > 0 && !g->nodes))
    return graph_fail(g, d, "node list is missing");
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i]) return graph_fail(g, d, "node %d is missing (NULL)", i);

  name_map names = {0}, params = {0};
  if (!map_init(&names, g->nnodes) || !map_init(&params, g->nnodes)) {
    map_free(&names);
    map_free(&params);
    return graph_fail(g, d, "out of memory");
  }
  bool ok = true;
  for (int i = 0; ok && i < g->nnodes; i++)
    ok = check_node(g, i, &names, &params, d, depth);
  map_free(&names);
  map_free(&params);
  if (!ok || !check_assigns(g, d)) return false;

  if (g->nrets < 1 || !g->rets) return graph_fail(g, d, "no return value (needs at least one)");
  for (int k = 0; k < g->nrets; k++)
    if (g->rets[k] < 0 || g->rets[k] >= g->nnodes)
      return graph_fail(g, d, "return %d refers to %%%d, which does not exist", k, g->rets[k]);
  return true;
}

bool ir_verify(const ir_graph *g, ir_diag *d) { return verify_graph(g, d, 0); }
