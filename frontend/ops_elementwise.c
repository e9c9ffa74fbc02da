/* DSL builders for constants and index ramps, and the elementwise ops:
 * broadcasting binaries and comparisons, scalar shorthands, unaries, gelu,
 * select, cast, dropout. Shape and dtype checks are the IR's shape rules. */
#include <string.h>

#include "frontend/internal.h"

/* ---- leaves ---------------------------------------------------------- */

kl_value kl_scalar_at(kl_graph *g, double v, kl_dtype dt, const char *file, int line) {
  if (!g) return kl_none();
  if (g->ir->has_error) return kl__invalid(g);
  if (!kl__dtype_ok(dt)) {
    kl__error(g, file, line, "const: unknown dtype %d", (int)dt);
    return kl__invalid(g);
  }
  return kl__scalar_node(g, v, (ir_dtype)dt, IR_OP_CONST, 0, NULL, file, line);
}

kl_value kl_constant_at(kl_graph *g, kl_dtype dt, kl_ints shape, const void *data, const char *file,
                        int line) {
  if (!g) return kl_none();
  if (g->ir->has_error) return kl__invalid(g);
  char msg[160];
  if (!kl__dtype_ok(dt)) {
    kl__error(g, file, line, "const: unknown dtype %d", (int)dt);
    return kl__invalid(g);
  }
  if (!kl__shape_ok(&shape, false, msg, sizeof msg)) {
    kl__error(g, file, line, "const: %s", msg);
    return kl__invalid(g);
  }
  ir_type t = kl__type(dt, &shape);
  if (!data) {
    char ts[IR_TYPE_STRLEN];
    kl__error(g, file, line, "const: no data for a constant of type %s",
              ir_type_str(&t, ts, sizeof ts));
    return kl__invalid(g);
  }
  ir_diag d = {.line = 0};
  int id = ir_add_const(g->ir, &t, data, &d);
  if (id < 0) {
    kl__error(g, file, line, "const: %s", d.msg);
    return kl__invalid(g);
  }
  if (dt == KL_BOOL) {
    /* Kernels read bools as 0/1 bytes; any other byte value is "true". */
    unsigned char *p = g->ir->nodes[id]->data;
    for (int64_t i = 0; i < ir_type_numel(&t); i++)
      p[i] = p[i] != 0;
  }
  ir_node_set_loc(g->ir, id, kl__basename(file), line);
  return (kl_value){g, id};
}

kl_value kl_iota_at(kl_graph *g, kl_ints shape, int axis, kl_dtype dt, const char *file, int line) {
  if (!g) return kl_none();
  if (g->ir->has_error) return kl__invalid(g);
  char msg[160];
  if (!kl__dtype_ok(dt)) {
    kl__error(g, file, line, "iota: unknown dtype %d", (int)dt);
    return kl__invalid(g);
  }
  if (!kl__shape_ok(&shape, false, msg, sizeof msg)) {
    kl__error(g, file, line, "iota: %s", msg);
    return kl__invalid(g);
  }
  ir_attr attrs[3] = {kl__a_ints(&shape), kl__a_int(axis), kl__a_dtype((ir_dtype)dt)};
  return kl__node(g, IR_OP_IOTA, 0, NULL, attrs, NULL, file, line);
}

/* ---- binary ------------------------------------------------------------ */

static kl_value binary(ir_op op, kl_value a, kl_value b, const char *file, int line) {
  kl_value xs[2] = {a, b};
  return kl__op(op, 2, xs, NULL, file, line);
}

#define KL__DEF_BINARY(NAME, OP)                                                                   \
  kl_value NAME##_at(kl_value a, kl_value b, const char *file, int line) {                         \
    return binary(IR_OP_##OP, a, b, file, line);                                                   \
  }
KL__DEF_BINARY(kl_add, ADD)
KL__DEF_BINARY(kl_sub, SUB)
KL__DEF_BINARY(kl_mul, MUL)
KL__DEF_BINARY(kl_div, DIV)
KL__DEF_BINARY(kl_pow, POW)
KL__DEF_BINARY(kl_max, MAX)
KL__DEF_BINARY(kl_min, MIN)
KL__DEF_BINARY(kl_lt, CMP_LT)
KL__DEF_BINARY(kl_le, CMP_LE)
KL__DEF_BINARY(kl_gt, CMP_GT)
KL__DEF_BINARY(kl_ge, CMP_GE)
KL__DEF_BINARY(kl_eq, CMP_EQ)
#undef KL__DEF_BINARY

/* x op s with s a rank-0 constant of x's dtype. */
static kl_value binary_scalar(ir_op op, kl_value x, double s, const char *file, int line) {
  kl_graph *g;
  if (!kl__operands(1, &x, op, file, line, &g)) return kl__invalid(g);
  kl_value c = kl__scalar_node(g, s, kl__type_of(x)->dtype, op, 1, &x, file, line);
  if (!kl_value_ok(c)) return kl__invalid(g);
  kl_value xs[2] = {x, c};
  return kl__node(g, op, 2, xs, NULL, NULL, file, line);
}

kl_value kl_add_scalar_at(kl_value x, double s, const char *file, int line) {
  return binary_scalar(IR_OP_ADD, x, s, file, line);
}

kl_value kl_mul_scalar_at(kl_value x, double s, const char *file, int line) {
  return binary_scalar(IR_OP_MUL, x, s, file, line);
}

/* ---- unary ------------------------------------------------------------- */

#define KL__DEF_UNARY(NAME, OP)                                                                    \
  kl_value NAME##_at(kl_value x, const char *file, int line) {                                     \
    return kl__op(IR_OP_##OP, 1, &x, NULL, file, line);                                            \
  }
KL__DEF_UNARY(kl_neg, NEG)
KL__DEF_UNARY(kl_exp, EXP)
KL__DEF_UNARY(kl_log, LOG)
KL__DEF_UNARY(kl_tanh, TANH)
KL__DEF_UNARY(kl_sigmoid, SIGMOID)
KL__DEF_UNARY(kl_erf, ERF)
KL__DEF_UNARY(kl_relu, RELU)
KL__DEF_UNARY(kl_sqrt, SQRT)
KL__DEF_UNARY(kl_rsqrt, RSQRT)
KL__DEF_UNARY(kl_sin, SIN)
KL__DEF_UNARY(kl_cos, COS)
KL__DEF_UNARY(kl_abs, ABS)
#undef KL__DEF_UNARY

kl_value kl_gelu_at(kl_value x, bool approximate_tanh, const char *file, int line) {
  ir_attr attrs[1] = {kl__a_str(approximate_tanh ? "tanh" : "none")};
  return kl__op(IR_OP_GELU, 1, &x, attrs, file, line);
}

kl_value kl_select_at(kl_value cond, kl_value a, kl_value b, const char *file, int line) {
  kl_value xs[3] = {cond, a, b};
  return kl__op(IR_OP_SELECT, 3, xs, NULL, file, line);
}

kl_value kl_cast_at(kl_value x, kl_dtype to, const char *file, int line) {
  kl_graph *g;
  if (!kl__operands(1, &x, IR_OP_CAST, file, line, &g)) return kl__invalid(g);
  if (!kl__dtype_ok(to)) {
    kl__fail(g, file, line, IR_OP_CAST, 1, &x, "unknown dtype %d", (int)to);
    return kl__invalid(g);
  }
  ir_attr attrs[1] = {kl__a_dtype((ir_dtype)to)};
  return kl__node(g, IR_OP_CAST, 1, &x, attrs, NULL, file, line);
}

kl_value kl_dropout_at(kl_value x, double p, const char *file, int line) {
  ir_attr attrs[2] = {kl__a_float(p), kl__a_int(-1)};
  return kl__op(IR_OP_DROPOUT, 1, &x, attrs, file, line);
}
