/* Common-subexpression elimination: one node per distinct (op, operands
 * after merging, attributes, type, const payload). What must stay distinct:
 * dropout with key -1 (each draws its own mask, keyed by its id), steps,
 * assigns, params and args (leaves other than consts and iotas are
 * identities, not values), and region nodes (their bodies are not
 * compared). The first occurrence keeps its name and location. */
#include <stdlib.h>
#include <string.h>

#include "passes/pipeline.h"
#include "passes/rewrite.h"

static bool mergeable(const ir_node *n) {
  switch (n->op) {
  case IR_OP_ARG:
  case IR_OP_PARAM:
  case IR_OP_STEP:
  case IR_OP_ASSIGN: return false;
  case IR_OP_DROPOUT: return n->attrs[1].i >= 0;
  default: return n->body == NULL && ir_op_get(n->op)->fusion != IR_FUSE_REGION;
  }
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t x = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    x = (x ^ b[i]) * 1099511628211ull;
  return mix(h, x);
}

static uint64_t attr_hash(uint64_t h, const ir_attr *a) {
  h = mix(h, (uint64_t)a->kind);
  switch (a->kind) {
  case IR_ATTR_INT: return mix(h, (uint64_t)a->i);
  case IR_ATTR_FLOAT: return mix_bytes(h, &a->f, sizeof a->f);
  case IR_ATTR_BOOL: return mix(h, a->b);
  case IR_ATTR_STR: return a->s ? mix_bytes(h, a->s, strlen(a->s)) : h;
  case IR_ATTR_DTYPE: return mix(h, (uint64_t)a->dt);
  case IR_ATTR_INTS:
    return mix_bytes(mix(h, (uint64_t)a->ints.n), a->ints.v, sizeof(int64_t) * (size_t)a->ints.n);
  }
  return h;
}

static size_t payload_bytes(const ir_node *n) {
  return (size_t)ir_type_numel(&n->type) * ir_dtype_size(n->type.dtype);
}

/* Hash of src node n with its operands as their dst ids. */
static uint64_t node_hash(const ir_node *n, const int *map) {
  uint64_t h = mix(0, (uint64_t)n->op);
  h = mix(h, (uint64_t)n->nin);
  for (int k = 0; k < n->nin; k++)
    h = mix(h, (uint64_t)map[n->in[k]]);
  h = mix_bytes(h, &n->type.dtype, sizeof n->type.dtype);
  h = mix_bytes(mix(h, (uint64_t)n->type.rank), n->type.dims,
                sizeof(int64_t) * (size_t)n->type.rank);
  for (int a = 0; a < ir_op_get(n->op)->nattrs; a++)
    h = attr_hash(h, &n->attrs[a]);
  if (n->op == IR_OP_CONST && n->data) h = mix_bytes(h, n->data, payload_bytes(n));
  return h;
}

/* Whether src nodes a and b compute the same value once mapped. */
static bool node_eq(const ir_node *a, const ir_node *b, const int *map) {
  if (a->op != b->op || a->nin != b->nin || !ir_type_eq(&a->type, &b->type)) return false;
  for (int k = 0; k < a->nin; k++)
    if (map[a->in[k]] != map[b->in[k]]) return false;
  for (int i = 0; i < ir_op_get(a->op)->nattrs; i++)
    if (!ir_attr_eq(&a->attrs[i], &b->attrs[i])) return false;
  if (a->op == IR_OP_CONST)
    return a->data && b->data && memcmp(a->data, b->data, payload_bytes(a)) == 0;
  return true;
}

bool pass_cse(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  (void)o;
  *changed = false;
  const ir_graph *src = *g;
  size_t cap = 16;
  while (cap < (size_t)src->nnodes * 2)
    cap *= 2;
  int *table = malloc(sizeof(int) * cap); /* src ids of representatives, -1 = empty */
  pass_rw rw;
  if (!table || !pass_rw_init(&rw, src, d)) {
    if (!table) ir_diag_set(d, "cse: out of memory");
    free(table);
    return false;
  }
  for (size_t i = 0; i < cap; i++)
    table[i] = -1;
  int merged = 0;
  for (int i = 0; i < src->nnodes && !rw.failed; i++) {
    const ir_node *n = src->nodes[i];
    if (!mergeable(n)) {
      pass_rw_copy(&rw, i);
      continue;
    }
    uint64_t h = node_hash(n, rw.map);
    size_t slot = (size_t)h & (cap - 1);
    while (table[slot] >= 0 && !node_eq(src->nodes[table[slot]], n, rw.map))
      slot = (slot + 1) & (cap - 1);
    if (table[slot] >= 0) {
      pass_rw_map(&rw, i, rw.map[table[slot]]);
      merged++;
    } else {
      table[slot] = i;
      pass_rw_copy(&rw, i);
    }
  }
  free(table);
  if (merged == 0 && !rw.failed) {
    pass_rw_abort(&rw);
    return true;
  }
  ir_graph *out = pass_rw_finish(&rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  *changed = true;
  return true;
}
