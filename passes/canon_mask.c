/* canonicalize's mask rules: the spellings of a lengths mask, a causal mask
 * and a causal bias tensor become the canonical forms fuse-attention
 * matches. Index tensors are recognized by their values, not their
 * spelling: an iota, a reshape or broadcast of one, all evaluate to the
 * same ramp, so the rules evaluate the constant operand (within the fold
 * limit) and compare it with the ramp they need. */
#include <math.h>
#include <string.h>

#include "passes/canon_mask.h"
#include "runtime/ref.h"

/* Flat index into a value of type `from` (broadcast to `to` with strides
 * st) of flat index f of `to`. */
static int64_t bcast_index(const ir_type *to, const int64_t *st, int64_t f) {
  int64_t off = 0;
  for (int a = to->rank - 1; a >= 0; a--) {
    int64_t dim = to->dims[a] ? to->dims[a] : 1;
    off += (f % dim) * st[a];
    f /= dim;
  }
  return off;
}

static bool broadcasts_into(const ir_type *x, const ir_type *to) {
  ir_type b;
  return x->rank <= to->rank && ir_broadcast(to, x, &b) && ir_shape_eq(&b, to);
}

static double scalar_of(const ir_node *k) {
  rt_tensor view = {.type = k->type, .data = k->data, .bytes = ir_dtype_size(k->type.dtype)};
  return rt_get_f(&view, 0);
}

/* select(cmp_gt(iota [Tq,Tk] axis 1, iota axis 0), const V, s) in dst. */
static int build_causal(canon *c, int s, double v, const ir_type *st, int like) {
  const ir_node *n = c->src->nodes[like];
  int64_t dims[2] = {st->dims[st->rank - 2], st->dims[st->rank - 1]};
  int io[2];
  for (int axis = 0; axis < 2; axis++) {
    ir_attr a[3] = {{.kind = IR_ATTR_INTS, .ints = {2, dims}},
                    {.kind = IR_ATTR_INT, .i = axis},
                    {.kind = IR_ATTR_DTYPE, .dt = IR_I32}};
    io[axis] = pass_rw_add(&c->rw, IR_OP_IOTA, 0, NULL, a, NULL, -1);
    if (io[axis] >= 0 && n->loc.file)
      ir_node_set_loc(c->rw.dst, io[axis], n->loc.file, n->loc.line);
  }
  int cin[2] = {io[1], io[0]};
  int cmp = pass_rw_add(&c->rw, IR_OP_CMP_GT, 2, cin, NULL, NULL, -1);
  if (cmp >= 0 && n->loc.file) ir_node_set_loc(c->rw.dst, cmp, n->loc.file, n->loc.line);
  int sin[3] = {cmp, canon_scalar(c, v, st->dtype, like), s};
  return pass_rw_add(&c->rw, IR_OP_SELECT, 3, sin, NULL, st, like);
}

/* Whether src node k holds, broadcast over s's shape, the index along s's
 * last axis. */
static bool is_key_ramp(canon *c, int k, const ir_type *st) {
  const ir_type *kt = &c->src->nodes[k]->type;
  int64_t tk = st->dims[st->rank - 1];
  if (!ir_dtype_is_int(kt->dtype) || kt->rank < 1 || kt->dims[kt->rank - 1] != tk ||
      !broadcasts_into(kt, st))
    return false;
  const rt_tensor *v = canon_value(c, k);
  if (!v) return false;
  for (int64_t f = 0, e = rt_numel(v); f < e; f++)
    if (rt_get_i(v, f) != f % tk) return false;
  return true;
}

/* Lengths len' broadcast over s: the data-movement chain from the integer
 * lengths L is run on the ramp 0..N-1 in place of L, which shows which
 * element of L each row of s reads; a prefix p of s's dims whose row-major
 * index it equals makes len' == reshape(L, s.dims[:p]). Returns p, or -1. */
static int lengths_prefix(canon *c, int lp, const ir_type *st, int *root) {
  const ir_graph *g = c->src;
  int chain[16], nch = 0, r = lp;
  for (;;) {
    const ir_node *x = g->nodes[r];
    bool move = x->op == IR_OP_RESHAPE || x->op == IR_OP_BROADCAST_TO || x->op == IR_OP_TRANSPOSE ||
                x->op == IR_OP_CAST;
    if (!move || nch == 16 || !ir_dtype_is_int(g->nodes[x->in[0]]->type.dtype)) break;
    chain[nch++] = r;
    r = x->in[0];
  }
  const ir_type *lt = &g->nodes[r]->type, *lpt = &g->nodes[lp]->type;
  ir_type rows = *st;
  rows.dims[rows.rank - 1] = 1;
  if (!ir_dtype_is_int(lt->dtype) || !broadcasts_into(lpt, &rows) ||
      ir_type_numel(&rows) > c->limit || ir_type_numel(lpt) > c->limit)
    return -1;
  rt_tensor *cur = rt_tensor_create(lt);
  if (!cur) return -1;
  int64_t nl = rt_numel(cur);
  for (int64_t i = 0; i < nl; i++)
    rt_set_i(cur, i, i);
  for (int k = nch - 1; k >= 0 && cur; k--) {
    const ir_node *x = g->nodes[chain[k]];
    rt_tensor *next = rt_tensor_create(&x->type);
    ir_diag ed;
    const rt_tensor *in[1] = {cur};
    if (next && !rt_ref_eval_node(x, in, next, NULL, &ed)) {
      rt_tensor_destroy(next);
      next = NULL;
    }
    rt_tensor_destroy(cur);
    cur = next;
  }
  if (!cur) return -1;
  int64_t strides[IR_MAX_RANK];
  ir_broadcast_strides(lpt, &rows, strides);
  int found = -1;
  int64_t prefix = 1;
  for (int p = 0; p < st->rank && found < 0; p++) {
    if (p > 0) prefix *= st->dims[p - 1];
    if (prefix != nl) continue;
    int64_t rest = ir_type_numel(&rows) / (prefix ? prefix : 1);
    bool ok = rest > 0;
    for (int64_t f = 0, e = ir_type_numel(&rows); f < e && ok; f++)
      ok = rt_get_i(cur, bcast_index(&rows, strides, f)) == f / rest;
    if (ok) found = p;
  }
  rt_tensor_destroy(cur);
  *root = r;
  return found;
}

int canon_fill_mask(canon *c, int id) {
  const ir_graph *g = c->src;
  const ir_node *n = g->nodes[id];
  if (n->op != IR_OP_SELECT) return -1;
  const ir_node *cmp = g->nodes[n->in[0]];
  int k, lp, s, v;
  switch (cmp->op) {
  case IR_OP_CMP_LT: /* k < len: keep */
    k = cmp->in[0], lp = cmp->in[1], s = n->in[1], v = n->in[2];
    break;
  case IR_OP_CMP_GE: /* k >= len: fill */
    k = cmp->in[0], lp = cmp->in[1], v = n->in[1], s = n->in[2];
    break;
  case IR_OP_CMP_GT: /* len > k: keep */
    lp = cmp->in[0], k = cmp->in[1], s = n->in[1], v = n->in[2];
    break;
  case IR_OP_CMP_LE: /* len <= k: fill */
    lp = cmp->in[0], k = cmp->in[1], v = n->in[1], s = n->in[2];
    break;
  default: return -1;
  }
  const ir_type *st = &g->nodes[s]->type;
  const ir_node *vn = g->nodes[v];
  if (!ir_type_eq(st, &n->type) || !ir_dtype_is_float(st->dtype) || st->rank < 1 ||
      vn->op != IR_OP_CONST || !vn->data || ir_type_numel(&vn->type) != 1 ||
      vn->type.dtype != st->dtype || !is_key_ramp(c, k, st))
    return -1;
  int root, p = lengths_prefix(c, lp, st, &root);
  if (p < 0) return -1;
  int len = pass_rw_get(&c->rw, root);
  const ir_type *rt = &g->nodes[root]->type;
  bool same = rt->rank == p;
  for (int i = 0; i < p && same; i++)
    same = rt->dims[i] == st->dims[i];
  if (!same) {
    ir_attr sh = {.kind = IR_ATTR_INTS, .ints = {p, (int64_t *)st->dims}};
    len = pass_rw_add(&c->rw, IR_OP_RESHAPE, 1, &len, &sh, NULL, -1);
  }
  ir_attr val = {.kind = IR_ATTR_FLOAT, .f = scalar_of(vn)};
  int in[2] = {pass_rw_get(&c->rw, s), len};
  return pass_rw_add(&c->rw, IR_OP_SEQUENCE_MASK, 2, in, &val, st, id);
}

int canon_causal_lengths(canon *c, int id) {
  const ir_graph *g = c->src;
  const ir_node *n = g->nodes[id];
  if (n->op != IR_OP_SEQUENCE_MASK) return -1;
  const ir_type *st = &n->type, *lt = &g->nodes[n->in[1]]->type;
  if (st->rank < 2 || lt->rank != st->rank - 1) return -1;
  for (int i = 0; i < lt->rank; i++)
    if (lt->dims[i] != st->dims[i]) return -1;
  const rt_tensor *lv = canon_value(c, n->in[1]);
  if (!lv) return -1;
  int64_t tq = st->dims[st->rank - 2];
  for (int64_t f = 0, e = rt_numel(lv); f < e; f++)
    if (rt_get_i(lv, f) != f % tq + 1) return -1;
  return build_causal(c, pass_rw_get(&c->rw, n->in[0]), n->attrs[0].f, st, id);
}

/* The large negative value of a causal bias: zero on and below the
 * diagonal of every [Tq, Tk] slice, one value V <= -1e4 above it. */
static bool causal_bias_value(const rt_tensor *m, int64_t tq, int64_t tk, double *v) {
  bool have = false;
  for (int64_t f = 0, e = rt_numel(m); f < e; f++) {
    int64_t i = (f / tk) % tq, j = f % tk;
    double x = rt_get_f(m, f);
    if (j <= i) {
      if (x != 0) return false;
    } else if (!have) {
      if (!(x <= -1e4)) return false;
      *v = x;
      have = true;
    } else if (x != *v) {
      return false;
    }
  }
  return have;
}

int canon_causal_bias(canon *c, int id) {
  const ir_graph *g = c->src;
  const ir_node *n = g->nodes[id];
  if (n->op != IR_OP_ADD || !ir_dtype_is_float(n->type.dtype) || n->type.rank < 2) return -1;
  const ir_type *st = &n->type;
  int64_t tq = st->dims[st->rank - 2], tk = st->dims[st->rank - 1];
  if (tk < 2) return -1;
  for (int side = 0; side < 2; side++) {
    int m = n->in[side], s = n->in[1 - side];
    const ir_type *mt = &g->nodes[m]->type;
    if (c->is_const[s] || !c->is_const[m] || !ir_type_eq(&g->nodes[s]->type, st) || mt->rank < 2 ||
        mt->dims[mt->rank - 2] != tq || mt->dims[mt->rank - 1] != tk)
      continue;
    const rt_tensor *mv = canon_value(c, m);
    double v;
    if (mv && causal_bias_value(mv, tq, tk, &v))
      return build_causal(c, pass_rw_get(&c->rw, s), v, st, id);
  }
  return -1;
}
