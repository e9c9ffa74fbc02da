/* Runtime tensors: an IR type plus a 64-byte aligned buffer. Used by the
 * reference interpreter, safetensors I/O and (later) the JIT's buffers.
 * Element access through doubles/int64 is for the interpreter and tests,
 * not for hot paths. */
#ifndef KILN_RT_TENSOR_H
#define KILN_RT_TENSOR_H

#include "ir/ir.h"

typedef struct rt_tensor {
  ir_type type;
  void *data;   /* 64-byte aligned, owned when `owned` */
  size_t bytes; /* numel * dtype size */
  bool owned;
} rt_tensor;

/* 64-byte aligned zeroed allocation (size rounded up to 64); free with
 * rt_free. NULL on failure. */
void *rt_alloc(size_t bytes);
void rt_free(void *p);

/* Owned tensor with zeroed data; NULL when out of memory. Destroy with
 * rt_tensor_destroy. */
rt_tensor *rt_tensor_create(const ir_type *t);
/* Owned deep copy. */
rt_tensor *rt_tensor_clone(const rt_tensor *src);
/* "f32[4,8], 128 bytes": what an allocation of type t asks for, for
 * out-of-memory messages. Returns buf. */
const char *rt_type_size_str(const ir_type *t, char *buf, size_t len);
void rt_tensor_destroy(rt_tensor *t);

/* Element i (flat, row-major) as double / int64 / stored from them, with
 * C conversion rules (bool: nonzero -> 1). */
double rt_get_f(const rt_tensor *t, int64_t i);
int64_t rt_get_i(const rt_tensor *t, int64_t i);
void rt_set_f(rt_tensor *t, int64_t i, double v);
void rt_set_i(rt_tensor *t, int64_t i, int64_t v);
static inline int64_t rt_numel(const rt_tensor *t) { return ir_type_numel(&t->type); }

#endif
