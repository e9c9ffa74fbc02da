/* pass_autodiff, op by op: every differentiable op's gradient against
 * central differences of the reference interpreter in f64 (broadcasting,
 * keepdims, negative axes, transpose flags, batch broadcast), PyTorch's
 * conventions at kinks and ties checked by hand, and the driver's
 * contract: only needed nodes, zeros for an unrelated loss, same-name
 * parameters summed, errors naming the node. */
#include "tests/grad_harness.h"

#define F64 KL_F64
#define ONE(x) ((const char *const[]){x})
#define TWO(x, y) ((const char *const[]){x, y})

typedef kl_value (*binary_fn)(kl_value, kl_value, const char *, int);

static const struct {
  const char *name;
  binary_fn fn;
} binary_ops[] = {{"add", kl_add_at}, {"sub", kl_sub_at}, {"mul", kl_mul_at}, {"div", kl_div_at},
                  {"pow", kl_pow_at}, {"max", kl_max_at}, {"min", kl_min_at}};

static const struct {
  kl_ints a, b;
} binary_shapes[] = {
    {KL_SHAPE(2, 3), KL_SHAPE(2, 3)}, {KL_SHAPE(2, 3), KL_SHAPE(3)},
    {KL_SHAPE(3, 1), KL_SHAPE(1, 4)}, {KL_SCALAR, KL_SHAPE(2, 3)},
    {KL_SHAPE(4), KL_SHAPE(2, 3, 4)}, {KL_SHAPE(2, 1, 4), KL_SHAPE(3, 1)},
};

Test(autodiff_grad, binary_broadcasting) {
  for (size_t o = 0; o < sizeof binary_ops / sizeof *binary_ops; o++) {
    for (size_t s = 0; s < sizeof binary_shapes / sizeof *binary_shapes; s++) {
      kl_graph *kg = kl_graph_create("bin");
      kl_value a = kl_input(kg, "a", F64, binary_shapes[s].a);
      kl_value b = kl_input(kg, "b", F64, binary_shapes[s].b);
      kl_output(binary_ops[o].fn(a, b, __FILE__, __LINE__));
      gh h;
      gh_init_dsl(&h, kg, 100 + o * 10 + s);
      const char *op = binary_ops[o].name;
      if (!strcmp(op, "div")) gh_fill_away0(&h, "b", 0.5, 1.5);
      if (!strcmp(op, "pow")) {
        gh_fill(&h, "a", 0.5, 2.0);
        gh_fill(&h, "b", -1.5, 1.5);
      }
      char what[64];
      snprintf(what, sizeof what, "%s shapes #%zu", op, s);
      gh_check(&h, what, 2, TWO("a", "b"));
      gh_free(&h);
    }
  }
}

typedef kl_value (*unary_fn)(kl_value, const char *, int);
static kl_value gelu_exact(kl_value x, const char *f, int l) { return kl_gelu_at(x, false, f, l); }
static kl_value gelu_tanh(kl_value x, const char *f, int l) { return kl_gelu_at(x, true, f, l); }

Test(autodiff_grad, unary) {
  static const struct {
    const char *name;
    unary_fn fn;
    double lo, hi;
    bool away0; /* kink at 0 */
  } ops[] = {{"neg", kl_neg_at, -1, 1, false},         {"abs", kl_abs_at, 0.1, 1, true},
             {"relu", kl_relu_at, 0.1, 1, true},       {"exp", kl_exp_at, -1, 1, false},
             {"log", kl_log_at, 0.3, 2, false},        {"tanh", kl_tanh_at, -2, 2, false},
             {"sigmoid", kl_sigmoid_at, -3, 3, false}, {"sqrt", kl_sqrt_at, 0.3, 2, false},
             {"rsqrt", kl_rsqrt_at, 0.3, 2, false},    {"sin", kl_sin_at, -3, 3, false},
             {"cos", kl_cos_at, -3, 3, false},         {"erf", kl_erf_at, -3, 3, false},
             {"gelu", gelu_exact, -3, 3, false},       {"gelu_tanh", gelu_tanh, -3, 3, false}};
  for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
    kl_graph *kg = kl_graph_create("un");
    kl_value x = kl_input(kg, "x", F64, KL_SHAPE(3, 4));
    kl_output(ops[o].fn(x, __FILE__, __LINE__));
    gh h;
    gh_init_dsl(&h, kg, 200 + o);
    if (ops[o].away0)
      gh_fill_away0(&h, "x", ops[o].lo, ops[o].hi);
    else
      gh_fill(&h, "x", ops[o].lo, ops[o].hi);
    gh_check(&h, ops[o].name, 1, ONE("x"));
    gh_free(&h);
  }
}

Test(autodiff_grad, select_and_comparisons) {
  /* select(x > c, a, b) with broadcast operands: the condition is bool and
   * gets no gradient, x reaches the loss only through it (none either). */
  kl_graph *kg = kl_graph_create("sel");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3));
  kl_value a = kl_input(kg, "a", F64, KL_SHAPE(3));
  kl_value b = kl_input(kg, "b", F64, KL_SHAPE(2, 1));
  kl_output(kl_select(kl_gt(x, kl_scalar(kg, 0.0, F64)), kl_mul(a, x), b));
  gh h;
  gh_init_dsl(&h, kg, 300);
  gh_fill_away0(&h, "x", 0.2, 1);
  gh_check(&h, "select", 3, ((const char *const[]){"x", "a", "b"}));
  gh_free(&h);
}

Test(autodiff_grad, reductions) {
  static const struct {
    int op; /* 0 sum, 1 mean, 2 reduce_max */
    kl_ints axes;
    bool keep;
  } cases[] = {{0, KL_INTS(1), false},       {0, KL_INTS(0, 2), true},  {0, KL_INTS(-1), true},
               {0, KL_INTS(0, 1, 2), false}, {1, KL_INTS(0, 2), false}, {1, KL_INTS(-2), true},
               {2, KL_INTS(1), false},       {2, KL_INTS(0, 2), true},  {2, KL_INTS(-1), false}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    kl_graph *kg = kl_graph_create("red");
    kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3, 4));
    kl_value y = cases[c].op == 0   ? kl_sum(x, cases[c].axes, cases[c].keep)
                 : cases[c].op == 1 ? kl_mean(x, cases[c].axes, cases[c].keep)
                                    : kl_reduce_max(x, cases[c].axes, cases[c].keep);
    kl_output(y);
    gh h;
    gh_init_dsl(&h, kg, 400 + c);
    char what[32];
    snprintf(what, sizeof what, "reduction #%zu", c);
    gh_check(&h, what, 1, ONE("x"));
    gh_free(&h);
  }
}

Test(autodiff_grad, softmax_log_softmax) {
  for (int axis = -1; axis <= 1; axis++) {
    for (int lg = 0; lg < 2; lg++) {
      kl_graph *kg = kl_graph_create("sm");
      kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3, 4));
      kl_output(lg ? kl_log_softmax(x, axis) : kl_softmax(x, axis));
      gh h;
      gh_init_dsl(&h, kg, 500 + axis * 2 + lg);
      gh_fill(&h, "x", -2, 2);
      gh_check(&h, lg ? "log_softmax" : "softmax", 1, ONE("x"));
      gh_free(&h);
    }
  }
}

Test(autodiff_grad, layernorm) {
  kl_graph *kg = kl_graph_create("ln");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3, 5));
  kl_value gm = kl_input(kg, "gamma", F64, KL_SHAPE(5));
  kl_value bt = kl_input(kg, "beta", F64, KL_SHAPE(5));
  kl_output(kl_layernorm(x, gm, bt, 1e-5));
  gh h;
  gh_init_dsl(&h, kg, 600);
  gh_fill(&h, "x", -2, 2);
  gh_check(&h, "layernorm", 3, ((const char *const[]){"x", "gamma", "beta"}));
  gh_free(&h);
}

Test(autodiff_grad, layout_ops) {
  for (int c = 0; c < 6; c++) {
    kl_graph *kg = kl_graph_create("lay");
    kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3, 4));
    kl_value y;
    switch (c) {
    case 0: y = kl_reshape(x, KL_SHAPE(4, 6)); break;
    case 1: y = kl_transpose(x, KL_INTS(2, 0, 1)); break;
    case 2:
      y = kl_broadcast_to(kl_slice(x, KL_INTS(0, 0, 1), KL_INTS(2, 1, 2)), KL_SHAPE(5, 2, 3, 1));
      break;
    case 3: y = kl_slice(x, KL_INTS(1, 1, 0), KL_INTS(2, 3, 3)); break;
    case 4: y = kl_slice(x, KL_INTS(0, 0, 2), KL_INTS(2, 3, 4)); break;
    default: {
      kl_value parts[3] = {x, kl_mul(x, x), kl_slice(x, KL_INTS(0, 0, 1), KL_INTS(2, 3, 3))};
      y = kl_concat(3, parts, -1);
      break;
    }
    }
    kl_output(y);
    gh h;
    gh_init_dsl(&h, kg, 700 + c);
    char what[32];
    snprintf(what, sizeof what, "layout #%d", c);
    gh_check(&h, what, 1, ONE("x"));
    gh_free(&h);
  }
}

Test(autodiff_grad, concat_axis0_of_inputs) {
  kl_graph *kg = kl_graph_create("cat");
  kl_value a = kl_input(kg, "a", F64, KL_SHAPE(1, 3));
  kl_value b = kl_input(kg, "b", F64, KL_SHAPE(2, 3));
  kl_value parts[3] = {b, a, b};
  kl_output(kl_concat(3, parts, 0));
  gh h;
  gh_init_dsl(&h, kg, 750);
  gh_check(&h, "concat", 2, TWO("a", "b"));
  gh_free(&h);
}

Test(autodiff_grad, gather_repeated_indices) {
  kl_graph *kg = kl_graph_create("gat");
  kl_value t = kl_input(kg, "table", F64, KL_SHAPE(5, 3));
  kl_value idx = kl_input(kg, "idx", KL_I32, KL_SHAPE(2, 3));
  kl_output(kl_gather(t, idx));
  gh h;
  gh_init_dsl(&h, kg, 800);
  gh_set(&h, "idx", (const double[]){1, 4, 1, 0, 1, 4});
  gh_check(&h, "gather", 1, ONE("table"));
  gh_free(&h);
}

Test(autodiff_grad, matmul_flags_and_batch_broadcast) {
  /* a is [.., m, k] ([.., k, m] when transposed), b [.., k, n] ([.., n, k]) */
  static const struct {
    kl_ints a, b;
    bool ta, tb;
  } cases[] = {
      {KL_SHAPE(3, 4), KL_SHAPE(4, 2), false, false},
      {KL_SHAPE(4, 3), KL_SHAPE(4, 2), true, false},
      {KL_SHAPE(3, 4), KL_SHAPE(2, 4), false, true},
      {KL_SHAPE(4, 3), KL_SHAPE(2, 4), true, true},
      {KL_SHAPE(2, 3, 4), KL_SHAPE(4, 2), false, false},
      {KL_SHAPE(2, 3, 4), KL_SHAPE(2, 4), false, true},     /* shared weight, folded batch */
      {KL_SHAPE(2, 2, 3, 4), KL_SHAPE(4, 2), false, false}, /* two batch dims folded */
      {KL_SHAPE(2, 1, 3, 4), KL_SHAPE(3, 2, 4), false, true},
      {KL_SHAPE(1, 4, 3), KL_SHAPE(2, 4, 2), true, false},
      {KL_SHAPE(2, 1, 4, 3), KL_SHAPE(1, 3, 2, 4), true, true},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    kl_graph *kg = kl_graph_create("mm");
    kl_value a = kl_input(kg, "a", F64, cases[c].a);
    kl_value b = kl_input(kg, "b", F64, cases[c].b);
    kl_output(kl_matmul_t(a, b, cases[c].ta, cases[c].tb));
    gh h;
    gh_init_dsl(&h, kg, 900 + c);
    char what[32];
    snprintf(what, sizeof what, "matmul #%zu", c);
    gh_check(&h, what, 2, TWO("a", "b"));
    gh_free(&h);
  }
}

Test(autodiff_grad, sequence_mask) {
  kl_graph *kg = kl_graph_create("sm");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3, 4));
  kl_value len = kl_input(kg, "len", KL_I32, KL_SHAPE(2, 3));
  kl_output(kl_sequence_mask(x, len, 2.5));
  gh h;
  gh_init_dsl(&h, kg, 1000);
  gh_set(&h, "len", (const double[]){0, 1, 4, 2, 3, 1});
  gh_check(&h, "sequence_mask", 1, ONE("x"));
  gh_free(&h);
}

Test(autodiff_grad, softmax_cross_entropy) {
  for (int ign = -1; ign <= 2; ign += 3) {
    kl_graph *kg = kl_graph_create("xe");
    kl_value x = kl_input(kg, "logits", F64, KL_SHAPE(2, 3, 5));
    kl_value lb = kl_input(kg, "labels", KL_I64, KL_SHAPE(2, 3));
    kl_output(kl_softmax_cross_entropy(x, lb, ign));
    gh h;
    gh_init_dsl(&h, kg, 1100 + ign);
    gh_fill(&h, "logits", -3, 3);
    gh_set(&h, "labels", (const double[]){4, ign, 0, 2, 3, 1});
    gh_check(&h, "softmax_cross_entropy", 1, ONE("logits"));
    gh_free(&h);
  }
}

Test(autodiff_grad, cast_float_to_float) {
  /* d sum(cast(x, f64)^2) / dx = 2x, cast back to f32: exact in f32 */
  kl_graph *kg = kl_graph_create("cast");
  kl_value x = kl_input(kg, "x", KL_F32, KL_SHAPE(4));
  kl_value y = kl_cast(x, F64);
  kl_output(kl_mul(y, y));
  gh h;
  gh_init_dsl(&h, kg, 1200);
  gh_set(&h, "x", (const double[]){0.5, -1.25, 3, 0.125});
  rt_tensor_destroy(h.w);
  int64_t four = 4;
  ir_type wt = ir_type_make(IR_F64, 1, &four);
  h.w = rt_tensor_create(&wt);
  for (int i = 0; i < 4; i++)
    rt_set_f(h.w, i, 1.0);
  rt_tensor *g[1];
  gh_grads(&h, 1, ONE("x"), g);
  cr_assert_eq(g[0]->type.dtype, IR_F32);
  const double want[] = {1.0, -2.5, 6, 0.25};
  for (int i = 0; i < 4; i++)
    cr_expect_eq(rt_get_f(g[0], i), want[i], "dx[%d] = %g, want %g", i, rt_get_f(g[0], i), want[i]);
  rt_tensor_destroy(g[0]);
  gh_free(&h);
}

Test(autodiff_grad, dropout_training_same_mask) {
  kl_graph *kg = kl_graph_create("drop");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(4, 8));
  kl_value w = kl_input(kg, "w", F64, KL_SHAPE(8));
  kl_output(kl_mul(kl_dropout(kl_tanh(kl_mul(x, w)), 0.5), w));
  gh h;
  gh_init_dsl(&h, kg, 1300);
  h.opts = (rt_ref_opts){.training = true, .seed = 7, .step = 3};
  gh_check(&h, "dropout (training)", 2, TWO("x", "w"));
  /* the mask must actually drop something, else this tests nothing */
  rt_tensor *g[1];
  gh_grads(&h, 1, ONE("x"), g);
  int zeros = 0;
  for (int64_t i = 0; i < rt_numel(g[0]); i++)
    zeros += rt_get_f(g[0], i) == 0.0;
  cr_expect(zeros > 4 && zeros < 28, "%d of 32 gradients are zero", zeros);
  rt_tensor_destroy(g[0]);
  gh_free(&h);
}

/* ---- conventions at kinks and ties, by hand ------------------------------ */

/* gradient of sum(f(x)) w.r.t. x (w = ones) */
static void grads_ones(gh *h, int nwrt, const char *const *names, rt_tensor **g) {
  for (int64_t i = 0; i < rt_numel(h->w); i++)
    rt_set_f(h->w, i, 1.0);
  gh_grads(h, nwrt, names, g);
}

static void expect_values(const rt_tensor *t, const double *want, const char *what) {
  for (int64_t i = 0; i < rt_numel(t); i++)
    cr_expect(fabs(rt_get_f(t, i) - want[i]) <= 1e-15, "%s[%lld] = %.17g, want %.17g", what,
              (long long)i, rt_get_f(t, i), want[i]);
}

Test(autodiff_conventions, relu_abs_at_zero) {
  kl_graph *kg = kl_graph_create("k");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(3));
  kl_output(kl_add(kl_relu(x), kl_mul_scalar(kl_abs(x), 10.0)));
  gh h;
  gh_init_dsl(&h, kg, 1);
  gh_set(&h, "x", (const double[]){-2, 0, 3});
  rt_tensor *g[1];
  grads_ones(&h, 1, ONE("x"), g);
  expect_values(g[0], (const double[]){-10, 0, 11}, "d/dx (relu + 10 abs)");
  rt_tensor_destroy(g[0]);
  gh_free(&h);
}

Test(autodiff_conventions, max_min_ties_split) {
  kl_graph *kg = kl_graph_create("t");
  kl_value a = kl_input(kg, "a", F64, KL_SHAPE(3));
  kl_value b = kl_input(kg, "b", F64, KL_SHAPE(3));
  kl_output(kl_add(kl_max(a, b), kl_mul_scalar(kl_min(a, b), 10.0)));
  gh h;
  gh_init_dsl(&h, kg, 2);
  gh_set(&h, "a", (const double[]){1, 2, 3});
  gh_set(&h, "b", (const double[]){0, 2, 5});
  rt_tensor *g[2];
  grads_ones(&h, 2, TWO("a", "b"), g);
  expect_values(g[0], (const double[]){1, 5.5, 10}, "da");
  expect_values(g[1], (const double[]){10, 5.5, 1}, "db");
  rt_tensor_destroy(g[0]);
  rt_tensor_destroy(g[1]);
  gh_free(&h);
}

Test(autodiff_conventions, reduce_max_ties_share) {
  kl_graph *kg = kl_graph_create("t");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 4));
  kl_output(kl_reduce_max(x, KL_INTS(1), false));
  gh h;
  gh_init_dsl(&h, kg, 3);
  gh_set(&h, "x", (const double[]){1, 3, 3, 3, 0, 2, -1, 2});
  rt_tensor *g[1];
  grads_ones(&h, 1, ONE("x"), g);
  expect_values(g[0], (const double[]){0, 1. / 3, 1. / 3, 1. / 3, 0, 0.5, 0, 0.5}, "dx");
  rt_tensor_destroy(g[0]);
  gh_free(&h);
}

Test(autodiff_conventions, pow_at_zero_base) {
  /* torch: d(a^b)/db = 0 where a == 0 and b >= 0; d/da = 0 where b == 0 */
  kl_graph *kg = kl_graph_create("p");
  kl_value a = kl_input(kg, "a", F64, KL_SHAPE(3));
  kl_value b = kl_input(kg, "b", F64, KL_SHAPE(3));
  kl_output(kl_pow(a, b));
  gh h;
  gh_init_dsl(&h, kg, 4);
  gh_set(&h, "a", (const double[]){0, 0, 2});
  gh_set(&h, "b", (const double[]){2, 0, 3});
  rt_tensor *g[2];
  grads_ones(&h, 2, TWO("a", "b"), g);
  expect_values(g[0], (const double[]){0, 0, 12}, "da");
  expect_values(g[1], (const double[]){0, 0, 8 * log(2.0)}, "db");
  rt_tensor_destroy(g[0]);
  rt_tensor_destroy(g[1]);
  gh_free(&h);
}

/* ---- the driver's contract ---------------------------------------------- */

static ir_graph *parse(const char *text) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "t.kir", &d);
  cr_assert(g, "%s", d.msg);
  return g;
}

static int named(const ir_graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name)) return i;
  cr_assert_fail("no %%%s", name);
  return -1;
}

Test(autodiff_driver, only_needed_gradients_are_built) {
  const char *text = "graph @two(%x: f64[3]) {\n"
                     "  %w1 = param(\"w1\") : f64[3]\n"
                     "  %w2 = param(\"w2\") : f64[3]\n"
                     "  %a = mul(%x, %w1) : f64[3]\n"
                     "  %b = exp(%w2) : f64[3]\n"
                     "  %c = mul(%b, %x) : f64[3]\n"
                     "  %y = add(%a, %c) : f64[3]\n"
                     "  return %y\n"
                     "}\n";
  ir_graph *g = parse(text);
  int n0 = g->nnodes, wrt = named(g, "w1"), grad;
  ir_diag d = {0};
  cr_assert(pass_autodiff(g, named(g, "y"), 1, &wrt, &grad, &d), "%s", d.msg);
  /* seed ones (const + broadcast_to), then d a/d w1 = g * x: one mul. No
   * exp, no mul with %b, nothing for the w2 branch. */
  for (int id = n0; id < g->nnodes; id++) {
    const ir_node *n = g->nodes[id];
    cr_expect(n->op != IR_OP_EXP && n->op != IR_OP_NEG, "unneeded %s built",
              ir_op_get(n->op)->name);
    for (int k = 0; k < n->nin; k++)
      cr_expect(n->in[k] != named(g, "b") && n->in[k] != named(g, "w2") &&
                    n->in[k] != named(g, "c"),
                "a gradient node reads the w2 branch");
  }
  cr_expect_eq(g->nnodes - n0, 3, "%d nodes appended, want 3 (const, broadcast_to, mul)",
               g->nnodes - n0);
  cr_expect_eq(g->nodes[grad]->op, IR_OP_MUL);
  cr_expect_eq(g->nrets, 1);
  cr_expect_eq(g->rets[0], named(g, "y"), "returns changed");
  ir_graph_destroy(g);
}

Test(autodiff_driver, unrelated_loss_gives_zeros) {
  gh h;
  gh_init_text(&h,
               "graph @z(%x: f64[2,3], %u: f64[2]) {\n"
               "  %y = tanh(%u) : f64[2]\n"
               "  %c = cmp_gt(%x, %x) : bool[2,3]\n"
               "  return %y\n"
               "}\n",
               5);
  rt_tensor *g[2];
  gh_grads(&h, 2, TWO("x", "u"), g);
  cr_assert_eq(rt_numel(g[0]), 6);
  for (int i = 0; i < 6; i++)
    cr_expect_eq(rt_get_f(g[0], i), 0.0);
  cr_expect_neq(rt_get_f(g[1], 0), 0.0);
  rt_tensor_destroy(g[0]);
  rt_tensor_destroy(g[1]);
  gh_free(&h);
}

Test(autodiff_driver, same_name_params_sum) {
  gh h;
  gh_init_text(&h,
               "graph @p(%x: f64[3]) {\n"
               "  %w = param(\"w\") : f64[3]\n"
               "  %a = mul(%x, %w) : f64[3]\n"
               "  %w_again = param(\"w\") : f64[3]\n"
               "  %b = mul(%a, %w_again) : f64[3]\n"
               "  %y = sin(%b) : f64[3]\n"
               "  return %y\n"
               "}\n",
               6);
  gh_check(&h, "shared parameter", 2, TWO("w", "x"));
  gh_free(&h);
}

Test(autodiff_driver, loss_is_wrt_and_fan_out) {
  gh h;
  gh_init_text(&h,
               "graph @f(%x: f64[3]) {\n"
               "  %a = mul(%x, %x) : f64[3]\n"
               "  %b = mul(%a, %x) : f64[3]\n"
               "  %c = add(%b, %a) : f64[3]\n"
               "  return %c\n"
               "}\n",
               7);
  gh_check(&h, "fan-out", 1, ONE("x"));
  gh_free(&h);
}

static void expect_failure(const char *text, const char *wrt_name, const char *needle) {
  ir_graph *g = parse(text);
  int wrt = named(g, wrt_name), grad = 7;
  ir_diag d = {0};
  cr_expect_not(pass_autodiff(g, g->rets[0], 1, &wrt, &grad, &d), "autodiff should fail");
  cr_expect(strstr(d.msg, needle), "message '%s' lacks '%s'", d.msg, needle);
  ir_graph_destroy(g);
}

Test(autodiff_driver, errors_name_the_node) {
  expect_failure("graph @e(%x: f64[3]) {\n"
                 "  %d = gelu_deriv(%x) : f64[3]\n"
                 "  %y = mul(%d, %x) : f64[3]\n"
                 "  return %y\n"
                 "}\n",
                 "x", "%d");
  expect_failure("graph @e(%x: f64[3]) {\n"
                 "  %d = gelu_deriv(%x) : f64[3]\n"
                 "  return %d\n"
                 "}\n",
                 "x", "gelu_deriv");
  expect_failure("graph @e(%i: i32[3]) {\n"
                 "  %y = cast(%i) {to = \"f64\"} : f64[3]\n"
                 "  return %y\n"
                 "}\n",
                 "i", "not a float");
  expect_failure("graph @e(%x: f64[3], %i: i32[3]) {\n"
                 "  %y = cast(%i) {to = \"f64\"} : f64[3]\n"
                 "  %b = cmp_gt(%x, %y) : bool[3]\n"
                 "  return %b\n"
                 "}\n",
                 "x", "loss");
}

Test(autodiff_driver, non_differentiable_op_off_the_path_is_fine) {
  gh h;
  gh_init_text(&h,
               "graph @o(%x: f64[3]) {\n"
               "  %d = gelu_deriv(%x) : f64[3]\n"
               "  %e = exp(%x) : f64[3]\n"
               "  return %e, %d\n"
               "}\n",
               8);
  gh_check(&h, "off path", 1, ONE("x"));
  gh_free(&h);
}

Test(autodiff_driver, pins_dropout_keys) {
  ir_graph *g = parse("graph @k(%x: f64[4]) {\n"
                      "  %a = dropout(%x) {p = 0.5} : f64[4]\n"
                      "  %b = dropout(%a) {p = 0.25, key = 9} : f64[4]\n"
                      "  %c = dropout(%x) {p = 0.5} : f64[4]\n"
                      "  return %b\n"
                      "}\n");
  int x = named(g, "x"), grad;
  ir_diag d = {0};
  cr_assert(pass_autodiff(g, named(g, "b"), 1, &x, &grad, &d), "%s", d.msg);
  cr_expect_eq(g->nodes[named(g, "a")]->attrs[1].i, named(g, "a"));
  cr_expect_eq(g->nodes[named(g, "b")]->attrs[1].i, 9);
  cr_expect_eq(g->nodes[named(g, "c")]->attrs[1].i, -1, "an unrelated dropout was changed");
  int keys[2] = {0}, n = 0;
  for (int id = named(g, "c") + 1; id < g->nnodes; id++)
    if (g->nodes[id]->op == IR_OP_DROPOUT && n < 2) keys[n++] = (int)g->nodes[id]->attrs[1].i;
  cr_expect_eq(n, 2);
  cr_expect_eq(keys[0], 9);
  cr_expect_eq(keys[1], named(g, "a"));
  ir_graph_destroy(g);
}
