/* Graph construction: the arena that owns node storage, appending nodes
 * (with shape inference through the op table), names, locations, returns. */
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

/* A bump allocator in chunks; the graph frees all chunks at once. */
struct ir_arena {
  struct ir_arena *next;
  size_t used, cap;
  _Alignas(16) unsigned char mem[];
};

static void *arena_alloc(ir_arena **head, size_t size) {
  size = (size + 15) & ~(size_t)15;
  ir_arena *a = *head;
  if (!a || a->used + size > a->cap) {
    size_t cap = size > 16384 ? size : 16384;
    ir_arena *n = malloc(sizeof *n + cap);
    if (!n) return NULL;
    n->next = a;
    n->used = 0;
    n->cap = cap;
    *head = n;
    a = n;
  }
  void *p = a->mem + a->used;
  a->used += size;
  memset(p, 0, size);
  return p;
}

ir_graph *ir_graph_create(const char *name) {
  ir_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->name = ir_strdup(g, name ? name : "main");
  return g;
}

void ir_graph_destroy(ir_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->body) ir_graph_destroy(g->nodes[i]->body);
  for (int i = 0; i < g->nblobs; i++)
    free(g->blobs[i]);
  free(g->blobs);
  free(g->nodes);
  ir_graph_drop_plan(g);
  for (ir_arena *a = g->arena; a;) {
    ir_arena *n = a->next;
    free(a);
    a = n;
  }
  free(g);
}

void *ir_alloc(ir_graph *g, size_t size) { return arena_alloc(&g->arena, size ? size : 1); }

const char *ir_strndup(ir_graph *g, const char *s, size_t len) {
  char *p = ir_alloc(g, len + 1);
  if (p) memcpy(p, s, len);
  return p;
}

const char *ir_strdup(ir_graph *g, const char *s) { return ir_strndup(g, s, strlen(s)); }

void *ir_alloc_data(ir_graph *g, size_t size) {
  size_t rounded = ((size ? size : 1) + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, rounded);
  if (!p) return NULL;
  memset(p, 0, rounded);
  if (g->nblobs == g->capblobs) {
    int cap = g->capblobs ? 2 * g->capblobs : 16;
    void **b = realloc(g->blobs, (size_t)cap * sizeof *b);
    if (!b) {
      free(p);
      return NULL;
    }
    g->blobs = b;
    g->capblobs = cap;
  }
  g->blobs[g->nblobs++] = p;
  return p;
}

void ir_attrs_default(ir_graph *g, ir_op op, ir_attr *attrs) {
  (void)g;
  const ir_op_info *info = ir_op_get(op);
  for (int i = 0; i < info->nattrs; i++) {
    attrs[i] = info->attrs[i].dflt;
    attrs[i].kind = info->attrs[i].kind;
  }
}

/* Deep-copies attribute values into the graph's arena. */
static void attrs_copy(ir_graph *g, int n, const ir_attr *src, ir_attr *dst) {
  for (int i = 0; i < n; i++) {
    dst[i] = src[i];
    if (src[i].kind == IR_ATTR_STR && src[i].s) dst[i].s = ir_strdup(g, src[i].s);
    if (src[i].kind == IR_ATTR_INTS && src[i].ints.n > 0) {
      dst[i].ints.v = ir_alloc(g, (size_t)src[i].ints.n * sizeof(int64_t));
      memcpy(dst[i].ints.v, src[i].ints.v, (size_t)src[i].ints.n * sizeof(int64_t));
    }
  }
}

int ir_add_node(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs,
                const ir_type *declared, ir_diag *d) {
  const ir_op_info *info = ir_op_get(op);
  if (info->arity >= 0 ? nin != info->arity : nin < 1) {
    ir_diag_set(d, "%s takes %s%d operand%s, got %d", info->name,
                info->arity < 0 ? "at least " : "", info->arity < 0 ? 1 : info->arity,
                info->arity == 1 ? "" : "s", nin);
    return -1;
  }
  ir_type types[16], *tp = types;
  if (nin > 16) tp = malloc((size_t)nin * sizeof *tp);
  for (int i = 0; i < nin; i++) {
    if (in[i] < 0 || in[i] >= g->nnodes) {
      ir_diag_set(d, "%s: operand %d refers to no value", info->name, i);
      if (tp != types) free(tp);
      return -1;
    }
    tp[i] = g->nodes[in[i]]->type;
  }
  ir_attr defaults[IR_MAX_ATTRS];
  if (!attrs) {
    ir_attrs_default(g, op, defaults);
    attrs = defaults;
  }
  for (int i = 0; i < info->nattrs; i++) {
    if (attrs[i].kind != info->attrs[i].kind) {
      ir_diag_set(d, "%s: attribute '%s' has the wrong kind", info->name, info->attrs[i].name);
      if (tp != types) free(tp);
      return -1;
    }
  }
  ir_type t;
  if (info->shape) {
    bool ok = info->shape(op, nin, tp, attrs, &t, d);
    if (tp != types) free(tp);
    if (!ok) return -1;
    if (declared && !ir_type_eq(declared, &t)) {
      char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
      ir_diag_set(d, "%s: declared type %s does not match inferred type %s", info->name,
                  ir_type_str(declared, a, sizeof a), ir_type_str(&t, b, sizeof b));
      return -1;
    }
  } else {
    if (tp != types) free(tp);
    if (!declared) {
      ir_diag_set(d, "%s needs a declared type", info->name);
      return -1;
    }
    t = *declared;
  }
  if (t.rank < 0 || t.rank > IR_MAX_RANK) {
    ir_diag_set(d, "%s: rank %d exceeds the maximum %d", info->name, t.rank, IR_MAX_RANK);
    return -1;
  }
  for (int i = 0; i < t.rank; i++) {
    if (t.dims[i] < 0) {
      ir_diag_set(d, "%s: negative dimension %lld", info->name, (long long)t.dims[i]);
      return -1;
    }
  }
  if (g->nnodes == g->cap) {
    int cap = g->cap ? 2 * g->cap : 64;
    ir_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes) {
      ir_diag_set(d, "out of memory");
      return -1;
    }
    g->nodes = nodes;
    g->cap = cap;
  }
  ir_node *n = ir_alloc(g, sizeof *n);
  n->op = op;
  n->id = g->nnodes;
  n->nin = nin;
  n->in = ir_alloc(g, (size_t)(nin ? nin : 1) * sizeof(int));
  if (nin) memcpy(n->in, in, (size_t)nin * sizeof(int));
  n->type = t;
  n->attrs = ir_alloc(g, (size_t)(info->nattrs ? info->nattrs : 1) * sizeof(ir_attr));
  attrs_copy(g, info->nattrs, attrs, n->attrs);
  g->nodes[g->nnodes++] = n;
  return n->id;
}

int ir_add_arg(ir_graph *g, const char *name, const ir_type *t, ir_diag *d) {
  int id = ir_add_node(g, IR_OP_ARG, 0, NULL, NULL, t, d);
  if (id >= 0 && name) ir_node_set_name(g, id, name);
  return id;
}

int ir_add_const(ir_graph *g, const ir_type *t, const void *data, ir_diag *d) {
  int id = ir_add_node(g, IR_OP_CONST, 0, NULL, NULL, t, d);
  if (id < 0) return -1;
  size_t bytes = (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype);
  void *p = ir_alloc_data(g, bytes);
  if (!p) {
    ir_diag_set(d, "out of memory for a constant of %zu bytes", bytes);
    g->nnodes--;
    return -1;
  }
  if (data) memcpy(p, data, bytes);
  g->nodes[id]->data = p;
  return id;
}

void ir_node_set_name(ir_graph *g, int id, const char *name) {
  g->nodes[id]->name = name ? ir_strdup(g, name) : NULL;
}

void ir_node_set_loc(ir_graph *g, int id, const char *file, int line) {
  g->nodes[id]->loc.file = file ? ir_strdup(g, file) : NULL;
  g->nodes[id]->loc.line = line;
}

void ir_node_copy_loc(ir_graph *g, int id, const ir_loc *src) {
  ir_loc *l = &g->nodes[id]->loc;
  *l = *src;
  l->file = src->file ? ir_strdup(g, src->file) : NULL;
}

void ir_set_returns(ir_graph *g, int n, const int *ids) {
  g->rets = ir_alloc(g, (size_t)(n ? n : 1) * sizeof(int));
  if (n) memcpy(g->rets, ids, (size_t)n * sizeof(int));
  g->nrets = n;
}

/* Floats compare by bits: -0.0 and 0.0 are different attributes, and a
 * NaN attribute equals itself. */
bool ir_attr_eq(const ir_attr *a, const ir_attr *b) {
  if (a->kind != b->kind) return false;
  switch (a->kind) {
  case IR_ATTR_INT: return a->i == b->i;
  case IR_ATTR_FLOAT: return memcmp(&a->f, &b->f, sizeof a->f) == 0;
  case IR_ATTR_BOOL: return a->b == b->b;
  case IR_ATTR_STR: return (!a->s && !b->s) || (a->s && b->s && strcmp(a->s, b->s) == 0);
  case IR_ATTR_DTYPE: return a->dt == b->dt;
  case IR_ATTR_INTS:
    return a->ints.n == b->ints.n &&
           (a->ints.n == 0 ||
            memcmp(a->ints.v, b->ints.v, sizeof(int64_t) * (size_t)a->ints.n) == 0);
  }
  return false;
}

uint64_t ir_str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h ^ (h >> 29);
}

const ir_attr *ir_node_attr(const ir_node *n, const char *name) {
  int i = ir_attr_index(n->op, name);
  return i < 0 ? NULL : &n->attrs[i];
}

int ir_graph_args(const ir_graph *g, int *ids) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_ARG) {
      if (ids) ids[k] = i;
      k++;
    }
  return k;
}

ir_graph *ir_graph_clone(const ir_graph *g, ir_diag *d) {
  ir_graph *c = ir_graph_create(g->name);
  if (!c) {
    ir_diag_set(d, "out of memory");
    return NULL;
  }
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    int id;
    if (n->op == IR_OP_CONST) {
      id = ir_add_const(c, &n->type, n->data, d);
    } else {
      /* Leaves take their declared type; the rest re-infer it, which must
       * agree with the original. */
      id = ir_add_node(c, n->op, n->nin, n->in, n->attrs, &n->type, d);
    }
    if (id < 0) {
      ir_graph_destroy(c);
      return NULL;
    }
    ir_node *m = c->nodes[id];
    if (n->name) m->name = ir_strdup(c, n->name);
    ir_node_copy_loc(c, id, &n->loc);
    if (n->body) {
      m->body = ir_graph_clone(n->body, d);
      if (!m->body) {
        ir_graph_destroy(c);
        return NULL;
      }
    }
  }
  ir_set_returns(c, g->nrets, g->rets);
  if (g->plan) {
    c->plan = malloc(sizeof *c->plan);
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(g->plan->nnodes ? g->plan->nnodes : 1));
    if (!c->plan || !off) {
      free(off);
      ir_diag_set(d, "out of memory");
      ir_graph_destroy(c);
      return NULL;
    }
    *c->plan = *g->plan;
    if (g->plan->nnodes) memcpy(off, g->plan->offset, sizeof(int64_t) * (size_t)g->plan->nnodes);
    c->plan->offset = off;
  }
  return c;
}

void ir_graph_drop_plan(ir_graph *g) {
  if (!g || !g->plan) return;
  free(g->plan->offset);
  free(g->plan);
  g->plan = NULL;
}

int ir_add_region(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs,
                  ir_graph *body, ir_diag *d) {
  if (ir_op_get(op)->fusion != IR_FUSE_REGION) {
    ir_diag_set(d, "%s is not a region op", ir_op_get(op)->name);
    ir_graph_destroy(body);
    return -1;
  }
  int id = ir_add_node(g, op, nin, in, attrs, NULL, d);
  if (id < 0) {
    ir_graph_destroy(body);
    return -1;
  }
  g->nodes[id]->body = body;
  return id;
}
