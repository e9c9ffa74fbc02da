/* safetensors reader. Every header field is validated (with overflow-safe
 * arithmetic) before a single data byte is trusted, because checkpoints
 * and --inputs files come from outside: a lying header must give a message
 * naming the file and tensor, never a crash or a wild read. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/safetensors_internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; kiln copies it without swapping"
#endif

#define ST_MAX_HEADER 100000000ull
/* Tensor names are printed with a bound so the problem stays in the
 * message even for absurd names. */
#define TN "%.160s"

typedef struct pending {
  const char *name; /* borrowed from the JSON */
  int order;        /* position in the header, to make the sort stable */
  ir_type type;
  uint64_t begin, end;
} pending;

/* Dtypes of the safetensors format kiln has no storage type for. */
static const char *const foreign_dtypes[] = {
    "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
    "I8",  "U8",   "I16",     "U16",     "U32",     "U64",     "C64",     NULL};

static const char *shape_str(const ir_type *t, char *buf, size_t len) {
  size_t k = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < t->rank && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

static bool parse_dtype(const json_t *v, const char *file, const char *tname, ir_dtype *out,
                        ir_diag *d) {
  if (!json_is_string(v)) {
    rt_st_fail(d, "%s: tensor '" TN "': dtype is not a string", file, tname);
    return false;
  }
  const char *s = json_string_value(v);
  for (int i = 0; i < IR_NUM_DTYPES; i++) {
    if (strcmp(s, rt_st_dtype_str((ir_dtype)i)) == 0) {
      *out = (ir_dtype)i;
      return true;
    }
  }
  for (int i = 0; foreign_dtypes[i]; i++) {
    if (strcmp(s, foreign_dtypes[i]) == 0) {
      rt_st_fail(d,
                 "%s: tensor '" TN "': dtype %s is unsupported by kiln "
                 "(kiln reads F32, F64, I32, I64, BOOL)",
                 file, tname, s);
      return false;
    }
  }
  rt_st_fail(d, "%s: tensor '" TN "': unknown dtype '%.40s'", file, tname, s);
  return false;
}

static bool parse_shape(const json_t *v, const char *file, const char *tname, ir_type *t,
                        ir_diag *d) {
  if (!json_is_array(v)) {
    rt_st_fail(d, "%s: tensor '" TN "': shape is not an array of non-negative integers", file,
               tname);
    return false;
  }
  size_t rank = json_array_size(v);
  if (rank > IR_MAX_RANK) {
    rt_st_fail(d, "%s: tensor '" TN "': shape has rank %zu; kiln supports at most rank %d", file,
               tname, rank, IR_MAX_RANK);
    return false;
  }
  t->rank = (int)rank;
  for (size_t i = 0; i < rank; i++) {
    const json_t *e = json_array_get(v, i);
    if (!json_is_integer(e) || json_integer_value(e) < 0) {
      rt_st_fail(d, "%s: tensor '" TN "': shape is not an array of non-negative integers", file,
                 tname);
      return false;
    }
    t->dims[i] = (int64_t)json_integer_value(e);
  }
  return true;
}

/* numel * element size, computed the way ir_type_numel multiplies (left to
 * right) so a shape accepted here can never overflow there either. */
static bool byte_size(const ir_type *t, uint64_t *out) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    if (__builtin_mul_overflow(n, t->dims[i], &n)) return false;
  uint64_t bytes;
  if (__builtin_mul_overflow((uint64_t)n, (uint64_t)ir_dtype_size(t->dtype), &bytes)) return false;
  if (bytes > SIZE_MAX) return false;
  *out = bytes;
  return true;
}

static bool parse_entry(const char *file, const char *tname, const json_t *e, size_t dsize,
                        pending *p, ir_diag *d) {
  char sbuf[IR_TYPE_STRLEN];
  if (!json_is_object(e)) {
    rt_st_fail(d, "%s: tensor '" TN "': entry is not an object", file, tname);
    return false;
  }
  static const char *const required[] = {"dtype", "shape", "data_offsets"};
  for (int i = 0; i < 3; i++) {
    if (!json_object_get(e, required[i])) {
      rt_st_fail(d, "%s: tensor '" TN "': missing \"%s\"", file, tname, required[i]);
      return false;
    }
  }
  p->name = tname;
  if (!parse_dtype(json_object_get(e, "dtype"), file, tname, &p->type.dtype, d)) return false;
  if (!parse_shape(json_object_get(e, "shape"), file, tname, &p->type, d)) return false;

  const json_t *off = json_object_get(e, "data_offsets");
  const json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
  if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(b) ||
      !json_is_integer(en) || json_integer_value(b) < 0 || json_integer_value(en) < 0) {
    rt_st_fail(d, "%s: tensor '" TN "': data_offsets is not two non-negative integers", file,
               tname);
    return false;
  }
  p->begin = (uint64_t)json_integer_value(b);
  p->end = (uint64_t)json_integer_value(en);
  if (p->begin > p->end) {
    rt_st_fail(d, "%s: tensor '" TN "': data_offsets begin %llu is after end %llu", file, tname,
               (unsigned long long)p->begin, (unsigned long long)p->end);
    return false;
  }
  if (p->end > dsize) {
    rt_st_fail(d,
               "%s: tensor '" TN "': data_offsets end %llu is beyond the data buffer (%zu bytes)",
               file, tname, (unsigned long long)p->end, dsize);
    return false;
  }
  uint64_t need;
  if (!byte_size(&p->type, &need)) {
    rt_st_fail(d, "%s: tensor '" TN "': shape %s is too large: its byte size overflows", file,
               tname, shape_str(&p->type, sbuf, sizeof sbuf));
    return false;
  }
  if (p->end - p->begin != need) {
    rt_st_fail(d, "%s: tensor '" TN "': data_offsets span %llu bytes but shape %s of %s needs %llu",
               file, tname, (unsigned long long)(p->end - p->begin),
               shape_str(&p->type, sbuf, sizeof sbuf), rt_st_dtype_str(p->type.dtype),
               (unsigned long long)need);
    return false;
  }
  return true;
}

static bool check_meta(const char *file, const json_t *m, ir_diag *d) {
  if (!json_is_object(m)) {
    rt_st_fail(d, "%s: __metadata__ is not an object of strings", file);
    return false;
  }
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)m, k, v) {
    if (!json_is_string(v)) {
      rt_st_fail(d, "%s: __metadata__ is not an object of strings (value of '" TN "')", file, k);
      return false;
    }
  }
  return true;
}

static int by_offset(const void *a, const void *b) {
  const pending *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->order - y->order;
}

/* Sorted entries must tile the data buffer exactly: no overlap, no hole,
 * no trailing bytes (the rule Hugging Face's reader enforces too). */
static bool check_coverage(const char *file, const pending *v, size_t n, size_t dsize, ir_diag *d) {
  uint64_t pos = 0;
  const pending *last = NULL; /* the latest tensor with bytes: it ends at pos */
  for (size_t i = 0; i < n; i++) {
    if (v[i].begin < pos) {
      rt_st_fail(
          d, "%s: tensor '" TN "': data_offsets [%llu, %llu] overlap tensor '" TN "' [%llu, %llu]",
          file, v[i].name, (unsigned long long)v[i].begin, (unsigned long long)v[i].end, last->name,
          (unsigned long long)last->begin, (unsigned long long)last->end);
      return false;
    }
    if (v[i].begin > pos) {
      rt_st_fail(d,
                 "%s: bytes [%llu, %llu) of the data buffer are not covered by any tensor "
                 "(a hole before tensor '" TN "')",
                 file, (unsigned long long)pos, (unsigned long long)v[i].begin, v[i].name);
      return false;
    }
    if (v[i].end > v[i].begin) last = &v[i];
    pos = v[i].end;
  }
  if (pos < dsize) {
    rt_st_fail(d,
               "%s: bytes [%llu, %zu) of the data buffer are not covered by any tensor "
               "(trailing bytes)",
               file, (unsigned long long)pos, dsize);
    return false;
  }
  return true;
}

static rt_safetensors *build(const char *file, const json_t *root, const pending *v, size_t n,
                             const uint8_t *data, ir_diag *d) {
  rt_safetensors *st = rt_st_create();
  if (!st) goto oom;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *src = data + v[i].begin;
    size_t bytes = (size_t)(v[i].end - v[i].begin);
    if (v[i].type.dtype == IR_BOOL) {
      /* Anything but 0/1 in a bool would be a trap representation for C's
       * _Bool and a sign the header lies about the dtype. */
      for (size_t k = 0; k < bytes; k++) {
        if (src[k] > 1) {
          rt_st_fail(d, "%s: tensor '" TN "': BOOL element %zu holds byte %u (must be 0 or 1)",
                     file, v[i].name, k, src[k]);
          rt_st_destroy(st);
          return NULL;
        }
      }
    }
    rt_tensor *t = rt_tensor_create(&v[i].type);
    if (!t) goto oom;
    if (bytes) memcpy(t->data, src, bytes);
    if (!rt_st_append(st, v[i].name, t)) {
      rt_tensor_destroy(t);
      goto oom;
    }
  }
  const json_t *meta = json_object_get(root, "__metadata__");
  if (meta) {
    const char *k;
    const json_t *val;
    json_object_foreach((json_t *)meta, k, val) {
      if (!rt_st_set_meta(st, k, json_string_value(val))) goto oom;
    }
  }
  return st;
oom:
  rt_st_fail(d, "%s: out of memory", file);
  rt_st_destroy(st);
  return NULL;
}

rt_safetensors *rt_st_parse(const void *buf, size_t len, const char *name, ir_diag *d) {
  const char *file = name ? name : "<memory>";
  const uint8_t *p = buf;
  if (len < 8 || !p) {
    rt_st_fail(d, "%s: file is too short (%zu bytes): it must start with an 8-byte header length",
               file, p ? len : 0);
    return NULL;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | p[i];
  if (n == 0) {
    rt_st_fail(d, "%s: header length is 0", file);
    return NULL;
  }
  if (n > ST_MAX_HEADER) {
    rt_st_fail(d, "%s: header length %llu exceeds the limit of %llu bytes", file,
               (unsigned long long)n, ST_MAX_HEADER);
    return NULL;
  }
  if (n > len - 8) {
    rt_st_fail(d, "%s: header length %llu goes beyond the end of the file (%zu bytes follow it)",
               file, (unsigned long long)n, len - 8);
    return NULL;
  }
  json_error_t je;
  json_t *root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    rt_st_fail(d, "%s: header is not valid JSON: line %d, column %d: %s", file, je.line, je.column,
               je.text);
    return NULL;
  }
  rt_safetensors *st = NULL;
  pending *v = NULL;
  size_t nt = 0, dsize = len - 8 - (size_t)n;
  if (!json_is_object(root)) {
    rt_st_fail(d, "%s: header is not a JSON object", file);
    goto done;
  }
  v = calloc(json_object_size(root) + 1, sizeof *v);
  if (!v) {
    rt_st_fail(d, "%s: out of memory", file);
    goto done;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "__metadata__") == 0) {
      if (!check_meta(file, val, d)) goto done;
      continue;
    }
    if (!key[0]) {
      rt_st_fail(d, "%s: tensor with an empty name", file);
      goto done;
    }
    if (!parse_entry(file, key, val, dsize, &v[nt], d)) goto done;
    v[nt].order = (int)nt;
    nt++;
  }
  qsort(v, nt, sizeof *v, by_offset);
  if (!check_coverage(file, v, nt, dsize, d)) goto done;
  st = build(file, root, v, nt, p + 8 + n, d);
done:
  free(v);
  json_decref(root);
  return st;
}

rt_safetensors *rt_st_read(const char *path, ir_diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    rt_st_fail(d, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  size_t cap = 1 << 16;
  if (fstat(fileno(f), &sb) == 0 && sb.st_size > 0 && (uint64_t)sb.st_size < SIZE_MAX - 1)
    cap = (size_t)sb.st_size + 1; /* +1 so EOF is seen without a regrow */
  size_t len = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - len, f);
    if (len < cap) break;
    size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap = ncap;
  }
  if (!buf) {
    fclose(f);
    rt_st_fail(d, "%s: out of memory reading the file", path);
    return NULL;
  }
  if (ferror(f)) {
    int err = errno;
    fclose(f);
    free(buf);
    rt_st_fail(d, "%s: read error: %s", path, strerror(err));
    return NULL;
  }
  fclose(f);
  rt_safetensors *st = rt_st_parse(buf, len, path, d);
  free(buf);
  return st;
}
