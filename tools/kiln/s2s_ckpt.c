/* Translation-model checkpoints: the training program's parameters (weights and
 * Adam state) plus what a later run needs to resume or translate without
 * the data: step, seed, data position, config, tokenizer and both
 * vocabularies, all in the safetensors metadata (tools/kiln/s2s.h). */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/tensor_bridge.h"
#include "tools/kiln/ckpt_program.h"
#include "tools/kiln/s2s.h"
#include "tools/kiln/train.h"

void s2s_meta_free(s2s_meta *m) {
  if (!m) return;
  rt_vocab_free(m->src);
  rt_vocab_free(m->tgt);
  m->src = m->tgt = NULL;
}

bool s2s_tokenize(const s2s_meta *m, const char *s, rt_toklist *out, ir_diag *d) {
  return m->char_tokens ? rt_tokenize_chars(s, out, d) : rt_tokenize_words(s, out, d);
}

/* The vocabulary's tokens as compact JSON text (malloc'd), NULL if no memory. */
static char *vocab_json(const rt_vocab *v) {
  json_t *a = json_array();
  for (int64_t i = 0; a && i < rt_vocab_size(v); i++)
    if (json_array_append_new(a, json_string(rt_vocab_token(v, i)))) {
      json_decref(a);
      a = NULL;
    }
  char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return s;
}

bool s2s_ckpt_save(const char *path, const s2s_meta *m, kl_program *train, uint64_t seed,
                   int64_t data_position, ir_diag *d) {
  char *cfg = tm_config_json(&m->cfg, m->char_tokens ? "char" : "word"), *sv = vocab_json(m->src),
       *tv = vocab_json(m->tgt);
  bool ok = cfg && sv && tv;
  if (!ok) {
    ir_diag_set(d, "%s: out of memory", path);
  } else {
    rt_ckpt_meta extra[] = {{RT_CKPT_CONFIG, cfg},
                            {"src_vocab", sv},
                            {"tgt_vocab", tv},
                            {TRAIN_CKPT_SETTINGS, m->settings}};
    ok = ckpt_program_save(path, train, tm_arch_name(m->cfg.arch), CKPT_OPTIMIZER_NAME, seed,
                           data_position, extra, m->settings ? 4 : 3, d);
  }
  free(cfg);
  free(sv);
  free(tv);
  return ok;
}

static rt_vocab *vocab_from_json(const rt_checkpoint *ck, const char *key, ir_diag *d) {
  const char *path = rt_checkpoint_path(ck), *text = rt_checkpoint_meta(ck, key);
  if (!text) {
    ir_diag_set(d, "%s: metadata '%s' is missing", path, key);
    return NULL;
  }
  json_error_t je;
  json_t *a = json_loads(text, 0, &je);
  size_t n = json_is_array(a) ? json_array_size(a) : 0;
  const char **toks = n ? calloc(n, sizeof *toks) : NULL;
  bool ok = toks != NULL;
  for (size_t i = 0; ok && i < n; i++)
    ok = (toks[i] = json_string_value(json_array_get(a, i))) != NULL;
  rt_vocab *v = NULL;
  if (!ok) {
    ir_diag_set(d, "%s: metadata '%s' is not a JSON array of strings", path, key);
  } else if (!(v = rt_vocab_from_tokens(toks, (int64_t)n, d))) {
    char msg[sizeof d->msg];
    snprintf(msg, sizeof msg, "%s", d->msg);
    ir_diag_set(d, "%s: metadata '%s': %s", path, key, msg);
  }
  free(toks);
  json_decref(a);
  return v;
}

rt_checkpoint *s2s_ckpt_open(const char *path, s2s_meta *m, ir_diag *d) {
  *m = (s2s_meta){0};
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, d);
  if (!ck) return NULL;
  const char *model = rt_checkpoint_meta(ck, RT_CKPT_MODEL);
  tm_arch arch;
  if (!tm_arch_from_name(model, &arch)) {
    ir_diag_set(d, "%s: a checkpoint of model '%.64s', not of a translation model", path,
                model ? model : "(none)");
  } else if (tm_config_parse(arch, rt_checkpoint_meta(ck, RT_CKPT_CONFIG), path, &m->cfg,
                             &m->char_tokens, d) &&
             (m->src = vocab_from_json(ck, "src_vocab", d)) &&
             (m->tgt = vocab_from_json(ck, "tgt_vocab", d))) {
    if (rt_vocab_size(m->src) != m->cfg.src_vocab || rt_vocab_size(m->tgt) != m->cfg.tgt_vocab) {
      ir_diag_set(d,
                  "%s: the vocabularies (%lld, %lld tokens) disagree with the config (%lld, %lld)",
                  path, (long long)rt_vocab_size(m->src), (long long)rt_vocab_size(m->tgt),
                  (long long)m->cfg.src_vocab, (long long)m->cfg.tgt_vocab);
    } else {
      tm_train t = tm_build_train(&m->cfg);
      bool ok = t.g && !kl_graph_error(t.g) &&
                ckpt_program_check(ck, t.g, t.loss, CKPT_OPTIMIZER_NAME, d);
      if (!t.g || kl_graph_error(t.g))
        ir_diag_set(d, "%s: %s", path, t.g ? kl_graph_error(t.g) : "out of memory");
      kl_graph_destroy(t.g);
      if (ok) return ck;
    }
  }
  s2s_meta_free(m);
  rt_checkpoint_destroy(ck);
  return NULL;
}

/* Appends to buf (a message being built), keeping it NUL-terminated. */
__attribute__((format(printf, 3, 4))) static void appendf(char *buf, size_t cap, const char *fmt,
                                                          ...) {
  size_t n = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  if (n + 1 < cap) vsnprintf(buf + n, cap - n, fmt, ap);
  va_end(ap);
}

/* Mismatches named in the message; the rest are counted. */
#define LIST_MAX 6

bool s2s_ckpt_apply(const rt_checkpoint *ck, kl_program *p, bool weights_only, ir_diag *d) {
  int n = kl_program_num_params(p), bad = 0;
  char list[600] = "";
  kl_tensor **vals = calloc((size_t)(n > 0 ? n : 1), sizeof *vals);
  if (!vals) {
    ir_diag_set(d, "%s: out of memory", rt_checkpoint_path(ck));
    return false;
  }
  /* Check everything first, so a mismatch changes no parameter. */
  for (int i = 0; i < n; i++) {
    const char *name = kl_program_param_name(p, i);
    if (weights_only && strchr(name, '@')) continue;
    const rt_tensor *t = rt_checkpoint_tensor(ck, name);
    kl_tensor *cur = NULL;
    const char *e = kl_program_get_param(p, name, &cur);
    char have[IR_TYPE_STRLEN], want[IR_TYPE_STRLEN];
    if (!e && t && ir_type_eq(&t->type, &cg_tensor_rt(cur)->type)) {
      vals[i] = kl_tensor_from((kl_tensor_dtype)t->type.dtype, t->type.rank, t->type.dims, t->data);
    } else if (!e && ++bad <= LIST_MAX) {
      ir_type_str(&cg_tensor_rt(cur)->type, want, sizeof want);
      if (!t)
        appendf(list, sizeof list, "%s'%s' missing (expected %s)", bad > 1 ? "; " : "", name, want);
      else
        appendf(list, sizeof list, "%s'%s' is %s, expected %s", bad > 1 ? "; " : "", name,
                ir_type_str(&t->type, have, sizeof have), want);
    }
    kl_tensor_destroy(cur);
  }
  if (!weights_only) {
    for (int i = 0; i < rt_checkpoint_count(ck); i++) {
      const char *name = rt_checkpoint_name(ck, i);
      bool known = false;
      for (int j = 0; j < n && !known; j++)
        known = !strcmp(name, kl_program_param_name(p, j));
      if (!known && ++bad <= LIST_MAX)
        appendf(list, sizeof list, "%s'%s' is not in the model", bad > 1 ? "; " : "", name);
    }
  }
  bool ok = bad == 0;
  for (int i = 0; ok && i < n; i++) {
    const char *e = vals[i] ? kl_program_set_param(p, kl_program_param_name(p, i), vals[i]) : NULL;
    if (e) ok = false, ir_diag_set(d, "%s: %s", rt_checkpoint_path(ck), e);
  }
  if (bad > LIST_MAX) appendf(list, sizeof list, "; and %d more", bad - LIST_MAX);
  if (bad)
    ir_diag_set(d, "%s: %d tensor%s do not match the model: %s", rt_checkpoint_path(ck), bad,
                bad == 1 ? "" : "s", list);
  for (int i = 0; i < n; i++)
    kl_tensor_destroy(vals[i]);
  free(vals);
  return ok;
}
