/* safetensors files (the Hugging Face format): 8-byte little-endian header
 * length, a JSON header (parsed with jansson) with dtype, shape and
 * data_offsets per tensor plus an optional "__metadata__" string map, then
 * the raw little-endian data. The reader validates everything before it
 * trusts a byte; the writer is atomic (temp file, fsync, rename). */
#ifndef KILN_RT_SAFETENSORS_H
#define KILN_RT_SAFETENSORS_H

#include "ir/ir.h"
#include "runtime/tensor.h"

typedef struct rt_safetensors rt_safetensors;

/* Owned, empty; destroy with rt_st_destroy. */
rt_safetensors *rt_st_create(void);
void rt_st_destroy(rt_safetensors *st);

/* Reads and validates a file / an in-memory image. `name` is used in
 * messages ("FILE: tensor 'x': ..."). Returns an owned object, or NULL with
 * d set. Checks: file at least 8 bytes; header length within the file and
 * below 100 MB; header is a JSON object; every entry has a known dtype
 * (F32 F64 I32 I64 BOOL), a shape of non-negative integers (rank <= 6) and
 * data_offsets [begin, end] with begin <= end <= data size and
 * end - begin == numel * dtype size; entries do not overlap and together
 * cover the data exactly; __metadata__ is a map of strings. */
rt_safetensors *rt_st_read(const char *path, ir_diag *d);
rt_safetensors *rt_st_parse(const void *buf, size_t len, const char *name, ir_diag *d);

/* Adds a deep copy of t under name (replacing an existing one). */
bool rt_st_add(rt_safetensors *st, const char *name, const rt_tensor *t, ir_diag *d);
bool rt_st_set_meta(rt_safetensors *st, const char *key, const char *value);

/* Borrowed lookups; NULL when absent. */
const rt_tensor *rt_st_get(const rt_safetensors *st, const char *name);
const char *rt_st_meta(const rt_safetensors *st, const char *key);
int rt_st_count(const rt_safetensors *st);
const char *rt_st_name(const rt_safetensors *st, int i); /* insertion order */

/* Writes atomically: PATH.tmp.PID.XXXXXX in the same directory, fsync, rename.
 * On failure no file at path is created or changed. Tensors are written in
 * insertion order; the header is padded with spaces to a multiple of 8. */
bool rt_st_write(const rt_safetensors *st, const char *path, ir_diag *d);

#endif
