/* Training checkpoints on top of the safetensors container (see
 * checkpoint.h). Saving wraps the caller's tensors without copying them
 * (a checkpoint is often most of the process's memory) and lets the
 * safetensors writer do the atomic replace. */
#include "runtime/checkpoint.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/safetensors_internal.h"

struct rt_checkpoint {
  rt_safetensors *st;
  char *path;
};

/* ---- metadata values ----------------------------------------------------- */

/* Plain decimal digits (no sign, blanks or '+') that fit in max. */
static bool parse_decimal(const char *s, uint64_t max, uint64_t *out) {
  if (!s || !*s) return false;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    unsigned dgt = (unsigned)(*p - '0');
    if (v > (max - dgt) / 10) return false;
    v = v * 10 + dgt;
  }
  *out = v;
  return true;
}

/* Checks a well-known key's value; other keys are free-form. */
static bool check_meta_value(const char *path, const char *key, const char *value, ir_diag *d) {
  uint64_t u;
  if (strcmp(key, RT_CKPT_STEP) == 0 || strcmp(key, RT_CKPT_DATA_POS) == 0) {
    if (!parse_decimal(value, INT64_MAX, &u)) {
      rt_st_fail(d, "%s: metadata '%s' is not a non-negative integer: '%.80s'", path, key, value);
      return false;
    }
  } else if (strcmp(key, RT_CKPT_SEED) == 0) {
    if (!parse_decimal(value, UINT64_MAX, &u)) {
      rt_st_fail(d, "%s: metadata '%s' is not an unsigned 64-bit integer: '%.80s'", path, key,
                 value);
      return false;
    }
  } else if (strcmp(key, RT_CKPT_CONFIG) == 0) {
    json_error_t je;
    json_t *j = json_loads(value, JSON_DECODE_ANY, &je);
    if (!j) {
      rt_st_fail(d, "%s: metadata '%s' is not valid JSON: line %d, column %d: %s", path, key,
                 je.line, je.column, je.text);
      return false;
    }
    json_decref(j);
  }
  return true;
}

/* ---- save ------------------------------------------------------------------ */

/* A non-owning view of t, so the container can hold it without a copy. */
static rt_tensor *borrow(const rt_tensor *t) {
  rt_tensor *v = malloc(sizeof *v);
  if (!v) return NULL;
  *v = *t;
  v->owned = false;
  return v;
}

static bool add_tensors(rt_safetensors *st, const char *path, const rt_ckpt_tensor *tensors, int n,
                        ir_diag *d) {
  if (n < 0 || (n > 0 && !tensors)) {
    rt_st_fail(d, "%s: invalid tensor list (n = %d)", path, n);
    return false;
  }
  for (int i = 0; i < n; i++) {
    const char *name = tensors[i].name;
    if (!name || !name[0] || strcmp(name, "__metadata__") == 0) {
      rt_st_fail(d, "%s: tensor %d has %s name", path, i,
                 !name      ? "no"
                 : !name[0] ? "an empty"
                            : "the reserved");
      return false;
    }
    if (!tensors[i].t || (!tensors[i].t->data && tensors[i].t->bytes)) {
      rt_st_fail(d, "%s: tensor '%.160s' has no data", path, name);
      return false;
    }
    if (rt_st_get(st, name)) {
      rt_st_fail(d, "%s: tensor '%.160s' is given twice", path, name);
      return false;
    }
    rt_tensor *v = borrow(tensors[i].t);
    if (!v || !rt_st_append(st, name, v)) {
      free(v);
      rt_st_fail(d, "%s: out of memory", path);
      return false;
    }
  }
  return true;
}

static bool add_meta(rt_safetensors *st, const char *path, const char *key, const char *value,
                     ir_diag *d) {
  if (!key || !key[0] || !value) {
    rt_st_fail(d, "%s: metadata entry with %s", path, !key || !key[0] ? "no key" : "no value");
    return false;
  }
  if (rt_st_meta(st, key)) {
    rt_st_fail(d, "%s: metadata '%.160s' is given twice", path, key);
    return false;
  }
  if (!check_meta_value(path, key, value, d)) return false;
  if (!rt_st_set_meta(st, key, value)) {
    rt_st_fail(d, "%s: out of memory", path);
    return false;
  }
  return true;
}

static bool finish_save(rt_safetensors *st, const char *path, ir_diag *d) {
  bool ok = true;
  if (!rt_st_meta(st, RT_CKPT_FORMAT) && !rt_st_set_meta(st, RT_CKPT_FORMAT, "pt")) {
    rt_st_fail(d, "%s: out of memory", path);
    ok = false;
  }
  ok = ok && rt_st_write(st, path, d);
  rt_st_destroy(st); /* the borrowed views do not own their data */
  return ok;
}

bool rt_checkpoint_save(const char *path, const rt_ckpt_tensor *tensors, int n,
                        const rt_ckpt_meta *meta, int nmeta, ir_diag *d) {
  if (!path || !path[0]) {
    rt_st_fail(d, "checkpoint: no file name");
    return false;
  }
  rt_safetensors *st = rt_st_create();
  if (!st) {
    rt_st_fail(d, "%s: out of memory", path);
    return false;
  }
  bool ok = add_tensors(st, path, tensors, n, d);
  if (ok && (nmeta < 0 || (nmeta > 0 && !meta))) {
    rt_st_fail(d, "%s: invalid metadata list (n = %d)", path, nmeta);
    ok = false;
  }
  for (int i = 0; ok && i < nmeta; i++)
    ok = add_meta(st, path, meta[i].key, meta[i].value, d);
  if (!ok) {
    rt_st_destroy(st);
    return false;
  }
  return finish_save(st, path, d);
}

bool rt_checkpoint_save_json(const char *path, const rt_ckpt_tensor *tensors, int n,
                             const char *meta_json, ir_diag *d) {
  if (!path || !path[0]) {
    rt_st_fail(d, "checkpoint: no file name");
    return false;
  }
  json_error_t je;
  json_t *root = meta_json ? json_loads(meta_json, 0, &je) : json_object();
  if (!root || !json_is_object(root)) {
    if (root)
      rt_st_fail(d, "%s: metadata is not a JSON object", path);
    else
      rt_st_fail(d, "%s: metadata is not valid JSON: line %d, column %d: %s", path, je.line,
                 je.column, je.text);
    json_decref(root);
    return false;
  }
  rt_safetensors *st = rt_st_create();
  bool ok = st != NULL;
  if (!ok) rt_st_fail(d, "%s: out of memory", path);
  ok = ok && add_tensors(st, path, tensors, n, d);
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (!ok) break;
    char num[32], *text = NULL;
    const char *s = num;
    if (json_is_string(val)) {
      s = json_string_value(val);
    } else if (json_is_integer(val)) {
      snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(val));
    } else {
      s = text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    if (!s) {
      rt_st_fail(d, "%s: out of memory", path);
      ok = false;
    } else {
      ok = add_meta(st, path, key, s, d);
    }
    free(text);
  }
  json_decref(root);
  if (!ok) {
    rt_st_destroy(st);
    return false;
  }
  return finish_save(st, path, d);
}

/* ---- load ------------------------------------------------------------------ */

void rt_checkpoint_destroy(rt_checkpoint *ck) {
  if (!ck) return;
  rt_st_destroy(ck->st);
  free(ck->path);
  free(ck);
}

static const rt_ckpt_expect *find_expect(const rt_ckpt_expect *e, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (e[i].name && strcmp(e[i].name, name) == 0) return &e[i];
  return NULL;
}

bool rt_checkpoint_check(const rt_checkpoint *ck, const rt_ckpt_expect *expect, int n_expect,
                         bool allow_extra, ir_diag *d) {
  if (!ck || n_expect < 0 || (n_expect > 0 && !expect)) {
    rt_st_fail(d, "checkpoint: invalid expected-tensor list");
    return false;
  }
  for (int i = 0; i < n_expect; i++) {
    const char *name = expect[i].name ? expect[i].name : "";
    const rt_tensor *t = rt_st_get(ck->st, name);
    if (!t) {
      rt_st_fail(d, "%s: tensor '%.160s' is missing", ck->path, name);
      return false;
    }
    if (!ir_type_eq(&t->type, &expect[i].type)) {
      char have[IR_TYPE_STRLEN], want[IR_TYPE_STRLEN];
      rt_st_fail(d, "%s: tensor '%.160s': checkpoint has %s, expected %s", ck->path, name,
                 ir_type_str(&t->type, have, sizeof have),
                 ir_type_str(&expect[i].type, want, sizeof want));
      return false;
    }
  }
  if (!allow_extra) {
    for (int i = 0; i < rt_st_count(ck->st); i++) {
      const char *name = rt_st_name(ck->st, i);
      if (!find_expect(expect, n_expect, name)) {
        rt_st_fail(d, "%s: unexpected tensor '%.160s'", ck->path, name);
        return false;
      }
    }
  }
  return true;
}

rt_checkpoint *rt_checkpoint_load(const char *path, const rt_ckpt_expect *expect, int n_expect,
                                  ir_diag *d) {
  if (!path || !path[0]) {
    rt_st_fail(d, "checkpoint: no file name");
    return NULL;
  }
  rt_checkpoint *ck = calloc(1, sizeof *ck);
  if (!ck || !(ck->path = strdup(path))) {
    free(ck);
    rt_st_fail(d, "%s: out of memory", path);
    return NULL;
  }
  ck->st = rt_st_read(path, d);
  bool ok = ck->st != NULL;
  for (int i = 0; ok && i < ck->st->nmeta; i++)
    ok = check_meta_value(path, ck->st->meta[i].key, ck->st->meta[i].value, d);
  if (ok && expect) ok = rt_checkpoint_check(ck, expect, n_expect, false, d);
  if (!ok) {
    rt_checkpoint_destroy(ck);
    return NULL;
  }
  return ck;
}

const rt_tensor *rt_checkpoint_tensor(const rt_checkpoint *ck, const char *name) {
  return ck && name ? rt_st_get(ck->st, name) : NULL;
}

const char *rt_checkpoint_meta(const rt_checkpoint *ck, const char *key) {
  return ck && key ? rt_st_meta(ck->st, key) : NULL;
}

int rt_checkpoint_count(const rt_checkpoint *ck) { return ck ? rt_st_count(ck->st) : 0; }

const char *rt_checkpoint_name(const rt_checkpoint *ck, int i) {
  return ck ? rt_st_name(ck->st, i) : NULL;
}

const char *rt_checkpoint_path(const rt_checkpoint *ck) { return ck ? ck->path : NULL; }

int rt_checkpoint_meta_count(const rt_checkpoint *ck) { return ck ? ck->st->nmeta : 0; }

const char *rt_checkpoint_meta_key(const rt_checkpoint *ck, int i) {
  return ck && i >= 0 && i < ck->st->nmeta ? ck->st->meta[i].key : NULL;
}

static bool meta_number(const rt_checkpoint *ck, const char *key, uint64_t max, uint64_t *out,
                        ir_diag *d) {
  const char *v = rt_checkpoint_meta(ck, key);
  if (!v) {
    rt_st_fail(d, "%s: metadata '%s' is missing", ck ? ck->path : "checkpoint",
               key ? key : "(null)");
    return false;
  }
  if (!parse_decimal(v, max, out)) {
    rt_st_fail(d, "%s: metadata '%s' is not an integer in range: '%.80s'", ck->path, key, v);
    return false;
  }
  return true;
}

bool rt_checkpoint_meta_i64(const rt_checkpoint *ck, const char *key, int64_t *out, ir_diag *d) {
  uint64_t u;
  if (!meta_number(ck, key, INT64_MAX, &u, d)) return false;
  *out = (int64_t)u;
  return true;
}

bool rt_checkpoint_meta_u64(const rt_checkpoint *ck, const char *key, uint64_t *out, ir_diag *d) {
  return meta_number(ck, key, UINT64_MAX, out, d);
}
