/* pass_build_additive_attention: appends an additive_attention region whose
 * body is the canonical unfused form (reshape, add, tanh, matmul with w_v,
 * mask, softmax, dropout, matmul with v). Shared by the fusion pass and the
 * tests so both describe the op the same way. */
#include <string.h>

#include "passes/fused_build_additive.h"

static ir_attr ints_attr(int n, int64_t *v) {
  return (ir_attr){.kind = IR_ATTR_INTS, .ints = {n, v}};
}

/* reshape of body node x to dims (rank n). */
static int reshape(ir_graph *b, int x, int n, int64_t *dims, ir_diag *d) {
  if (x < 0) return -1;
  ir_attr a = ints_attr(n, dims);
  return ir_add_node(b, IR_OP_RESHAPE, 1, &x, &a, NULL, d);
}

static int op2(ir_graph *b, ir_op op, int x, int y, const ir_attr *attrs, ir_diag *d) {
  if (x < 0 || y < 0) return -1;
  int in[2] = {x, y};
  return ir_add_node(b, op, 2, in, attrs, NULL, d);
}

static int op1(ir_graph *b, ir_op op, int x, const ir_attr *attrs, ir_diag *d) {
  if (x < 0) return -1;
  return ir_add_node(b, op, 1, &x, attrs, NULL, d);
}

static void set_loc(ir_graph *g, int id, const ir_loc *loc) {
  if (id >= 0 && loc && loc->file) ir_node_set_loc(g, id, loc->file, loc->line);
}

/* The body over arguments (qp, kp, wv, v [, len]); -1 with d set. */
static int build_body(ir_graph *b, const ir_type *t, int nin, const ir_attr *at, const ir_loc *loc,
                      ir_diag *d) {
  static const char *names[] = {"qp", "kp", "wv", "v", "len"};
  int arg[5];
  for (int i = 0; i < nin; i++)
    if ((arg[i] = ir_add_arg(b, names[i], &t[i], d)) < 0) return -1;
  int r = t[0].rank;
  int64_t tq = t[0].dims[r - 2], h = t[0].dims[r - 1], tk = t[1].dims[r - 2];
  int64_t d4[IR_MAX_RANK];
  memcpy(d4, t[0].dims, sizeof d4);
  d4[r - 2] = tq, d4[r - 1] = 1, d4[r] = h;
  int q4 = reshape(b, arg[0], r + 1, d4, d);
  d4[r - 2] = 1, d4[r - 1] = tk;
  int k4 = reshape(b, arg[1], r + 1, d4, d);
  int f = op1(b, IR_OP_TANH, op2(b, IR_OP_ADD, q4, k4, NULL, d), NULL, d);
  int64_t wd[2] = {h, 1};
  int w1 = reshape(b, arg[2], 2, wd, d);
  int s4 = op2(b, IR_OP_MATMUL, f, w1, NULL, d);
  d4[r - 2] = tq, d4[r - 1] = tk;
  int s = reshape(b, s4, r, d4, d);
  if (nin == 5) {
    ir_attr mv = {.kind = IR_ATTR_FLOAT, .f = at[0].f};
    s = op2(b, IR_OP_SEQUENCE_MASK, s, arg[4], &mv, d);
  }
  ir_attr ax = {.kind = IR_ATTR_INT, .i = -1};
  int p = op1(b, IR_OP_SOFTMAX, s, &ax, d);
  if (at[1].f > 0) {
    ir_attr da[2] = {{.kind = IR_ATTR_FLOAT, .f = at[1].f}, {.kind = IR_ATTR_INT, .i = at[2].i}};
    p = op1(b, IR_OP_DROPOUT, p, da, d);
  }
  int o = op2(b, IR_OP_MATMUL, p, arg[3], NULL, d);
  if (o < 0) return -1;
  for (int i = nin; i < b->nnodes; i++)
    set_loc(b, i, loc);
  ir_set_returns(b, 1, &o);
  return o;
}

int pass_build_additive_attention(ir_graph *g, int qp, int kp, int wv, int v, int len,
                                  const ir_attr *attrs, const ir_loc *loc, ir_diag *d) {
  int in[5] = {qp, kp, wv, v, len}, nin = len >= 0 ? 5 : 4;
  for (int i = 0; i < nin; i++)
    if (in[i] < 0 || in[i] >= g->nnodes) {
      ir_diag_set(d, "additive_attention: operand %d (node %d) does not exist", i, in[i]);
      return -1;
    }
  ir_type t[5];
  for (int i = 0; i < nin; i++)
    t[i] = g->nodes[in[i]]->type;
  ir_attr at[3];
  ir_attrs_default(g, IR_OP_ADDITIVE_ATTENTION, at);
  if (attrs) memcpy(at, attrs, sizeof at);
  /* Check the operands by the op's own rule before building a body. */
  ir_type out;
  if (!ir_op_get(IR_OP_ADDITIVE_ATTENTION)->shape(IR_OP_ADDITIVE_ATTENTION, nin, t, at, &out, d))
    return -1;
  if (t[0].rank + 1 > IR_MAX_RANK) {
    ir_diag_set(d, "additive_attention: queries of rank %d leave no room for the features",
                t[0].rank);
    return -1;
  }
  if (at[1].f > 0 && at[2].i < 0) at[2].i = g->nnodes; /* the region's own id */
  ir_graph *body = ir_graph_create("additive_attention");
  if (!body) {
    ir_diag_set(d, "additive_attention: out of memory");
    return -1;
  }
  if (build_body(body, t, nin, at, loc, d) < 0) {
    ir_graph_destroy(body);
    return -1;
  }
  int id = ir_add_region(g, IR_OP_ADDITIVE_ATTENTION, nin, in, at, body, d);
  set_loc(g, id, loc);
  return id;
}
