/* Philox-4x32-10 (Salmon et al., SC'11) and the streams built on it: the
 * dropout stream (one word per element, addressed by element index so any
 * thread split gives the same mask) and the uniform/normal fills used for
 * parameter initialisation and missing CLI inputs. */
#include <math.h>
#include <stdint.h>

#include "runtime/philox.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Tags the fill streams' last counter word ("kiln") so they can never
 * collide with a dropout counter, whose last word is a step number. */
#define FILL_TAG 0x6b696c6eu

void rt_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * x0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * x2;
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0;
    uint32_t y1 = (uint32_t)p1;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;
    uint32_t y3 = (uint32_t)p0;
    x0 = y0;
    x1 = y1;
    x2 = y2;
    x3 = y3;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

float rt_dropout_uniform(uint64_t seed, uint64_t step, uint32_t node, uint64_t i) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)(i >> 2), (uint32_t)(i >> 34), node, (uint32_t)step};
  uint32_t w[4];
  rt_philox4x32(ctr, key, w);
  return rt_u32_to_unit(w[i & 3]);
}

/* Block `b` of the fill stream (seed, stream). */
static void fill_block(uint64_t seed, uint32_t stream, uint64_t b, uint32_t w[4]) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), stream, FILL_TAG};
  rt_philox4x32(ctr, key, w);
}

/* Stores v, keeping integer conversions defined: out-of-range and NaN values
 * would be undefined behaviour in a plain C cast. */
static void store(rt_tensor *t, int64_t i, double v, double lo, double hi) {
  switch (t->type.dtype) {
  case IR_F32: {
    float f = (float)v;
    /* Rounding to float can land exactly on an exclusive upper bound. */
    if (hi > lo && (double)f >= hi) f = nextafterf((float)hi, -INFINITY);
    ((float *)t->data)[i] = f;
    break;
  }
  case IR_F64: ((double *)t->data)[i] = (hi > lo && v >= hi) ? nextafter(hi, -INFINITY) : v; break;
  case IR_I32:
    if (!(v > -2147483649.0)) v = -2147483648.0;
    if (!(v < 2147483648.0)) v = 2147483647.0;
    ((int32_t *)t->data)[i] = (int32_t)v;
    break;
  case IR_I64:
    if (!(v > -9223372036854775808.0)) {
      ((int64_t *)t->data)[i] = INT64_MIN;
    } else if (!(v < 9223372036854775808.0)) {
      ((int64_t *)t->data)[i] = INT64_MAX;
    } else {
      ((int64_t *)t->data)[i] = (int64_t)v;
    }
    break;
  case IR_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)(v != 0); break;
  default: break;
  }
}

/* 32 random bits as a double in [0, 1); finer than rt_u32_to_unit, which
 * matters for f64 tensors. */
static double unit32(uint32_t w) { return (double)w * (1.0 / 4294967296.0); }

void rt_fill_uniform(rt_tensor *t, uint64_t seed, uint32_t stream, double lo, double hi) {
  int64_t n = rt_numel(t);
  uint32_t w[4];
  for (int64_t i = 0; i < n; i++) {
    if ((i & 3) == 0) fill_block(seed, stream, (uint64_t)i >> 2, w);
    double u = unit32(w[i & 3]);
    store(t, i, lo + (hi - lo) * u, lo, hi);
  }
}

void rt_fill_normal(rt_tensor *t, uint64_t seed, uint32_t stream, double mean, double std) {
  const double two_pi = 6.283185307179586476925286766559;
  int64_t n = rt_numel(t);
  uint32_t w[4];
  double z[4];
  for (int64_t i = 0; i < n; i++) {
    if ((i & 3) == 0) {
      /* Box-Muller on the word pairs (0,1) and (2,3); the radius word maps
       * to (0, 1] so log never sees 0. */
      fill_block(seed, stream, (uint64_t)i >> 2, w);
      for (int k = 0; k < 4; k += 2) {
        double u1 = ((double)w[k] + 1.0) * (1.0 / 4294967296.0);
        double u2 = unit32(w[k + 1]);
        double r = sqrt(-2.0 * log(u1));
        z[k] = r * cos(two_pi * u2);
        z[k + 1] = r * sin(two_pi * u2);
      }
    }
    store(t, i, mean + std * z[i & 3], 0.0, 0.0);
  }
}
