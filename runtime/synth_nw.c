/* The nw-kernel dataset: d2l's
 *   x_train, _ = torch.sort(torch.rand(n_train) * 5)
 *   y_train = f(x_train) + torch.normal(0.0, 0.5, (n_train,))
 *   x_test = torch.arange(0, 5, 0.1)
 * with torch's generator replaced by kiln's Philox fill streams. */
#include <math.h>
#include <stdlib.h>

#include "runtime/philox.h"
#include "runtime/synth_nw.h"

enum { NW_N_TEST = 50 };

double rt_nw_truth(double x) { return 2.0 * sin(x) + pow(x, 0.8); }

/* A non-owning rt_tensor view of a float array, for the fill functions. */
static rt_tensor view(float *p, int64_t n) {
  rt_tensor t = {.type = {.dtype = IR_F32, .rank = 1, .dims = {n}},
                 .data = p,
                 .bytes = (size_t)n * sizeof(float),
                 .owned = false};
  return t;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

void rt_nw_data_free(rt_nw_data *data) {
  if (!data) return;
  free(data->x_train);
  free(data->y_train);
  free(data->x_test);
  free(data->y_truth);
  *data = (rt_nw_data){0};
}

bool rt_nw_data_make(rt_nw_data *out, int64_t n_train, uint64_t seed, ir_diag *d) {
  *out = (rt_nw_data){0};
  if (n_train < 2 || n_train > 1000000) {
    ir_diag_set(d, "nw-kernel data: n_train must be in [2, 1000000], got %lld", (long long)n_train);
    return false;
  }
  out->n_train = n_train;
  out->n_test = NW_N_TEST;
  out->x_train = malloc((size_t)n_train * sizeof(float));
  out->y_train = malloc((size_t)n_train * sizeof(float));
  out->x_test = malloc(NW_N_TEST * sizeof(float));
  out->y_truth = malloc(NW_N_TEST * sizeof(float));
  if (!out->x_train || !out->y_train || !out->x_test || !out->y_truth) {
    rt_nw_data_free(out);
    ir_diag_set(d, "nw-kernel data: out of memory for %lld points", (long long)n_train);
    return false;
  }
  rt_tensor x = view(out->x_train, n_train), noise = view(out->y_train, n_train);
  rt_fill_uniform(&x, seed, 0, 0.0, 1.0);
  for (int64_t i = 0; i < n_train; i++)
    out->x_train[i] *= 5.0f; /* as torch.rand(n) * 5, in float */
  qsort(out->x_train, (size_t)n_train, sizeof(float), cmp_float);
  rt_fill_normal(&noise, seed, 1, 0.0, 0.5);
  for (int64_t i = 0; i < n_train; i++)
    out->y_train[i] = (float)rt_nw_truth(out->x_train[i]) + out->y_train[i];
  for (int i = 0; i < NW_N_TEST; i++) {
    out->x_test[i] = (float)(0.1 * i);
    out->y_truth[i] = (float)rt_nw_truth(out->x_test[i]);
  }
  return true;
}
