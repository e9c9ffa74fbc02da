/* The switch between the two translation models (tools/kiln/tm.h): config
 * conversion, graph builders, the decoding graphs' tensor layout and the
 * config's JSON form. */
#include <jansson.h>
#include <string.h>

#include "runtime/checkpoint.h"
#include "tools/kiln/tm.h"

const char *tm_arch_name(tm_arch a) { return a == TM_TRANSFORMER ? "transformer" : "seq2seq-attn"; }

bool tm_arch_from_name(const char *name, tm_arch *a) {
  if (!name) return false;
  if (!strcmp(name, "seq2seq-attn")) return *a = TM_SEQ2SEQ_ATTN, true;
  if (!strcmp(name, "transformer")) return *a = TM_TRANSFORMER, true;
  return false;
}

tm_config tm_from_s2s(const s2s_config *c) {
  return (tm_config){.arch = TM_SEQ2SEQ_ATTN,
                     .src_vocab = c->src_vocab,
                     .tgt_vocab = c->tgt_vocab,
                     .batch = c->batch,
                     .src_steps = c->src_steps,
                     .tgt_steps = c->tgt_steps,
                     .dropout = c->dropout,
                     .dtype = c->dtype,
                     .hidden = c->hidden,
                     .layers = c->layers,
                     .embed = c->embed};
}

tm_config tm_from_tf(const tf_config *c) {
  return (tm_config){.arch = TM_TRANSFORMER,
                     .src_vocab = c->src_vocab,
                     .tgt_vocab = c->tgt_vocab,
                     .batch = c->batch,
                     .src_steps = c->src_steps,
                     .tgt_steps = c->tgt_steps,
                     .dropout = c->dropout,
                     .dtype = c->dtype,
                     .hidden = c->hidden,
                     .layers = c->blocks,
                     .heads = c->heads,
                     .ffn = c->ffn,
                     .pre_ln = c->pre_ln,
                     .tie_output = c->tie_output};
}

s2s_config tm_to_s2s(const tm_config *c) {
  return (s2s_config){.src_vocab = c->src_vocab,
                      .tgt_vocab = c->tgt_vocab,
                      .embed = c->embed,
                      .hidden = c->hidden,
                      .layers = c->layers,
                      .dropout = c->dropout,
                      .batch = c->batch,
                      .src_steps = c->src_steps,
                      .tgt_steps = c->tgt_steps,
                      .dtype = c->dtype};
}

tf_config tm_to_tf(const tm_config *c) {
  return (tf_config){.src_vocab = c->src_vocab,
                     .tgt_vocab = c->tgt_vocab,
                     .hidden = c->hidden,
                     .ffn = c->ffn,
                     .heads = c->heads,
                     .blocks = c->layers,
                     .dropout = c->dropout,
                     .batch = c->batch,
                     .src_steps = c->src_steps,
                     .tgt_steps = c->tgt_steps,
                     .pre_ln = c->pre_ln,
                     .tie_output = c->tie_output,
                     .dtype = c->dtype};
}

const char *tm_check(const tm_config *c) {
  if (c->arch == TM_TRANSFORMER) {
    tf_config t = tm_to_tf(c);
    return tf_config_check(&t);
  }
  s2s_config s = tm_to_s2s(c);
  return s2s_config_check(&s);
}

const char *tm_config_differs(const tm_config *a, const tm_config *b) {
  bool tf = a->arch == TM_TRANSFORMER;
  if (a->arch != b->arch) return "the model";
  if (a->hidden != b->hidden) return "hidden";
  if (a->layers != b->layers) return "layers";
  if (!tf && a->embed != b->embed) return "embed";
  if (tf && a->heads != b->heads) return "heads";
  if (tf && a->ffn != b->ffn) return "ffn";
  if (tf && a->pre_ln != b->pre_ln) return "norm";
  if (tf && a->tie_output != b->tie_output) return "tie_output";
  if (a->dropout != b->dropout) return "dropout";
  if (a->src_steps != b->src_steps) return "num_steps";
  if (a->tgt_steps != b->tgt_steps) return "tgt_steps";
  return a->batch != b->batch ? "batch" : NULL;
}

tm_train tm_build_train(const tm_config *c) {
  if (c->arch == TM_TRANSFORMER) {
    tf_config t = tm_to_tf(c);
    tf_train r = tf_build_train(&t);
    return (tm_train){r.g, r.loss};
  }
  s2s_config s = tm_to_s2s(c);
  s2s_train r = s2s_build_train(&s);
  return (tm_train){r.g, r.loss};
}

static void dims3(int64_t *d, int64_t a, int64_t b, int64_t c) { d[0] = a, d[1] = b, d[2] = c; }

bool tm_decode_layout_of(const tm_config *c, tm_decode_layout *l, const char **why) {
  *l = (tm_decode_layout){0};
  if ((*why = tm_check(c))) return false;
  int64_t b = c->batch, ts = c->src_steps, h = c->hidden;
  if (c->arch == TM_SEQ2SEQ_ATTN) {
    /* s2s_build_encoder: enc, keys, then the initial state [L, B, H]. */
    l->n_mem = 2, l->n_state = 1;
    l->state_from_encoder = true;
    l->state_axis = 1;
    l->heads = 1;
    dims3(l->mem_dims[0], b, ts, h);
    dims3(l->mem_dims[1], b, ts, h);
    dims3(l->state_dims[0], c->layers, b, h);
    return true;
  }
  if (2 * c->layers > TM_MAX_DECODE_TENSORS) {
    *why = "transformer decoding: at most 32 blocks";
    return false;
  }
  /* tf_build_memory: per block cross keys, values; tf_build_step's caches
   * per block self keys, values over the tgt_steps positions. */
  l->n_mem = l->n_state = (int)(2 * c->layers);
  l->step_takes_pos = true;
  l->heads = c->heads;
  l->max_len = c->tgt_steps;
  for (int i = 0; i < l->n_mem; i++) {
    dims3(l->mem_dims[i], b, ts, h);
    dims3(l->state_dims[i], b, c->tgt_steps, h);
  }
  return true;
}

kl_graph *tm_build_decode_encoder(const tm_config *c) {
  if (c->arch == TM_TRANSFORMER) {
    tf_config t = tm_to_tf(c);
    return tf_build_memory(&t);
  }
  s2s_config s = tm_to_s2s(c);
  return s2s_build_encoder(&s);
}

kl_graph *tm_build_decode_step(const tm_config *c) {
  if (c->arch == TM_TRANSFORMER) {
    tf_config t = tm_to_tf(c);
    return tf_build_step(&t);
  }
  s2s_config s = tm_to_s2s(c);
  return s2s_build_step(&s);
}

char *tm_config_json(const tm_config *c, const char *tokens) {
  json_t *o = json_pack("{sI sI sI sI sI sI sI sf ss}", "hidden", (json_int_t)c->hidden, "layers",
                        (json_int_t)c->layers, "batch", (json_int_t)c->batch, "src_steps",
                        (json_int_t)c->src_steps, "tgt_steps", (json_int_t)c->tgt_steps,
                        "src_vocab", (json_int_t)c->src_vocab, "tgt_vocab",
                        (json_int_t)c->tgt_vocab, "dropout", c->dropout, "tokens", tokens);
  bool ok = o != NULL;
  if (ok && c->arch == TM_SEQ2SEQ_ATTN) {
    ok = !json_object_set_new(o, "embed", json_integer(c->embed));
  } else if (ok) {
    ok = !json_object_set_new(o, "heads", json_integer(c->heads)) &&
         !json_object_set_new(o, "ffn", json_integer(c->ffn)) &&
         !json_object_set_new(o, "pre_ln", json_boolean(c->pre_ln)) &&
         !json_object_set_new(o, "tie_output", json_boolean(c->tie_output));
  }
  char *s = ok ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  return s;
}

/* A key of o that tm_config_json does not write for a, else NULL. */
static const char *unknown_key(json_t *o, tm_arch a) {
  static const char *const common[] = {"hidden",    "layers",    "batch",     "src_steps",
                                       "tgt_steps", "src_vocab", "tgt_vocab", "dropout",
                                       "tokens",    NULL};
  static const char *const s2s[] = {"embed", NULL}, *const tf[] = {"heads", "ffn", "pre_ln",
                                                                   "tie_output", NULL};
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    bool known = false;
    for (const char *const *k = common; *k && !known; k++)
      known = !strcmp(*k, key);
    for (const char *const *k = a == TM_TRANSFORMER ? tf : s2s; *k && !known; k++)
      known = !strcmp(*k, key);
    if (!known) return key;
  }
  return NULL;
}

bool tm_config_parse(tm_arch a, const char *text, const char *path, tm_config *c, bool *char_tokens,
                     ir_diag *d) {
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  json_int_t h = 0, l = 0, b = 0, ss = 0, ts = 0, sv = 0, tv = 0, e = 0, hd = 0, f = 0;
  int pre = 0, tie = 0;
  double p = 0;
  const char *tok = NULL;
  bool ok = o && !json_unpack(o, "{sI sI sI sI sI sI sI sF ss}", "hidden", &h, "layers", &l,
                              "batch", &b, "src_steps", &ss, "tgt_steps", &ts, "src_vocab", &sv,
                              "tgt_vocab", &tv, "dropout", &p, "tokens", &tok);
  if (ok && a == TM_SEQ2SEQ_ATTN)
    ok = !json_unpack(o, "{sI}", "embed", &e);
  else if (ok)
    ok = !json_unpack(o, "{sI sI sb sb}", "heads", &hd, "ffn", &f, "pre_ln", &pre, "tie_output",
                      &tie);
  if (ok) {
    *c = (tm_config){.arch = a,
                     .src_vocab = sv,
                     .tgt_vocab = tv,
                     .batch = b,
                     .src_steps = ss,
                     .tgt_steps = ts,
                     .dropout = p,
                     .dtype = KL_F32,
                     .hidden = h,
                     .layers = l,
                     .embed = e,
                     .heads = hd,
                     .ffn = f,
                     .pre_ln = pre,
                     .tie_output = tie};
    *char_tokens = !strcmp(tok, "char");
    ok = *char_tokens || !strcmp(tok, "word");
  }
  const char *why = ok ? tm_check(c) : NULL;
  const char *extra = ok && !why ? unknown_key(o, a) : NULL;
  if (extra)
    ir_diag_set(d, "%s: metadata '%s' has '%.64s', which a %s config does not", path,
                RT_CKPT_CONFIG, extra, tm_arch_name(a));
  else if (!ok || why)
    ir_diag_set(d, "%s: metadata '%s' is not a %s config%s%s", path, RT_CKPT_CONFIG,
                tm_arch_name(a), why ? ": " : "", why ? why : "");
  json_decref(o);
  return ok && !why && !extra;
}
