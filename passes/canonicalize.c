/* The canonicalize pass: one spelling per idea, so fusion matches what real
 * models write. x / c becomes x * (1/c) for float consts c; transposes that
 * only swap the last two axes move into the matmul that reads them
 * (transpose_a/b); every mask spelling becomes one of three forms
 * (canon_mask.c): lengths `sequence_mask(s, len)`, causal
 * `select(cmp_gt(iota axis 1, iota axis 0), const V, s)` over [Tq, Tk],
 * additive `add(s, bias)`. Runs to a fixpoint; nodes left dead by a rewrite
 * are dropped at the end of each round. */
#include <stdlib.h>
#include <string.h>

#include "passes/canon_eval.h"
#include "passes/canon_mask.h"
#include "passes/pipeline.h"
#include "runtime/ref.h"

const rt_tensor *canon_value(canon *c, int id) {
  if (!c->is_const[id]) return NULL;
  if (c->vals[id]) return c->vals[id];
  ir_diag ed = {0};
  return pass_const_eval_one(c->src, c->is_const, id, c->vals, &ed) ? c->vals[id] : NULL;
}

static void set_loc(canon *c, int id, int at) {
  const ir_node *n = c->src->nodes[at];
  if (id >= 0) ir_node_copy_loc(c->rw.dst, id, &n->loc);
}

int canon_scalar(canon *c, double v, ir_dtype dt, int at) {
  if (c->rw.failed) return -1;
  ir_type t = ir_type_make(dt, 0, NULL);
  rt_tensor *x = rt_tensor_create(&t);
  if (!x) {
    ir_diag_set(c->d, "canonicalize: out of memory");
    c->rw.failed = true;
    return -1;
  }
  rt_set_f(x, 0, v);
  int id = ir_add_const(c->rw.dst, &t, x->data, c->d);
  rt_tensor_destroy(x);
  if (id < 0) c->rw.failed = true;
  set_loc(c, id, at);
  return id;
}

/* div(x, c) -> mul(x, 1/c) for a float const c (every element inverted). */
static int div_by_const(canon *c, int id) {
  const ir_node *n = c->src->nodes[id];
  if (n->op != IR_OP_DIV || !ir_dtype_is_float(n->type.dtype)) return -1;
  const ir_node *k = c->src->nodes[n->in[1]];
  if (k->op != IR_OP_CONST || !k->data || !ir_dtype_is_float(k->type.dtype)) return -1;
  rt_tensor *r = rt_tensor_create(&k->type);
  if (!r) {
    ir_diag_set(c->d, "canonicalize: out of memory");
    c->rw.failed = true;
    return -1;
  }
  memcpy(r->data, k->data, r->bytes);
  for (int64_t i = 0, e = rt_numel(r); i < e; i++)
    rt_set_f(r, i, 1.0 / rt_get_f(r, i));
  int x = pass_rw_get(&c->rw, n->in[0]);
  int rc = x < 0 ? -1 : ir_add_const(c->rw.dst, &k->type, r->data, c->d);
  rt_tensor_destroy(r);
  if (x >= 0 && rc < 0) c->rw.failed = true;
  set_loc(c, rc, n->in[1]);
  int in[2] = {x, rc};
  return pass_rw_add(&c->rw, IR_OP_MUL, 2, in, NULL, &n->type, id);
}

/* Whether src node id is a transpose that swaps only the last two axes. */
static bool swaps_last_two(const ir_graph *g, int id) {
  const ir_node *t = g->nodes[id];
  if (t->op != IR_OP_TRANSPOSE || t->type.rank < 2) return false;
  const ir_ints *p = &t->attrs[0].ints;
  int r = t->type.rank;
  if (p->n != r) return false;
  for (int i = 0; i < r - 2; i++)
    if (p->v[i] != i) return false;
  return p->v[r - 2] == r - 1 && p->v[r - 1] == r - 2;
}

/* matmul(transpose(a), transpose(b)) -> matmul(a, b) with the flags
 * flipped, for transposes of the last two axes. */
static int matmul_transposes(canon *c, int id) {
  const ir_node *n = c->src->nodes[id];
  if (n->op != IR_OP_MATMUL) return -1;
  bool ta = swaps_last_two(c->src, n->in[0]), tb = swaps_last_two(c->src, n->in[1]);
  if (!ta && !tb) return -1;
  ir_attr attrs[IR_MAX_ATTRS];
  memcpy(attrs, n->attrs, sizeof(ir_attr) * (size_t)ir_op_get(n->op)->nattrs);
  int in[2];
  for (int k = 0; k < 2; k++) {
    bool t = k ? tb : ta;
    int s = t ? c->src->nodes[n->in[k]]->in[0] : n->in[k];
    if (t) attrs[k].b = !attrs[k].b;
    in[k] = pass_rw_get(&c->rw, s);
  }
  return pass_rw_add(&c->rw, IR_OP_MATMUL, 2, in, attrs, &n->type, id);
}

typedef int (*canon_rule)(canon *c, int id);
static const canon_rule rules[] = {div_by_const, matmul_transposes, canon_fill_mask,
                                   canon_causal_lengths, canon_causal_bias};

/* A dropout's mask stream is named by its key, -1 meaning "my id"; every
 * rewriting pass renumbers nodes, so the first thing canonicalize does is
 * write the id down. Masks then stay those of the graph as written. */
static bool pin_dropout_keys(ir_graph *g) {
  bool pinned = false;
  int k = ir_attr_index(IR_OP_DROPOUT, "key");
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (n->op == IR_OP_DROPOUT && n->attrs[k].i < 0) {
      n->attrs[k].i = n->id;
      pinned = true;
    }
  }
  return pinned;
}

bool pass_canonicalize(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  *changed = pin_dropout_keys(*g);
  canon c = {.src = *g, .d = d};
  c.limit = o && o->fold_limit > 0 ? o->fold_limit : (int64_t)1 << 22;
  int nn = c.src->nnodes;
  c.is_const = pass_const_mask(c.src, c.limit);
  c.vals = calloc((size_t)(nn ? nn : 1), sizeof *c.vals);
  if (!c.is_const || !c.vals) {
    ir_diag_set(d, "canonicalize: out of memory");
    free(c.is_const);
    free(c.vals);
    return false;
  }
  if (!pass_rw_init(&c.rw, c.src, d)) {
    free(c.is_const);
    free(c.vals);
    return false;
  }
  int fired = 0;
  for (int i = 0; i < nn && !c.rw.failed; i++) {
    int r = -1;
    for (size_t k = 0; k < sizeof rules / sizeof rules[0] && r < 0 && !c.rw.failed; k++)
      r = rules[k](&c, i);
    if (r >= 0) {
      pass_rw_map(&c.rw, i, r);
      fired++;
    } else if (!c.rw.failed) {
      pass_rw_copy(&c.rw, i);
    }
  }
  pass_const_free(c.vals, nn);
  free(c.is_const);
  if (fired == 0 && !c.rw.failed) {
    pass_rw_abort(&c.rw);
    return true; /* *changed says whether keys were pinned */
  }
  ir_graph *out = pass_rw_finish(&c.rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  *changed = true;
  bool dropped;
  return pass_dce(g, o, &dropped, d);
}
