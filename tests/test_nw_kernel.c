/* The nw-kernel model (models/nw_kernel.c) against PyTorch running d2l's
 * code (tests/golden/golden_nw.py): the same data and initial w trained
 * through kiln's train-step API on both backends must give torch's loss
 * sequence and final w; the test-time estimators must match torch and a
 * hand-written C computation; the built-in dataset is seeded and sane. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "models/models.h"
#include "runtime/safetensors.h"
#include "runtime/synth_nw.h"

#define GOLDEN KILN_SOURCE_DIR "/tests/golden/nw/nw_kernel.safetensors"

typedef struct golden {
  rt_safetensors *st;
  const float *x_train, *y_train, *x_test, *y_truth, *w0, *losses, *w;
  const float *pred_gaussian, *pred_param, *attn_param;
  int64_t n, m;
} golden;

static const float *get(golden *g, const char *name, int64_t numel) {
  const rt_tensor *t = rt_st_get(g->st, name);
  cr_assert_not_null(t, "golden tensor %s missing", name);
  cr_assert_eq(t->type.dtype, IR_F32, "%s", name);
  cr_assert_eq(rt_numel(t), numel, "%s has %lld elements", name, (long long)rt_numel(t));
  return t->data;
}

static void load(golden *g) {
  ir_diag d = {0};
  g->st = rt_st_read(GOLDEN, &d);
  cr_assert_not_null(g->st, "%s (regenerate: /usr/bin/python3 tests/golden/golden_nw.py)", d.msg);
  g->n = 50;
  g->m = 50;
  g->x_train = get(g, "x_train", g->n);
  g->y_train = get(g, "y_train", g->n);
  g->x_test = get(g, "x_test", g->m);
  g->y_truth = get(g, "y_truth", g->m);
  g->w0 = get(g, "w0", 1);
  g->losses = get(g, "losses", 5);
  g->w = get(g, "w", 1);
  g->pred_gaussian = get(g, "pred_gaussian", g->m);
  g->pred_param = get(g, "pred_param", g->m);
  g->attn_param = get(g, "attn_param", g->m * g->n);
}

static kl_tensor *vec(const float *p, int64_t n) { return kl_tensor_from(KL_TENSOR_F32, 1, &n, p); }
static kl_tensor *mat(const float *p, int64_t r, int64_t c) {
  int64_t d[2] = {r, c};
  return kl_tensor_from(KL_TENSOR_F32, 2, d, p);
}

static void set_w(kl_program *p, float w) {
  int64_t one = 1;
  kl_tensor *t = kl_tensor_from(KL_TENSOR_F32, 1, &one, &w);
  const char *msg = kl_program_set_param(p, NW_PARAM_W, t);
  cr_assert_null(msg, "%s", msg);
  kl_tensor_destroy(t);
}

static float get_w(kl_program *p) {
  kl_tensor *t = NULL;
  const char *msg = kl_program_get_param(p, NW_PARAM_W, &t);
  cr_assert_null(msg, "%s", msg);
  float w = ((float *)kl_tensor_data(t))[0];
  kl_tensor_destroy(t);
  return w;
}

static bool close_to(double got, double want, double rtol) {
  return fabs(got - want) <= rtol * fabs(want) + 1e-6;
}

/* d2l's training on the golden data from the golden w0; returns the final
 * w and fills losses[5]. */
static float train(const golden *g, kl_backend backend, double losses[5]) {
  int64_t n = g->n;
  float *keys = malloc((size_t)(n * (n - 1)) * sizeof(float));
  float *values = malloc((size_t)(n * (n - 1)) * sizeof(float));
  cr_assert(keys && values);
  for (int64_t i = 0, k = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      if (j != i) keys[k] = g->x_train[j], values[k++] = g->y_train[j];
  nw_graph ng = nw_kernel_build(NW_PARAMETRIC, n, n, n - 1, true);
  cr_assert_null(kl_graph_error(ng.g), "%s", kl_graph_error(ng.g));
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 0.5};
  kl_compile_opts copts = {.backend = backend, .threads = 1, .no_cache = true};
  char *err = NULL;
  int wid = ng.w.id;
  kl_train_step *s =
      kl_compile_train_with(kl_graph_ir(ng.g), ng.loss.id, &wid, 1, &opt, NULL, &copts, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(ng.g);
  set_w(kl_train_step_program(s), g->w0[0]);
  kl_tensor *in[4] = {vec(g->x_train, n), mat(keys, n, n - 1), mat(values, n, n - 1),
                      vec(g->y_train, n)};
  for (int e = 0; e < 5; e++) {
    const char *msg = kl_train_step_run(s, in, 4, &losses[e]);
    cr_assert_null(msg, "epoch %d: %s", e + 1, msg);
  }
  float w = get_w(kl_train_step_program(s));
  for (int i = 0; i < 4; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s);
  free(keys);
  free(values);
  return w;
}

/* The same f32 math as torch up to summation order: measured differences
 * are about 3e-7 relative, so 2e-6 is tight yet robust. */
static void train_matches_torch(kl_backend backend) {
  golden g;
  load(&g);
  double losses[5];
  float w = train(&g, backend, losses);
  for (int e = 0; e < 5; e++) {
    cr_expect(close_to(losses[e], g.losses[e], 2e-6), "epoch %d: loss %.7f, torch %.7f", e + 1,
              losses[e], g.losses[e]);
    if (e) cr_expect_lt(losses[e], losses[e - 1], "the loss decreases at epoch %d", e + 1);
  }
  cr_expect(close_to(w, g.w[0], 2e-6), "w %.7f, torch %.7f (w0 %.7f)", w, g.w[0], g.w0[0]);
  rt_st_destroy(g.st);
}

Test(nw_kernel, training_matches_torch_ref) { train_matches_torch(KL_BACKEND_REF); }
Test(nw_kernel, training_matches_torch_jit) { train_matches_torch(KL_BACKEND_JIT); }

/* Test-grid estimates of estimator k (w for PARAMETRIC) into pred / attn. */
static void evaluate(const golden *g, nw_kind k, float w, kl_backend backend, kl_tensor **pred,
                     kl_tensor **attn) {
  nw_graph ng = nw_kernel_build(k, g->m, 1, g->n, false);
  cr_assert_null(kl_graph_error(ng.g), "%s", kl_graph_error(ng.g));
  kl_compile_opts copts = {.backend = backend, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(ng.g), &copts, &err);
  cr_assert_not_null(p, "%s", err);
  if (k == NW_PARAMETRIC) set_w(p, w);
  kl_tensor *in[3] = {vec(g->x_test, g->m), mat(g->x_train, 1, g->n), mat(g->y_train, 1, g->n)};
  kl_tensor *out[2] = {NULL, NULL};
  const char *msg = kl_run(p, in, 3, out, 2);
  cr_assert_null(msg, "%s", msg);
  *pred = out[0];
  *attn = out[1];
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(in[i]);
  kl_program_destroy(p);
  kl_graph_destroy(ng.g);
}

static void estimators_match(kl_backend backend) {
  golden g;
  load(&g);
  kl_tensor *pred[3], *attn[3];
  for (int k = 0; k < 3; k++)
    evaluate(&g, (nw_kind)k, g.w[0], backend, &pred[k], &attn[k]);
  double mean = 0;
  for (int64_t j = 0; j < g.n; j++)
    mean += g.y_train[j];
  mean /= (double)g.n;
  for (int64_t i = 0; i < g.m; i++) {
    /* The Gaussian kernel by hand, in double. */
    double x = g.x_test[i], mx = -INFINITY, z = 0, num = 0;
    for (int64_t j = 0; j < g.n; j++)
      mx = fmax(mx, -0.5 * (x - g.x_train[j]) * (x - g.x_train[j]));
    for (int64_t j = 0; j < g.n; j++) {
      double e = exp(-0.5 * (x - g.x_train[j]) * (x - g.x_train[j]) - mx);
      z += e;
      num += e * g.y_train[j];
    }
    const float *pa = kl_tensor_data(pred[NW_AVERAGE]), *pg = kl_tensor_data(pred[NW_GAUSSIAN]);
    const float *pp = kl_tensor_data(pred[NW_PARAMETRIC]);
    cr_expect(close_to(pa[i], mean, 1e-6), "average at %lld: %f vs %f", (long long)i, pa[i], mean);
    cr_expect(close_to(pg[i], num / z, 1e-5), "gaussian at %lld: %f vs hand %f", (long long)i,
              pg[i], num / z);
    cr_expect(close_to(pg[i], g.pred_gaussian[i], 1e-5), "gaussian at %lld: %f vs torch %f",
              (long long)i, pg[i], g.pred_gaussian[i]);
    cr_expect(close_to(pp[i], g.pred_param[i], 1e-5), "parametric at %lld: %f vs torch %f",
              (long long)i, pp[i], g.pred_param[i]);
    const float *aa = kl_tensor_data(attn[NW_AVERAGE]), *ap = kl_tensor_data(attn[NW_PARAMETRIC]);
    double rowsum = 0;
    for (int64_t j = 0; j < g.n; j++) {
      rowsum += ap[i * g.n + j];
      cr_expect(fabs(ap[i * g.n + j] - g.attn_param[i * g.n + j]) < 1e-5, "attn[%lld, %lld]",
                (long long)i, (long long)j);
      cr_expect(close_to(aa[i * g.n + j], 1.0 / (double)g.n, 1e-6));
    }
    cr_expect(fabs(rowsum - 1) < 1e-5, "attention row %lld sums to %f", (long long)i, rowsum);
  }
  for (int k = 0; k < 3; k++) {
    cr_expect_eq(kl_tensor_rank(attn[k]), 2);
    cr_expect_eq(kl_tensor_dim(attn[k], 1), g.n);
    kl_tensor_destroy(pred[k]);
    kl_tensor_destroy(attn[k]);
  }
  rt_st_destroy(g.st);
}

Test(nw_kernel, estimators_match_torch_and_hand_ref) { estimators_match(KL_BACKEND_REF); }
Test(nw_kernel, estimators_match_torch_and_hand_jit) { estimators_match(KL_BACKEND_JIT); }

Test(nw_kernel, bad_shapes_are_graph_errors) {
  /* Three key rows cannot serve five queries. */
  nw_graph ng = nw_kernel_build(NW_PARAMETRIC, 5, 3, 4, true);
  cr_assert_not_null(ng.g);
  cr_expect_not_null(kl_graph_error(ng.g));
  char *err = NULL;
  cr_expect_null(kl_compile_unoptimized(kl_graph_ir(ng.g), NULL, &err));
  cr_expect_not_null(err);
  free(err);
  kl_graph_destroy(ng.g);
  ng = nw_kernel_build(NW_GAUSSIAN, 5, 1, 0, false); /* no keys: an empty softmax */
  cr_assert_not_null(ng.g);
  kl_graph_destroy(ng.g);
}

Test(nw_kernel, registry) {
  int n;
  const kl_model_info *ms = kl_models(&n);
  cr_assert_geq(n, 1);
  const kl_model_info *m = kl_model_find("nw-kernel");
  cr_assert_not_null(m);
  cr_expect(m->shipped);
  cr_expect_eq(m->epochs, 5);
  cr_expect_float_eq(m->lr, 0.5, 1e-12);
  cr_expect_str_eq(kl_model_key_find(m, "plot")->dflt, "nw_kernel_fit.svg");
  cr_expect_str_eq(kl_model_key_find(m, "heatmap")->dflt, "nw_kernel_attention.svg");
  cr_expect_null(kl_model_key_find(m, "embed"));
  cr_expect_null(kl_model_find("nw_kernel"));
  for (int i = 0; i < n; i++)
    cr_expect_eq(kl_model_find(ms[i].name), &ms[i]);
}

/* ---- the built-in dataset ---------------------------------------------------- */

Test(nw_kernel, synthetic_data_is_seeded_sorted_and_noisy) {
  rt_nw_data a, b, c;
  ir_diag d = {0};
  cr_assert(rt_nw_data_make(&a, 2000, 7, &d), "%s", d.msg);
  cr_assert(rt_nw_data_make(&b, 2000, 7, &d), "%s", d.msg);
  cr_assert(rt_nw_data_make(&c, 2000, 8, &d), "%s", d.msg);
  cr_expect_eq(memcmp(a.x_train, b.x_train, 2000 * sizeof(float)), 0, "same seed, same data");
  cr_expect_eq(memcmp(a.y_train, b.y_train, 2000 * sizeof(float)), 0);
  cr_expect_neq(memcmp(a.x_train, c.x_train, 2000 * sizeof(float)), 0, "another seed differs");
  double sum = 0, sq = 0;
  for (int i = 0; i < 2000; i++) {
    cr_expect(a.x_train[i] >= 0 && a.x_train[i] < 5, "x %f", a.x_train[i]);
    if (i) cr_expect_leq(a.x_train[i - 1], a.x_train[i], "sorted at %d", i);
    double r = a.y_train[i] - (2 * sin(a.x_train[i]) + pow(a.x_train[i], 0.8));
    sum += r;
    sq += r * r;
  }
  double mean = sum / 2000, sd = sqrt(sq / 2000 - mean * mean);
  /* N(0, 0.5^2) noise: the mean within ~4 standard errors, sd within 10%. */
  cr_expect(fabs(mean) < 4 * 0.5 / sqrt(2000), "noise mean %f", mean);
  cr_expect(fabs(sd - 0.5) < 0.05, "noise sd %f", sd);
  cr_expect(a.x_train[0] < 0.05 && a.x_train[1999] > 4.95, "spread over [0, 5)");
  cr_expect_eq(a.n_test, 50);
  for (int i = 0; i < 50; i++) {
    cr_expect_float_eq(a.x_test[i], 0.1 * i, 1e-6);
    cr_expect_float_eq(a.y_truth[i], 2 * sin(0.1 * i) + pow(0.1 * i, 0.8), 1e-5);
  }
  rt_nw_data_free(&a);
  rt_nw_data_free(&b);
  rt_nw_data_free(&c);
  cr_expect_not(rt_nw_data_make(&a, 1, 0, &d));
  cr_expect(strstr(d.msg, "n_train"), "%s", d.msg);
}
