/* The train-step API of backend/kiln_run.h: training reduces the loss, the
 * JIT and the reference interpreter agree step by step (dropout included),
 * an eval program that copies the trained weights computes the same loss
 * with dropout off, and compile errors name what is wrong. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "frontend/kiln.h"
#include "ir/ir.h"

#define N 16

/* y = tanh(x w1 + b1) w2 + b2 [, dropout on the hidden layer], MSE. */
static kl_graph *regression(double dropout, int *loss) {
  kl_graph *g = kl_graph_create("regression");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(N, 4)),
           y = kl_input(g, "y", KL_F32, KL_SHAPE(N, 1));
  kl_value w1 = kl_param_init(g, "w1", KL_F32, KL_SHAPE(4, 8), KL_INIT_XAVIER_UNIFORM, 0);
  kl_value b1 = kl_param_init(g, "b1", KL_F32, KL_SHAPE(8), KL_INIT_ZEROS, 0);
  kl_value w2 = kl_param_init(g, "w2", KL_F32, KL_SHAPE(8, 1), KL_INIT_XAVIER_UNIFORM, 0);
  kl_value b2 = kl_param_init(g, "b2", KL_F32, KL_SHAPE(1), KL_INIT_ZEROS, 0);
  kl_value h = kl_tanh(kl_add(kl_matmul(x, w1), b1));
  if (dropout > 0) h = kl_dropout(h, dropout);
  kl_value l = kl_mse_loss(kl_add(kl_matmul(h, w2), b2), y);
  kl_output(l);
  cr_assert_null(kl_graph_error(g));
  *loss = l.id;
  return g;
}

/* x uniform in [-1, 1) from a fixed LCG, y = sin(x0) + x1 x2 - 0.5 x3. */
static void data(kl_tensor **in) {
  float xs[N * 4], ys[N];
  uint32_t s = 12345;
  for (int i = 0; i < N * 4; i++) {
    s = s * 1664525u + 1013904223u;
    xs[i] = (float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
  }
  for (int n = 0; n < N; n++) {
    const float *r = xs + 4 * n;
    ys[n] = sinf(r[0]) + r[1] * r[2] - 0.5f * r[3];
  }
  in[0] = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){N, 4}, xs);
  in[1] = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){N, 1}, ys);
}

static kl_train_step *compile(double dropout, const kl_optim_opts *o, kl_backend b) {
  int loss;
  kl_graph *g = regression(dropout, &loss);
  kl_compile_opts co = {.backend = b, .seed = 7, .no_cache = true, .threads = 1};
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(kl_graph_ir(g), loss, NULL, 0, o, NULL, &co, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(g);
  return s;
}

Test(train, loss_decreases_on_a_small_regression) {
  kl_optim_opts o = {.kind = KL_OPT_ADAM, .lr = 0.05};
  kl_backend backends[2] = {KL_BACKEND_REF, KL_BACKEND_JIT};
  kl_tensor *in[2];
  data(in);
  for (int b = 0; b < 2; b++) {
    kl_train_step *s = compile(0, &o, backends[b]);
    double first = NAN, last = NAN;
    for (int i = 0; i < 80; i++) {
      const char *msg = kl_train_step_run(s, in, 2, i == 0 ? &first : &last);
      cr_assert_null(msg, "%s", msg);
    }
    cr_expect(isfinite(first) && first > 0.05, "first loss %g", first);
    cr_expect(last < 0.2 * first, "backend %d: loss %g -> %g", b, first, last);
    kl_train_step_destroy(s);
  }
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
}

Test(train, jit_and_reference_agree_over_five_steps_with_dropout) {
  kl_optim_opts o = {.kind = KL_OPT_SGD, .lr = 0.1, .momentum = 0.9, .clip_norm = 0.5};
  kl_train_step *r = compile(0.3, &o, KL_BACKEND_REF), *j = compile(0.3, &o, KL_BACKEND_JIT);
  kl_tensor *in[2];
  data(in);
  double prev = NAN;
  for (int i = 0; i < 5; i++) {
    double lr = NAN, lj = NAN;
    cr_assert_null(kl_train_step_run(r, in, 2, &lr));
    cr_assert_null(kl_train_step_run(j, in, 2, &lj));
    cr_expect(fabs(lr - lj) <= 1e-5 * fabs(lr) + 1e-7, "step %d: ref %.9g, jit %.9g", i, lr, lj);
    cr_expect(lr != prev, "step %d: the loss did not change", i);
    prev = lr;
  }
  kl_train_step_destroy(r);
  kl_train_step_destroy(j);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
}

/* The forward graph compiled for evaluation (training off). */
static kl_program *eval_program(double dropout, kl_backend b) {
  int loss;
  kl_graph *g = regression(dropout, &loss);
  kl_compile_opts co = {.backend = b, .seed = 7, .no_cache = true, .threads = 1};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), &co, &err);
  cr_assert_not_null(p, "%s", err);
  kl_graph_destroy(g);
  return p;
}

static double eval_loss(kl_program *p, kl_tensor **in) {
  kl_tensor *out = NULL;
  const char *msg = kl_run(p, in, 2, &out, 1);
  cr_assert_null(msg, "%s", msg);
  double l = *(const float *)kl_tensor_data(out);
  kl_tensor_destroy(out);
  return l;
}

Test(train, eval_program_sharing_weights_computes_the_same_loss) {
  kl_optim_opts o = {.kind = KL_OPT_ADAMW, .lr = 0.01, .weight_decay = 0.1};
  kl_backend backends[2] = {KL_BACKEND_REF, KL_BACKEND_JIT};
  kl_tensor *in[2];
  data(in);
  for (int b = 0; b < 2; b++) {
    kl_train_step *s = compile(0, &o, backends[b]);
    kl_program *e = eval_program(0, backends[b]);
    for (int i = 0; i < 3; i++)
      cr_assert_null(kl_train_step_run(s, in, 2, NULL));
    /* four trainable parameters; the eval program has no optimizer state */
    cr_expect_eq(kl_program_copy_params(e, kl_train_step_program(s)), 4);
    cr_expect_eq(kl_program_num_params(kl_train_step_program(s)), 12);
    double shared = eval_loss(e, in), next = NAN;
    cr_assert_null(kl_train_step_run(s, in, 2, &next)); /* the loss before step 4's update */
    cr_expect(fabs(shared - next) <= 1e-6 * fabs(next), "eval %.9g, train %.9g", shared, next);
    kl_program_destroy(e);
    kl_train_step_destroy(s);
  }
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
}

Test(train, dropout_is_off_in_eval) {
  kl_optim_opts o = {.kind = KL_OPT_SGD, .lr = 0.1};
  kl_tensor *in[2];
  data(in);
  kl_train_step *s = compile(0.5, &o, KL_BACKEND_JIT);
  kl_program *with = eval_program(0.5, KL_BACKEND_JIT), *without = eval_program(0, KL_BACKEND_REF);
  cr_expect_eq(kl_program_copy_params(with, kl_train_step_program(s)), 4);
  cr_expect_eq(kl_program_copy_params(without, kl_train_step_program(s)), 4);
  double a = eval_loss(with, in), a2 = eval_loss(with, in), b = eval_loss(without, in), t = NAN;
  cr_expect(fabs(a - b) <= 1e-6 * fabs(b), "eval with dropout %.9g, without %.9g", a, b);
  cr_expect_eq(a, a2, "eval is deterministic");
  cr_assert_null(kl_train_step_run(s, in, 2, &t)); /* same weights, dropout on */
  cr_expect(fabs(t - b) > 1e-4 * fabs(b), "training loss %.9g equals the eval loss", t);
  kl_program_destroy(with);
  kl_program_destroy(without);
  kl_train_step_destroy(s);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
}

static void expect_compile_error(const kl_graph *g, int loss, const int *params, int n,
                                 const char *needle) {
  kl_optim_opts o = {.kind = KL_OPT_SGD, .lr = 0.1};
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(kl_graph_ir(g), loss, params, n, &o, NULL, NULL, &err);
  cr_expect_null(s);
  cr_assert_not_null(err);
  cr_expect(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
  free(err);
  kl_train_step_destroy(s);
}

Test(train, errors_name_the_problem) {
  kl_graph *g = kl_graph_create("errs");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2, 3));
  kl_value w = kl_param(g, "w", KL_F32, KL_SHAPE(3, 2));
  kl_value y = kl_name(kl_matmul(x, w), "y");
  kl_value l = kl_sum_all(y);
  kl_output(l);
  expect_compile_error(g, y.id, NULL, 0, "the loss must be a float scalar, matmul %y is f32[2,2]");
  expect_compile_error(g, 9999, NULL, 0, "does not exist");
  expect_compile_error(g, l.id, &x.id, 1, "node 0 (arg) is not a param");
  kl_optim_opts bad = {.kind = KL_OPT_SGD};
  char *err = NULL;
  cr_expect_null(kl_compile_train(g, l, NULL, 0, &bad, NULL, &err));
  cr_expect(err && strstr(err, "lr must be > 0"), "%s", err);
  free(err);
  kl_graph_destroy(g);

  g = kl_graph_create("frozen");
  x = kl_input(g, "x", KL_F32, KL_SHAPE(3));
  kl_output(l = kl_sum_all(kl_mul(x, x)));
  expect_compile_error(g, l.id, NULL, 0, "no trainable parameter");
  kl_graph_destroy(g);

  g = kl_graph_create("dsl");
  x = kl_input(g, "x", KL_F32, KL_SHAPE(2, 3));
  w = kl_param(g, "w", KL_F32, KL_SHAPE(4, 2));
  l = kl_sum_all(kl_matmul(x, w)); /* 3 != 4 */
  expect_compile_error(g, 0, NULL, 0, "test_train.c:");
  expect_compile_error(g, 0, NULL, 0, "matmul(f32[2,3], f32[4,2])");
  kl_graph_destroy(g);
}

Test(train, the_training_graph_prints_parses_and_verifies) {
  kl_optim_opts o = {.kind = KL_OPT_ADAM,
                     .clip_norm = 1,
                     .schedule = KL_LR_COSINE,
                     .warmup = 2,
                     .total_steps = 10};
  kl_train_step *s = compile(0.2, &o, KL_BACKEND_REF);
  const ir_graph *g = kl_train_step_graph(s);
  cr_assert_not_null(g);
  cr_expect_eq(g->nrets, 1);
  char *text = ir_print_str(g, NULL);
  ir_diag d = {0};
  ir_graph *back = ir_parse(text, strlen(text), "train.kir", &d);
  cr_assert_not_null(back, "%s", d.msg);
  char *again = ir_print_str(back, NULL);
  cr_expect_str_eq(again, text);
  cr_expect(strstr(text, "assign(") && strstr(text, "param(\"w1@v\")"), "%s", text);
  free(again);
  free(text);
  ir_graph_destroy(back);
  kl_train_step_destroy(s);
  cr_expect_null(kl_train_step_graph(NULL));
  cr_expect_not_null(kl_train_step_run(NULL, NULL, 0, NULL));
}
