/* safetensors writer. The header is built with jansson in the layout the
 * Hugging Face library writes (compact JSON, __metadata__ first, then
 * tensors with dtype/shape/data_offsets, padded with spaces to 8 bytes).
 * The file is replaced atomically (runtime/atomic_file.h), so a crash or a
 * full disk mid-checkpoint never leaves a torn file. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/atomic_file.h"
#include "runtime/safetensors_internal.h"

/* Bytes of t's data in the file; false if its type is not writable. */
static bool tensor_bytes(const rt_tensor *t, uint64_t *out) {
  if ((unsigned)t->type.dtype >= IR_NUM_DTYPES || t->type.rank < 0 || t->type.rank > IR_MAX_RANK)
    return false;
  int64_t n = 1;
  for (int i = 0; i < t->type.rank; i++)
    if (t->type.dims[i] < 0 || __builtin_mul_overflow(n, t->type.dims[i], &n)) return false;
  if (__builtin_mul_overflow((uint64_t)n, (uint64_t)ir_dtype_size(t->type.dtype), out))
    return false;
  return *out <= t->bytes && *out <= (uint64_t)INT64_MAX;
}

/* Returns the header JSON (malloc'd by jansson, unpadded) or NULL with d
 * set. */
static char *make_header(const rt_safetensors *st, const char *path, ir_diag *d) {
  json_t *root = json_object();
  if (!root) goto oom;
  if (st->nmeta > 0) {
    json_t *m = json_object();
    if (json_object_set_new(root, "__metadata__", m) != 0) goto oom;
    for (int i = 0; i < st->nmeta; i++) {
      if (json_object_set_new(m, st->meta[i].key, json_string(st->meta[i].value)) != 0) {
        rt_st_fail(d, "%s: metadata '%.160s' is not valid UTF-8 text", path, st->meta[i].key);
        goto fail;
      }
    }
  }
  uint64_t off = 0;
  for (int i = 0; i < st->n; i++) {
    const rt_tensor *t = st->tensors[i].t;
    uint64_t bytes;
    if (!tensor_bytes(t, &bytes) || off + bytes > (uint64_t)INT64_MAX) {
      rt_st_fail(d, "%s: tensor '%.160s': invalid type or buffer size", path, st->tensors[i].name);
      goto fail;
    }
    json_t *e = json_object(), *shape = json_array();
    if (json_object_set_new(root, st->tensors[i].name, e) != 0) {
      json_decref(shape);
      rt_st_fail(d, "%s: tensor name '%.160s' is not valid UTF-8", path, st->tensors[i].name);
      goto fail;
    }
    if (json_object_set_new(e, "dtype", json_string(rt_st_dtype_str(t->type.dtype))) != 0 ||
        json_object_set_new(e, "shape", shape) != 0)
      goto oom;
    for (int k = 0; k < t->type.rank; k++)
      if (json_array_append_new(shape, json_integer(t->type.dims[k])) != 0) goto oom;
    json_t *offs = json_array();
    if (json_object_set_new(e, "data_offsets", offs) != 0 ||
        json_array_append_new(offs, json_integer((json_int_t)off)) != 0 ||
        json_array_append_new(offs, json_integer((json_int_t)(off + bytes))) != 0)
      goto oom;
    off += bytes;
  }
  char *s = json_dumps(root, JSON_COMPACT);
  if (!s) goto oom;
  json_decref(root);
  return s;
oom:
  rt_st_fail(d, "%s: out of memory building the header", path);
fail:
  json_decref(root);
  return NULL;
}

/* Bools are written as 0/1 whatever nonzero byte a tensor holds, so kiln's
 * own reader (which rejects other bytes) always accepts the file. */
static bool write_bool(FILE *f, const uint8_t *p, size_t n) {
  uint8_t buf[4096];
  while (n > 0) {
    size_t k = n < sizeof buf ? n : sizeof buf;
    for (size_t i = 0; i < k; i++)
      buf[i] = p[i] != 0;
    if (fwrite(buf, 1, k, f) != k) return false;
    p += k;
    n -= k;
  }
  return true;
}

typedef struct st_file {
  const rt_safetensors *st;
  const char *hdr;
} st_file;

static bool write_all(FILE *f, void *ctx) {
  const rt_safetensors *st = ((const st_file *)ctx)->st;
  const char *hdr = ((const st_file *)ctx)->hdr;
  size_t hl = strlen(hdr), pad = (8 - hl % 8) % 8;
  uint64_t n = hl + pad;
  uint8_t len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (uint8_t)(n >> (8 * i));
  static const char spaces[8] = "        ";
  if (fwrite(len8, 1, 8, f) != 8 || fwrite(hdr, 1, hl, f) != hl || fwrite(spaces, 1, pad, f) != pad)
    return false;
  for (int i = 0; i < st->n; i++) {
    const rt_tensor *t = st->tensors[i].t;
    uint64_t bytes;
    if (!tensor_bytes(t, &bytes)) return false; /* checked by make_header */
    if (t->type.dtype == IR_BOOL) {
      if (!write_bool(f, t->data, (size_t)bytes)) return false;
    } else if (bytes && fwrite(t->data, 1, (size_t)bytes, f) != bytes) {
      return false;
    }
  }
  return true;
}

bool rt_st_write(const rt_safetensors *st, const char *path, ir_diag *d) {
  if (!st || !path || !path[0]) {
    rt_st_fail(d, "safetensors: rt_st_write needs a container and a path");
    return false;
  }
  char *hdr = make_header(st, path, d);
  if (!hdr) return false;
  st_file sf = {st, hdr};
  bool ok = rt_atomic_write(path, write_all, &sf, d);
  if (!ok && d) d->line = d->col = 0; /* as rt_st_fail leaves it */
  free(hdr);
  return ok;
}
