/* Parameter initialisers (runtime/init.c): the statistics of every init on
 * large tensors against its stated distribution, the fan computation, the
 * defaults for scale 0, determinism per (seed, stream), and that the
 * default normal init is exactly the fill programs used before init
 * attributes existed.
 * Tolerances: with n draws, the sample mean of a distribution with
 * deviation s is within 6 s / sqrt(n) of the truth, and the sample deviation
 * within 6 k s / sqrt(n) (k = sqrt((kurtosis - 1) / 4): 1/sqrt(2) for a
 * normal, sqrt(1/5) for a uniform), except with probability ~1e-9; the
 * draws are seeded, so a pass is reproducible. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "runtime/init.h"
#include "runtime/philox.h"

static rt_tensor *make(ir_dtype dt, int rank, const int64_t *dims) {
  ir_type t = ir_type_make(dt, rank, dims);
  rt_tensor *r = rt_tensor_create(&t);
  cr_assert_not_null(r);
  return r;
}

typedef struct stats {
  double mean, std, min, max;
} stats;

static stats measure(const rt_tensor *t) {
  int64_t n = rt_numel(t);
  double s = 0, ss = 0, lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    double v = rt_get_f(t, i);
    s += v;
    lo = fmin(lo, v);
    hi = fmax(hi, v);
  }
  double mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) {
    double v = rt_get_f(t, i) - mean;
    ss += v * v;
  }
  return (stats){mean, sqrt(ss / (double)(n - 1)), lo, hi};
}

static void init_ok(rt_tensor *t, const char *init, double scale, uint64_t seed, uint32_t stream) {
  ir_diag d = {0};
  cr_assert(rt_param_init(t, init, scale, seed, stream, &d), "%s: %s", init, d.msg);
}

/* N(0, std^2) within the 6-sigma bounds above. */
static void expect_normal(const rt_tensor *t, double std, const char *what) {
  stats s = measure(t);
  double n = (double)rt_numel(t);
  cr_expect(fabs(s.mean) < 6 * std / sqrt(n), "%s: mean %g for std %g", what, s.mean, std);
  cr_expect(fabs(s.std - std) < 6 * std / sqrt(2 * n), "%s: std %g, expected %g", what, s.std, std);
  /* a normal sample this large reaches beyond 3 std on both sides */
  cr_expect(s.max > 3 * std && s.min < -3 * std, "%s: range [%g, %g]", what, s.min, s.max);
}

/* U(-bound, bound): inside the bound, reaching close to it, moments right. */
static void expect_uniform(const rt_tensor *t, double bound, const char *what) {
  stats s = measure(t);
  double n = (double)rt_numel(t), std = bound / sqrt(3.0);
  cr_expect(s.min >= -bound && s.max < bound, "%s: range [%g, %g] for bound %g", what, s.min, s.max,
            bound);
  /* P(no draw in the top 1e-3 of the range) = (1 - 5e-4)^n, negligible */
  cr_expect(s.max > bound * (1 - 1e-3) && s.min < -bound * (1 - 1e-3), "%s: range [%g, %g]", what,
            s.min, s.max);
  cr_expect(fabs(s.mean) < 6 * std / sqrt(n), "%s: mean %g", what, s.mean);
  cr_expect(fabs(s.std - std) < 6 * sqrt(0.2) * std / sqrt(n), "%s: std %g, expected %g", what,
            s.std, std);
}

Test(init, fans) {
  double fi, fo;
  ir_type t = ir_type_make(IR_F32, 0, NULL);
  rt_param_fans(&t, &fi, &fo);
  cr_expect(fi == 1 && fo == 1);
  t = ir_type_make(IR_F32, 1, (int64_t[]){7});
  rt_param_fans(&t, &fi, &fo);
  cr_expect(fi == 7 && fo == 7);
  t = ir_type_make(IR_F32, 2, (int64_t[]){3, 5});
  rt_param_fans(&t, &fi, &fo);
  cr_expect(fi == 3 && fo == 5, "%g %g", fi, fo);
  t = ir_type_make(IR_F32, 4, (int64_t[]){2, 3, 4, 5});
  rt_param_fans(&t, &fi, &fo);
  cr_expect(fi == 24 && fo == 5, "%g %g", fi, fo);
  t = ir_type_make(IR_F32, 2, (int64_t[]){4, 0});
  rt_param_fans(&t, &fi, &fo);
  cr_expect(fi == 0 && fo == 0, "%g %g", fi, fo);
}

Test(init, normal_and_uniform_scales) {
  rt_tensor *t = make(IR_F64, 2, (int64_t[]){512, 512});
  init_ok(t, "normal", 0.0, 1, 0);
  expect_normal(t, 0.1, "normal scale 0");
  init_ok(t, "normal", 2.5, 1, 0);
  expect_normal(t, 2.5, "normal scale 2.5");
  init_ok(t, "uniform", 0.0, 1, 0);
  expect_uniform(t, 0.1, "uniform scale 0");
  init_ok(t, "uniform", 0.03, 1, 0);
  expect_uniform(t, 0.03, "uniform scale 0.03");
  rt_tensor_destroy(t);
}

Test(init, xavier) {
  /* fan_in = 64 * 8 = 512 (numel / last dim), fan_out = 256 */
  rt_tensor *t = make(IR_F64, 3, (int64_t[]){64, 8, 256});
  init_ok(t, "xavier_uniform", 0.0, 3, 1);
  expect_uniform(t, sqrt(6.0 / 768.0), "xavier_uniform");
  init_ok(t, "xavier_uniform", 2.0, 3, 1);
  expect_uniform(t, 2.0 * sqrt(6.0 / 768.0), "xavier_uniform gain 2");
  init_ok(t, "xavier_normal", 0.0, 3, 1);
  expect_normal(t, sqrt(2.0 / 768.0), "xavier_normal");
  init_ok(t, "xavier_normal", 0.5, 3, 1);
  expect_normal(t, 0.5 * sqrt(2.0 / 768.0), "xavier_normal gain 0.5");
  rt_tensor_destroy(t);
}

Test(init, kaiming) {
  rt_tensor *t = make(IR_F64, 2, (int64_t[]){1024, 200}); /* fan_in 1024 */
  init_ok(t, "kaiming_normal", 0.0, 5, 2);
  expect_normal(t, sqrt(2.0) / 32.0, "kaiming_normal");
  init_ok(t, "kaiming_uniform", 0.0, 5, 2);
  expect_uniform(t, sqrt(3.0) * sqrt(2.0) / 32.0, "kaiming_uniform");
  init_ok(t, "kaiming_uniform", 1.0, 5, 2);
  expect_uniform(t, sqrt(3.0) / 32.0, "kaiming_uniform gain 1");
  rt_tensor_destroy(t);
  /* rank 1: fan_in is the dim */
  t = make(IR_F64, 1, (int64_t[]){250000});
  init_ok(t, "kaiming_normal", 3.0, 5, 3);
  expect_normal(t, 3.0 / sqrt(250000.0), "kaiming_normal rank 1");
  rt_tensor_destroy(t);
}

Test(init, f32_draws_follow_the_same_distributions) {
  rt_tensor *t = make(IR_F32, 2, (int64_t[]){256, 1024});
  init_ok(t, "xavier_uniform", 0.0, 9, 0);
  expect_uniform(t, sqrt(6.0 / 1280.0), "f32 xavier_uniform");
  init_ok(t, "normal", 0.0, 9, 0);
  expect_normal(t, 0.1, "f32 normal");
  rt_tensor_destroy(t);
}

Test(init, zeros_and_ones_in_every_dtype) {
  for (int dt = IR_F32; dt <= IR_BOOL; dt++) {
    rt_tensor *t = make((ir_dtype)dt, 2, (int64_t[]){3, 5});
    init_ok(t, "ones", 0.0, 1, 0);
    for (int64_t i = 0; i < 15; i++)
      cr_expect(rt_get_f(t, i) == 1.0, "%s ones[%lld] = %g", ir_dtype_name((ir_dtype)dt),
                (long long)i, rt_get_f(t, i));
    init_ok(t, "zeros", 7.0, 1, 0); /* scale means nothing to constants */
    for (int64_t i = 0; i < 15; i++)
      cr_expect(rt_get_f(t, i) == 0.0, "%s zeros", ir_dtype_name((ir_dtype)dt));
    rt_tensor_destroy(t);
  }
}

Test(init, default_normal_is_the_old_fill) {
  rt_tensor *a = make(IR_F32, 2, (int64_t[]){17, 33}), *b = make(IR_F32, 2, (int64_t[]){17, 33});
  for (uint32_t stream = 0; stream < 4; stream++) {
    init_ok(a, "normal", 0.0, 1234, stream);
    rt_fill_normal(b, 1234, stream, 0.0, 0.1);
    cr_expect(memcmp(a->data, b->data, a->bytes) == 0, "stream %u differs", stream);
  }
  init_ok(a, NULL, 0.0, 77, 2); /* no init attribute: the default */
  rt_fill_normal(b, 77, 2, 0.0, 0.1);
  cr_expect(memcmp(a->data, b->data, a->bytes) == 0);
  init_ok(a, "uniform", 0.0, 77, 2);
  rt_fill_uniform(b, 77, 2, -0.1, 0.1);
  cr_expect(memcmp(a->data, b->data, a->bytes) == 0);
  rt_tensor_destroy(a);
  rt_tensor_destroy(b);
}

Test(init, deterministic_per_seed_and_stream) {
  static const char *const inits[] = {"normal",        "uniform",         "xavier_uniform",
                                      "xavier_normal", "kaiming_uniform", "kaiming_normal"};
  int64_t dims[] = {8, 16};
  for (size_t k = 0; k < sizeof inits / sizeof *inits; k++) {
    rt_tensor *a = make(IR_F32, 2, dims), *b = make(IR_F32, 2, dims);
    rt_tensor *c = make(IR_F32, 2, dims), *e = make(IR_F32, 2, dims);
    init_ok(a, inits[k], 0.0, 42, 3);
    init_ok(b, inits[k], 0.0, 42, 3);
    init_ok(c, inits[k], 0.0, 42, 4);
    init_ok(e, inits[k], 0.0, 43, 3);
    cr_expect(memcmp(a->data, b->data, a->bytes) == 0, "%s: same seed and stream", inits[k]);
    cr_expect(memcmp(a->data, c->data, a->bytes) != 0, "%s: another stream", inits[k]);
    cr_expect(memcmp(a->data, e->data, a->bytes) != 0, "%s: another seed", inits[k]);
    rt_tensor_destroy(a);
    rt_tensor_destroy(b);
    rt_tensor_destroy(c);
    rt_tensor_destroy(e);
  }
}

Test(init, scalars_and_empty_tensors) {
  rt_tensor *s = make(IR_F64, 0, NULL);
  init_ok(s, "xavier_uniform", 0.0, 1, 0); /* fans 1 and 1: bound sqrt(3) */
  cr_expect(fabs(rt_get_f(s, 0)) < sqrt(3.0));
  rt_tensor_destroy(s);
  rt_tensor *e = make(IR_F32, 2, (int64_t[]){0, 4});
  init_ok(e, "kaiming_normal", 0.0, 1, 0);
  init_ok(e, "xavier_normal", 0.0, 1, 0);
  rt_tensor_destroy(e);
}

Test(init, errors_are_messages) {
  rt_tensor *t = make(IR_F32, 1, (int64_t[]){4});
  ir_diag d = {0};
  cr_expect_not(rt_param_init(t, "glorot", 0.0, 1, 0, &d));
  cr_expect(strstr(d.msg, "unknown init \"glorot\""), "%s", d.msg);
  cr_expect_not(rt_param_init(t, "xavier_sideways", 0.0, 1, 0, &d));
  cr_expect(strstr(d.msg, "xavier_sideways"), "%s", d.msg);
  cr_expect_not(rt_param_init(t, "normal", -1.0, 1, 0, &d));
  cr_expect(strstr(d.msg, "scale"), "%s", d.msg);
  cr_expect_not(rt_param_init(t, "uniform", NAN, 1, 0, &d));
  cr_expect(strstr(d.msg, "scale"), "%s", d.msg);
  cr_expect_not(rt_param_init(t, "uniform", INFINITY, 1, 0, &d));
  rt_tensor_destroy(t);
}
