/* The memory guard (mem_guard.h): adds up a run's buffers from the graph's
 * types, the way program.c, program_jit.c and the reference interpreter
 * will allocate them, and names the largest when the total is over the
 * limit. Sizes saturate at INT64_MAX so absurd shapes cannot wrap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/mem_guard.h"

static int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

static int64_t node_bytes(const ir_node *n) {
  int64_t b = (int64_t)ir_dtype_size(n->type.dtype);
  for (int k = 0; k < n->type.rank; k++) {
    int64_t d = n->type.dims[k];
    if (d == 0) return 0;
    b = b > INT64_MAX / d ? INT64_MAX : b * d;
  }
  return b;
}

int64_t cg_mem_limit(int64_t max_memory) {
  if (max_memory > 0) return max_memory;
  if (max_memory < 0) return -1;
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || size <= 0) return -1;
  return (int64_t)pages > INT64_MAX / size ? INT64_MAX : (int64_t)pages * size;
}

/* The three largest buffers seen, largest first. */
typedef struct top3 {
  const ir_node *node[3];
  int64_t bytes[3];
  int n;
} top3;

static void top_add(top3 *t, const ir_node *node, int64_t bytes) {
  int k = t->n < 3 ? t->n++ : 3;
  if (k == 3 && bytes <= t->bytes[2]) return;
  if (k == 3) k = 2;
  while (k > 0 && t->bytes[k - 1] < bytes) {
    t->node[k] = t->node[k - 1];
    t->bytes[k] = t->bytes[k - 1];
    k--;
  }
  t->node[k] = node;
  t->bytes[k] = bytes;
}

typedef struct named {
  const char *name;
  int id;
} named;

static int by_name(const void *a, const void *b) {
  const named *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->id > y->id) - (x->id < y->id);
}

typedef struct need {
  int64_t args, params, inter, outs;
  top3 top;
} need;

/* Parameters share storage by name: count each name once (sorted, so a
 * graph with many parameters stays O(n log n)). */
static void count_params(const ir_graph *g, need *n) {
  int np = 0;
  named *ps = malloc(sizeof *ps * (size_t)(g->nnodes ? g->nnodes : 1));
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *m = g->nodes[i];
    if (m->op != IR_OP_PARAM) continue;
    if (ps) {
      ps[np++] = (named){m->attrs[0].s, i};
    } else { /* no memory to deduplicate: every node, an upper bound */
      n->params = sat_add(n->params, node_bytes(m));
    }
  }
  if (!ps) return;
  qsort(ps, (size_t)np, sizeof *ps, by_name);
  for (int k = 0; k < np; k++) {
    if (k > 0 && !strcmp(ps[k].name, ps[k - 1].name)) continue;
    int64_t b = node_bytes(ir_node_at(g, ps[k].id));
    n->params = sat_add(n->params, b);
    top_add(&n->top, ir_node_at(g, ps[k].id), b);
  }
  free(ps);
}

static bool is_leaf_storage(ir_op op) { return op == IR_OP_ARG || op == IR_OP_PARAM; }

/* The reference interpreter makes every other value, frees it after its
 * last use, and copies the outputs at the end while they are still alive;
 * it runs a region's body the same way (bodies nest a bounded depth, the
 * verifier's limit). */
static int64_t ref_peak(const ir_graph *g) {
  int *last = malloc(sizeof(int) * (size_t)(g->nnodes ? g->nnodes : 1));
  int64_t live = 0, peak = 0;
  if (!last) { /* no memory for liveness: every value at once, an upper bound */
    for (int i = 0; i < g->nnodes; i++)
      if (!is_leaf_storage(g->nodes[i]->op)) peak = sat_add(peak, node_bytes(g->nodes[i]));
    return peak;
  }
  for (int i = 0; i < g->nnodes; i++) {
    last[i] = g->nodes[i]->op == IR_OP_ASSIGN ? g->nnodes : i;
    for (int k = 0; k < g->nodes[i]->nin; k++)
      last[g->nodes[i]->in[k]] = i;
  }
  for (int r = 0; r < g->nrets; r++)
    last[g->rets[r]] = g->nnodes;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (is_leaf_storage(n->op)) continue;
    live = sat_add(live, node_bytes(n));
    /* a region runs its body on the interpreter: the body's values too */
    int64_t during = n->body ? sat_add(live, ref_peak(n->body)) : live;
    if (during > peak) peak = during;
    for (int k = 0; k < n->nin; k++)
      if (last[n->in[k]] == i && !is_leaf_storage(g->nodes[n->in[k]]->op))
        live -= node_bytes(g->nodes[n->in[k]]), last[n->in[k]] = -1;
    if (last[i] == i) live -= node_bytes(n);
  }
  free(last);
  int64_t outs = 0;
  for (int r = 0; r < g->nrets; r++)
    outs = sat_add(outs, node_bytes(g->nodes[g->rets[r]]));
  return sat_add(live, outs) > peak ? sat_add(live, outs) : peak;
}

/* The interpreter allocates a body's values as well (not its arguments:
 * they are the region's operands). */
static void top_body(top3 *t, const ir_graph *body) {
  for (int i = 0; i < body->nnodes; i++) {
    const ir_node *m = body->nodes[i];
    if (m->op == IR_OP_ARG) continue;
    top_add(t, m, node_bytes(m));
    if (m->body) top_body(t, m->body);
  }
}

static need count(const ir_graph *g, bool ref) {
  need n = {0};
  count_params(g, &n);
  const ir_mem_plan *plan = !ref && g->plan && g->plan->nnodes == g->nnodes ? g->plan : NULL;
  if (plan) n.inter = plan->arena_bytes;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *m = g->nodes[i];
    int64_t b = node_bytes(m);
    if (m->op == IR_OP_PARAM) continue; /* counted by name */
    if (m->op == IR_OP_ARG) {
      n.args = sat_add(n.args, b);
    } else if (m->op == IR_OP_CONST || m->op == IR_OP_ASSIGN) {
      /* consts live in the graph already; assigns write their parameter */
      if (!ref) continue;
    } else if (!ref && !(plan && plan->offset[i] >= 0)) {
      n.inter = sat_add(n.inter, b); /* a buffer of its own */
    }
    top_add(&n.top, m, b);
    if (ref && m->body) top_body(&n.top, m->body);
  }
  if (ref) n.inter = ref_peak(g);
  for (int r = 0; r < g->nrets; r++)
    n.outs = sat_add(n.outs, node_bytes(g->nodes[g->rets[r]]));
  return n;
}

int64_t cg_mem_need(const ir_graph *g, bool ref) {
  need n = count(g, ref);
  return sat_add(sat_add(n.args, n.params), sat_add(n.inter, n.outs));
}

/* "1.5 GiB", with " (1610612736 bytes)" when exact. */
static void human(int64_t b, bool exact, char *buf, size_t len) {
  static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024.0 && u < 6)
    v /= 1024.0, u++;
  if (u == 0)
    snprintf(buf, len, "%lld bytes", (long long)b);
  else if (exact)
    snprintf(buf, len, "%.1f %s (%lld bytes)", v, unit[u], (long long)b);
  else
    snprintf(buf, len, "%.1f %s", v, unit[u]);
}

bool cg_mem_check(const ir_graph *g, bool ref, int64_t max_memory, ir_diag *d) {
  int64_t limit = cg_mem_limit(max_memory);
  if (limit < 0) return true;
  need n = count(g, ref);
  int64_t total = sat_add(sat_add(n.args, n.params), sat_add(n.inter, n.outs));
  if (total <= limit) return true;
  char t[64], l[64], a[64], p[64], in[64], o[64], list[560] = "";
  human(total, true, t, sizeof t);
  human(limit, true, l, sizeof l);
  human(n.args, false, a, sizeof a);
  human(n.params, false, p, sizeof p);
  human(n.inter, false, in, sizeof in);
  human(n.outs, false, o, sizeof o);
  size_t k = 0;
  for (int j = 0; j < n.top.n && k < sizeof list; j++) {
    const ir_node *m = n.top.node[j];
    char ty[IR_TYPE_STRLEN], where[160] = "", b[64];
    human(n.top.bytes[j], true, b, sizeof b);
    if (m->loc.file)
      snprintf(where, sizeof where, " at %.100s:%d", m->loc.file, m->loc.line);
    else if (m->loc.text_line)
      snprintf(where, sizeof where, " at line %d:%d", m->loc.text_line, m->loc.text_col);
    char ref_name[80];
    if (m->name)
      snprintf(ref_name, sizeof ref_name, "%%%.60s", m->name);
    else
      snprintf(ref_name, sizeof ref_name, "%%%d", m->id);
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s (%s) %s, %s%s", j ? "; " : "", ref_name,
                          ir_op_get(m->op)->name, ir_type_str(&m->type, ty, sizeof ty), b, where);
  }
  ir_diag_set(d,
              "needs %s to run, over %s %s: arguments %s, parameters %s, intermediates %s, "
              "outputs %s; largest buffers: %s",
              t, max_memory ? "the memory limit of" : "the machine's physical memory,", l, a, p, in,
              o, list);
  return false;
}
