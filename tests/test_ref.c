/* Reference interpreter behaviour the PyTorch goldens cannot show: dropout
 * in training mode, errors as values (bad gather index, bad label, argument
 * and parameter type mismatches), integer edge cases (division by zero,
 * wrap-around) and NaN-safe casts. Expected values are computed by hand. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ir/ir.h"
#include "runtime/philox.h"
#include "runtime/ref.h"

static ir_type ty(ir_dtype dt, int rank, int64_t d0, int64_t d1) {
  int64_t dims[2] = {d0, d1};
  return ir_type_make(dt, rank, dims);
}

static rt_tensor *tensor(ir_type t, const double *v) {
  rt_tensor *r = rt_tensor_create(&t);
  cr_assert(r);
  for (int64_t i = 0; v && i < rt_numel(r); i++)
    rt_set_f(r, i, v[i]);
  return r;
}

static int add(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs) {
  ir_diag d = {0};
  int id = ir_add_node(g, op, nin, in, attrs, NULL, &d);
  cr_assert(id >= 0, "ir_add_node(%s): %s", ir_op_get(op)->name, d.msg);
  return id;
}

static int arg(ir_graph *g, const char *name, ir_type t) {
  ir_diag d = {0};
  int id = ir_add_arg(g, name, &t, &d);
  cr_assert(id >= 0, "%s", d.msg);
  return id;
}

/* Runs a single-output graph; returns the output or NULL with d set. */
static rt_tensor *run1(ir_graph *g, const rt_tensor *const *args, const rt_ref_opts *o,
                       ir_diag *d) {
  rt_tensor *out = NULL;
  return rt_ref_run(g, args, NULL, NULL, o, &out, d) ? out : NULL;
}

/* ---- dropout ------------------------------------------------------------ */

static ir_graph *dropout_graph(int64_t n, double p, int *node) {
  ir_graph *g = ir_graph_create("drop");
  int x = arg(g, "x", ty(IR_F32, 1, n, 0));
  ir_attr a[2] = {{.kind = IR_ATTR_FLOAT, .f = p}, {.kind = IR_ATTR_INT, .i = -1}};
  *node = add(g, IR_OP_DROPOUT, 1, &x, a);
  ir_set_returns(g, 1, node);
  return g;
}

Test(ref_dropout, eval_is_identity) {
  int node;
  ir_graph *g = dropout_graph(100, 0.5, &node);
  rt_tensor *x = tensor(ty(IR_F32, 1, 100, 0), NULL);
  for (int i = 0; i < 100; i++)
    rt_set_f(x, i, i * 0.25 - 3);
  const rt_tensor *args[] = {x};
  rt_ref_opts eval = {.training = false, .seed = 1, .step = 2};
  const rt_ref_opts *modes[] = {NULL, &eval};
  for (int m = 0; m < 2; m++) {
    ir_diag d = {0};
    rt_tensor *y = run1(g, args, modes[m], &d);
    cr_assert(y, "%s", d.msg);
    cr_expect(memcmp(y->data, x->data, x->bytes) == 0, "dropout in eval mode changed values");
    rt_tensor_destroy(y);
  }
  rt_tensor_destroy(x);
  ir_graph_destroy(g);
}

Test(ref_dropout, training_p0_is_identity) {
  int node;
  ir_graph *g = dropout_graph(64, 0.0, &node);
  rt_tensor *x = tensor(ty(IR_F32, 1, 64, 0), NULL);
  for (int i = 0; i < 64; i++)
    rt_set_f(x, i, i + 1);
  const rt_tensor *args[] = {x};
  rt_ref_opts o = {.training = true, .seed = 5, .step = 1};
  ir_diag d = {0};
  rt_tensor *y = run1(g, args, &o, &d);
  cr_assert(y, "%s", d.msg);
  cr_expect(memcmp(y->data, x->data, x->bytes) == 0);
  rt_tensor_destroy(y);
  rt_tensor_destroy(x);
  ir_graph_destroy(g);
}

Test(ref_dropout, training_mask) {
  const int64_t n = 10000;
  const double p = 0.3;
  int node;
  ir_graph *g = dropout_graph(n, p, &node);
  rt_tensor *x = tensor(ty(IR_F32, 1, n, 0), NULL);
  for (int64_t i = 0; i < n; i++)
    rt_set_f(x, i, 2.0);
  const rt_tensor *args[] = {x};
  rt_ref_opts o = {.training = true, .seed = 1234, .step = 7};
  ir_diag d = {0};
  rt_tensor *y1 = run1(g, args, &o, &d), *y2 = run1(g, args, &o, &d);
  cr_assert(y1 && y2, "%s", d.msg);
  o.step = 8;
  rt_tensor *y3 = run1(g, args, &o, &d);
  cr_assert(y3, "%s", d.msg);

  float kept = (float)(2.0 / (1.0 - p));
  int64_t zeros = 0, differ = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = ((float *)y1->data)[i];
    cr_assert(v == 0.0f || v == kept, "element %lld is %g, expected 0 or %g", (long long)i, v,
              kept);
    zeros += v == 0.0f;
    /* the mask is the documented Philox stream: keep when u >= p */
    bool keep = rt_dropout_uniform(1234, 7, (uint32_t)node, (uint64_t)i) >= p;
    cr_assert_eq(keep, v != 0.0f, "element %lld disagrees with the Philox stream", (long long)i);
    differ += (((float *)y3->data)[i] == 0.0f) != (v == 0.0f);
  }
  double frac = (double)zeros / (double)n, sigma = sqrt(p * (1 - p) / (double)n);
  cr_expect(fabs(frac - p) < 4 * sigma, "dropped fraction %g, expected %g +- %g", frac, p,
            4 * sigma);
  cr_expect(memcmp(y1->data, y2->data, y1->bytes) == 0, "same seed/step/node gave another mask");
  /* two independent masks disagree on about 2p(1-p) = 42% of elements */
  cr_expect(differ > n / 4, "step 8 mask differs in only %lld elements", (long long)differ);
  rt_tensor_destroy(y1);
  rt_tensor_destroy(y2);
  rt_tensor_destroy(y3);
  rt_tensor_destroy(x);
  ir_graph_destroy(g);
}

/* ---- errors as values ------------------------------------------------------- */

Test(ref_errors, gather_index_out_of_range) {
  ir_graph *g = ir_graph_create("emb");
  int t = arg(g, "table", ty(IR_F32, 2, 50, 2));
  int ix = arg(g, "idx", ty(IR_I32, 1, 5, 0));
  int in[2] = {t, ix};
  int o = add(g, IR_OP_GATHER, 2, in, NULL);
  ir_node_set_name(g, o, "e");
  ir_node_set_loc(g, o, "model.c", 12);
  ir_set_returns(g, 1, &o);
  rt_tensor *table = tensor(ty(IR_F32, 2, 50, 2), NULL);
  double good[5] = {0, 49, 3, 4, 5};
  double bad[5] = {0, 1, 2, 57, 4};
  double neg[5] = {-1, 1, 2, 3, 4};
  const double *cases[3] = {good, bad, neg};
  const char *want[3] = {NULL,
                         "model.c:12: %e: gather: index 57 out of range [0, 50) at position 3",
                         "model.c:12: %e: gather: index -1 out of range [0, 50) at position 0"};
  for (int c = 0; c < 3; c++) {
    rt_tensor *idx = tensor(ty(IR_I32, 1, 5, 0), cases[c]);
    const rt_tensor *args[] = {table, idx};
    rt_tensor *sentinel = (rt_tensor *)&g, *out = sentinel;
    ir_diag d = {0};
    bool ok = rt_ref_run(g, args, NULL, NULL, NULL, &out, &d);
    if (!want[c]) {
      cr_expect(ok, "%s", d.msg);
      rt_tensor_destroy(out);
    } else {
      cr_expect(!ok);
      cr_expect(out == sentinel, "outs changed on failure");
      cr_expect_str_eq(d.msg, want[c]);
    }
    rt_tensor_destroy(idx);
  }
  rt_tensor_destroy(table);
  ir_graph_destroy(g);
}

Test(ref_errors, xent_bad_label) {
  ir_graph *g = ir_graph_create("loss");
  int lg = arg(g, "logits", ty(IR_F32, 2, 3, 5));
  int lb = arg(g, "labels", ty(IR_I64, 1, 3, 0));
  int in[2] = {lg, lb};
  int o = add(g, IR_OP_SOFTMAX_CROSS_ENTROPY, 2, in, NULL);
  ir_set_returns(g, 1, &o);
  rt_tensor *logits = tensor(ty(IR_F32, 2, 3, 5), NULL); /* all zero: loss log(5) */
  double good[3] = {1, -1, 4}, bad[3] = {0, 1, 7};
  rt_tensor *l1 = tensor(ty(IR_I64, 1, 3, 0), good), *l2 = tensor(ty(IR_I64, 1, 3, 0), bad);
  const rt_tensor *a1[] = {logits, l1}, *a2[] = {logits, l2};
  ir_diag d = {0};
  rt_tensor *y = run1(g, a1, NULL, &d);
  cr_assert(y, "%s", d.msg);
  cr_expect(fabs(rt_get_f(y, 0) - log(5.0)) < 1e-6);
  cr_expect(rt_get_f(y, 1) == 0.0, "ignored position has loss %g", rt_get_f(y, 1));
  cr_expect(fabs(rt_get_f(y, 2) - log(5.0)) < 1e-6);
  rt_tensor_destroy(y);
  cr_expect(run1(g, a2, NULL, &d) == NULL);
  cr_expect(strstr(d.msg, "label 7 out of range [0, 5) at position 2"), "message: %s", d.msg);
  cr_expect(strstr(d.msg, "softmax_cross_entropy"), "message: %s", d.msg);
  rt_tensor_destroy(l1);
  rt_tensor_destroy(l2);
  rt_tensor_destroy(logits);
  ir_graph_destroy(g);
}

Test(ref_errors, argument_type_mismatch) {
  ir_graph *g = ir_graph_create("f");
  int64_t dims[3] = {2, 4, 8};
  ir_type want = ir_type_make(IR_F32, 3, dims);
  int q = arg(g, "q", want);
  ir_set_returns(g, 1, &q);
  rt_tensor *small = tensor(ty(IR_F32, 2, 2, 4), NULL);
  rt_tensor *wrongdt = rt_tensor_create(&(ir_type){.dtype = IR_F64, .rank = 3, .dims = {2, 4, 8}});
  const rt_tensor *a1[] = {small}, *a2[] = {wrongdt};
  ir_diag d = {0};
  cr_expect(run1(g, a1, NULL, &d) == NULL);
  cr_expect_str_eq(d.msg, "input %q: expected f32[2,4,8], got f32[2,4]");
  cr_expect(run1(g, a2, NULL, &d) == NULL);
  cr_expect_str_eq(d.msg, "input %q: expected f32[2,4,8], got f64[2,4,8]");
  rt_tensor_destroy(small);
  rt_tensor_destroy(wrongdt);
  ir_graph_destroy(g);
}

static const rt_tensor *lookup(void *ctx, const ir_node *n) {
  (void)n;
  return ctx;
}

Test(ref_errors, parameters) {
  ir_graph *g = ir_graph_create("p");
  ir_attr name[4] = {{.kind = IR_ATTR_STR, .s = "enc.w"},
                     {.kind = IR_ATTR_STR, .s = "normal"},
                     {.kind = IR_ATTR_FLOAT, .f = 0.0},
                     {.kind = IR_ATTR_BOOL, .b = true}};
  ir_type t = ty(IR_F32, 2, 2, 3);
  ir_diag d = {0};
  int w = ir_add_node(g, IR_OP_PARAM, 0, NULL, name, &t, &d);
  cr_assert(w >= 0, "%s", d.msg);
  ir_node_set_name(g, w, "w");
  int in[2] = {w, w};
  int o = add(g, IR_OP_ADD, 2, in, NULL);
  ir_set_returns(g, 1, &o);
  rt_tensor *out = NULL;
  cr_expect(!rt_ref_run(g, NULL, lookup, NULL, NULL, &out, &d));
  cr_expect(strstr(d.msg, "parameter 'enc.w' has no value"), "message: %s", d.msg);
  rt_tensor *bad = tensor(ty(IR_F32, 2, 3, 2), NULL);
  cr_expect(!rt_ref_run(g, NULL, lookup, bad, NULL, &out, &d));
  cr_expect(strstr(d.msg, "f32[2,3]") && strstr(d.msg, "f32[3,2]") && strstr(d.msg, "enc.w"),
            "message: %s", d.msg);
  double v[6] = {1, 2, 3, 4, 5, 6};
  rt_tensor *good = tensor(t, v);
  cr_assert(rt_ref_run(g, NULL, lookup, good, NULL, &out, &d), "%s", d.msg);
  for (int i = 0; i < 6; i++)
    cr_expect(rt_get_f(out, i) == 2 * v[i]);
  cr_expect(out != good && out->data != good->data, "output must be an owned copy");
  rt_tensor_destroy(out);
  rt_tensor_destroy(good);
  rt_tensor_destroy(bad);
  ir_graph_destroy(g);
}

/* ---- integer and cast edge cases --------------------------------------------- */

/* a OP b elementwise on two i32/i64 vectors of length n. */
static rt_tensor *int_binop(ir_op op, ir_dtype dt, int n, const int64_t *a, const int64_t *b) {
  ir_graph *g = ir_graph_create("i");
  ir_type t = ty(dt, 1, n, 0);
  int in[2] = {arg(g, "a", t), arg(g, "b", t)};
  int o = add(g, op, 2, in, NULL);
  ir_set_returns(g, 1, &o);
  rt_tensor *ta = rt_tensor_create(&t), *tb = rt_tensor_create(&t);
  for (int i = 0; i < n; i++) {
    rt_set_i(ta, i, a[i]);
    rt_set_i(tb, i, b[i]);
  }
  const rt_tensor *args[] = {ta, tb};
  ir_diag d = {0};
  rt_tensor *y = run1(g, args, NULL, &d);
  cr_assert(y, "%s", d.msg);
  rt_tensor_destroy(ta);
  rt_tensor_destroy(tb);
  ir_graph_destroy(g);
  return y;
}

Test(ref_int, division) {
  int64_t a[6] = {7, -7, 7, 5, INT32_MIN, -9};
  int64_t b[6] = {2, 2, 0, -1, -1, 0};
  int64_t want[6] = {3, -3, 0, -5, INT32_MIN, 0}; /* trunc; x/0 = 0; INT_MIN/-1 wraps */
  rt_tensor *y = int_binop(IR_OP_DIV, IR_I32, 6, a, b);
  for (int i = 0; i < 6; i++)
    cr_expect_eq(rt_get_i(y, i), want[i], "i32 element %d: %lld", i, (long long)rt_get_i(y, i));
  rt_tensor_destroy(y);
  int64_t a64[3] = {INT64_MIN, -1, 100};
  int64_t b64[3] = {-1, 0, -7};
  int64_t w64[3] = {INT64_MIN, 0, -14};
  y = int_binop(IR_OP_DIV, IR_I64, 3, a64, b64);
  for (int i = 0; i < 3; i++)
    cr_expect_eq(rt_get_i(y, i), w64[i], "i64 element %d: %lld", i, (long long)rt_get_i(y, i));
  rt_tensor_destroy(y);
}

Test(ref_int, wraparound) {
  int64_t a[3] = {INT32_MAX, INT32_MIN, 65536};
  int64_t b[3] = {1, 1, 65536};
  rt_tensor *s = int_binop(IR_OP_ADD, IR_I32, 3, a, b);
  rt_tensor *m = int_binop(IR_OP_MUL, IR_I32, 3, a, b);
  rt_tensor *d = int_binop(IR_OP_SUB, IR_I32, 3, b, a);
  cr_expect_eq(rt_get_i(s, 0), INT32_MIN);
  cr_expect_eq(rt_get_i(m, 2), 0);             /* 2^32 wraps to 0 */
  cr_expect_eq(rt_get_i(d, 1), INT32_MIN + 1); /* 1 - INT32_MIN = 2^31 + 1 wraps */
  rt_tensor_destroy(s);
  rt_tensor_destroy(m);
  rt_tensor_destroy(d);
  int64_t a64[2] = {INT64_MAX, INT64_MIN}, b64[2] = {1, -1};
  rt_tensor *s64 = int_binop(IR_OP_ADD, IR_I64, 2, a64, b64);
  cr_expect_eq(rt_get_i(s64, 0), INT64_MIN);
  cr_expect_eq(rt_get_i(s64, 1), INT64_MAX);
  rt_tensor_destroy(s64);
}

Test(ref_cast, float_to_int_never_ub) {
  ir_graph *g = ir_graph_create("c");
  int x = arg(g, "x", ty(IR_F64, 1, 8, 0));
  ir_attr to32 = {.kind = IR_ATTR_DTYPE, .dt = IR_I32};
  ir_attr to64 = {.kind = IR_ATTR_DTYPE, .dt = IR_I64};
  ir_attr tob = {.kind = IR_ATTR_DTYPE, .dt = IR_BOOL};
  int r[3] = {add(g, IR_OP_CAST, 1, &x, &to32), add(g, IR_OP_CAST, 1, &x, &to64),
              add(g, IR_OP_CAST, 1, &x, &tob)};
  ir_set_returns(g, 3, r);
  double v[8] = {NAN, 1e10, -1e10, -2.7, 2.7, INFINITY, -INFINITY, 0.0};
  rt_tensor *in = tensor(ty(IR_F64, 1, 8, 0), v);
  const rt_tensor *args[] = {in};
  rt_tensor *outs[3] = {0};
  ir_diag d = {0};
  cr_assert(rt_ref_run(g, args, NULL, NULL, NULL, outs, &d), "%s", d.msg);
  int64_t w32[8] = {0, INT32_MAX, INT32_MIN, -2, 2, INT32_MAX, INT32_MIN, 0};
  int64_t w64[8] = {0, 10000000000, -10000000000, -2, 2, INT64_MAX, INT64_MIN, 0};
  int64_t wb[8] = {1, 1, 1, 1, 1, 1, 1, 0}; /* NaN != 0 is true */
  for (int i = 0; i < 8; i++) {
    cr_expect_eq(rt_get_i(outs[0], i), w32[i], "i32[%d] = %lld", i,
                 (long long)rt_get_i(outs[0], i));
    cr_expect_eq(rt_get_i(outs[1], i), w64[i], "i64[%d] = %lld", i,
                 (long long)rt_get_i(outs[1], i));
    cr_expect_eq(rt_get_i(outs[2], i), wb[i], "bool[%d]", i);
  }
  for (int i = 0; i < 3; i++)
    rt_tensor_destroy(outs[i]);
  rt_tensor_destroy(in);
  ir_graph_destroy(g);
}

/* ---- the driver ------------------------------------------------------------- */

/* Intermediates die after their last use while returned values (one of them
 * also an operand later, one returned twice) survive as owned copies. */
Test(ref_run, intermediates_and_returns) {
  ir_graph *g = ir_graph_create("chain");
  ir_type t = ty(IR_F32, 1, 3, 0);
  int x = arg(g, "x", t);
  int xx[2] = {x, x};
  int s = add(g, IR_OP_ADD, 2, xx, NULL); /* 2x */
  int ss[2] = {s, x};
  int m = add(g, IR_OP_MUL, 2, ss, NULL);    /* 2x^2 */
  int dead = add(g, IR_OP_NEG, 1, &m, NULL); /* unused */
  (void)dead;
  int ms[2] = {m, s};
  int r = add(g, IR_OP_SUB, 2, ms, NULL); /* 2x^2 - 2x */
  int rets[4] = {r, s, r, x};
  ir_set_returns(g, 4, rets);
  double v[3] = {1, 2, -3};
  rt_tensor *in = tensor(t, v);
  const rt_tensor *args[] = {in};
  rt_tensor *outs[4] = {0};
  ir_diag d = {0};
  cr_assert(rt_ref_run(g, args, NULL, NULL, NULL, outs, &d), "%s", d.msg);
  double want_r[3] = {0, 4, 24}, want_s[3] = {2, 4, -6};
  for (int i = 0; i < 3; i++) {
    cr_expect(rt_get_f(outs[0], i) == want_r[i]);
    cr_expect(rt_get_f(outs[2], i) == want_r[i]);
    cr_expect(rt_get_f(outs[1], i) == want_s[i]);
    cr_expect(rt_get_f(outs[3], i) == v[i]);
  }
  cr_expect(outs[0] != outs[2] && outs[3] != in && outs[3]->data != in->data);
  for (int i = 0; i < 4; i++)
    rt_tensor_destroy(outs[i]);
  rt_tensor_destroy(in);
  ir_graph_destroy(g);
}

Test(ref_run, eval_node_names_the_node) {
  ir_graph *g = ir_graph_create("e");
  int t = arg(g, "t", ty(IR_F32, 1, 4, 0));
  int ix = arg(g, "i", ty(IR_I64, 1, 2, 0));
  int in[2] = {t, ix};
  int o = add(g, IR_OP_GATHER, 2, in, NULL);
  rt_tensor *tt = tensor(ty(IR_F32, 1, 4, 0), (double[]){10, 11, 12, 13});
  rt_tensor *ii = tensor(ty(IR_I64, 1, 2, 0), (double[]){3, 4});
  rt_tensor *out = rt_tensor_create(&ir_node_at(g, o)->type);
  const rt_tensor *args[] = {tt, ii};
  ir_diag d = {0};
  cr_expect(!rt_ref_eval_node(ir_node_at(g, o), args, out, NULL, &d));
  char want[128];
  snprintf(want, sizeof want, "%%%d: gather: index 4 out of range [0, 4) at position 1", o);
  cr_expect_str_eq(d.msg, want);
  rt_set_i(ii, 1, 0);
  cr_assert(rt_ref_eval_node(ir_node_at(g, o), args, out, NULL, &d), "%s", d.msg);
  cr_expect(rt_get_f(out, 0) == 13 && rt_get_f(out, 1) == 10);
  rt_tensor_destroy(out);
  rt_tensor_destroy(tt);
  rt_tensor_destroy(ii);
  ir_graph_destroy(g);
}

Test(ref_kernels, relu_keeps_nan_and_compare_nan_is_false) {
  ir_graph *g = ir_graph_create("n");
  ir_type t = ty(IR_F32, 1, 3, 0);
  int x = arg(g, "x", t);
  int r = add(g, IR_OP_RELU, 1, &x, NULL);
  int xx[2] = {x, x};
  int e = add(g, IR_OP_CMP_EQ, 2, xx, NULL);
  int rets[2] = {r, e};
  ir_set_returns(g, 2, rets);
  rt_tensor *in = tensor(t, (double[]){NAN, -1, 2});
  const rt_tensor *args[] = {in};
  rt_tensor *outs[2] = {0};
  ir_diag d = {0};
  cr_assert(rt_ref_run(g, args, NULL, NULL, NULL, outs, &d), "%s", d.msg);
  cr_expect(isnan(rt_get_f(outs[0], 0)));
  cr_expect(rt_get_f(outs[0], 1) == 0 && rt_get_f(outs[0], 2) == 2);
  cr_expect(rt_get_i(outs[1], 0) == 0 && rt_get_i(outs[1], 1) == 1 && rt_get_i(outs[1], 2) == 1);
  rt_tensor_destroy(outs[0]);
  rt_tensor_destroy(outs[1]);
  rt_tensor_destroy(in);
  ir_graph_destroy(g);
}

/* The maximum over an empty axis is the dtype's least value (-inf for
 * floats, INT32_MIN / INT64_MIN for integers), never a truncated int64. */
Test(ref_reduce, max_of_nothing_is_the_least_value) {
  const ir_dtype dts[] = {IR_I32, IR_I64, IR_F32};
  for (int k = 0; k < 3; k++) {
    ir_graph *g = ir_graph_create("m");
    ir_diag d = {0};
    int64_t dims[] = {2, 0};
    ir_type t = ir_type_make(dts[k], 2, dims);
    int x = ir_add_arg(g, "x", &t, &d);
    ir_attr at[2];
    ir_attrs_default(g, IR_OP_REDUCE_MAX, at);
    int64_t axes[] = {1};
    at[0].ints = (ir_ints){1, axes};
    int y = ir_add_node(g, IR_OP_REDUCE_MAX, 1, &x, at, NULL, &d);
    cr_assert(y >= 0, "%s", d.msg);
    ir_set_returns(g, 1, &y);
    rt_tensor *in = rt_tensor_create(&t), *out = NULL;
    const rt_tensor *args[] = {in};
    cr_assert(rt_ref_run(g, args, NULL, NULL, NULL, &out, &d), "%s", d.msg);
    if (dts[k] == IR_F32)
      cr_expect(isinf(rt_get_f(out, 1)) && rt_get_f(out, 1) < 0);
    else
      cr_expect_eq(rt_get_i(out, 0), dts[k] == IR_I32 ? INT32_MIN : INT64_MIN, "%s: %lld",
                   ir_dtype_name(dts[k]), (long long)rt_get_i(out, 0));
    rt_tensor_destroy(out);
    rt_tensor_destroy(in);
    ir_graph_destroy(g);
  }
}
