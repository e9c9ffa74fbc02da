/* Philox-4x32-10 against the Random123 known-answer vectors, the dropout
 * and fill stream layouts against values from an independent plain-Python
 * implementation, and the statistics of the uniform/normal fills. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "runtime/philox.h"

/* Random123 kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> out[4]. */
static const struct {
  uint32_t ctr[4], key[2], out[4];
} kat[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

Test(philox, known_answer_vectors) {
  for (size_t v = 0; v < sizeof kat / sizeof kat[0]; v++) {
    uint32_t out[4];
    rt_philox4x32(kat[v].ctr, kat[v].key, out);
    for (int k = 0; k < 4; k++)
      cr_expect_eq(out[k], kat[v].out[k], "vector %zu word %d: got %08x, want %08x", v, k, out[k],
                   kat[v].out[k]);
  }
}

Test(philox, inputs_not_modified) {
  uint32_t ctr[4] = {1, 2, 3, 4}, key[2] = {5, 6}, out[4];
  rt_philox4x32(ctr, key, out);
  cr_expect(ctr[0] == 1 && ctr[1] == 2 && ctr[2] == 3 && ctr[3] == 4);
  cr_expect(key[0] == 5 && key[1] == 6);
}

Test(philox, u32_to_unit) {
  cr_expect_eq(rt_u32_to_unit(0), 0.0f);
  cr_expect_eq(rt_u32_to_unit(0xffffffffu), 16777215.0f / 16777216.0f);
  cr_expect_lt(rt_u32_to_unit(0xffffffffu), 1.0f);
  cr_expect_eq(rt_u32_to_unit(0x80000000u), 0.5f);
  cr_expect_eq(rt_u32_to_unit(0x000000ffu), 0.0f); /* low 8 bits dropped */
}

/* Seed 0, step 0, node 0: elements 0..3 are the words of the all-zero KAT
 * block, as (w >> 8) / 2^24. */
Test(philox, dropout_zero_block_is_kat) {
  const uint32_t hi24[4] = {0x6627e8, 0xe169c5, 0xbc57ac, 0x9b00db};
  for (int i = 0; i < 4; i++)
    cr_expect_eq(rt_dropout_uniform(0, 0, 0, (uint64_t)i), (float)hi24[i] / 16777216.0f,
                 "element %d", i);
}

/* The counter layout {i >> 2, i >> 34, node, step lo} with key {seed lo,
 * seed hi}. Expected words from an independent Python implementation (which
 * reproduces the KAT vectors above). */
Test(philox, dropout_layout) {
  const uint64_t seed = 0x0123456789abcdefull, step = 0x0000000200000005ull;
  const uint32_t node = 7;
  const struct {
    uint64_t i;
    uint32_t w;
  } cases[] = {
      {(5ull << 34) | (0x1234ull << 2) | 3, 0xe9d1f8dd},
      {0, 0x969196ea},
      {1, 0xe145dae9},
      {6, 0x9a73425c},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    float want = (float)(cases[c].w >> 8) / 16777216.0f;
    cr_expect_eq(rt_dropout_uniform(seed, step, node, cases[c].i), want, "case %zu", c);
  }
  /* Each coordinate changes the stream. */
  float base = rt_dropout_uniform(seed, 5, node, 9);
  cr_expect_neq(rt_dropout_uniform(seed + 1, 5, node, 9), base);
  cr_expect_neq(rt_dropout_uniform(seed ^ (1ull << 40), 5, node, 9), base);
  cr_expect_neq(rt_dropout_uniform(seed, 6, node, 9), base);
  cr_expect_neq(rt_dropout_uniform(seed, 5, node + 1, 9), base);
}

static rt_tensor *make(ir_dtype dt, int64_t n) {
  ir_type t = ir_type_make(dt, 1, &n);
  rt_tensor *r = rt_tensor_create(&t);
  cr_assert_not_null(r);
  return r;
}

/* First values of the fill stream, seed 42, stream 3, from the independent
 * Python implementation: counter {block lo, block hi, stream, 0x6b696c6e}. */
Test(philox, fill_layout_f64) {
  const double want_u[6] = {2.1312089078128338,  -0.53356974944472313, -0.076817664317786694,
                            0.40777293406426907, 1.9636277537792921,   -0.17472890485078096};
  const double want_n[6] = {1.5404854589079491, 1.4361578906832193, -1.5467717759440505,
                            3.2459986008232109, 0.9197949569000361, 1.9909105262817806};
  rt_tensor *u = make(IR_F64, 6), *z = make(IR_F64, 6);
  rt_fill_uniform(u, 42, 3, -1.0, 3.0);
  rt_fill_normal(z, 42, 3, 0.5, 2.0);
  for (int i = 0; i < 6; i++) {
    cr_expect_float_eq(rt_get_f(u, i), want_u[i], 1e-15, "uniform %d: %.17g", i, rt_get_f(u, i));
    cr_expect_float_eq(rt_get_f(z, i), want_n[i], 1e-12, "normal %d: %.17g", i, rt_get_f(z, i));
  }
  rt_tensor_destroy(u);
  rt_tensor_destroy(z);
}

static void moments(const rt_tensor *t, double *mean, double *var) {
  int64_t n = rt_numel(t);
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++)
    s += rt_get_f(t, i);
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) {
    double d = rt_get_f(t, i) - *mean;
    s2 += d * d;
  }
  *var = s2 / (double)(n - 1);
}

#define NDRAWS 100000

Test(philox, uniform_statistics) {
  rt_tensor *t = make(IR_F32, NDRAWS);
  rt_fill_uniform(t, 1234, 0, -1.0, 3.0);
  double mean, var;
  moments(t, &mean, &var);
  /* U[-1, 3): mean 1, variance 16/12. Standard error of the mean 0.0037. */
  cr_expect_float_eq(mean, 1.0, 0.02, "mean %g", mean);
  cr_expect_float_eq(var, 16.0 / 12.0, 0.02, "variance %g", var);
  int bins[8] = {0};
  for (int64_t i = 0; i < NDRAWS; i++) {
    double v = rt_get_f(t, i);
    cr_assert(v >= -1.0 && v < 3.0, "element %lld = %g out of [-1, 3)", (long long)i, v);
    bins[(int)((v + 1.0) * 2.0)]++;
  }
  /* 12500 expected per bin; sd about 105. */
  for (int b = 0; b < 8; b++)
    cr_expect(bins[b] > 12000 && bins[b] < 13000, "bin %d has %d", b, bins[b]);
  rt_tensor_destroy(t);
}

Test(philox, normal_statistics) {
  rt_tensor *t = make(IR_F64, NDRAWS);
  rt_fill_normal(t, 99, 5, 2.0, 0.5);
  double mean, var;
  moments(t, &mean, &var);
  cr_expect_float_eq(mean, 2.0, 0.01, "mean %g", mean);    /* se 0.0016 */
  cr_expect_float_eq(var, 0.25, 0.01, "variance %g", var); /* se 0.0011 */
  int within1 = 0, within2 = 0;
  for (int64_t i = 0; i < NDRAWS; i++) {
    double z = fabs(rt_get_f(t, i) - 2.0) / 0.5;
    within1 += z < 1.0;
    within2 += z < 2.0;
  }
  /* 68.27% and 95.45% of a normal lie within 1 and 2 sd. */
  cr_expect_float_eq(within1 / (double)NDRAWS, 0.6827, 0.01, "within 1 sd: %d", within1);
  cr_expect_float_eq(within2 / (double)NDRAWS, 0.9545, 0.005, "within 2 sd: %d", within2);
  rt_tensor_destroy(t);
}

Test(philox, fills_are_deterministic_and_streams_differ) {
  rt_tensor *a = make(IR_F32, 1001), *b = make(IR_F32, 1001), *c = make(IR_F32, 1001);
  rt_tensor *d = make(IR_F32, 1001);
  rt_fill_uniform(a, 7, 1, 0.0, 1.0);
  rt_fill_uniform(b, 7, 1, 0.0, 1.0);
  rt_fill_uniform(c, 7, 2, 0.0, 1.0);
  rt_fill_uniform(d, 8, 1, 0.0, 1.0);
  cr_expect_eq(memcmp(a->data, b->data, a->bytes), 0, "same (seed, stream) must repeat");
  int same_c = 0, same_d = 0;
  for (int i = 0; i < 1001; i++) {
    same_c += rt_get_f(a, i) == rt_get_f(c, i);
    same_d += rt_get_f(a, i) == rt_get_f(d, i);
  }
  cr_expect_lt(same_c, 5, "stream 2 repeats stream 1 in %d places", same_c);
  cr_expect_lt(same_d, 5, "seed 8 repeats seed 7 in %d places", same_d);

  rt_fill_normal(a, 7, 1, 0.0, 1.0);
  rt_fill_normal(b, 7, 1, 0.0, 1.0);
  rt_fill_normal(c, 7, 2, 0.0, 1.0);
  cr_expect_eq(memcmp(a->data, b->data, a->bytes), 0);
  cr_expect_neq(memcmp(a->data, c->data, a->bytes), 0);
  /* A prefix of a longer fill is the shorter fill (element-addressed). */
  rt_tensor *s = make(IR_F32, 10);
  rt_fill_normal(s, 7, 1, 0.0, 1.0);
  cr_expect_eq(memcmp(a->data, s->data, s->bytes), 0);
  rt_tensor_destroy(a);
  rt_tensor_destroy(b);
  rt_tensor_destroy(c);
  rt_tensor_destroy(d);
  rt_tensor_destroy(s);
}

Test(philox, integer_fills_truncate) {
  rt_tensor *f = make(IR_F64, 1000), *i = make(IR_I32, 1000), *l = make(IR_I64, 1000);
  rt_fill_uniform(f, 3, 4, -5.0, 5.0);
  rt_fill_uniform(i, 3, 4, -5.0, 5.0);
  rt_fill_uniform(l, 3, 4, -5.0, 5.0);
  for (int k = 0; k < 1000; k++) {
    cr_expect_eq(rt_get_i(i, k), (int64_t)trunc(rt_get_f(f, k)), "i32 element %d", k);
    cr_expect_eq(rt_get_i(l, k), (int64_t)trunc(rt_get_f(f, k)), "i64 element %d", k);
  }
  /* Out-of-range values saturate instead of being undefined. */
  rt_fill_normal(i, 3, 4, 0.0, 1e12);
  int top = 0, bottom = 0;
  for (int k = 0; k < 1000; k++) {
    top += rt_get_i(i, k) == INT32_MAX;
    bottom += rt_get_i(i, k) == INT32_MIN;
  }
  cr_expect(top > 400 && bottom > 400, "saturated: %d high, %d low", top, bottom);
  rt_tensor_destroy(f);
  rt_tensor_destroy(i);
  rt_tensor_destroy(l);
}

Test(philox, uniform_upper_bound_exclusive_in_f32) {
  /* [1, 1 + 2^-22): most doubles in range round to the bound in float. */
  rt_tensor *t = make(IR_F32, 4096);
  const double hi = 1.0 + ldexp(1.0, -22);
  rt_fill_uniform(t, 11, 0, 1.0, hi);
  for (int k = 0; k < 4096; k++) {
    float v = ((const float *)t->data)[k];
    cr_assert(v >= 1.0f && (double)v < hi, "element %d = %.9g", k, v);
  }
  rt_tensor_destroy(t);
}

Test(philox, empty_and_scalar) {
  ir_type st = ir_type_make(IR_F32, 0, NULL);
  rt_tensor *s = rt_tensor_create(&st);
  rt_fill_uniform(s, 42, 3, -1.0, 3.0);
  /* Element 0 of the seed-42 stream-3 fill (see fill_layout_f64), in f32. */
  cr_expect_eq(rt_get_f(s, 0), (double)(float)2.1312089078128338);
  int64_t zero = 0;
  ir_type et = ir_type_make(IR_F32, 1, &zero);
  rt_tensor *e = rt_tensor_create(&et);
  rt_fill_normal(e, 1, 1, 0, 1); /* must not touch the buffer */
  rt_tensor_destroy(s);
  rt_tensor_destroy(e);
}
