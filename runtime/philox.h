/* Philox-4x32-10 counter-based RNG (Salmon et al., SC'11). Stateless: the
 * same (key, counter) gives the same numbers on any thread, in the
 * interpreter and in JIT code alike, which is what makes dropout masks
 * reproducible across thread counts. */
#ifndef KILN_RT_PHILOX_H
#define KILN_RT_PHILOX_H

#include <stdint.h>

#include "runtime/tensor.h"

/* One Philox-4x32 block with 10 rounds. */
void rt_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Uniform float in [0, 1) from a 32-bit word: (w >> 8) * 2^-24. */
static inline float rt_u32_to_unit(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* The dropout stream: element i of node `node` at `step` under `seed` uses
 * key = {seed lo, seed hi}, counter = {i >> 2 (lo), i >> 34, node, step lo},
 * and takes word i & 3 of the block. Keep the element when u >= p. */
float rt_dropout_uniform(uint64_t seed, uint64_t step, uint32_t node, uint64_t i);

/* Fills t with uniform [lo, hi) / normal(mean, std) values from the stream
 * keyed by (seed, stream). Integer tensors get the value truncated. */
void rt_fill_uniform(rt_tensor *t, uint64_t seed, uint32_t stream, double lo, double hi);
void rt_fill_normal(rt_tensor *t, uint64_t seed, uint32_t stream, double mean, double std);

#endif
