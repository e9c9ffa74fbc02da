/* Internals shared by the safetensors container (safetensors.c), reader
 * (safetensors_read.c) and writer (safetensors_write.c). Not a public
 * header: the layout of rt_safetensors may change. */
#ifndef KILN_RT_SAFETENSORS_INTERNAL_H
#define KILN_RT_SAFETENSORS_INTERNAL_H

#include "runtime/safetensors.h"

typedef struct rt_st_entry {
  char *name;
  rt_tensor *t; /* owned */
} rt_st_entry;

typedef struct rt_st_meta_kv {
  char *key, *value;
} rt_st_meta_kv;

struct rt_safetensors {
  rt_st_entry *tensors; /* insertion order */
  int n, cap;
  /* tensors' positions by name hash (open addressing, -1 empty, load at
   * most 1/2), so that n adds or lookups are not O(n^2): a graph may
   * return 10^5 values */
  int *index;
  size_t icap;
  rt_st_meta_kv *meta; /* insertion order */
  int nmeta, capmeta;
};

/* The safetensors dtype string of a kiln dtype ("F32", ...). */
const char *rt_st_dtype_str(ir_dtype dt);

/* Takes ownership of t on success (name is copied); false when out of
 * memory, in which case t is still the caller's. Does not check for an
 * existing entry of the same name. */
bool rt_st_append(rt_safetensors *st, const char *name, rt_tensor *t);

/* ir_diag_set that also clears the text position (these messages are not
 * about a line of text the caller gave). */
void rt_st_fail(ir_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
