/* The training-state ops on the JIT against the reference interpreter:
 * step across runs and after kl_program_set_step, assign writing a
 * parameter in place (hand-computed SGD steps, returned params and assigns,
 * guard bytes, failed runs), scatter_add with repeated indices and odd
 * sizes on 1 and 2 threads, its out-of-range message, gelu_deriv, dropout
 * masks chosen by an explicit key, and a graph using all of them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "ir/ir.h"

static ir_graph *parse(const char *text) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "test.kir", &d);
  cr_assert_not_null(g, "%s", d.msg);
  return g;
}

typedef struct cfg {
  kl_backend backend;
  int threads;
  bool training, guard;
} cfg;

static kl_program *compile(const ir_graph *g, cfg c) {
  kl_compile_opts o = {.backend = c.backend,
                       .seed = 11,
                       .training = c.training,
                       .threads = c.threads ? c.threads : 1,
                       .no_cache = true,
                       .guard_bytes = c.guard};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &o, &err);
  cr_assert_not_null(p, "%s", err);
  return p;
}

static kl_program *compile_text(const char *text, cfg c) {
  ir_graph *g = parse(text);
  kl_program *p = compile(g, c);
  ir_graph_destroy(g);
  return p;
}

static kl_tensor *tensor(kl_tensor_dtype dt, int rank, const int64_t *dims, const void *data) {
  kl_tensor *t = kl_tensor_from(dt, rank, dims, data);
  cr_assert_not_null(t);
  return t;
}

static void run_ok(kl_program *p, kl_tensor **in, int nin, kl_tensor **out, int nout) {
  const char *msg = kl_run(p, in, nin, out, nout);
  cr_assert_null(msg, "%s", msg);
}

static void destroy_all(kl_tensor **t, int n) {
  for (int i = 0; i < n; i++)
    kl_tensor_destroy(t[i]);
}

/* ---- step ---------------------------------------------------------------- */

static const char *step_text = "graph @steps() {\n"
                               "  %f = step() : f32[]\n"
                               "  %d = step() : f64[]\n"
                               "  %i = step() : i64[]\n"
                               "  %j = step() : i32[]\n"
                               "  return %f, %d, %i, %j\n"
                               "}\n";

static void expect_step(kl_program *p, uint64_t want, const char *what) {
  kl_tensor *o[4];
  run_ok(p, NULL, 0, o, 4);
  cr_expect_eq(*(float *)kl_tensor_data(o[0]), (float)(double)want, "%s f32", what);
  cr_expect_eq(*(double *)kl_tensor_data(o[1]), (double)want, "%s f64", what);
  cr_expect_eq(*(int64_t *)kl_tensor_data(o[2]), (int64_t)want, "%s i64: %lld", what,
               (long long)*(int64_t *)kl_tensor_data(o[2]));
  cr_expect_eq(*(int32_t *)kl_tensor_data(o[3]), (int32_t)(uint32_t)want, "%s i32", what);
  destroy_all(o, 4);
}

Test(train_ops, step_counts_runs_on_both_backends) {
  for (int b = 0; b < 2; b++) {
    kl_program *p = compile_text(step_text, (cfg){.backend = b ? KL_BACKEND_JIT : KL_BACKEND_REF});
    const char *what = b ? "jit" : "ref";
    cr_expect_eq(kl_program_step(p), 0);
    for (uint64_t s = 0; s < 3; s++)
      expect_step(p, s, what);
    cr_expect_eq(kl_program_step(p), 3);
    /* 2^24 + 1 rounds in f32; 2^32 + 5 wraps in i32 */
    uint64_t big[] = {16777217, 4294967301ull, 1000};
    for (int k = 0; k < 3; k++) {
      kl_program_set_step(p, big[k]);
      cr_expect_eq(kl_program_step(p), big[k]);
      expect_step(p, big[k], what);
      cr_expect_eq(kl_program_step(p), big[k] + 1);
    }
    kl_program_destroy(p);
  }
}

/* ---- assign ------------------------------------------------------------- */

/* one SGD step w <- w - 0.1 x; returns the new value w1, the assign a and
 * the param w itself */
static const char *sgd_text = "graph @sgd(%x: f32[3]) {\n"
                              "  %w = param(\"w\") : f32[3]\n"
                              "  %c = const(0.1) : f32[]\n"
                              "  %u = mul(%c, %x) : f32[3]\n"
                              "  %w1 = sub(%w, %u) : f32[3]\n"
                              "  %a = assign(%w, %w1) : f32[3]\n"
                              "  return %w1, %a, %w\n"
                              "}\n";

static void expect_vec(const float *got, const float *want, int n, const char *what) {
  for (int i = 0; i < n; i++)
    cr_expect(got[i] == want[i], "%s[%d]: %.9g, expected %.9g", what, i, got[i], want[i]);
}

static void check_sgd(cfg c, bool into) {
  kl_program *p = compile_text(sgd_text, c);
  const float w0[] = {1.0f, 2.0f, 3.0f}, xs[] = {1.0f, -2.0f, 0.5f};
  kl_tensor *w = tensor(KL_TENSOR_F32, 1, (int64_t[]){3}, w0);
  cr_assert_null(kl_program_set_param(p, "w", w));
  kl_tensor *x = tensor(KL_TENSOR_F32, 1, (int64_t[]){3}, xs);
  /* by hand, in f32 as the graph computes: w - 0.1 x per step */
  float want[3], before[3];
  memcpy(want, w0, sizeof want);
  kl_tensor *o[3] = {0};
  if (into)
    for (int k = 0; k < 3; k++)
      o[k] = tensor(KL_TENSOR_F32, 1, (int64_t[]){3}, NULL);
  char what[64];
  for (int step = 0; step < 3; step++) {
    memcpy(before, want, sizeof want);
    for (int i = 0; i < 3; i++)
      want[i] = want[i] - 0.1f * xs[i];
    const char *msg = into ? kl_run_into(p, &x, 1, o, 3) : kl_run(p, &x, 1, o, 3);
    cr_assert_null(msg, "%s", msg);
    snprintf(what, sizeof what, "%s%s%s step %d w1", c.backend ? "jit" : "ref",
             c.guard ? " guarded" : "", into ? " into" : "", step);
    expect_vec(kl_tensor_data(o[0]), want, 3, what);
    what[strlen(what) - 2] = 'a';
    expect_vec(kl_tensor_data(o[1]), want, 3, what); /* the assign's value is the new one */
    what[strlen(what) - 1] = ' ';
    expect_vec(kl_tensor_data(o[2]), before, 3, what); /* a returned param: before the run */
    if (!into) destroy_all(o, 3);
  }
  if (into) destroy_all(o, 3);
  kl_tensor *got = NULL;
  cr_assert_null(kl_program_get_param(p, "w", &got));
  expect_vec(kl_tensor_data(got), want, 3, "parameter after 3 steps");
  /* the expected values, spelled out: 1 - 0.3, 2 + 0.6, 3 - 0.15 */
  const float *gv = kl_tensor_data(got);
  cr_expect(fabsf(gv[0] - 0.7f) < 1e-6f && fabsf(gv[1] - 2.6f) < 1e-6f &&
                fabsf(gv[2] - 2.85f) < 1e-6f,
            "%g %g %g", gv[0], gv[1], gv[2]);
  kl_tensor_destroy(got);
  kl_tensor_destroy(x);
  kl_tensor_destroy(w);
  kl_program_destroy(p);
}

Test(train_ops, assign_updates_the_parameter_in_place) {
  check_sgd((cfg){.backend = KL_BACKEND_REF}, false);
  check_sgd((cfg){.backend = KL_BACKEND_JIT}, false);
  check_sgd((cfg){.backend = KL_BACKEND_JIT}, true);
  check_sgd((cfg){.backend = KL_BACKEND_JIT, .guard = true}, false);
  check_sgd((cfg){.backend = KL_BACKEND_JIT, .guard = true}, true);
}

/* A large parameter: the assign kernel runs on the thread pool; and state
 * parameters (trainable = false, init zeros) accumulate. */
Test(train_ops, assign_large_and_state_parameters) {
  static const char *text = "graph @acc(%g: f32[300,257]) {\n"
                            "  %m = param(\"m\") {init = \"zeros\", trainable = false} : "
                            "f32[300,257]\n"
                            "  %m1 = add(%m, %g) : f32[300,257]\n"
                            "  %a = assign(%m, %m1) : f32[300,257]\n"
                            "  return %a\n"
                            "}\n";
  int64_t dims[] = {300, 257}, n = 300 * 257;
  float *gv = malloc((size_t)n * sizeof *gv);
  cr_assert(gv);
  for (int64_t i = 0; i < n; i++)
    gv[i] = (float)(i % 97) - 48.0f;
  kl_tensor *g = tensor(KL_TENSOR_F32, 2, dims, gv);
  cfg cs[] = {{.backend = KL_BACKEND_REF},
              {.backend = KL_BACKEND_JIT, .threads = 2},
              {.backend = KL_BACKEND_JIT, .threads = 2, .guard = true}};
  for (int k = 0; k < 3; k++) {
    kl_program *p = compile_text(text, cs[k]);
    kl_tensor *o;
    for (int r = 0; r < 3; r++) {
      run_ok(p, &g, 1, &o, 1);
      kl_tensor_destroy(o);
    }
    kl_tensor *m = NULL;
    cr_assert_null(kl_program_get_param(p, "m", &m));
    const float *mv = kl_tensor_data(m);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
      if (mv[i] != 3 * gv[i]) bad = i;
    cr_expect(bad < 0, "config %d: m[%lld] = %g, expected %g", k, (long long)bad,
              bad < 0 ? 0.0 : mv[bad], bad < 0 ? 0.0 : 3 * gv[bad]);
    kl_tensor_destroy(m);
    kl_program_destroy(p);
  }
  kl_tensor_destroy(g);
  free(gv);
}

/* A run that fails on a bad index writes no parameter back, on either
 * backend, and reports the same message. */
Test(train_ops, failed_run_leaves_parameters_alone) {
  static const char *text = "graph @bad(%idx: i32[2], %x: f32[2,2]) {\n"
                            "  %w = param(\"w\") {init = \"ones\"} : f32[3,2]\n"
                            "  %s = scatter_add(%idx, %x) {rows = 3} : f32[3,2]\n"
                            "  %w1 = sub(%w, %s) : f32[3,2]\n"
                            "  %a = assign(%w, %w1) : f32[3,2]\n"
                            "  return %a\n"
                            "}\n";
  const int32_t iv[] = {1, 3};
  const float xv[] = {1, 2, 3, 4};
  kl_tensor *in[2] = {tensor(KL_TENSOR_I32, 1, (int64_t[]){2}, iv),
                      tensor(KL_TENSOR_F32, 2, (int64_t[]){2, 2}, xv)};
  char ref_msg[512] = "";
  for (int b = 0; b < 2; b++) {
    kl_program *p = compile_text(text, (cfg){.backend = b ? KL_BACKEND_JIT : KL_BACKEND_REF});
    kl_tensor *o = NULL;
    const char *msg = kl_run(p, in, 2, &o, 1);
    cr_assert_not_null(msg);
    cr_expect_null(o);
    if (b == 0)
      snprintf(ref_msg, sizeof ref_msg, "%s", msg);
    else
      cr_expect_str_eq(msg, ref_msg);
    kl_tensor *w = NULL;
    cr_assert_null(kl_program_get_param(p, "w", &w));
    for (int i = 0; i < 6; i++)
      cr_expect_eq(((float *)kl_tensor_data(w))[i], 1.0f, "backend %d: w[%d] changed", b, i);
    kl_tensor_destroy(w);
    kl_program_destroy(p);
  }
  destroy_all(in, 2);
}

/* ---- scatter_add ---------------------------------------------------------- */

/* scatter_add over idx (nidx indices in [0, rows)) and src [nidx, cols]
 * on the JIT with `threads` against the reference; exact, as both add in
 * index order. */
static void scatter_case(int64_t nidx, int64_t rows, int64_t cols, bool f64, int threads) {
  char text[512];
  const char *dt = f64 ? "f64" : "f32";
  snprintf(text, sizeof text,
           "graph @sc(%%idx: i64[%lld], %%src: %s[%lld,%lld]) {\n"
           "  %%s = scatter_add(%%idx, %%src) {rows = %lld} : %s[%lld,%lld]\n"
           "  return %%s\n"
           "}\n",
           (long long)nidx, dt, (long long)nidx, (long long)cols, (long long)rows, dt,
           (long long)rows, (long long)cols);
  int64_t *iv = malloc((size_t)nidx * sizeof *iv);
  double *sv = malloc((size_t)(nidx * cols) * sizeof *sv);
  float *fv = malloc((size_t)(nidx * cols) * sizeof *fv);
  cr_assert(iv && sv && fv);
  uint64_t r = 88172645463325252ull;
  for (int64_t i = 0; i < nidx; i++) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    iv[i] = (int64_t)(r % (uint64_t)(rows > 2 ? rows / 2 : rows)); /* crowded: many repeats */
  }
  for (int64_t i = 0; i < nidx * cols; i++) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    sv[i] = (double)(r >> 11) / 9007199254740992.0 * 2 - 1;
    fv[i] = (float)sv[i];
  }
  kl_tensor *in[2] = {tensor(KL_TENSOR_I64, 1, (int64_t[]){nidx}, iv),
                      tensor(f64 ? KL_TENSOR_F64 : KL_TENSOR_F32, 2, (int64_t[]){nidx, cols},
                             f64 ? (void *)sv : (void *)fv)};
  kl_tensor *ro, *jo;
  kl_program *rp = compile_text(text, (cfg){.backend = KL_BACKEND_REF});
  kl_program *jp = compile_text(text, (cfg){.backend = KL_BACKEND_JIT, .threads = threads});
  run_ok(rp, in, 2, &ro, 1);
  run_ok(jp, in, 2, &jo, 1);
  size_t bytes = (size_t)(rows * cols) * (f64 ? 8 : 4);
  cr_expect(memcmp(kl_tensor_data(ro), kl_tensor_data(jo), bytes) == 0,
            "scatter_add %lld x %lld -> %lld rows, %s, %d threads: JIT differs", (long long)nidx,
            (long long)cols, (long long)rows, dt, threads);
  /* and rows nobody names are zero */
  bool *named = calloc((size_t)rows, 1);
  for (int64_t i = 0; i < nidx; i++)
    named[iv[i]] = true;
  for (int64_t q = rows - 1; q >= 0 && !named[q]; q--)
    for (int64_t j = 0; j < cols; j++)
      cr_expect(f64 ? ((double *)kl_tensor_data(jo))[q * cols + j] == 0
                    : ((float *)kl_tensor_data(jo))[q * cols + j] == 0);
  free(named);
  kl_tensor_destroy(ro);
  kl_tensor_destroy(jo);
  kl_program_destroy(rp);
  kl_program_destroy(jp);
  destroy_all(in, 2);
  free(iv);
  free(sv);
  free(fv);
}

Test(train_ops, scatter_add_matches_the_reference) {
  for (int threads = 1; threads <= 2; threads++) {
    scatter_case(37, 11, 13, false, threads);
    scatter_case(37, 11, 13, true, threads);
    scatter_case(1, 3, 1, false, threads);
    scatter_case(300, 50, 257, false, threads); /* parallel over columns */
    scatter_case(301, 7, 4099, true, threads);
  }
}

Test(train_ops, scatter_add_rank2_indices) {
  static const char *text = "graph @sc(%idx: i32[2,3], %src: f32[2,3,2,2]) {\n"
                            "  %s = scatter_add(%idx, %src) {rows = 4} : f32[4,2,2]\n"
                            "  return %s\n"
                            "}\n";
  const int32_t iv[] = {0, 3, 0, 3, 3, 1};
  float sv[24];
  for (int i = 0; i < 24; i++)
    sv[i] = (float)i;
  kl_tensor *in[2] = {tensor(KL_TENSOR_I32, 2, (int64_t[]){2, 3}, iv),
                      tensor(KL_TENSOR_F32, 4, (int64_t[]){2, 3, 2, 2}, sv)};
  /* by hand: row 0 = src rows 0 + 2, row 1 = src row 5, row 2 = 0, row 3 =
   * src rows 1 + 3 + 4 (row p holds 4p .. 4p + 3) */
  const float want[16] = {8, 10, 12, 14, 20, 21, 22, 23, 0, 0, 0, 0, 32, 35, 38, 41};
  for (int b = 0; b < 2; b++) {
    kl_program *p = compile_text(text, (cfg){.backend = b ? KL_BACKEND_JIT : KL_BACKEND_REF});
    kl_tensor *o;
    run_ok(p, in, 2, &o, 1);
    expect_vec(kl_tensor_data(o), want, 16, b ? "jit" : "ref");
    kl_tensor_destroy(o);
    kl_program_destroy(p);
  }
  destroy_all(in, 2);
}

Test(train_ops, scatter_add_index_out_of_range_is_the_reference_message) {
  static const char *text = "graph @sc(%idx: i32[4], %src: f32[4,3]) {\n"
                            "  %s = scatter_add(%idx, %src) {rows = 5} : f32[5,3]\n"
                            "  return %s\n"
                            "}\n";
  const int32_t cases[][4] = {{0, 4, 5, 1}, {2, -1, 9, 0}, {4, 4, 4, 7}};
  const float sv[12] = {0};
  for (int k = 0; k < 3; k++) {
    kl_tensor *in[2] = {tensor(KL_TENSOR_I32, 1, (int64_t[]){4}, cases[k]),
                        tensor(KL_TENSOR_F32, 2, (int64_t[]){4, 3}, sv)};
    char msgs[2][512];
    for (int b = 0; b < 2; b++) {
      kl_program *p =
          compile_text(text, (cfg){.backend = b ? KL_BACKEND_JIT : KL_BACKEND_REF, .threads = 2});
      kl_tensor *o = NULL;
      const char *msg = kl_run(p, in, 2, &o, 1);
      cr_assert_not_null(msg, "case %d backend %d ran", k, b);
      snprintf(msgs[b], sizeof msgs[b], "%s", msg);
      kl_program_destroy(p);
    }
    cr_expect_str_eq(msgs[1], msgs[0]);
    cr_expect(strstr(msgs[0], "scatter_add: index") && strstr(msgs[0], "out of range [0, 5)"), "%s",
              msgs[0]);
    destroy_all(in, 2);
  }
}

/* ---- gelu_deriv ----------------------------------------------------------- */

Test(train_ops, gelu_deriv_matches_the_reference) {
  const int64_t sizes[] = {1, 17, 1000};
  for (int f = 0; f < 2; f++) {
    for (int form = 0; form < 2; form++) {
      for (int s = 0; s < 3; s++) {
        int64_t n = sizes[s];
        const char *dt = f ? "f64" : "f32";
        char text[512];
        snprintf(text, sizeof text,
                 "graph @gd(%%x: %s[%lld]) {\n"
                 "  %%y = gelu_deriv(%%x)%s : %s[%lld]\n"
                 "  return %%y\n"
                 "}\n",
                 dt, (long long)n, form ? " {approximate = \"tanh\"}" : "", dt, (long long)n);
        double *xd = malloc((size_t)n * sizeof *xd);
        float *xf = malloc((size_t)n * sizeof *xf);
        for (int64_t i = 0; i < n; i++) {
          xd[i] = n == 1 ? -0.75 : -8.0 + 16.0 * (double)i / (double)(n - 1);
          xf[i] = (float)xd[i];
        }
        kl_tensor *x =
            tensor(f ? KL_TENSOR_F64 : KL_TENSOR_F32, 1, &n, f ? (void *)xd : (void *)xf);
        kl_program *rp = compile_text(text, (cfg){.backend = KL_BACKEND_REF});
        kl_program *jp = compile_text(text, (cfg){.backend = KL_BACKEND_JIT});
        kl_tensor *ro, *jo;
        run_ok(rp, &x, 1, &ro, 1);
        run_ok(jp, &x, 1, &jo, 1);
        for (int64_t i = 0; i < n; i++) {
          double r = f ? ((double *)kl_tensor_data(ro))[i] : ((float *)kl_tensor_data(ro))[i];
          double j = f ? ((double *)kl_tensor_data(jo))[i] : ((float *)kl_tensor_data(jo))[i];
          /* f32 is computed in f32 by the JIT, in double by the reference */
          double tol = f ? 1e-12 + 1e-12 * fabs(r) : 1e-6 + 1e-5 * fabs(r);
          cr_expect(fabs(r - j) <= tol, "%s %s n=%lld x=%g: ref %.17g jit %.17g", dt,
                    form ? "tanh" : "erf", (long long)n, xd[i], r, j);
        }
        kl_tensor_destroy(ro);
        kl_tensor_destroy(jo);
        kl_tensor_destroy(x);
        kl_program_destroy(rp);
        kl_program_destroy(jp);
        free(xd);
        free(xf);
      }
    }
  }
}

/* ---- dropout keys --------------------------------------------------------- */

Test(train_ops, dropout_key_picks_the_mask) {
  static const char *text = "graph @drop(%x: f32[40000]) {\n"
                            "  %a = dropout(%x) {p = 0.5, key = 7} : f32[40000]\n"
                            "  %e = mul(%x, %x) : f32[40000]\n"
                            "  %b = dropout(%e) {p = 0.5, key = 7} : f32[40000]\n"
                            "  %c = dropout(%x) {p = 0.5} : f32[40000]\n"
                            "  return %a, %b, %c\n"
                            "}\n";
  int64_t n = 40000;
  float *xv = malloc((size_t)n * sizeof *xv);
  for (int64_t i = 0; i < n; i++)
    xv[i] = 1.0f + (float)(i % 13);
  kl_tensor *x = tensor(KL_TENSOR_F32, 1, &n, xv);
  kl_program *ps[3] = {
      compile_text(text, (cfg){.backend = KL_BACKEND_REF, .training = true}),
      compile_text(text, (cfg){.backend = KL_BACKEND_JIT, .training = true, .threads = 1}),
      compile_text(text, (cfg){.backend = KL_BACKEND_JIT, .training = true, .threads = 2})};
  for (int run = 0; run < 2; run++) {
    kl_tensor *o[3][3];
    for (int k = 0; k < 3; k++)
      run_ok(ps[k], &x, 1, o[k], 3);
    for (int k = 1; k < 3; k++)
      for (int r = 0; r < 3; r++)
        cr_expect(memcmp(kl_tensor_data(o[0][r]), kl_tensor_data(o[k][r]), (size_t)n * 4) == 0,
                  "run %d program %d output %d differs from the reference", run, k, r);
    const float *a = kl_tensor_data(o[0][0]), *b = kl_tensor_data(o[0][1]),
                *c = kl_tensor_data(o[0][2]);
    int64_t same_ab = 0, same_ac = 0, kept = 0;
    for (int64_t i = 0; i < n; i++) {
      same_ab += (a[i] == 0) == (b[i] == 0);
      same_ac += (a[i] == 0) == (c[i] == 0);
      kept += a[i] != 0;
    }
    cr_expect_eq(same_ab, n, "key 7 twice: masks differ at %lld places", (long long)(n - same_ab));
    /* independent masks agree at about half the places */
    cr_expect(same_ac > n * 4 / 10 && same_ac < n * 6 / 10, "%lld", (long long)same_ac);
    cr_expect(kept > n * 4 / 10 && kept < n * 6 / 10, "%lld kept", (long long)kept);
    for (int k = 0; k < 3; k++)
      destroy_all(o[k], 3);
  }
  for (int k = 0; k < 3; k++)
    kl_program_destroy(ps[k]);
  kl_tensor_destroy(x);
  free(xv);
}

/* ---- everything together -------------------------------------------------- */

Test(train_ops, train_state_corpus_graph_agrees) {
  char path[512];
  snprintf(path, sizeof path, "%s/tests/corpus/train_state.kir", KILN_SOURCE_DIR);
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  char text[4096];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  const int32_t iv[] = {4, 0, 4};
  float gv[12];
  for (int i = 0; i < 12; i++)
    gv[i] = 0.25f * (float)i - 1.0f;
  kl_tensor *in[2] = {tensor(KL_TENSOR_I32, 1, (int64_t[]){3}, iv),
                      tensor(KL_TENSOR_F32, 2, (int64_t[]){3, 4}, gv)};
  kl_program *rp = compile_text(text, (cfg){.backend = KL_BACKEND_REF, .training = true});
  kl_program *jp =
      compile_text(text, (cfg){.backend = KL_BACKEND_JIT, .training = true, .threads = 2});
  cr_assert_eq(kl_program_num_params(jp), 2);
  for (int run = 0; run < 3; run++) {
    kl_tensor *ro, *jo;
    run_ok(rp, in, 2, &ro, 1);
    run_ok(jp, in, 2, &jo, 1);
    for (int p = 0; p < 2; p++) {
      const char *name = kl_program_param_name(rp, p);
      kl_tensor *rv, *jv;
      cr_assert_null(kl_program_get_param(rp, name, &rv));
      cr_assert_null(kl_program_get_param(jp, name, &jv));
      for (int i = 0; i < 20; i++) {
        float r = ((float *)kl_tensor_data(rv))[i], j = ((float *)kl_tensor_data(jv))[i];
        cr_expect(fabsf(r - j) <= 1e-5f + 1e-5f * fabsf(r), "run %d %s[%d]: ref %g jit %g", run,
                  name, i, r, j);
      }
      kl_tensor_destroy(rv);
      kl_tensor_destroy(jv);
    }
    kl_tensor_destroy(ro);
    kl_tensor_destroy(jo);
  }
  kl_program_destroy(rp);
  kl_program_destroy(jp);
  destroy_all(in, 2);
}
