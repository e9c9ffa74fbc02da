/* DSL builders for reductions, normalisation, layout and data movement,
 * matmul, masks and losses, and kl_attention (a composition of primitives
 * that the fusion pass recognises). Conveniences the IR does not know about
 * (a -1 in reshape, negative slice bounds) are resolved here, so IR
 * attributes are always concrete. */
#include <math.h>
#include <stdlib.h>

#include "frontend/internal.h"

/* ---- reductions and normalisation ---------------------------------- */

static kl_value reduce(ir_op op, kl_value x, kl_ints axes, bool keepdims, const char *file,
                       int line) {
  kl_graph *g;
  if (!kl__operands(1, &x, op, file, line, &g)) return kl__invalid(g);
  if (!kl__ints_ok(&axes)) {
    kl__fail(g, file, line, op, 1, &x, "axes list of length %d", axes.n);
    return kl__invalid(g);
  }
  ir_attr attrs[2] = {kl__a_ints(&axes), kl__a_bool(keepdims)};
  return kl__node(g, op, 1, &x, attrs, NULL, file, line);
}

kl_value kl_sum_at(kl_value x, kl_ints axes, bool keepdims, const char *file, int line) {
  return reduce(IR_OP_SUM, x, axes, keepdims, file, line);
}

kl_value kl_mean_at(kl_value x, kl_ints axes, bool keepdims, const char *file, int line) {
  return reduce(IR_OP_MEAN, x, axes, keepdims, file, line);
}

kl_value kl_reduce_max_at(kl_value x, kl_ints axes, bool keepdims, const char *file, int line) {
  return reduce(IR_OP_REDUCE_MAX, x, axes, keepdims, file, line);
}

kl_value kl_sum_all_at(kl_value x, const char *file, int line) {
  kl_ints axes = {.n = kl_value_ok(x) ? kl_rank(x) : 0};
  for (int i = 0; i < axes.n; i++)
    axes.v[i] = i;
  return reduce(IR_OP_SUM, x, axes, false, file, line);
}

static kl_value along_axis(ir_op op, kl_value x, int axis, const char *file, int line) {
  ir_attr attrs[1] = {kl__a_int(axis)};
  return kl__op(op, 1, &x, attrs, file, line);
}

kl_value kl_softmax_at(kl_value x, int axis, const char *file, int line) {
  return along_axis(IR_OP_SOFTMAX, x, axis, file, line);
}

kl_value kl_log_softmax_at(kl_value x, int axis, const char *file, int line) {
  return along_axis(IR_OP_LOG_SOFTMAX, x, axis, file, line);
}

kl_value kl_layernorm_at(kl_value x, kl_value gamma, kl_value beta, double eps, const char *file,
                         int line) {
  kl_value xs[3] = {x, gamma, beta};
  ir_attr attrs[1] = {kl__a_float(eps)};
  return kl__op(IR_OP_LAYERNORM, 3, xs, attrs, file, line);
}

/* ---- shape and data movement --------------------------------------- */

static void ints_str(const kl_ints *s, char *buf, size_t len) {
  size_t k = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < s->n && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, i ? ", %lld" : "%lld", (long long)s->v[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
}

kl_value kl_reshape_at(kl_value x, kl_ints shape, const char *file, int line) {
  kl_graph *g;
  if (!kl__operands(1, &x, IR_OP_RESHAPE, file, line, &g)) return kl__invalid(g);
  char msg[160], s[200];
  if (!kl__shape_ok(&shape, true, msg, sizeof msg)) {
    kl__fail(g, file, line, IR_OP_RESHAPE, 1, &x, "%s", msg);
    return kl__invalid(g);
  }
  int unknown = -1;
  int64_t known = 1;
  for (int i = 0; i < shape.n; i++) {
    if (shape.v[i] != -1) {
      known *= shape.v[i];
    } else if (unknown >= 0) {
      ints_str(&shape, s, sizeof s);
      kl__fail(g, file, line, IR_OP_RESHAPE, 1, &x, "shape %s has more than one -1", s);
      return kl__invalid(g);
    } else {
      unknown = i;
    }
  }
  if (unknown >= 0) {
    int64_t numel = ir_type_numel(kl__type_of(x));
    if (known == 0 || numel % known != 0) {
      ints_str(&shape, s, sizeof s);
      kl__fail(g, file, line, IR_OP_RESHAPE, 1, &x, "cannot infer the -1 in shape %s", s);
      return kl__invalid(g);
    }
    shape.v[unknown] = numel / known;
  }
  ir_attr attrs[1] = {kl__a_ints(&shape)};
  return kl__node(g, IR_OP_RESHAPE, 1, &x, attrs, NULL, file, line);
}

kl_value kl_transpose_at(kl_value x, kl_ints perm, const char *file, int line) {
  kl_graph *g;
  if (!kl__operands(1, &x, IR_OP_TRANSPOSE, file, line, &g)) return kl__invalid(g);
  if (!kl__ints_ok(&perm)) {
    kl__fail(g, file, line, IR_OP_TRANSPOSE, 1, &x, "perm list of length %d", perm.n);
    return kl__invalid(g);
  }
  ir_attr attrs[1] = {kl__a_ints(&perm)};
  return kl__node(g, IR_OP_TRANSPOSE, 1, &x, attrs, NULL, file, line);
}

kl_value kl_broadcast_to_at(kl_value x, kl_ints shape, const char *file, int line) {
  kl_graph *g;
  if (!kl__operands(1, &x, IR_OP_BROADCAST_TO, file, line, &g)) return kl__invalid(g);
  char msg[160];
  if (!kl__shape_ok(&shape, false, msg, sizeof msg)) {
    kl__fail(g, file, line, IR_OP_BROADCAST_TO, 1, &x, "%s", msg);
    return kl__invalid(g);
  }
  ir_attr attrs[1] = {kl__a_ints(&shape)};
  return kl__node(g, IR_OP_BROADCAST_TO, 1, &x, attrs, NULL, file, line);
}

kl_value kl_slice_at(kl_value x, kl_ints starts, kl_ints ends, const char *file, int line) {
  kl_graph *g;
  if (!kl__operands(1, &x, IR_OP_SLICE, file, line, &g)) return kl__invalid(g);
  const ir_type *t = kl__type_of(x);
  if (starts.n != t->rank || ends.n != t->rank) {
    kl__fail(g, file, line, IR_OP_SLICE, 1, &x, "%d starts and %d ends for rank %d", starts.n,
             ends.n, t->rank);
    return kl__invalid(g);
  }
  /* Negative bounds count from the end, as in Python; anything still out
   * of range after that is the shape rule's error (no silent clamping). */
  for (int i = 0; i < t->rank; i++) {
    if (starts.v[i] < 0) starts.v[i] += t->dims[i];
    if (ends.v[i] < 0) ends.v[i] += t->dims[i];
  }
  ir_attr attrs[2] = {kl__a_ints(&starts), kl__a_ints(&ends)};
  return kl__node(g, IR_OP_SLICE, 1, &x, attrs, NULL, file, line);
}

kl_value kl_concat_at(int n, const kl_value *xs, int axis, const char *file, int line) {
  /* With no operands there is no graph to record an error on. */
  if (n <= 0 || !xs) return kl_none();
  kl_graph *g;
  if (!kl__operands(n, xs, IR_OP_CONCAT, file, line, &g)) return kl__invalid(g);
  ir_attr attrs[1] = {kl__a_int(axis)};
  return kl__node(g, IR_OP_CONCAT, n, xs, attrs, NULL, file, line);
}

kl_value kl_gather_at(kl_value table, kl_value idx, const char *file, int line) {
  kl_value xs[2] = {table, idx};
  return kl__op(IR_OP_GATHER, 2, xs, NULL, file, line);
}

/* ---- contractions, masks, losses ------------------------------------ */

kl_value kl_matmul_at(kl_value a, kl_value b, bool transpose_a, bool transpose_b, const char *file,
                      int line) {
  kl_value xs[2] = {a, b};
  ir_attr attrs[2] = {kl__a_bool(transpose_a), kl__a_bool(transpose_b)};
  return kl__op(IR_OP_MATMUL, 2, xs, attrs, file, line);
}

kl_value kl_sequence_mask_at(kl_value x, kl_value len, double value, const char *file, int line) {
  kl_value xs[2] = {x, len};
  ir_attr attrs[1] = {kl__a_float(value)};
  return kl__op(IR_OP_SEQUENCE_MASK, 2, xs, attrs, file, line);
}

kl_value kl_softmax_cross_entropy_at(kl_value logits, kl_value labels, int64_t ignore_index,
                                     const char *file, int line) {
  kl_value xs[2] = {logits, labels};
  ir_attr attrs[1] = {kl__a_int(ignore_index)};
  return kl__op(IR_OP_SOFTMAX_CROSS_ENTROPY, 2, xs, attrs, file, line);
}

/* ---- compositions ---------------------------------------------------- */

/* The fusion pass matches exactly this sequence: matmul(q, k, transpose_b),
 * mul by a rank-0 const 1/sqrt(d), [sequence_mask(-1e6)], softmax(-1),
 * matmul with v. Change it only together with passes/fuse_attention. */
static kl_value attention(kl_graph *g, kl_value q, kl_value k, kl_value v, kl_value len,
                          bool masked, const char *file, int line) {
  kl_value xs[2] = {q, k};
  ir_attr mm_t[2] = {kl__a_bool(false), kl__a_bool(true)};
  kl_value s = kl__node(g, IR_OP_MATMUL, 2, xs, mm_t, NULL, file, line);
  if (!kl_value_ok(s)) return s;

  const ir_type *qt = kl__type_of(q);
  int64_t d = qt->rank > 0 ? qt->dims[qt->rank - 1] : 1;
  double scale = 1.0 / sqrt((double)(d > 0 ? d : 1));
  kl_value c = kl__scalar_node(g, scale, qt->dtype, IR_OP_MUL, 1, &s, file, line);
  if (!kl_value_ok(c)) return c;
  xs[0] = s;
  xs[1] = c;
  s = kl__node(g, IR_OP_MUL, 2, xs, NULL, NULL, file, line);
  if (!kl_value_ok(s)) return s;

  if (masked) {
    xs[0] = s;
    xs[1] = len;
    ir_attr value[1] = {kl__a_float(-1e6)};
    s = kl__node(g, IR_OP_SEQUENCE_MASK, 2, xs, value, NULL, file, line);
    if (!kl_value_ok(s)) return s;
  }

  ir_attr axis[1] = {kl__a_int(-1)};
  s = kl__node(g, IR_OP_SOFTMAX, 1, &s, axis, NULL, file, line);
  if (!kl_value_ok(s)) return s;
  xs[0] = s;
  xs[1] = v;
  ir_attr mm[2] = {kl__a_bool(false), kl__a_bool(false)};
  return kl__node(g, IR_OP_MATMUL, 2, xs, mm, NULL, file, line);
}

kl_value kl_attention_at(kl_value q, kl_value k, kl_value v, kl_value valid_len, const char *file,
                         int line) {
  /* kl_none() ({NULL, -1}) means "no mask"; an invalid value of a graph is
   * an earlier error and propagates. */
  bool masked = valid_len.g != NULL || valid_len.id >= 0;
  kl_value xs[4] = {q, k, v, valid_len};
  int n = masked ? 4 : 3;
  kl_graph *g = NULL;
  for (int i = 0; i < n && !g; i++)
    g = xs[i].g;
  if (!g) return kl_none();
  const char *saved = g->ctx;
  g->ctx = "attention";
  kl_value out = kl__invalid(g);
  if (kl__operands(n, xs, IR_OP_MATMUL, file, line, &g))
    out = attention(g, q, k, v, valid_len, masked, file, line);
  g->ctx = saved;
  return out;
}
