/* Runtime tensors: aligned buffers and typed element access. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/tensor.h"

void *rt_alloc(size_t bytes) {
  size_t rounded = ((bytes ? bytes : 1) + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, rounded);
  if (p) memset(p, 0, rounded);
  return p;
}

void rt_free(void *p) { free(p); }

rt_tensor *rt_tensor_create(const ir_type *t) {
  rt_tensor *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->type = *t;
  r->bytes = (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype);
  r->data = rt_alloc(r->bytes);
  r->owned = true;
  if (!r->data) {
    free(r);
    return NULL;
  }
  return r;
}

rt_tensor *rt_tensor_clone(const rt_tensor *src) {
  rt_tensor *r = rt_tensor_create(&src->type);
  if (r) memcpy(r->data, src->data, src->bytes);
  return r;
}

const char *rt_type_size_str(const ir_type *t, char *buf, size_t len) {
  char ty[IR_TYPE_STRLEN];
  double bytes = (double)ir_type_numel(t) * (double)ir_dtype_size(t->dtype);
  snprintf(buf, len, "%s, %.0f bytes", ir_type_str(t, ty, sizeof ty), bytes);
  return buf;
}

void rt_tensor_destroy(rt_tensor *t) {
  if (!t) return;
  if (t->owned) rt_free(t->data);
  free(t);
}

double rt_get_f(const rt_tensor *t, int64_t i) {
  switch (t->type.dtype) {
  case IR_F32: return ((const float *)t->data)[i];
  case IR_F64: return ((const double *)t->data)[i];
  case IR_I32: return ((const int32_t *)t->data)[i];
  case IR_I64: return (double)((const int64_t *)t->data)[i];
  case IR_BOOL: return ((const uint8_t *)t->data)[i] ? 1.0 : 0.0;
  default: return 0;
  }
}

int64_t rt_get_i(const rt_tensor *t, int64_t i) {
  switch (t->type.dtype) {
  case IR_F32: return (int64_t)((const float *)t->data)[i];
  case IR_F64: return (int64_t)((const double *)t->data)[i];
  case IR_I32: return ((const int32_t *)t->data)[i];
  case IR_I64: return ((const int64_t *)t->data)[i];
  case IR_BOOL: return ((const uint8_t *)t->data)[i] ? 1 : 0;
  default: return 0;
  }
}

void rt_set_f(rt_tensor *t, int64_t i, double v) {
  switch (t->type.dtype) {
  case IR_F32: ((float *)t->data)[i] = (float)v; break;
  case IR_F64: ((double *)t->data)[i] = v; break;
  case IR_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
  case IR_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
  case IR_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
  default: break;
  }
}

void rt_set_i(rt_tensor *t, int64_t i, int64_t v) {
  switch (t->type.dtype) {
  case IR_F32: ((float *)t->data)[i] = (float)v; break;
  case IR_F64: ((double *)t->data)[i] = (double)v; break;
  case IR_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
  case IR_I64: ((int64_t *)t->data)[i] = v; break;
  case IR_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
  default: break;
  }
}
