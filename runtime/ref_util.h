/* Internal helpers of the reference interpreter (runtime/ref_*.c): flat
 * index <-> multi-index conversion, axis normalisation, wrapping integer
 * arithmetic and NaN-safe float->int conversion. Not a public header. */
#ifndef KILN_RT_REF_UTIL_H
#define KILN_RT_REF_UTIL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "runtime/ref_kernels.h"

/* "file.c:12: %name", or "LINE:COL: %name" for a node parsed from IR text
 * without a "# file:line" comment (location only when known), for messages. */
void rt_node_where(const ir_node *n, char *buf, size_t len);

/* Splits flat row-major index `flat` of a tensor of type t into idx[]. */
static inline void rt_unflatten(const ir_type *t, int64_t flat, int64_t *idx) {
  for (int i = t->rank - 1; i >= 0; i--) {
    int64_t dim = t->dims[i];
    idx[i] = dim > 0 ? flat % dim : 0;
    flat = dim > 0 ? flat / dim : 0;
  }
}

/* Dot product of a multi-index with strides. */
static inline int64_t rt_offset(int rank, const int64_t *idx, const int64_t *strides) {
  int64_t off = 0;
  for (int i = 0; i < rank; i++)
    off += idx[i] * strides[i];
  return off;
}

/* Offset in `operand` of flat element `flat` of the broadcast result. */
static inline int64_t rt_bcast_offset(const ir_type *result, const int64_t *strides, int64_t flat) {
  int64_t idx[IR_MAX_RANK];
  rt_unflatten(result, flat, idx);
  return rt_offset(result->rank, idx, strides);
}

/* Python-style axis: -1 is the last. False when out of [-rank, rank). */
static inline bool rt_norm_axis(int64_t axis, int rank, int *out) {
  if (axis < -(int64_t)rank || axis >= rank) return false;
  *out = (int)(axis < 0 ? axis + rank : axis);
  return true;
}

/* Integer arithmetic that wraps like two's complement without signed
 * overflow (which would be UB). */
static inline int64_t rt_wrap_add(int64_t a, int64_t b) {
  return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline int64_t rt_wrap_sub(int64_t a, int64_t b) {
  return (int64_t)((uint64_t)a - (uint64_t)b);
}
static inline int64_t rt_wrap_mul(int64_t a, int64_t b) {
  return (int64_t)((uint64_t)a * (uint64_t)b);
}
static inline int64_t rt_wrap_neg(int64_t a) { return (int64_t)(0 - (uint64_t)a); }

/* Stores an int64 into an integer/bool element: narrowing to i32 keeps the
 * low 32 bits (wrap), bool is v != 0. */
static inline void rt_store_i(rt_tensor *t, int64_t i, int64_t v) {
  if (t->type.dtype == IR_I32) {
    ((int32_t *)t->data)[i] = (int32_t)(uint32_t)(uint64_t)v;
    return;
  }
  rt_set_i(t, i, v);
}

/* Float -> integer without UB: NaN -> 0, saturate, truncate toward zero. */
static inline int64_t rt_f2i(double x, ir_dtype to) {
  if (isnan(x)) return 0;
  if (to == IR_I32) {
    if (x >= 2147483647.0) return INT32_MAX;
    if (x <= -2147483648.0) return INT32_MIN;
    return (int64_t)x;
  }
  if (x >= 9223372036854775808.0) return INT64_MAX;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)x;
}

/* Stores a double into any dtype without UB (ints via rt_f2i). */
static inline void rt_store_f(rt_tensor *t, int64_t i, double v) {
  switch (t->type.dtype) {
  case IR_F32: ((float *)t->data)[i] = (float)v; break;
  case IR_F64: ((double *)t->data)[i] = v; break;
  case IR_I32:
  case IR_I64: rt_set_i(t, i, rt_f2i(v, t->type.dtype)); break;
  case IR_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
  default: break;
  }
}

/* Reads an element as int64; floats go through rt_f2i (never UB). */
static inline int64_t rt_load_i(const rt_tensor *t, int64_t i) {
  if (ir_dtype_is_float(t->type.dtype)) return rt_f2i(rt_get_f(t, i), IR_I64);
  return rt_get_i(t, i);
}

/* "op: " prefix of kernel messages. */
static inline const char *rt_opname(const ir_node *n) { return ir_op_get(n->op)->name; }

#endif
