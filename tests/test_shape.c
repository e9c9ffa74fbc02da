/* Shape rules through the graph builder: for every op with a rule, inferred
 * result types (worked out by hand from numpy/PyTorch semantics) and
 * rejected inputs whose message names the op and the operand types. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/shape.h"

/* ---- helpers: the tests parse their own type strings so that expected
 * values do not come from the code under test. ---------------------------- */

static ir_type ty(const char *s) {
  static const struct {
    const char *name;
    ir_dtype dt;
  } dts[] = {{"f32", IR_F32}, {"f64", IR_F64}, {"i32", IR_I32}, {"i64", IR_I64}, {"bool", IR_BOOL}};
  ir_type t = {.dtype = IR_F32, .rank = 0};
  const char *br = strchr(s, '[');
  cr_assert(br, "bad test type %s", s);
  bool found = false;
  for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++)
    if (strlen(dts[i].name) == (size_t)(br - s) && !strncmp(dts[i].name, s, (size_t)(br - s))) {
      t.dtype = dts[i].dt;
      found = true;
    }
  cr_assert(found, "bad dtype in %s", s);
  const char *p = br + 1;
  while (*p && *p != ']') {
    char *end;
    t.dims[t.rank++] = strtoll(p, &end, 10);
    p = *end == ',' ? end + 1 : end;
  }
  return t;
}

/* Adds one arg per space-separated type in `types`, then the op; returns the
 * op's id (or -1) and its type. */
static int build(ir_op op, const char *types, const ir_attr *attrs, ir_type *out, ir_diag *d) {
  ir_graph *g = ir_graph_create("t");
  int ids[16], n = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", types);
  for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
    ir_type t = ty(tok);
    char name[16];
    snprintf(name, sizeof name, "a%d", n);
    ids[n] = ir_add_arg(g, name, &t, d);
    cr_assert(ids[n] >= 0, "arg %s: %s", tok, d->msg);
    n++;
  }
  int id = ir_add_node(g, op, n, ids, attrs, NULL, d);
  if (id >= 0) *out = g->nodes[id]->type;
  ir_graph_destroy(g);
  return id;
}

static void type_fmt(const ir_type *t, char *buf, size_t len) {
  static const char *const names[] = {"f32", "f64", "i32", "i64", "bool"};
  size_t k = (size_t)snprintf(buf, len, "%s[", names[t->dtype]);
  for (int i = 0; i < t->rank; i++)
    k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  snprintf(buf + k, len - k, "]");
}

static void expect_type(ir_op op, const ir_attr *attrs, const char *types, const char *want) {
  ir_diag d = {0};
  ir_type got;
  int id = build(op, types, attrs, &got, &d);
  cr_assert(id >= 0, "%s on (%s) should infer %s, failed: %s", ir_op_get(op)->name, types, want,
            d.msg);
  ir_type w = ty(want);
  char gs[96];
  type_fmt(&got, gs, sizeof gs);
  cr_assert(got.dtype == w.dtype && got.rank == w.rank &&
                !memcmp(got.dims, w.dims, (size_t)w.rank * sizeof(int64_t)),
            "%s on (%s): got %s, want %s", ir_op_get(op)->name, types, gs, want);
}

/* `prefix` is the exact "op(types)" head; `why` a fragment of the reason. */
static void expect_err(ir_op op, const ir_attr *attrs, const char *types, const char *prefix,
                       const char *why) {
  ir_diag d = {0};
  ir_type got;
  int id = build(op, types, attrs, &got, &d);
  cr_assert_eq(id, -1, "%s on (%s) should fail", prefix, types);
  char head[300];
  snprintf(head, sizeof head, "%s: ", prefix);
  cr_assert(!strncmp(d.msg, head, strlen(head)), "message '%s' should start with '%s'", d.msg,
            head);
  cr_assert(strstr(d.msg, why), "message '%s' should mention '%s'", d.msg, why);
}

static ir_attr a_int(int64_t v) { return (ir_attr){.kind = IR_ATTR_INT, .i = v}; }
static ir_attr a_float(double v) { return (ir_attr){.kind = IR_ATTR_FLOAT, .f = v}; }
static ir_attr a_bool(bool v) { return (ir_attr){.kind = IR_ATTR_BOOL, .b = v}; }
static ir_attr a_str(const char *v) { return (ir_attr){.kind = IR_ATTR_STR, .s = v}; }
static ir_attr a_dt(ir_dtype v) { return (ir_attr){.kind = IR_ATTR_DTYPE, .dt = v}; }
static ir_attr a_ints(int64_t *v, int n) {
  return (ir_attr){.kind = IR_ATTR_INTS, .ints = {.n = n, .v = v}};
}
#define INTS(...)                                                                                  \
  a_ints((int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define NO_INTS a_ints(NULL, 0)
#define ATTRS(...) ((const ir_attr[]){__VA_ARGS__})

/* ---- leaves -------------------------------------------------------------- */

Test(shape, iota) {
  expect_type(IR_OP_IOTA, ATTRS(INTS(2, 3), a_int(1), a_dt(IR_I64)), "", "i64[2,3]");
  expect_type(IR_OP_IOTA, ATTRS(INTS(5), a_int(-1), a_dt(IR_F32)), "", "f32[5]");
  expect_err(IR_OP_IOTA, ATTRS(INTS(2, 3), a_int(0), a_dt(IR_BOOL)), "", "iota()", "bool");
  expect_err(IR_OP_IOTA, ATTRS(INTS(2, 3), a_int(2), a_dt(IR_I32)), "", "iota()", "axis 2");
  expect_err(IR_OP_IOTA, ATTRS(NO_INTS, a_int(0), a_dt(IR_I32)), "", "iota()", "rank");
  expect_err(IR_OP_IOTA, ATTRS(INTS(1, 1, 1, 1, 1, 1, 1), a_int(0), a_dt(IR_I32)), "", "iota()",
             "rank");
  expect_err(IR_OP_IOTA, ATTRS(INTS(2, -1), a_int(0), a_dt(IR_I32)), "", "iota()", "negative");
}

/* ---- binary -------------------------------------------------------------- */

Test(shape, binary_broadcasting) {
  expect_type(IR_OP_ADD, NULL, "f32[] f32[2,3]", "f32[2,3]");
  expect_type(IR_OP_ADD, NULL, "f32[2,3] f32[]", "f32[2,3]");
  expect_type(IR_OP_ADD, NULL, "f32[3,1] f32[1,4]", "f32[3,4]");
  expect_type(IR_OP_ADD, NULL, "f32[4] f32[2,3,4]", "f32[2,3,4]");
  expect_type(IR_OP_ADD, NULL, "i64[2,1,5] i64[3,1]", "i64[2,3,5]");
  expect_type(IR_OP_ADD, NULL, "f32[0,3] f32[1,3]", "f32[0,3]");
  expect_err(IR_OP_ADD, NULL, "f32[2,3] f32[3,2]", "add(f32[2,3], f32[3,2])",
             "shapes do not broadcast");
  expect_err(IR_OP_ADD, NULL, "f32[2,3] f32[4]", "add(f32[2,3], f32[4])",
             "shapes do not broadcast");
}

Test(shape, binary_all_ops) {
  const ir_op ops[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV, IR_OP_MAX, IR_OP_MIN};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const char *name = ir_op_get(ops[i])->name;
    char head[128];
    expect_type(ops[i], NULL, "f64[2,1] f64[3]", "f64[2,3]");
    expect_type(ops[i], NULL, "i32[4] i32[]", "i32[4]");
    snprintf(head, sizeof head, "%s(f32[2], f64[2])", name);
    expect_err(ops[i], NULL, "f32[2] f64[2]", head, "dtypes differ");
    snprintf(head, sizeof head, "%s(bool[2], bool[2])", name);
    expect_err(ops[i], NULL, "bool[2] bool[2]", head, "bool");
  }
}

Test(shape, pow) {
  expect_type(IR_OP_POW, NULL, "f32[8,1] f32[4]", "f32[8,4]");
  expect_type(IR_OP_POW, NULL, "f64[] f64[]", "f64[]");
  expect_err(IR_OP_POW, NULL, "i32[3] i32[3]", "pow(i32[3], i32[3])", "float");
  expect_err(IR_OP_POW, NULL, "f32[3] f32[2]", "pow(f32[3], f32[2])", "do not broadcast");
}

Test(shape, compare) {
  const ir_op ops[] = {IR_OP_CMP_LT, IR_OP_CMP_LE, IR_OP_CMP_GT, IR_OP_CMP_GE, IR_OP_CMP_EQ};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const char *name = ir_op_get(ops[i])->name;
    char head[128];
    expect_type(ops[i], NULL, "f32[2,1] f32[3]", "bool[2,3]");
    expect_type(ops[i], NULL, "i32[4] i32[]", "bool[4]");
    expect_type(ops[i], NULL, "bool[2] bool[2]", "bool[2]");
    snprintf(head, sizeof head, "%s(i32[2], i64[2])", name);
    expect_err(ops[i], NULL, "i32[2] i64[2]", head, "dtypes differ");
    snprintf(head, sizeof head, "%s(f32[2], f32[3])", name);
    expect_err(ops[i], NULL, "f32[2] f32[3]", head, "do not broadcast");
  }
}

Test(shape, select) {
  expect_type(IR_OP_SELECT, NULL, "bool[2,1] f32[3] f32[]", "f32[2,3]");
  expect_type(IR_OP_SELECT, NULL, "bool[] i64[4] i64[4]", "i64[4]");
  expect_type(IR_OP_SELECT, NULL, "bool[4,1,1] f64[1,5,1] f64[6]", "f64[4,5,6]");
  expect_err(IR_OP_SELECT, NULL, "f32[2] f32[2] f32[2]", "select(f32[2], f32[2], f32[2])",
             "condition must be bool");
  expect_err(IR_OP_SELECT, NULL, "bool[2] f32[2] f64[2]", "select(bool[2], f32[2], f64[2])",
             "dtypes differ");
  expect_err(IR_OP_SELECT, NULL, "bool[3] f32[2,1] f32[2]", "select(bool[3], f32[2,1], f32[2])",
             "do not broadcast");
}

/* ---- unary ---------------------------------------------------------------- */

Test(shape, unary_numeric) {
  const ir_op ops[] = {IR_OP_NEG, IR_OP_ABS, IR_OP_RELU};
  for (size_t i = 0; i < 3; i++) {
    char head[64];
    expect_type(ops[i], NULL, "i32[2,3]", "i32[2,3]");
    expect_type(ops[i], NULL, "f64[]", "f64[]");
    snprintf(head, sizeof head, "%s(bool[2])", ir_op_get(ops[i])->name);
    expect_err(ops[i], NULL, "bool[2]", head, "numeric");
  }
}

Test(shape, unary_float) {
  const ir_op ops[] = {IR_OP_EXP, IR_OP_LOG, IR_OP_TANH, IR_OP_SIGMOID, IR_OP_SQRT,   IR_OP_RSQRT,
                       IR_OP_SIN, IR_OP_COS, IR_OP_ERF,  IR_OP_GELU,    IR_OP_DROPOUT};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    char head[64];
    expect_type(ops[i], NULL, "f64[2,3]", "f64[2,3]");
    expect_type(ops[i], NULL, "f32[]", "f32[]");
    snprintf(head, sizeof head, "%s(i32[4])", ir_op_get(ops[i])->name);
    expect_err(ops[i], NULL, "i32[4]", head, "float");
  }
}

Test(shape, gelu_and_dropout_attrs) {
  expect_type(IR_OP_GELU, ATTRS(a_str("tanh")), "f32[3]", "f32[3]");
  expect_type(IR_OP_GELU, ATTRS(a_str("none")), "f32[3]", "f32[3]");
  expect_err(IR_OP_GELU, ATTRS(a_str("fast")), "f32[3]", "gelu(f32[3])", "approximate");
  expect_type(IR_OP_DROPOUT, ATTRS(a_float(0.0), a_int(-1)), "f32[3]", "f32[3]");
  expect_type(IR_OP_DROPOUT, ATTRS(a_float(0.5), a_int(-1)), "f32[3]", "f32[3]");
  expect_err(IR_OP_DROPOUT, ATTRS(a_float(1.0), a_int(-1)), "f32[3]", "dropout(f32[3])",
             "p must be");
  expect_err(IR_OP_DROPOUT, ATTRS(a_float(-0.1), a_int(-1)), "f32[3]", "dropout(f32[3])",
             "p must be");
}

Test(shape, cast) {
  expect_type(IR_OP_CAST, ATTRS(a_dt(IR_I64)), "f32[2,3]", "i64[2,3]");
  expect_type(IR_OP_CAST, ATTRS(a_dt(IR_F32)), "bool[]", "f32[]");
  expect_err(IR_OP_CAST, ATTRS(a_dt((ir_dtype)42)), "f32[2]", "cast(f32[2])", "not a dtype");
}

/* ---- reductions and normalisations ---------------------------------------- */

Test(shape, reduce) {
  expect_type(IR_OP_SUM, ATTRS(INTS(0, -1), a_bool(false)), "f32[2,3,4]", "f32[3]");
  expect_type(IR_OP_SUM, ATTRS(INTS(0, -1), a_bool(true)), "f32[2,3,4]", "f32[1,3,1]");
  expect_type(IR_OP_SUM, ATTRS(NO_INTS, a_bool(false)), "i32[2,3]", "i32[2,3]");
  expect_type(IR_OP_SUM, ATTRS(INTS(1, 0), a_bool(false)), "i64[2,3]", "i64[]");
  expect_type(IR_OP_MEAN, ATTRS(INTS(1), a_bool(true)), "f64[2,3]", "f64[2,1]");
  expect_type(IR_OP_REDUCE_MAX, ATTRS(INTS(-2), a_bool(false)), "i32[5,6,7]", "i32[5,7]");
  expect_err(IR_OP_SUM, ATTRS(INTS(1, -2), a_bool(false)), "f32[2,3,4]", "sum(f32[2,3,4])",
             "duplicate axis");
  expect_err(IR_OP_SUM, ATTRS(INTS(3), a_bool(false)), "f32[2,3,4]", "sum(f32[2,3,4])",
             "out of range");
  expect_err(IR_OP_REDUCE_MAX, ATTRS(INTS(-4), a_bool(false)), "f32[2,3,4]",
             "reduce_max(f32[2,3,4])", "out of range");
  expect_err(IR_OP_MEAN, ATTRS(INTS(0), a_bool(false)), "i32[2]", "mean(i32[2])", "float");
  expect_err(IR_OP_SUM, ATTRS(INTS(0), a_bool(false)), "bool[2]", "sum(bool[2])", "bool");
}

Test(shape, softmax) {
  expect_type(IR_OP_SOFTMAX, ATTRS(a_int(-1)), "f32[2,5]", "f32[2,5]");
  expect_type(IR_OP_LOG_SOFTMAX, ATTRS(a_int(0)), "f64[2,5]", "f64[2,5]");
  expect_err(IR_OP_SOFTMAX, ATTRS(a_int(2)), "f32[2,5]", "softmax(f32[2,5])", "out of range");
  expect_err(IR_OP_LOG_SOFTMAX, ATTRS(a_int(-3)), "f32[2,5]", "log_softmax(f32[2,5])",
             "out of range");
  expect_err(IR_OP_SOFTMAX, ATTRS(a_int(-1)), "i32[2,5]", "softmax(i32[2,5])", "float");
  expect_err(IR_OP_SOFTMAX, ATTRS(a_int(0)), "f32[]", "softmax(f32[])", "rank");
}

Test(shape, layernorm) {
  expect_type(IR_OP_LAYERNORM, ATTRS(a_float(1e-5)), "f32[2,3,8] f32[8] f32[8]", "f32[2,3,8]");
  expect_type(IR_OP_LAYERNORM, ATTRS(a_float(1e-6)), "f64[8] f64[8] f64[8]", "f64[8]");
  expect_err(IR_OP_LAYERNORM, ATTRS(a_float(1e-5)), "f32[2,8] f32[4] f32[8]",
             "layernorm(f32[2,8], f32[4], f32[8])", "gamma");
  expect_err(IR_OP_LAYERNORM, ATTRS(a_float(1e-5)), "f32[2,8] f32[8] f64[8]",
             "layernorm(f32[2,8], f32[8], f64[8])", "beta");
  expect_err(IR_OP_LAYERNORM, ATTRS(a_float(1e-5)), "f32[2,8] f32[1,8] f32[8]",
             "layernorm(f32[2,8], f32[1,8], f32[8])", "gamma");
  expect_err(IR_OP_LAYERNORM, ATTRS(a_float(0.0)), "f32[2,8] f32[8] f32[8]",
             "layernorm(f32[2,8], f32[8], f32[8])", "eps");
  expect_err(IR_OP_LAYERNORM, ATTRS(a_float(1e-5)), "i32[2,8] i32[8] i32[8]",
             "layernorm(i32[2,8], i32[8], i32[8])", "float");
}

/* ---- data movement ------------------------------------------------------------ */

Test(shape, reshape) {
  expect_type(IR_OP_RESHAPE, ATTRS(INTS(6, 4)), "f32[2,3,4]", "f32[6,4]");
  expect_type(IR_OP_RESHAPE, ATTRS(NO_INTS), "i32[1,1]", "i32[]");
  expect_type(IR_OP_RESHAPE, ATTRS(INTS(3, 0)), "f32[0,5]", "f32[3,0]");
  expect_err(IR_OP_RESHAPE, ATTRS(INTS(5, 5)), "f32[2,3,4]", "reshape(f32[2,3,4])",
             "cannot reshape 24 elements");
  expect_err(IR_OP_RESHAPE, ATTRS(INTS(-1, 4)), "f32[2,3,4]", "reshape(f32[2,3,4])", "negative");
  expect_err(IR_OP_RESHAPE, ATTRS(INTS(1, 1, 1, 1, 1, 1, 24)), "f32[2,3,4]", "reshape(f32[2,3,4])",
             "rank 7");
}

Test(shape, transpose) {
  expect_type(IR_OP_TRANSPOSE, ATTRS(INTS(2, 0, 1)), "f32[2,3,4]", "f32[4,2,3]");
  expect_type(IR_OP_TRANSPOSE, ATTRS(NO_INTS), "f32[]", "f32[]");
  expect_err(IR_OP_TRANSPOSE, ATTRS(INTS(0, 0, 1)), "f32[2,3,4]", "transpose(f32[2,3,4])",
             "not a permutation");
  expect_err(IR_OP_TRANSPOSE, ATTRS(INTS(0, 3, 1)), "f32[2,3,4]", "transpose(f32[2,3,4])",
             "not a permutation");
  expect_err(IR_OP_TRANSPOSE, ATTRS(INTS(1, 0)), "f32[2,3,4]", "transpose(f32[2,3,4])",
             "2 entries for rank 3");
}

Test(shape, broadcast_to) {
  expect_type(IR_OP_BROADCAST_TO, ATTRS(INTS(2, 3, 4)), "f32[3,1]", "f32[2,3,4]");
  expect_type(IR_OP_BROADCAST_TO, ATTRS(INTS(5)), "i32[]", "i32[5]");
  expect_type(IR_OP_BROADCAST_TO, ATTRS(INTS(2, 0)), "f32[1]", "f32[2,0]");
  expect_err(IR_OP_BROADCAST_TO, ATTRS(INTS(4)), "f32[3]", "broadcast_to(f32[3])",
             "cannot broadcast");
  expect_err(IR_OP_BROADCAST_TO, ATTRS(INTS(3)), "f32[2,3]", "broadcast_to(f32[2,3])", "rank");
  expect_err(IR_OP_BROADCAST_TO, ATTRS(INTS(2, -3)), "f32[3]", "broadcast_to(f32[3])", "negative");
}

Test(shape, slice) {
  expect_type(IR_OP_SLICE, ATTRS(INTS(1, 0), INTS(4, 6)), "f32[5,6]", "f32[3,6]");
  expect_type(IR_OP_SLICE, ATTRS(INTS(2), INTS(2)), "i64[5]", "i64[0]");
  expect_err(IR_OP_SLICE, ATTRS(INTS(0, 0), INTS(6, 6)), "f32[5,6]", "slice(f32[5,6])", "axis 0");
  expect_err(IR_OP_SLICE, ATTRS(INTS(3, 0), INTS(2, 6)), "f32[5,6]", "slice(f32[5,6])",
             "start <= end");
  expect_err(IR_OP_SLICE, ATTRS(INTS(-1, 0), INTS(2, 6)), "f32[5,6]", "slice(f32[5,6])",
             "0 <= start");
  expect_err(IR_OP_SLICE, ATTRS(INTS(0), INTS(2, 6)), "f32[5,6]", "slice(f32[5,6])",
             "one entry per axis");
}

Test(shape, concat) {
  expect_type(IR_OP_CONCAT, ATTRS(a_int(-1)), "f32[2,3] f32[2,5]", "f32[2,8]");
  expect_type(IR_OP_CONCAT, ATTRS(a_int(0)), "i32[1,4] i32[2,4] i32[3,4]", "i32[6,4]");
  expect_type(IR_OP_CONCAT, ATTRS(a_int(0)), "f32[7]", "f32[7]");
  expect_err(IR_OP_CONCAT, ATTRS(a_int(0)), "f32[2,3] f32[2,5]", "concat(f32[2,3], f32[2,5])",
             "dimension 1");
  expect_err(IR_OP_CONCAT, ATTRS(a_int(0)), "f32[2,3] f64[2,3]", "concat(f32[2,3], f64[2,3])",
             "dtype");
  expect_err(IR_OP_CONCAT, ATTRS(a_int(0)), "f32[2,3] f32[6]", "concat(f32[2,3], f32[6])", "rank");
  expect_err(IR_OP_CONCAT, ATTRS(a_int(2)), "f32[2,3] f32[2,3]", "concat(f32[2,3], f32[2,3])",
             "out of range");
  expect_err(IR_OP_CONCAT, ATTRS(a_int(0)), "f32[] f32[]", "concat(f32[], f32[])", "rank >= 1");
}

Test(shape, gather) {
  expect_type(IR_OP_GATHER, NULL, "f32[10,4] i32[2,3]", "f32[2,3,4]");
  expect_type(IR_OP_GATHER, NULL, "f64[10] i64[7]", "f64[7]");
  expect_type(IR_OP_GATHER, NULL, "f32[10,4,2] i32[]", "f32[4,2]");
  expect_err(IR_OP_GATHER, NULL, "f32[10,4] f32[2]", "gather(f32[10,4], f32[2])", "i32 or i64");
  expect_err(IR_OP_GATHER, NULL, "f32[] i32[2]", "gather(f32[], i32[2])", "rank");
  /* 4 index dims + 3 trailing table dims = rank 7 */
  expect_err(IR_OP_GATHER, NULL, "f32[5,2,2,2] i32[1,1,1,1]", "gather(f32[5,2,2,2], i32[1,1,1,1])",
             "rank 7");
}

/* ---- matmul --------------------------------------------------------------------- */

Test(shape, matmul) {
  const ir_attr *nn = ATTRS(a_bool(false), a_bool(false));
  expect_type(IR_OP_MATMUL, nn, "f32[2,3] f32[3,4]", "f32[2,4]");
  expect_type(IR_OP_MATMUL, nn, "f32[2,1,3,4] f32[5,4,6]", "f32[2,5,3,6]");
  expect_type(IR_OP_MATMUL, nn, "f64[7,2,3] f64[3,4]", "f64[7,2,4]");
  /* a^T: a is [3,2] so op(a) is [2,3] */
  expect_type(IR_OP_MATMUL, ATTRS(a_bool(true), a_bool(false)), "f32[3,2] f32[3,4]", "f32[2,4]");
  /* b^T: b is [4,3] so op(b) is [3,4] */
  expect_type(IR_OP_MATMUL, ATTRS(a_bool(false), a_bool(true)), "f32[2,3] f32[4,3]", "f32[2,4]");
  expect_type(IR_OP_MATMUL, ATTRS(a_bool(true), a_bool(true)), "f32[8,3,2] f32[1,4,3]",
              "f32[8,2,4]");
  expect_err(IR_OP_MATMUL, nn, "f32[2,3] f32[4,5]", "matmul(f32[2,3], f32[4,5])",
             "contracting dimensions differ (3 vs 4)");
  expect_err(IR_OP_MATMUL, ATTRS(a_bool(false), a_bool(true)), "f32[2,3] f32[3,4]",
             "matmul(f32[2,3], f32[3,4])", "contracting dimensions differ (3 vs 4)");
  expect_err(IR_OP_MATMUL, nn, "f32[2,3,4] f32[3,4,5]", "matmul(f32[2,3,4], f32[3,4,5])", "batch");
  expect_err(IR_OP_MATMUL, nn, "f32[3] f32[3,4]", "matmul(f32[3], f32[3,4])", "rank >= 2");
  expect_err(IR_OP_MATMUL, nn, "i32[2,3] i32[3,4]", "matmul(i32[2,3], i32[3,4])", "float");
  expect_err(IR_OP_MATMUL, nn, "f32[2,3] f64[3,4]", "matmul(f32[2,3], f64[3,4])", "dtypes differ");
}

/* ---- masking and losses ------------------------------------------------------- */

Test(shape, sequence_mask) {
  const ir_attr *v = ATTRS(a_float(-1e6));
  expect_type(IR_OP_SEQUENCE_MASK, v, "f32[2,4,6] i32[2]", "f32[2,4,6]");
  expect_type(IR_OP_SEQUENCE_MASK, v, "f32[2,4,6] i64[2,4]", "f32[2,4,6]");
  expect_type(IR_OP_SEQUENCE_MASK, v, "f64[6] i32[]", "f64[6]");
  expect_err(IR_OP_SEQUENCE_MASK, v, "f32[2,4,6] i32[4]", "sequence_mask(f32[2,4,6], i32[4])",
             "prefix");
  expect_err(IR_OP_SEQUENCE_MASK, v, "f32[2,4,6] i32[2,4,6]",
             "sequence_mask(f32[2,4,6], i32[2,4,6])", "lower rank");
  expect_err(IR_OP_SEQUENCE_MASK, v, "f32[2,4,6] f32[2]", "sequence_mask(f32[2,4,6], f32[2])",
             "i32 or i64");
  expect_err(IR_OP_SEQUENCE_MASK, v, "i32[2,4,6] i32[2]", "sequence_mask(i32[2,4,6], i32[2])",
             "float");
}

Test(shape, softmax_cross_entropy) {
  const ir_attr *ig = ATTRS(a_int(-1));
  expect_type(IR_OP_SOFTMAX_CROSS_ENTROPY, ig, "f32[2,3,10] i64[2,3]", "f32[2,3]");
  expect_type(IR_OP_SOFTMAX_CROSS_ENTROPY, ig, "f64[10] i32[]", "f64[]");
  expect_err(IR_OP_SOFTMAX_CROSS_ENTROPY, ig, "f32[2,3,10] i32[2]",
             "softmax_cross_entropy(f32[2,3,10], i32[2])", "[2,3]");
  expect_err(IR_OP_SOFTMAX_CROSS_ENTROPY, ig, "f32[2,10] f32[2]",
             "softmax_cross_entropy(f32[2,10], f32[2])", "i32 or i64");
  expect_err(IR_OP_SOFTMAX_CROSS_ENTROPY, ig, "i32[2,10] i32[2]",
             "softmax_cross_entropy(i32[2,10], i32[2])", "float");
}

/* ---- the describe helper and the builder path ----------------------------------- */

Test(shape, describe) {
  ir_type in[2] = {ty("f32[2,3]"), ty("f32[4]")};
  char buf[128];
  ir_shape_describe(IR_OP_ADD, 2, in, buf, sizeof buf);
  cr_assert_str_eq(buf, "add(f32[2,3], f32[4])");
  ir_shape_describe(IR_OP_IOTA, 0, NULL, buf, sizeof buf);
  cr_assert_str_eq(buf, "iota()");
  ir_shape_describe(IR_OP_ADD, 2, in, buf, 10);
  cr_assert_eq(strlen(buf), 9u);
  cr_assert_str_eq(buf + 5, "...)");
}

Test(shape, declared_type_must_match) {
  ir_graph *g = ir_graph_create("t");
  ir_diag d = {0};
  ir_type a = ty("f32[2,3]"), wrong = ty("f32[3,2]");
  int x = ir_add_arg(g, "x", &a, &d);
  int ids[2] = {x, x};
  cr_assert_eq(ir_add_node(g, IR_OP_ADD, 2, ids, NULL, &wrong, &d), -1);
  cr_assert_eq(ir_add_node(g, IR_OP_ADD, 2, ids, NULL, &a, &d), 1);
  ir_graph_destroy(g);
}
