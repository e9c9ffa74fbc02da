/* pass_build_attention: an attention region node and its canonical body
 * (matmul q k^T, scale, length mask or bias, causal select, softmax,
 * dropout, matmul with v), the exact sub-graph the fused kernel replaces. */
#include "passes/fused_build.h"

#include <stdio.h>

#include "passes/builder.h"

enum { A_SCALE, A_CAUSAL, A_MASKV, A_P, A_KEY, A_N };

/* The body: args are copies of the operands' types, in operand order. */
static ir_graph *attention_body(const ir_graph *g, const int *ops, int nin, const ir_attr *a,
                                ir_diag *d) {
  static const char *const names[] = {"q", "k", "v", "mask"};
  ir_graph *body = ir_graph_create("attention");
  if (!body) {
    ir_diag_set(d, "attention: out of memory");
    return NULL;
  }
  int arg[4];
  for (int i = 0; i < nin; i++) {
    arg[i] = ir_add_arg(body, names[i], &g->nodes[ops[i]]->type, d);
    if (arg[i] < 0) goto fail;
  }
  pass_builder b;
  pb_init(&b, body, d, "attention body: ");
  const ir_type *qt = &g->nodes[ops[0]]->type;
  ir_dtype dt = qt->dtype;
  ir_attr mm[2] = {{.kind = IR_ATTR_BOOL, .b = false}, {.kind = IR_ATTR_BOOL, .b = true}};
  int s = pb_node(&b, IR_OP_MATMUL, 2, (int[]){arg[0], arg[1]}, mm, NULL);
  s = pb_binary(&b, IR_OP_MUL, s, pb_scalar(&b, a[A_SCALE].f, dt));
  if (nin == 4) {
    if (ir_dtype_is_int(g->nodes[ops[3]]->type.dtype)) {
      ir_attr sv = {.kind = IR_ATTR_FLOAT, .f = a[A_MASKV].f};
      s = pb_node(&b, IR_OP_SEQUENCE_MASK, 2, (int[]){s, arg[3]}, &sv, NULL);
    } else {
      s = pb_binary(&b, IR_OP_ADD, s, arg[3]);
    }
  }
  if (a[A_CAUSAL].b && s >= 0) {
    const ir_type *st = &body->nodes[s]->type;
    int64_t tq = st->dims[st->rank - 2], tk = st->dims[st->rank - 1];
    ir_attr io[3] = {{.kind = IR_ATTR_INTS, .ints = {2, (int64_t[]){tq, tk}}},
                     {.kind = IR_ATTR_INT, .i = 0},
                     {.kind = IR_ATTR_DTYPE, .dt = IR_I32}};
    int i = pb_node(&b, IR_OP_IOTA, 0, NULL, io, NULL);
    io[1].i = 1;
    int j = pb_node(&b, IR_OP_IOTA, 0, NULL, io, NULL);
    int future = pb_binary(&b, IR_OP_CMP_GT, j, i);
    int fill = pb_scalar(&b, a[A_MASKV].f, dt);
    s = pb_node(&b, IR_OP_SELECT, 3, (int[]){future, fill, s}, NULL, NULL);
  }
  ir_attr ax = {.kind = IR_ATTR_INT, .i = -1};
  int w = pb_node(&b, IR_OP_SOFTMAX, 1, &s, &ax, NULL);
  if (a[A_P].f > 0) {
    ir_attr dp[2] = {{.kind = IR_ATTR_FLOAT, .f = a[A_P].f},
                     {.kind = IR_ATTR_INT, .i = a[A_KEY].i}};
    w = pb_node(&b, IR_OP_DROPOUT, 1, &w, dp, NULL);
  }
  int o = pb_node(&b, IR_OP_MATMUL, 2, (int[]){w, arg[2]}, NULL, NULL);
  if (b.failed || o < 0) goto fail;
  ir_set_returns(body, 1, &o);
  return body;
fail:
  ir_graph_destroy(body);
  return NULL;
}

int pass_build_attention(ir_graph *g, int q, int k, int v, int mask, const ir_attr *attrs,
                         const ir_loc *loc, ir_diag *d) {
  int ops[4] = {q, k, v, mask};
  int nin = mask >= 0 ? 4 : 3;
  for (int i = 0; i < nin; i++)
    if (ops[i] < 0 || ops[i] >= g->nnodes) {
      ir_diag_set(d, "attention: operand %d is not a node of the graph (%d)", i, ops[i]);
      return -1;
    }
  ir_attr a[A_N];
  if (attrs) {
    for (int i = 0; i < A_N; i++)
      a[i] = attrs[i];
  } else {
    ir_attrs_default(g, IR_OP_ATTENTION, a);
  }
  if (a[A_P].f > 0 && a[A_KEY].i < 0) a[A_KEY].i = g->nnodes; /* the id the node will get */
  /* The shape rule first, so the body is only built for valid operands. */
  ir_type in[4], out;
  for (int i = 0; i < nin; i++)
    in[i] = g->nodes[ops[i]]->type;
  if (!ir_op_get(IR_OP_ATTENTION)->shape(IR_OP_ATTENTION, nin, in, a, &out, d)) return -1;
  ir_graph *body = attention_body(g, ops, nin, a, d);
  if (!body) return -1;
  int id = ir_add_region(g, IR_OP_ATTENTION, nin, ops, a, body, d);
  if (id >= 0 && loc && loc->file) ir_node_set_loc(g, id, loc->file, loc->line);
  return id;
}
