/* The in-memory safetensors container: named tensors and string metadata,
 * both kept in insertion order so a write reproduces the order a file was
 * read in (data-offset order) or the order tensors were added. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/safetensors_internal.h"

static const char *const st_dtype_names[IR_NUM_DTYPES] = {"F32", "F64", "I32", "I64", "BOOL"};

const char *rt_st_dtype_str(ir_dtype dt) {
  return (unsigned)dt < IR_NUM_DTYPES ? st_dtype_names[dt] : "?";
}

void rt_st_fail(ir_diag *d, const char *fmt, ...) {
  if (!d) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof d->msg, fmt, ap);
  va_end(ap);
  d->line = d->col = 0;
}

rt_safetensors *rt_st_create(void) { return calloc(1, sizeof(rt_safetensors)); }

void rt_st_destroy(rt_safetensors *st) {
  if (!st) return;
  for (int i = 0; i < st->n; i++) {
    free(st->tensors[i].name);
    rt_tensor_destroy(st->tensors[i].t);
  }
  for (int i = 0; i < st->nmeta; i++) {
    free(st->meta[i].key);
    free(st->meta[i].value);
  }
  free(st->tensors);
  free(st->index);
  free(st->meta);
  free(st);
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *r = malloc(n);
  if (r) memcpy(r, s, n);
  return r;
}

/* The index slot of name: where it is, or the empty slot it would take. */
static size_t index_slot(const rt_safetensors *st, const char *name) {
  size_t i = (size_t)ir_str_hash(name) & (st->icap - 1);
  while (st->index[i] >= 0 && strcmp(st->tensors[st->index[i]].name, name) != 0)
    i = (i + 1) & (st->icap - 1);
  return i;
}

static int find_tensor(const rt_safetensors *st, const char *name) {
  if (!st->icap) return -1;
  return st->index[index_slot(st, name)];
}

/* Room in the index for one more name; false when out of memory. */
static bool index_reserve(rt_safetensors *st) {
  if (2 * ((size_t)st->n + 1) <= st->icap) return true;
  size_t cap = st->icap ? 2 * st->icap : 16;
  int *ix = malloc(cap * sizeof *ix);
  if (!ix) return false;
  for (size_t i = 0; i < cap; i++)
    ix[i] = -1;
  free(st->index);
  st->index = ix;
  st->icap = cap;
  for (int i = 0; i < st->n; i++)
    st->index[index_slot(st, st->tensors[i].name)] = i;
  return true;
}

bool rt_st_append(rt_safetensors *st, const char *name, rt_tensor *t) {
  if (st->n == st->cap) {
    int cap = st->cap ? st->cap * 2 : 8;
    rt_st_entry *v = realloc(st->tensors, (size_t)cap * sizeof *v);
    if (!v) return false;
    st->tensors = v;
    st->cap = cap;
  }
  if (!index_reserve(st)) return false;
  char *copy = dupstr(name);
  if (!copy) return false;
  st->tensors[st->n].name = copy;
  st->tensors[st->n].t = t;
  size_t slot = index_slot(st, copy);
  if (st->index[slot] < 0) st->index[slot] = st->n; /* a duplicate keeps the first */
  st->n++;
  return true;
}

bool rt_st_add(rt_safetensors *st, const char *name, const rt_tensor *t, ir_diag *d) {
  if (!st || !name || !t) {
    rt_st_fail(d, "rt_st_add: missing container, name or tensor");
    return false;
  }
  /* Both would make a file that no reader (kiln's or Hugging Face's)
   * accepts, so refuse them here rather than at write time. */
  if (!name[0]) {
    rt_st_fail(d, "safetensors: tensor name is empty");
    return false;
  }
  if (strcmp(name, "__metadata__") == 0) {
    rt_st_fail(d, "safetensors: tensor name '__metadata__' is reserved for metadata");
    return false;
  }
  rt_tensor *copy = rt_tensor_clone(t);
  if (!copy) {
    rt_st_fail(d, "safetensors: tensor '%s': out of memory (%zu bytes)", name, t->bytes);
    return false;
  }
  int i = find_tensor(st, name);
  if (i >= 0) { /* keeps the original position */
    rt_tensor_destroy(st->tensors[i].t);
    st->tensors[i].t = copy;
    return true;
  }
  if (!rt_st_append(st, name, copy)) {
    rt_tensor_destroy(copy);
    rt_st_fail(d, "safetensors: tensor '%s': out of memory", name);
    return false;
  }
  return true;
}

bool rt_st_set_meta(rt_safetensors *st, const char *key, const char *value) {
  if (!st || !key || !value) return false;
  char *v = dupstr(value);
  if (!v) return false;
  for (int i = 0; i < st->nmeta; i++) {
    if (strcmp(st->meta[i].key, key) == 0) {
      free(st->meta[i].value);
      st->meta[i].value = v;
      return true;
    }
  }
  if (st->nmeta == st->capmeta) {
    int cap = st->capmeta ? st->capmeta * 2 : 8;
    rt_st_meta_kv *m = realloc(st->meta, (size_t)cap * sizeof *m);
    if (!m) {
      free(v);
      return false;
    }
    st->meta = m;
    st->capmeta = cap;
  }
  char *k = dupstr(key);
  if (!k) {
    free(v);
    return false;
  }
  st->meta[st->nmeta].key = k;
  st->meta[st->nmeta].value = v;
  st->nmeta++;
  return true;
}

const rt_tensor *rt_st_get(const rt_safetensors *st, const char *name) {
  if (!st || !name) return NULL;
  int i = find_tensor(st, name);
  return i >= 0 ? st->tensors[i].t : NULL;
}

const char *rt_st_meta(const rt_safetensors *st, const char *key) {
  if (!st || !key) return NULL;
  for (int i = 0; i < st->nmeta; i++)
    if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
  return NULL;
}

int rt_st_count(const rt_safetensors *st) { return st ? st->n : 0; }

const char *rt_st_name(const rt_safetensors *st, int i) {
  return st && i >= 0 && i < st->n ? st->tensors[i].name : NULL;
}
