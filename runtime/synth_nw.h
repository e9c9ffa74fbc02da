/* nw-kernel's built-in dataset (d2l 11.2): noisy samples of
 * y = 2 sin(x) + x^0.8 at sorted uniform points in [0, 5), and a test grid
 * 0, 0.1, ..., 4.9 with the noiseless truth. Seeded with kiln's Philox
 * streams, so a seed gives the same data on every machine. */
#ifndef KILN_RT_SYNTH_NW_H
#define KILN_RT_SYNTH_NW_H

#include <stdint.h>

#include "ir/ir.h"

typedef struct rt_nw_data {
  int64_t n_train, n_test;
  float *x_train, *y_train; /* x_train sorted ascending; y with noise */
  float *x_test, *y_truth;  /* the grid and f at it, no noise */
} rt_nw_data;

/* The function d2l samples: 2 sin(x) + x^0.8 (computed in double). */
double rt_nw_truth(double x);

/* Fills *out (owned arrays; free with rt_nw_data_free) with n_train points
 * (2 <= n_train <= 10^6): x = sorted(U[0,1) * 5) from Philox stream 0 of
 * seed, noise N(0, 0.5^2) from stream 1. n_test is 50. false with d set on
 * a bad n_train or out of memory. */
bool rt_nw_data_make(rt_nw_data *out, int64_t n_train, uint64_t seed, ir_diag *d);
void rt_nw_data_free(rt_nw_data *data);

#endif
