/* The JIT's inline f32 exp, tanh, sigmoid and erf (backend/cg_math.c) against
 * double-precision libm, the independent reference: a sweep over every
 * 997th float bit pattern of both signs (about 4.3 million inputs, every
 * binade) plus special values, run through kl_compile / kl_run like any
 * graph. Compiled code runs with flush-to-zero and denormals-are-zero, so
 * where the true result (or input) is below FLT_MIN an absolute error of
 * FLT_MIN is accepted; everywhere else the error is measured in ulps of
 * the correctly rounded f32 result. Bounds: exp <= 2 ulp, tanh <= 3 ulp,
 * sigmoid <= 3 ulp, erf <= 2 ulp. Also checks that the kernels no longer
 * call libm. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/jit.h"
#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "ir/ir.h"

enum { F_EXP, F_TANH, F_SIGMOID, F_ERF, NFUN };
static const char *const names[NFUN] = {"exp", "tanh", "sigmoid", "erf"};
static const double max_ulp[NFUN] = {2.0, 3.0, 3.0, 2.0};

static float from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static double ref(int f, double x) {
  switch (f) {
  case F_EXP: return exp(x);
  case F_TANH: return tanh(x);
  case F_ERF: return erf(x);
  default: return 1.0 / (1.0 + exp(-x));
  }
}

/* |got - want| in units of the last place of want rounded to f32; 0 when
 * both are the same infinity; INFINITY when only one is infinite or NaN. */
static double ulp_error(float got, double want) {
  if (isnan(want) || isnan(got)) return isnan(want) && isnan(got) ? 0 : INFINITY;
  float w = (float)want;
  if (isinf(w) || isinf(got)) return w == got ? 0 : INFINITY;
  int e;
  frexp(fabs((double)w), &e); /* |w| in [2^(e-1), 2^e) */
  double ulp = ldexp(1.0, (e - 1 < -125 ? -125 : e - 1) - 23);
  return fabs((double)got - want) / ulp;
}

typedef struct sweep {
  int64_t n;
  float *x;
} sweep;

/* Every 997th non-negative float bit pattern up to +inf, negated too, then
 * the special values. */
static sweep make_inputs(void) {
  static const float special[] = {0.0f,
                                  -0.0f,
                                  INFINITY,
                                  -INFINITY,
                                  NAN,
                                  -NAN,
                                  FLT_MIN,
                                  -FLT_MIN,
                                  0x1p-149f,
                                  -0x1p-149f,
                                  0x1.fffffcp-127f,
                                  FLT_MAX,
                                  -FLT_MAX,
                                  88.72283f,
                                  88.72284f,
                                  89.0f,
                                  -87.33654f,
                                  -103.27893f,
                                  -103.97208f,
                                  -104.0f,
                                  -150.0f,
                                  0.625f,
                                  0x1.3ffffep-1f,
                                  -0.625f,
                                  9.0f,
                                  9.1f,
                                  -9.1f,
                                  44.4f,
                                  1e-20f,
                                  -1e-20f,
                                  0x1p-12f,
                                  -0x1p-12f};
  int64_t step = 997, per_sign = 0x7f800000 / step + 1;
  sweep s = {2 * per_sign + (int64_t)(sizeof special / sizeof special[0]), NULL};
  s.x = malloc((size_t)s.n * sizeof *s.x);
  cr_assert(s.x);
  int64_t k = 0;
  for (int64_t i = 0; i < per_sign; i++) {
    float v = from_bits((uint32_t)(i * step));
    s.x[k++] = v;
    s.x[k++] = -v;
  }
  for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
    s.x[k++] = special[i];
  return s;
}

/* Runs exp, tanh, sigmoid and erf of x on the JIT; out[f] receives n floats. */
static void run_jit(const sweep *s, float *out[NFUN]) {
  kl_graph *g = kl_graph_create("jit_math");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(s->n));
  kl_output(kl_exp(x));
  kl_output(kl_tanh(x));
  kl_output(kl_sigmoid(x));
  kl_output(kl_erf(x));
  cr_assert_null(kl_graph_error(g));
  kl_compile_opts o = {.backend = KL_BACKEND_JIT, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), &o, &err);
  cr_assert(p, "compile: %s", err ? err : "?");
  int64_t dims[1] = {s->n};
  kl_tensor *in = kl_tensor_from(KL_TENSOR_F32, 1, dims, s->x);
  kl_tensor *outs[NFUN];
  for (int f = 0; f < NFUN; f++)
    outs[f] = kl_tensor_create(KL_TENSOR_F32, 1, dims);
  const char *e = kl_run_into(p, &in, 1, outs, NFUN);
  cr_assert_null(e, "run: %s", e);
  for (int f = 0; f < NFUN; f++) {
    out[f] = malloc((size_t)s->n * sizeof(float));
    memcpy(out[f], kl_tensor_data(outs[f]), (size_t)s->n * sizeof(float));
    kl_tensor_destroy(outs[f]);
  }
  kl_tensor_destroy(in);
  kl_program_destroy(p);
  kl_graph_destroy(g);
}

Test(jit_math, f32_sweep_against_libm) {
  sweep s = make_inputs();
  float *out[NFUN];
  run_jit(&s, out);
  for (int f = 0; f < NFUN; f++) {
    double worst = 0;
    float worst_x = 0;
    for (int64_t i = 0; i < s.n; i++) {
      /* denormals-are-zero: a denormal input is read as +-0 (erf would
       * otherwise double it past FLT_MIN) */
      double x = fabs(s.x[i]) < FLT_MIN ? copysign(0.0, s.x[i]) : s.x[i], want = ref(f, x);
      float got = out[f][i];
      /* flushed: denormal results become 0 */
      bool flushed = !isnan(want) && fabs(want) < FLT_MIN;
      double err = flushed && fabs((double)got - want) <= FLT_MIN ? 0 : ulp_error(got, want);
      if (err > worst) worst = err, worst_x = s.x[i];
    }
    cr_log_info("%s: max error %.3f ulp at x = %a over %lld inputs", names[f], worst,
                (double)worst_x, (long long)s.n);
    cr_expect_leq(worst, max_ulp[f], "%s: %.3f ulp at x = %a (%.9g; libm %.9g)", names[f], worst,
                  (double)worst_x, (double)worst_x, ref(f, worst_x));
  }
  for (int f = 0; f < NFUN; f++)
    free(out[f]);
  free(s.x);
}

/* erf's two polynomials live on [0, 3.925): every 256th float there
 * (4.2 million, evenly over the bit patterns) and the switch points'
 * neighbours, within 2 ulp of libm's double erf. */
Test(jit_math, f32_erf_dense) {
  uint32_t top;
  float hi = 3.925f;
  memcpy(&top, &hi, sizeof top);
  int64_t n = top / 256 + 64, k = 0;
  sweep s = {n, malloc((size_t)n * sizeof(float))};
  cr_assert_not_null(s.x);
  for (uint32_t b = 0x00800000u; b < top && k < n - 64; b += 256)
    s.x[k++] = from_bits(b);
  static const float edges[] = {0.921875f, 3.925f};
  for (int e = 0; e < 2; e++) {
    float down = edges[e], up = edges[e];
    for (int d = 0; d < 16; d++) {
      s.x[k++] = down, s.x[k++] = up;
      down = nextafterf(down, 0), up = nextafterf(up, 10);
    }
  }
  s.n = k;
  float *out[NFUN];
  run_jit(&s, out);
  double worst = 0;
  float worst_x = 0;
  for (int64_t i = 0; i < s.n; i++) {
    double err = ulp_error(out[F_ERF][i], erf((double)s.x[i]));
    if (err > worst) worst = err, worst_x = s.x[i];
  }
  cr_log_info("erf: max error %.3f ulp at x = %a over %lld inputs in [FLT_MIN, 3.925]", worst,
              (double)worst_x, (long long)s.n);
  cr_expect_leq(worst, 2.0, "erf: %.3f ulp at x = %a", worst, (double)worst_x);
  for (int f = 0; f < NFUN; f++)
    free(out[f]);
  free(s.x);
}

/* Exact results the sweep's tolerances would not pin down. */
Test(jit_math, f32_special_values) {
  static float xs[] = {0.0f,    -0.0f, INFINITY, -INFINITY, NAN,   89.0f,
                       -200.0f, 1e30f, -1e30f,   20.0f,     -20.0f};
  sweep s = {(int64_t)(sizeof xs / sizeof xs[0]), xs};
  float *o[NFUN];
  run_jit(&s, o);
  /* exp */
  cr_expect_eq(o[F_EXP][0], 1.0f);
  cr_expect_eq(o[F_EXP][1], 1.0f);
  cr_expect(isinf(o[F_EXP][2]) && o[F_EXP][2] > 0, "exp(inf) = %a", (double)o[F_EXP][2]);
  cr_expect(o[F_EXP][3] == 0.0f && !signbit(o[F_EXP][3]), "exp(-inf) = %a", (double)o[F_EXP][3]);
  cr_expect(isnan(o[F_EXP][4]), "exp(nan) = %a", (double)o[F_EXP][4]);
  cr_expect(isinf(o[F_EXP][5]), "exp(89) overflows: %a", (double)o[F_EXP][5]);
  cr_expect_eq(o[F_EXP][6], 0.0f, "exp(-200) = %a", (double)o[F_EXP][6]);
  cr_expect(isinf(o[F_EXP][7]) && o[F_EXP][8] == 0.0f, "exp(+-1e30)");
  /* tanh: odd, exact at 0 with the sign kept, saturating to +-1 */
  cr_expect(o[F_TANH][0] == 0.0f && !signbit(o[F_TANH][0]), "tanh(0) = %a", (double)o[F_TANH][0]);
  cr_expect(o[F_TANH][1] == 0.0f && signbit(o[F_TANH][1]), "tanh(-0) = %a", (double)o[F_TANH][1]);
  cr_expect_eq(o[F_TANH][2], 1.0f);
  cr_expect_eq(o[F_TANH][3], -1.0f);
  cr_expect(isnan(o[F_TANH][4]), "tanh(nan) = %a", (double)o[F_TANH][4]);
  cr_expect_eq(o[F_TANH][7], 1.0f);
  cr_expect_eq(o[F_TANH][8], -1.0f);
  cr_expect_eq(o[F_TANH][9], 1.0f);
  cr_expect_eq(o[F_TANH][10], -1.0f);
  /* sigmoid: in [0, 1], exact at the ends */
  cr_expect_eq(o[F_SIGMOID][0], 0.5f);
  cr_expect_eq(o[F_SIGMOID][1], 0.5f);
  cr_expect_eq(o[F_SIGMOID][2], 1.0f);
  cr_expect_eq(o[F_SIGMOID][3], 0.0f);
  cr_expect(isnan(o[F_SIGMOID][4]), "sigmoid(nan) = %a", (double)o[F_SIGMOID][4]);
  cr_expect_eq(o[F_SIGMOID][7], 1.0f);
  cr_expect_eq(o[F_SIGMOID][8], 0.0f);
  /* erf: odd, exact at 0 with the sign kept, exactly +-1 at the ends */
  cr_expect(o[F_ERF][0] == 0.0f && !signbit(o[F_ERF][0]), "erf(0) = %a", (double)o[F_ERF][0]);
  cr_expect(o[F_ERF][1] == 0.0f && signbit(o[F_ERF][1]), "erf(-0) = %a", (double)o[F_ERF][1]);
  cr_expect_eq(o[F_ERF][2], 1.0f);
  cr_expect_eq(o[F_ERF][3], -1.0f);
  cr_expect(isnan(o[F_ERF][4]), "erf(nan) = %a", (double)o[F_ERF][4]);
  cr_expect_eq(o[F_ERF][7], 1.0f);
  cr_expect_eq(o[F_ERF][8], -1.0f);
  cr_expect_eq(o[F_ERF][9], 1.0f);
  cr_expect_eq(o[F_ERF][10], -1.0f);
  for (int f = 0; f < NFUN; f++)
    free(o[f]);
}

/* The point of the inline code: no libm calls left in f32 kernels, and the
 * loops vectorized (on x86-64 hosts, which all have SSE2). */
Test(jit_math, f32_kernels_inline_and_vectorize) {
  kl_graph *g = kl_graph_create("jit_math_ir");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(4096));
  kl_output(kl_exp(x));
  kl_output(kl_tanh(x));
  kl_output(kl_sigmoid(x));
  kl_output(kl_erf(x));
  kl_output(kl_gelu(x, false));
  cr_assert_null(kl_graph_error(g));
  ir_diag d = {0};
  char *ir = cg_jit_dump(kl_graph_ir(g), NULL, "llvm", &d);
  cr_assert(ir, "dump: %s", d.msg);
  cr_expect_null(strstr(ir, "@expf"), "a call to expf is left");
  cr_expect_null(strstr(ir, "@tanhf"), "a call to tanhf is left");
  cr_expect_null(strstr(ir, "@erff"), "a call to erff is left (erf or gelu)");
  cr_expect_null(strstr(ir, "@llvm.exp.f32"), "llvm.exp.f32 is left (becomes expf)");
#if defined(__x86_64__)
  cr_expect_not_null(strstr(ir, "x float>"), "no vector of floats in the module");
#endif
  free(ir);
  kl_graph_destroy(g);
}
