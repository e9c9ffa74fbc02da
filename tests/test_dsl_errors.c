/* The C DSL on bad programs: every builder in kiln.h has a bad call whose
 * message names this file and the call's line, the op and the operand
 * types; errors are sticky; NULL graphs, invalid values and values from two
 * graphs never crash. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "ir/ir.h"

#define IN(g, name, dt, ...) kl_input(g, name, dt, KL_SHAPE(__VA_ARGS__))

/* Checks that r is invalid and g's first error names this file at `line`
 * and contains every needle; then destroys g. */
static void check_err_(kl_graph *g, kl_value r, int line, const char *const *needles,
                       const char *expr) {
  cr_expect(!kl_value_ok(r), "%s: expected an invalid value", expr);
  const char *msg = kl_graph_error(g);
  cr_assert_not_null(msg, "%s: no error recorded", expr);
  if (getenv("KILN_TEST_VERBOSE")) cr_log_info("%s -> %s", expr, msg);
  char where[64];
  snprintf(where, sizeof where, "test_dsl_errors.c:%d: ", line);
  cr_expect(strncmp(msg, where, strlen(where)) == 0, "%s: message \"%s\" should start with \"%s\"",
            expr, msg, where);
  for (int i = 0; needles[i]; i++)
    cr_expect(strstr(msg, needles[i]), "%s: message \"%s\" lacks \"%s\"", expr, msg, needles[i]);
  const ir_graph *ir = kl_graph_ir(g);
  cr_expect(ir->has_error, "%s: the ir_graph's error flag is not set", expr);
  cr_expect_str_eq(ir->error.msg, msg);
  kl_graph_destroy(g);
}
/* Builds `var` and remembers the line of the call. */
#define BUILD(var, expr)                                                                           \
  kl_value var = (expr);                                                                           \
  const int var##_ln = __LINE__
#define CHECK_ERR(g, expr, ...)                                                                    \
  check_err_(g, (expr), __LINE__, (const char *const[]){__VA_ARGS__, NULL}, #expr)

/* ---- leaves ---------------------------------------------------------- */

Test(dsl_errors, input) {
  kl_graph *g = kl_graph_create("e");
  IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, IN(g, "x", KL_F32, 4), "arg", "\"x\"", "f32[2,3]", "already exists");
  g = kl_graph_create("e");
  CHECK_ERR(g, IN(g, "x", KL_F32, 1, 1, 1, 1, 1, 1, 1), "arg", "rank 7");
  g = kl_graph_create("e");
  CHECK_ERR(g, IN(g, "x", KL_F32, 2, -3), "arg", "negative");
  g = kl_graph_create("e");
  CHECK_ERR(g, IN(g, "", KL_F32, 2), "arg", "input name");
  g = kl_graph_create("e");
  CHECK_ERR(g, IN(g, "a-b", KL_F32, 2), "arg", "a-b");
  g = kl_graph_create("e");
  CHECK_ERR(g, IN(g, NULL, KL_F32, 2), "arg", "input name");
  g = kl_graph_create("e");
  CHECK_ERR(g, IN(g, "x", (kl_dtype)9, 2), "arg", "unknown dtype 9");
}

Test(dsl_errors, param) {
  kl_graph *g = kl_graph_create("e");
  kl_scope_push(g, "enc");
  kl_param(g, "w", KL_F32, KL_SHAPE(2, 3));
  CHECK_ERR(g, kl_param(g, "w", KL_F32, KL_SHAPE(3, 2)), "param", "\"enc.w\"", "f32[3,2]",
            "f32[2,3]");
  g = kl_graph_create("e");
  CHECK_ERR(g, kl_param(g, "", KL_F32, KL_SHAPE(2)), "param", "parameter name");
  g = kl_graph_create("e");
  CHECK_ERR(g, kl_param(g, "a..b", KL_F32, KL_SHAPE(2)), "param", "a..b");
  g = kl_graph_create("e");
  CHECK_ERR(g, kl_param(g, "w", KL_F64, KL_SHAPE(1, 2, 3, 4, 5, 6, 7, 8)), "param", "rank 8");
}

Test(dsl_errors, scalar_constant_iota) {
  kl_graph *g = kl_graph_create("e");
  CHECK_ERR(g, kl_scalar(g, 1e20, KL_I32), "const", "does not fit i32");
  g = kl_graph_create("e");
  CHECK_ERR(g, kl_scalar(g, 1.0, (kl_dtype)7), "const", "unknown dtype 7");
  g = kl_graph_create("e");
  CHECK_ERR(g, kl_constant(g, KL_I32, KL_SHAPE(2), NULL), "const", "i32[2]", "no data");
  g = kl_graph_create("e");
  float one = 1.0f;
  CHECK_ERR(g, kl_constant(g, KL_F32, KL_SHAPE(-1), &one), "const", "negative");
  g = kl_graph_create("e");
  CHECK_ERR(g, kl_iota(g, KL_SHAPE(3, 4), 2, KL_I32), "iota", "axis 2");
  g = kl_graph_create("e");
  CHECK_ERR(g, kl_iota(g, KL_SHAPE(3), 0, KL_BOOL), "iota", "bool");
}

/* ---- elementwise ----------------------------------------------------- */

typedef kl_value (*binary_fn)(kl_value, kl_value, const char *, int);
typedef kl_value (*unary_fn)(kl_value, const char *, int);

Test(dsl_errors, binary) {
  static const struct {
    binary_fn fn;
    const char *op;
  } ops[] = {{kl_add_at, "add("},   {kl_sub_at, "sub("},   {kl_mul_at, "mul("},
             {kl_div_at, "div("},   {kl_pow_at, "pow("},   {kl_max_at, "max("},
             {kl_min_at, "min("},   {kl_lt_at, "cmp_lt("}, {kl_le_at, "cmp_le("},
             {kl_gt_at, "cmp_gt("}, {kl_ge_at, "cmp_ge("}, {kl_eq_at, "cmp_eq("}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    kl_graph *g = kl_graph_create("e");
    kl_value a = IN(g, "a", KL_F32, 2, 3), b = IN(g, "b", KL_F32, 4);
    int line = 1000 + (int)i; /* the *_at functions report the line they are given */
    kl_value r = ops[i].fn(a, b, __FILE__, line);
    check_err_(g, r, line, (const char *const[]){ops[i].op, "f32[2,3], f32[4]", NULL}, ops[i].op);
  }
  /* The macros pass the caller's line. */
  kl_graph *g = kl_graph_create("e");
  kl_value a = IN(g, "a", KL_F32, 2, 3), i = IN(g, "i", KL_I32, 2, 3);
  CHECK_ERR(g, kl_add(a, i), "add(f32[2,3], i32[2,3])", "dtypes differ");
  g = kl_graph_create("e");
  i = IN(g, "i", KL_I32, 2);
  CHECK_ERR(g, kl_pow(i, i), "pow(i32[2], i32[2])", "float");
  g = kl_graph_create("e");
  a = IN(g, "a", KL_F32, 2);
  i = IN(g, "i", KL_I32, 2);
  CHECK_ERR(g, kl_lt(a, i), "cmp_lt(f32[2], i32[2])");
}

Test(dsl_errors, scalar_shorthands) {
  kl_graph *g = kl_graph_create("e");
  kl_value i = IN(g, "i", KL_I32, 2);
  CHECK_ERR(g, kl_add_scalar(i, 1e12), "add(i32[2])", "does not fit i32");
  g = kl_graph_create("e");
  kl_value b = IN(g, "b", KL_BOOL, 2);
  CHECK_ERR(g, kl_mul_scalar(b, 2.0), "mul(bool[2], bool[])", "bool");
  g = kl_graph_create("e");
  b = IN(g, "b", KL_BOOL, 3);
  CHECK_ERR(g, kl_add_scalar(b, 1.0), "add(bool[3], bool[])");
}

Test(dsl_errors, unary) {
  static const struct {
    unary_fn fn;
    const char *op;
    kl_dtype bad;
    const char *type;
  } ops[] = {
      {kl_neg_at, "neg(", KL_BOOL, "(bool[5])"},       {kl_abs_at, "abs(", KL_BOOL, "(bool[5])"},
      {kl_relu_at, "relu(", KL_BOOL, "(bool[5])"},     {kl_exp_at, "exp(", KL_I32, "(i32[5])"},
      {kl_log_at, "log(", KL_I64, "(i64[5])"},         {kl_tanh_at, "tanh(", KL_I32, "(i32[5])"},
      {kl_sigmoid_at, "sigmoid(", KL_I32, "(i32[5])"}, {kl_sqrt_at, "sqrt(", KL_I32, "(i32[5])"},
      {kl_rsqrt_at, "rsqrt(", KL_I32, "(i32[5])"},     {kl_sin_at, "sin(", KL_BOOL, "(bool[5])"},
      {kl_cos_at, "cos(", KL_I64, "(i64[5])"}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    kl_graph *g = kl_graph_create("e");
    kl_value x = IN(g, "x", ops[i].bad, 5);
    int line = 2000 + (int)i;
    kl_value r = ops[i].fn(x, __FILE__, line);
    check_err_(g, r, line, (const char *const[]){ops[i].op, ops[i].type, NULL}, ops[i].op);
  }
  kl_graph *g = kl_graph_create("e");
  kl_value x = IN(g, "x", KL_I32, 2, 3);
  CHECK_ERR(g, kl_exp(x), "exp(i32[2,3])", "float");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_I32, 4);
  CHECK_ERR(g, kl_gelu(x, true), "gelu(i32[4])", "float");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 4);
  kl_value c = IN(g, "c", KL_F32, 4);
  CHECK_ERR(g, kl_select(c, x, x), "select(f32[4], f32[4], f32[4])", "bool");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 4);
  c = IN(g, "c", KL_BOOL, 3);
  CHECK_ERR(g, kl_select(c, x, x), "select(bool[3], f32[4], f32[4])", "broadcast");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 4);
  CHECK_ERR(g, kl_cast(x, (kl_dtype)11), "cast(f32[4])", "unknown dtype 11");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 4);
  CHECK_ERR(g, kl_dropout(x, 1.5), "dropout(f32[4])", "1.5");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_I32, 4);
  CHECK_ERR(g, kl_dropout(x, 0.1), "dropout(i32[4])", "float");
}

/* ---- reductions and normalisation ---------------------------------- */

Test(dsl_errors, reductions) {
  kl_graph *g = kl_graph_create("e");
  kl_value x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_sum(x, KL_INTS(2), false), "sum(f32[2,3])", "axis 2");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_mean(x, KL_INTS(1, -1), true), "mean(f32[2,3])", "duplicate");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_reduce_max(x, KL_INTS(-3), false), "reduce_max(f32[2,3])", "axis -3");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_BOOL, 2, 3);
  CHECK_ERR(g, kl_sum_all(x), "sum(bool[2,3])", "bool");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_softmax(x, 2), "softmax(f32[2,3])", "axis 2");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_I32, 2, 3);
  CHECK_ERR(g, kl_log_softmax(x, -1), "log_softmax(i32[2,3])", "float");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 4);
  kl_value gm = kl_param(g, "gamma", KL_F32, KL_SHAPE(3)),
           bt = kl_param(g, "beta", KL_F32, KL_SHAPE(4));
  CHECK_ERR(g, kl_layernorm(x, gm, bt, 1e-5), "layernorm(f32[2,4], f32[3], f32[4])");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 4);
  gm = kl_param(g, "gamma", KL_F32, KL_SHAPE(4));
  CHECK_ERR(g, kl_layernorm(x, gm, gm, -1.0), "layernorm(f32[2,4], f32[4], f32[4])", "eps");
}

/* ---- shape and data movement --------------------------------------- */

Test(dsl_errors, layout) {
  kl_graph *g = kl_graph_create("e");
  kl_value x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_reshape(x, KL_SHAPE(-1, -1)), "reshape(f32[2,3])", "more than one -1");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_reshape(x, KL_SHAPE(4, -1)), "reshape(f32[2,3])", "[4, -1]");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_reshape(x, KL_SHAPE(0, -1)), "reshape(f32[2,3])", "-1");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_reshape(x, KL_SHAPE(5)), "reshape(f32[2,3])");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_reshape(x, KL_SHAPE(1, 1, 1, 1, 1, 1, 2, 3)), "reshape(f32[2,3])", "rank 8");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_reshape(x, KL_SHAPE(-2, 3)), "reshape(f32[2,3])", "negative");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_transpose(x, KL_INTS(0, 0)), "transpose(f32[2,3])", "permutation");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_broadcast_to(x, KL_SHAPE(4, 3)), "broadcast_to(f32[2,3])");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_slice(x, KL_INTS(0), KL_INTS(1)), "slice(f32[2,3])", "rank 2");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  /* -5 + 3 = -2 is still out of range: an error, not a silent clamp. */
  CHECK_ERR(g, kl_slice(x, KL_INTS(0, -5), KL_INTS(2, 3)), "slice(f32[2,3])", "start -2");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  CHECK_ERR(g, kl_slice(x, KL_INTS(0, 2), KL_INTS(2, 1)), "slice(f32[2,3])", "start 2, end 1");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 3);
  kl_value y = IN(g, "y", KL_F32, 3, 3);
  kl_value xs[2] = {x, y};
  CHECK_ERR(g, kl_concat(2, xs, 1), "concat(f32[2,3], f32[3,3])");
  g = kl_graph_create("e");
  kl_value t = kl_param(g, "table", KL_F32, KL_SHAPE(10, 4));
  kl_value idx = IN(g, "idx", KL_F32, 2);
  CHECK_ERR(g, kl_gather(t, idx), "gather(f32[10,4], f32[2])", "i32 or i64");
}

Test(dsl_errors, concat_without_operands) {
  /* No operand, no graph to record on: an invalid value, no crash. */
  kl_value r = kl_concat(0, NULL, 0);
  cr_expect(!kl_value_ok(r));
  cr_expect_null(r.g);
  kl_graph *g = kl_graph_create("e");
  kl_value x = IN(g, "x", KL_F32, 2);
  r = kl_concat(-1, &x, 0);
  cr_expect(!kl_value_ok(r));
  kl_graph_destroy(g);
}

/* ---- contractions, masks, losses, compositions --------------------------- */

Test(dsl_errors, contractions) {
  kl_graph *g = kl_graph_create("e");
  kl_value a = IN(g, "a", KL_F32, 2, 3), b = IN(g, "b", KL_F32, 4, 5);
  CHECK_ERR(g, kl_matmul(a, b), "matmul(f32[2,3], f32[4,5])",
            "contracting dimensions differ (3 vs 4)");
  g = kl_graph_create("e");
  a = IN(g, "a", KL_F32, 2, 3);
  CHECK_ERR(g, kl_matmul_t(a, a, false, false), "matmul(f32[2,3], f32[2,3])", "(3 vs 2)");
  g = kl_graph_create("e");
  kl_value x = IN(g, "x", KL_F32, 2, 4, 6), len = IN(g, "len", KL_F32, 2);
  CHECK_ERR(g, kl_sequence_mask(x, len, -1e6), "sequence_mask(f32[2,4,6], f32[2])", "i32 or i64");
  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2, 4, 6);
  len = IN(g, "len", KL_I32, 3);
  CHECK_ERR(g, kl_sequence_mask(x, len, 0.0), "sequence_mask(f32[2,4,6], i32[3])", "prefix");
  g = kl_graph_create("e");
  kl_value logits = IN(g, "logits", KL_F32, 2, 5, 10), labels = IN(g, "labels", KL_I32, 2, 4);
  CHECK_ERR(g, kl_softmax_cross_entropy(logits, labels, -1),
            "softmax_cross_entropy(f32[2,5,10], i32[2,4])");
}

Test(dsl_errors, attention) {
  kl_graph *g = kl_graph_create("e");
  kl_value q = IN(g, "q", KL_F32, 2, 4, 8), k = IN(g, "k", KL_F32, 2, 6, 7);
  kl_value v = IN(g, "v", KL_F32, 2, 6, 8), len = IN(g, "len", KL_I32, 2);
  CHECK_ERR(g, kl_attention(q, k, v, len), "attention: ", "matmul(f32[2,4,8], f32[2,6,7])",
            "(8 vs 7)");
  g = kl_graph_create("e");
  q = IN(g, "q", KL_F32, 2, 4, 8);
  k = IN(g, "k", KL_F32, 2, 6, 8);
  v = IN(g, "v", KL_F32, 2, 5, 8);
  CHECK_ERR(g, kl_attention(q, k, v, kl_none()), "attention: ", "matmul(f32[2,4,6], f32[2,5,8])");
  g = kl_graph_create("e");
  q = IN(g, "q", KL_F32, 2, 4, 8);
  k = IN(g, "k", KL_F32, 2, 6, 8);
  v = IN(g, "v", KL_F32, 2, 6, 8);
  len = IN(g, "len", KL_I32, 3);
  CHECK_ERR(g, kl_attention(q, k, v, len), "attention: ", "sequence_mask(f32[2,4,6], i32[3])");
}

/* ---- names, scopes, outputs (no source location) ------------------------ */

Test(dsl_errors, names_and_scopes) {
  kl_graph *g = kl_graph_create("e");
  kl_scope_push(g, "a.b");
  cr_assert_not_null(kl_graph_error(g));
  cr_expect(strstr(kl_graph_error(g), "scope \"a.b\""), "%s", kl_graph_error(g));
  kl_graph_destroy(g);

  g = kl_graph_create("e");
  kl_scope_push(g, "");
  cr_assert_not_null(kl_graph_error(g));
  cr_expect(strstr(kl_graph_error(g), "empty"), "%s", kl_graph_error(g));
  kl_graph_destroy(g);

  g = kl_graph_create("e");
  for (int i = 0; i < 32; i++)
    kl_scope_push(g, "s");
  cr_expect_null(kl_graph_error(g), "32 scopes are allowed: %s", kl_graph_error(g));
  kl_scope_push(g, "deep");
  cr_assert_not_null(kl_graph_error(g));
  cr_expect(strstr(kl_graph_error(g), "32"), "%s", kl_graph_error(g));
  kl_graph_destroy(g);

  g = kl_graph_create("e");
  kl_scope_pop(g);
  cr_assert_not_null(kl_graph_error(g));
  cr_expect(strstr(kl_graph_error(g), "no scope"), "%s", kl_graph_error(g));
  kl_graph_destroy(g);

  g = kl_graph_create("e");
  kl_value x = IN(g, "x", KL_F32, 2);
  kl_value r = kl_name(x, "");
  cr_expect_eq(r.id, x.id);
  cr_assert_not_null(kl_graph_error(g));
  cr_expect(strstr(kl_graph_error(g), "name \"\""), "%s", kl_graph_error(g));
  kl_graph_destroy(g);

  g = kl_graph_create("e");
  x = IN(g, "x", KL_F32, 2);
  kl_value y = IN(g, "y", KL_F32, 2);
  kl_name(y, "x");
  cr_assert_not_null(kl_graph_error(g));
  cr_expect(strstr(kl_graph_error(g), "another input"), "%s", kl_graph_error(g));
  kl_graph_destroy(g);
}

/* ---- sticky errors, NULL graphs, invalid values, two graphs ------------ */

Test(dsl_errors, sticky) {
  kl_graph *g = kl_graph_create("e");
  kl_value a = IN(g, "a", KL_F32, 2, 3), b = IN(g, "b", KL_F32, 4, 5);
  BUILD(bad, kl_matmul(a, b));
  cr_assert(!kl_value_ok(bad));
  cr_expect_eq(bad.g, g);
  char first[1024];
  snprintf(first, sizeof first, "%s", kl_graph_error(g));
  char where[64];
  snprintf(where, sizeof where, "test_dsl_errors.c:%d: ", bad_ln);
  cr_expect(strncmp(first, where, strlen(where)) == 0, "%s", first);
  int n = kl_graph_ir(g)->nnodes;

  /* A valid call after the error returns an invalid value and adds nothing. */
  kl_value ok = kl_add(a, a);
  cr_expect(!kl_value_ok(ok));
  cr_expect_eq(ok.g, g);
  cr_expect(!kl_value_ok(IN(g, "c", KL_F32, 2)));
  cr_expect(!kl_value_ok(kl_param(g, "p", KL_F32, KL_SHAPE(2))));
  cr_expect(!kl_value_ok(kl_scalar(g, 1.0, KL_F32)));
  /* A second bad call does not replace the first message. */
  cr_expect(!kl_value_ok(kl_reshape(a, KL_SHAPE(-1, -1))));
  kl_output(a);
  cr_expect_eq(kl_graph_ir(g)->nnodes, n);
  cr_expect_eq(kl_graph_ir(g)->nrets, 0);
  cr_expect_str_eq(kl_graph_error(g), first);
  /* Values made before the error stay usable for queries. */
  cr_expect(kl_value_ok(a));
  cr_expect_eq(kl_dim(a, 1), 3);
  /* Propagation: builders on the invalid value stay quiet. */
  cr_expect(!kl_value_ok(kl_relu(kl_exp(bad))));
  cr_expect_str_eq(kl_graph_error(g), first);
  kl_graph_destroy(g);
}

Test(dsl_errors, invalid_operands_propagate_quietly) {
  kl_graph *g = kl_graph_create("e");
  kl_value x = IN(g, "x", KL_F32, 2, 3);
  kl_value none = kl_none();
  kl_value inv = {g, -1};
  cr_expect(!kl_value_ok(kl_add(x, none)));
  cr_expect(!kl_value_ok(kl_add(none, x)));
  cr_expect(!kl_value_ok(kl_matmul(inv, x)));
  cr_expect(!kl_value_ok(kl_select(inv, x, x)));
  cr_expect(!kl_value_ok(kl_layernorm(x, none, none, 1e-5)));
  cr_expect(!kl_value_ok(kl_attention(x, inv, x, none)));
  cr_expect(!kl_value_ok(kl_attention(x, x, x, inv)));
  kl_value xs[3] = {x, none, x};
  cr_expect(!kl_value_ok(kl_concat(3, xs, 0)));
  cr_expect(!kl_value_ok(kl_add_scalar(inv, 1.0)));
  cr_expect(!kl_value_ok(kl_sum_all(none)));
  cr_expect(!kl_value_ok(kl_reshape(inv, KL_SHAPE(-1))));
  cr_expect(!kl_value_ok(kl_slice(none, KL_INTS(0), KL_INTS(1))));
  cr_expect(!kl_value_ok(kl_cast(inv, (kl_dtype)42)));
  kl_output(none);
  kl_output(inv);
  cr_expect_eq(kl_graph_ir(g)->nrets, 0);
  cr_expect(!kl_value_ok(kl_name(none, "n")));
  cr_expect_null(kl_graph_error(g), "%s", kl_graph_error(g));
  cr_expect_eq(kl_graph_ir(g)->nnodes, 1);

  /* A forged id is caught, not dereferenced. */
  kl_value forged = {g, 999};
  cr_expect(!kl_value_ok(forged));
  BUILD(r, kl_neg(forged));
  cr_expect(!kl_value_ok(r));
  cr_assert_not_null(kl_graph_error(g));
  char where[64];
  snprintf(where, sizeof where, "test_dsl_errors.c:%d: neg(<invalid>)", r_ln);
  cr_expect(strstr(kl_graph_error(g), where), "%s", kl_graph_error(g));
  kl_graph_destroy(g);
}

Test(dsl_errors, null_graph) {
  cr_expect_null(kl_input(NULL, "x", KL_F32, KL_SHAPE(2)).g);
  cr_expect(!kl_value_ok(kl_input(NULL, "x", KL_F32, KL_SHAPE(2))));
  cr_expect(!kl_value_ok(kl_param(NULL, "w", KL_F32, KL_SHAPE(2))));
  cr_expect(!kl_value_ok(kl_scalar(NULL, 1.0, KL_F32)));
  float d = 1.0f;
  cr_expect(!kl_value_ok(kl_constant(NULL, KL_F32, KL_SCALAR, &d)));
  cr_expect(!kl_value_ok(kl_iota(NULL, KL_SHAPE(3), 0, KL_I32)));
  kl_value none = kl_none();
  cr_expect(!kl_value_ok(kl_add(none, none)));
  cr_expect(!kl_value_ok(kl_exp(none)));
  cr_expect(!kl_value_ok(kl_attention(none, none, none, none)));
  cr_expect(!kl_value_ok(kl_sum_all(none)));
  kl_value nones[2] = {none, none};
  cr_expect(!kl_value_ok(kl_concat(2, nones, 0)));
  kl_scope_push(NULL, "a");
  kl_scope_pop(NULL);
  kl_output(none);
  kl_name(none, "x");
  cr_expect_null(kl_graph_error(NULL));
  cr_expect_null(kl_graph_ir(NULL));
  cr_expect_null(kl_graph_to_string(NULL));
  kl_graph_print(NULL, stdout);
  kl_graph_destroy(NULL);
  cr_expect_eq(kl_rank(none), -1);
  cr_expect_eq(kl_dim(none, 0), -1);
}

Test(dsl_errors, two_graphs) {
  kl_graph *g1 = kl_graph_create("one"), *g2 = kl_graph_create("two");
  kl_value a = IN(g1, "a", KL_F32, 2), b = IN(g2, "b", KL_F32, 3);
  BUILD(r, kl_add(a, b));
  const int line = r_ln;
  cr_expect(!kl_value_ok(r));
  const char *msg = kl_graph_error(g1);
  cr_assert_not_null(msg);
  char where[64];
  snprintf(where, sizeof where, "test_dsl_errors.c:%d: ", line);
  cr_expect(strncmp(msg, where, strlen(where)) == 0, "%s", msg);
  cr_expect(strstr(msg, "add(f32[2], f32[3])"), "%s", msg);
  cr_expect(strstr(msg, "different graphs"), "%s", msg);
  cr_expect_null(kl_graph_error(g2), "the other graph is untouched");
  kl_graph_destroy(g1);

  kl_graph *g3 = kl_graph_create("three");
  kl_value q = IN(g3, "q", KL_F32, 2, 4, 8);
  r = kl_attention(q, b, b, kl_none());
  cr_expect(!kl_value_ok(r));
  cr_assert_not_null(kl_graph_error(g3));
  cr_expect(strstr(kl_graph_error(g3), "different graphs"), "%s", kl_graph_error(g3));
  kl_graph_destroy(g3);
  kl_graph_destroy(g2);
}
