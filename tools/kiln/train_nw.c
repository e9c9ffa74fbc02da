/* `kiln train nw-kernel`: d2l 11.2's experiment. Trains the parametric
 * Nadaraya-Watson kernel on the built-in data (leave-one-out keys, SGD on
 * the sum of squared errors, one full-batch step per epoch, as the book),
 * then compares average pooling, the Gaussian kernel and the trained kernel
 * on the test grid and draws the fit and the trained attention as SVG. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "runtime/philox.h"
#include "runtime/svg.h"
#include "runtime/synth_nw.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/out_path.h"
#include "tools/kiln/train.h"
#include "tools/kiln/train_signal.h"

typedef struct nw_settings {
  const char *plot, *heatmap;
  int64_t n_train;
  bool w0_rand;
  float w0;
  kl_backend backend;
} nw_settings;

static int read_settings(const train_opts *o, nw_settings *s) {
  s->plot = train_get(o, "plot");
  s->heatmap = train_get(o, "heatmap");
  const char *n = train_get(o, "n_train"), *w = train_get(o, "w0"), *b = train_get(o, "backend");
  unsigned long long u;
  if (!cli_parse_u64(n, &u) || u < 2 || u > 2000)
    return cli_usage_error("train", "n_train wants an integer in [2, 2000], got '%s'", n);
  s->n_train = (int64_t)u;
  s->w0_rand = !strcmp(w, "rand");
  if (!s->w0_rand) {
    char *end;
    double v = strtod(w, &end);
    if (end == w || *end || !isfinite(v))
      return cli_usage_error("train", "w0 wants a number or 'rand', got '%s'", w);
    s->w0 = (float)v;
  }
  if (!strcmp(b, "jit")) {
    s->backend = KL_BACKEND_JIT;
  } else if (!strcmp(b, "ref")) {
    s->backend = KL_BACKEND_REF;
  } else {
    return cli_usage_error("train", "backend wants jit or ref, got '%s'", b);
  }
  if (!*s->plot || !*s->heatmap) return cli_usage_error("train", "plot and heatmap want a path");
  int rc = cli_check_output("train", "plot", s->plot);
  return rc == CLI_OK ? cli_check_output("train", "heatmap", s->heatmap) : rc;
}

/* d2l's nn.Parameter(torch.rand((1,))): U[0, 1) from its own Philox stream
 * (data uses streams 0 and 1). */
static float draw_w0(uint64_t seed) {
  float w;
  rt_tensor t = {.type = {.dtype = IR_F32, .rank = 1, .dims = {1}}, .data = &w, .bytes = 4};
  rt_fill_uniform(&t, seed, 2, 0.0, 1.0);
  return w;
}

static kl_tensor *vec(const float *p, int64_t n) { return kl_tensor_from(KL_TENSOR_F32, 1, &n, p); }
static kl_tensor *mat(const float *p, int64_t r, int64_t c) {
  int64_t d[2] = {r, c};
  return kl_tensor_from(KL_TENSOR_F32, 2, d, p);
}

/* Everything one run holds, freed in one place. */
typedef struct nw_run {
  rt_nw_data data;
  float *loo_keys, *loo_values; /* [n, n-1] */
  double *losses;
  kl_tensor *train_in[4], *test_in[3];
  kl_tensor *pred[3], *attn[3];
  kl_train_step *step;
  float w0, w;
} nw_run;

static void run_free(nw_run *r) {
  rt_nw_data_free(&r->data);
  free(r->loo_keys);
  free(r->loo_values);
  free(r->losses);
  for (int i = 0; i < 4; i++)
    kl_tensor_destroy(r->train_in[i]);
  for (int i = 0; i < 3; i++) {
    kl_tensor_destroy(r->test_in[i]);
    kl_tensor_destroy(r->pred[i]);
    kl_tensor_destroy(r->attn[i]);
  }
  kl_train_step_destroy(r->step);
}

/* d2l's X_tile[(1 - torch.eye(n)).type(torch.bool)].reshape((n, -1)). */
static void leave_one_out(const float *x, int64_t n, float *out) {
  for (int64_t i = 0, k = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      if (j != i) out[k++] = x[j];
}

static int make_inputs(nw_run *r, const nw_settings *s, uint64_t seed) {
  ir_diag d = {0};
  if (!rt_nw_data_make(&r->data, s->n_train, seed, &d)) return cli_error("train", "%s", d.msg);
  int64_t n = r->data.n_train, m = r->data.n_test;
  r->loo_keys = malloc((size_t)(n * (n - 1)) * sizeof(float));
  r->loo_values = malloc((size_t)(n * (n - 1)) * sizeof(float));
  if (!r->loo_keys || !r->loo_values) return cli_error("train", "out of memory");
  leave_one_out(r->data.x_train, n, r->loo_keys);
  leave_one_out(r->data.y_train, n, r->loo_values);
  r->train_in[0] = vec(r->data.x_train, n);
  r->train_in[1] = mat(r->loo_keys, n, n - 1);
  r->train_in[2] = mat(r->loo_values, n, n - 1);
  r->train_in[3] = vec(r->data.y_train, n);
  r->test_in[0] = vec(r->data.x_test, m);
  r->test_in[1] = mat(r->data.x_train, 1, n);
  r->test_in[2] = mat(r->data.y_train, 1, n);
  for (int i = 0; i < 4; i++)
    if (!r->train_in[i] || (i < 3 && !r->test_in[i])) return cli_error("train", "out of memory");
  return CLI_OK;
}

static int set_w(kl_program *p, float w) {
  int64_t one = 1;
  kl_tensor *t = kl_tensor_from(KL_TENSOR_F32, 1, &one, &w);
  const char *msg = t ? kl_program_set_param(p, NW_PARAM_W, t) : "out of memory";
  kl_tensor_destroy(t);
  return msg ? cli_error("train", "setting w: %s", msg) : CLI_OK;
}

static int train(nw_run *r, const train_opts *o, const nw_settings *s) {
  int64_t n = r->data.n_train;
  nw_graph ng = nw_kernel_build(NW_PARAMETRIC, n, n, n - 1, true);
  if (!ng.g) return cli_error("train", "out of memory");
  if (kl_graph_error(ng.g)) {
    int rc = cli_error("train", "nw-kernel graph: %s", kl_graph_error(ng.g));
    kl_graph_destroy(ng.g);
    return rc;
  }
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = o->lr};
  kl_compile_opts copts = train_compile_opts(o, s->backend, true);
  char *err = NULL;
  int wid = ng.w.id;
  r->step =
      kl_compile_train_with(kl_graph_ir(ng.g), ng.loss.id, &wid, 1, &opt, &o->passes, &copts, &err);
  kl_graph_destroy(ng.g);
  if (!r->step) {
    int rc = cli_error("train", "compiling the training step: %s", err ? err : "unknown error");
    free(err);
    return rc;
  }
  int rc = set_w(kl_train_step_program(r->step), r->w0);
  if (rc != CLI_OK) return rc;
  if (!(r->losses = malloc((size_t)o->epochs * sizeof(double))))
    return cli_error("train", "out of memory");
  for (int64_t e = 0; e < o->epochs; e++) {
    const char *msg = kl_train_step_run(r->step, r->train_in, 4, &r->losses[e]);
    if (msg) return cli_error("train", "epoch %lld: %s", (long long)e + 1, msg);
    /* d2l's line, loss before the step's update. */
    printf("epoch %lld, loss %.6f\n", (long long)e + 1, r->losses[e]);
    fflush(stdout);
    int sig = train_signal_pending();
    if (sig) return train_signal_exit(sig, e + 1, NULL);
  }
  kl_tensor *w = NULL;
  const char *msg = kl_program_get_param(kl_train_step_program(r->step), NW_PARAM_W, &w);
  if (msg) return cli_error("train", "reading w: %s", msg);
  r->w = ((const float *)kl_tensor_data(w))[0];
  kl_tensor_destroy(w);
  return CLI_OK;
}

/* Runs estimator k on the test grid (the trained w for the parametric one). */
static int evaluate(nw_run *r, nw_kind k, const train_opts *o, const nw_settings *s) {
  nw_graph ng = nw_kernel_build(k, r->data.n_test, 1, r->data.n_train, false);
  if (!ng.g) return cli_error("train", "out of memory");
  kl_compile_opts copts = train_compile_opts(o, s->backend, false);
  char *err = NULL;
  kl_program *p =
      kl_graph_error(ng.g) ? NULL : kl_compile_unoptimized(kl_graph_ir(ng.g), &copts, &err);
  int rc = CLI_OK;
  if (!p) {
    rc = cli_error("train", "compiling the test graph: %s",
                   kl_graph_error(ng.g) ? kl_graph_error(ng.g)
                   : err                ? err
                                        : "unknown error");
  } else if (k != NW_PARAMETRIC || (rc = set_w(p, r->w)) == CLI_OK) {
    kl_tensor *outs[2] = {NULL, NULL};
    const char *msg = kl_run(p, r->test_in, 3, outs, 2);
    if (msg) {
      rc = cli_error("train", "evaluating: %s", msg);
    } else {
      r->pred[k] = outs[0];
      r->attn[k] = outs[1];
    }
  }
  free(err);
  kl_program_destroy(p);
  kl_graph_destroy(ng.g);
  return rc;
}

static double test_mse(nw_run *r, nw_kind k) {
  const float *p = kl_tensor_data(r->pred[k]);
  double s = 0;
  for (int64_t i = 0; i < r->data.n_test; i++) {
    double e = (double)p[i] - r->data.y_truth[i];
    s += e * e;
  }
  return s / (double)r->data.n_test;
}

static const char *const kind_names[] = {"average", "gaussian", "parametric"};

static double *to_double(const float *p, int64_t n) {
  double *d = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; d && i < n; i++)
    d[i] = p[i];
  return d;
}

static char **number_labels(const float *v, int64_t n, int decimals) {
  char **l = calloc((size_t)n, sizeof(char *));
  for (int64_t i = 0; l && i < n; i++) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.*f", decimals, v[i]);
    l[i] = strdup(buf);
  }
  return l;
}

static void free_labels(char **l, int64_t n) {
  for (int64_t i = 0; l && i < n; i++)
    free(l[i]);
  free(l);
}

static int write_figures(nw_run *r, const nw_settings *s) {
  int64_t n = r->data.n_train, m = r->data.n_test;
  double *xt = to_double(r->data.x_test, m), *yt = to_double(r->data.y_truth, m);
  double *xs = to_double(r->data.x_train, n), *ys = to_double(r->data.y_train, n);
  double *pr[3], *at = to_double(kl_tensor_data(r->attn[NW_PARAMETRIC]), m * n);
  for (int k = 0; k < 3; k++)
    pr[k] = to_double(kl_tensor_data(r->pred[k]), m);
  char **rows = number_labels(r->data.x_test, m, 1), **cols = number_labels(r->data.x_train, n, 2);
  int rc = CLI_OK;
  bool ok = xt && yt && xs && ys && at && pr[0] && pr[1] && pr[2] && rows && cols;
  for (int64_t i = 0; ok && i < m + n; i++)
    ok = i < m ? rows[i] != NULL : cols[i - m] != NULL;
  if (!ok) rc = cli_error("train", "out of memory");
  char trained[64];
  snprintf(trained, sizeof trained, "trained kernel (w = %.3g)", r->w);
  rt_svg_series series[] = {
      {"truth", xt, yt, m, RT_SVG_LINE},
      {"average pooling", xt, pr[0], m, RT_SVG_DASHED},
      {"Gaussian kernel (w = 1)", xt, pr[1], m, RT_SVG_LINE},
      {trained, xt, pr[2], m, RT_SVG_LINE},
      {"training data", xs, ys, n, RT_SVG_POINTS},
  };
  rt_svg_plot plot = {.title = "Nadaraya-Watson kernel regression",
                      .xlabel = "x",
                      .ylabel = "y",
                      .nseries = 5,
                      .series = series};
  rt_svg_heatmap hm = {.title = "attention of the trained kernel",
                       .xlabel = "sorted training inputs",
                       .ylabel = "sorted test inputs",
                       .rows = m,
                       .cols = n,
                       .values = at,
                       .row_labels = (const char *const *)rows,
                       .col_labels = (const char *const *)cols};
  ir_diag d = {0};
  if (rc == CLI_OK && !rt_svg_plot_write(&plot, s->plot, &d)) rc = cli_error("train", "%s", d.msg);
  if (rc == CLI_OK && !rt_svg_heatmap_write(&hm, s->heatmap, &d))
    rc = cli_error("train", "%s", d.msg);
  if (rc == CLI_OK) printf("wrote %s\nwrote %s\n", s->plot, s->heatmap);
  free(xt), free(yt), free(xs), free(ys), free(at);
  for (int k = 0; k < 3; k++)
    free(pr[k]);
  free_labels(rows, m);
  free_labels(cols, n);
  return rc;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int print_json(const nw_run *r, const train_opts *o, const double mse[3]) {
  json_t *obj = json_object(), *m = json_object();
  if (!obj || !m) return cli_error("train", "out of memory");
  json_object_set_new(obj, "model", json_string("nw-kernel"));
  json_object_set_new(obj, "epochs", json_integer(o->epochs));
  json_object_set_new(obj, "final_loss", real_or_null(r->losses[o->epochs - 1]));
  json_object_set_new(obj, "w0", real_or_null(r->w0));
  json_object_set_new(obj, "w", real_or_null(r->w));
  for (int k = 0; k < 3; k++)
    json_object_set_new(m, kind_names[k], real_or_null(mse[k]));
  json_object_set_new(obj, "test_mse", m);
  char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  json_decref(obj);
  if (!s) return cli_error("train", "out of memory");
  puts(s);
  free(s);
  return CLI_OK;
}

int train_nw_kernel(const train_opts *o) {
  nw_settings s = {0};
  int rc = read_settings(o, &s);
  if (rc != CLI_OK) return rc;
  nw_run r = {0};
  r.w0 = s.w0_rand ? draw_w0(o->seed) : s.w0;
  rc = make_inputs(&r, &s, o->seed);
  if (rc == CLI_OK) {
    printf("nw-kernel: %lld training points, %lld test points, seed %llu, %s backend, "
           "SGD lr %g, w0 %.6f\n",
           (long long)r.data.n_train, (long long)r.data.n_test, (unsigned long long)o->seed,
           s.backend == KL_BACKEND_JIT ? "jit" : "ref", o->lr, r.w0);
    rc = train(&r, o, &s);
  }
  for (int k = 0; k < 3 && rc == CLI_OK; k++)
    rc = evaluate(&r, (nw_kind)k, o, &s);
  double mse[3] = {0, 0, 0};
  if (rc == CLI_OK) {
    for (int k = 0; k < 3; k++)
      mse[k] = test_mse(&r, (nw_kind)k);
    printf("learned w %.6f (from %.6f)\n", r.w, r.w0);
    printf("test MSE against the noiseless truth: average pooling %.6f, Gaussian kernel %.6f, "
           "trained kernel %.6f\n",
           mse[0], mse[1], mse[2]);
    rc = write_figures(&r, &s);
  }
  if (rc == CLI_OK && o->json) rc = print_json(&r, o, mse);
  run_free(&r);
  return rc;
}
