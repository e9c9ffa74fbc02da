/* Checkpoints of `kiln train gpt` (train_gpt.h): the training program's
 * parameters (weights and Adam state) and, in the metadata, the step (which
 * is also the data position: batch windows are drawn per step from the
 * seed), the seed, the config and the characters in id order, so a resumed
 * run continues the exact run and a checkpoint of other text is refused. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/kiln/ckpt_program.h"
#include "tools/kiln/train_gpt.h"

static const char *gpt_optimizer_name(const gpt_run *r) {
  return r->set.optim.adamw ? "adamw" : "adam";
}

static char *config_json(const gpt_run *r) {
  const gpt_config *c = &r->set.cfg;
  json_t *o =
      json_pack("{sIsIsIsIsIsfsIsIsb}", "vocab", (json_int_t)c->vocab, "block",
                (json_int_t)c->block, "embed", (json_int_t)c->embed, "heads", (json_int_t)c->heads,
                "layers", (json_int_t)c->layers, "dropout", c->dropout, "batch",
                (json_int_t)c->batch, "n_chars", (json_int_t)r->text.n, "bias", !c->no_bias);
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
  json_decref(o);
  return s;
}

static char *vocab_json(const gpt_text *t) {
  json_t *a = json_array();
  for (int64_t i = 0; a && i < t->vocab; i++) {
    int32_t id = (int32_t)i;
    char *ch = gpt_text_decode(t, &id, 1);
    if (!ch || json_array_append_new(a, json_string(ch))) {
      json_decref(a);
      a = NULL;
    }
    free(ch);
  }
  char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return s;
}

bool gpt_ckpt_save(const char *path, const gpt_run *r, kl_program *train, uint64_t seed,
                   ir_diag *d) {
  char *cfg = config_json(r), *voc = vocab_json(&r->text);
  bool ok = cfg && voc;
  if (!ok) {
    ir_diag_set(d, "%s: out of memory", path);
  } else {
    /* The data position is the step: batches are drawn from the RNG
     * stream, one per step. */
    rt_ckpt_meta extra[] = {
        {RT_CKPT_CONFIG, cfg}, {"vocab", voc}, {TRAIN_CKPT_SETTINGS, r->set.settings}};
    ok = ckpt_program_save(path, train, "gpt", gpt_optimizer_name(r), seed,
                           (int64_t)kl_program_step(train), extra, r->set.settings ? 3 : 2, d);
  }
  free(cfg);
  free(voc);
  return ok;
}

static bool get_int(json_t *o, const char *key, int64_t *v) {
  json_t *x = json_object_get(o, key);
  if (!json_is_integer(x)) return false;
  *v = (int64_t)json_integer_value(x);
  return true;
}

/* The checkpoint's config into c (its model fields) after checking that
 * batch and block, which decide the data windows, and the text agree. */
static bool check_config(const rt_checkpoint *ck, gpt_run *r, ir_diag *d) {
  const char *path = rt_checkpoint_path(ck), *text = rt_checkpoint_meta(ck, RT_CKPT_CONFIG);
  const char *voc = rt_checkpoint_meta(ck, "vocab");
  json_error_t je;
  json_t *o = text ? json_loads(text, 0, &je) : NULL;
  gpt_config c = r->set.cfg;
  int64_t n_chars = -1;
  bool ok = o && get_int(o, "vocab", &c.vocab) && get_int(o, "block", &c.block) &&
            get_int(o, "embed", &c.embed) && get_int(o, "heads", &c.heads) &&
            get_int(o, "layers", &c.layers) && get_int(o, "batch", &c.batch) &&
            get_int(o, "n_chars", &n_chars) && json_is_number(json_object_get(o, "dropout"));
  if (ok) c.dropout = json_number_value(json_object_get(o, "dropout"));
  /* "bias" came later: a checkpoint without it has biases. */
  json_t *bias = o ? json_object_get(o, "bias") : NULL;
  ok = ok && (!bias || json_is_boolean(bias));
  c.no_bias = bias && json_is_false(bias);
  /* Exactly config_json's keys: all were found, so more is extra. */
  bool extra = ok && json_object_size(o) != (bias ? 9u : 8u);
  json_decref(o);
  const char *why = ok ? gpt_config_check(&c) : NULL;
  char *mine = vocab_json(&r->text);
  if (!ok || why || extra) {
    ir_diag_set(d, "%s: metadata '%s' is not a gpt config%s%s", path, RT_CKPT_CONFIG,
                why || extra ? ": " : "",
                why     ? why
                : extra ? "keys besides vocab, block, embed, heads, layers, dropout, batch, "
                          "n_chars, bias"
                        : "");
    ok = false;
  } else if (c.batch != r->set.cfg.batch || c.block != r->set.cfg.block) {
    ir_diag_set(d, "%s: saved with batch %lld, block %lld; give the same settings to resume", path,
                (long long)c.batch, (long long)c.block);
    ok = false;
  } else if (c.layers != r->set.cfg.layers || c.heads != r->set.cfg.heads ||
             c.embed != r->set.cfg.embed || c.dropout != r->set.cfg.dropout ||
             c.no_bias != r->set.cfg.no_bias) {
    /* The run's settings include the checkpoint's record
     * (train_settings_resume): the record and the config disagree. */
    ir_diag_set(d,
                "%s: metadata '%s' (layers %lld, heads %lld, embed %lld, dropout %g, bias %d) and "
                "'%s' disagree",
                path, RT_CKPT_CONFIG, (long long)c.layers, (long long)c.heads, (long long)c.embed,
                c.dropout, !c.no_bias, TRAIN_CKPT_SETTINGS);
    ok = false;
  } else if (n_chars != r->text.n || c.vocab != r->text.vocab || !voc || !mine ||
             strcmp(voc, mine)) {
    ir_diag_set(d,
                "%s: trained on other text (%lld characters); resume with the same data, seed "
                "and max_examples",
                path, (long long)n_chars);
    ok = false;
  }
  free(mine);
  if (ok) r->set.cfg = c;
  return ok;
}

rt_checkpoint *gpt_ckpt_open(const char *path, gpt_run *r, uint64_t run_seed, ir_diag *d) {
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, d);
  if (!ck) return NULL;
  const char *model = rt_checkpoint_meta(ck, RT_CKPT_MODEL);
  uint64_t seed = 0;
  bool ok = true;
  if (!model || strcmp(model, "gpt")) {
    ir_diag_set(d, "%s: a checkpoint of model '%.64s', not of gpt", path, model ? model : "(none)");
    ok = false;
  }
  ok = ok && rt_checkpoint_meta_u64(ck, RT_CKPT_SEED, &seed, d);
  if (ok && seed != run_seed) {
    ir_diag_set(d, "%s: saved with --seed %llu; resume with the same seed (this run: %llu)", path,
                (unsigned long long)seed, (unsigned long long)run_seed);
    ok = false;
  }
  ok = ok && check_config(ck, r, d);
  if (ok) {
    gpt_train t = gpt_build_train(&r->set.cfg);
    ok = t.g && !kl_graph_error(t.g) &&
         ckpt_program_check(ck, t.g, t.loss, gpt_optimizer_name(r), d);
    if (!t.g || kl_graph_error(t.g))
      ir_diag_set(d, "%s: %s", path, t.g ? kl_graph_error(t.g) : "out of memory");
    kl_graph_destroy(t.g);
  }
  /* The windows of a step are drawn from the seed and the step alone, so
   * the data position is the step (gpt_ckpt_save). */
  int64_t step = 0, pos = 0;
  if (ok && rt_checkpoint_meta_i64(ck, RT_CKPT_STEP, &step, d) &&
      rt_checkpoint_meta_i64(ck, RT_CKPT_DATA_POS, &pos, d) && pos != step) {
    ir_diag_set(d, "%s: metadata '%s' is %lld, but gpt's data position is its step (%lld)", path,
                RT_CKPT_DATA_POS, (long long)pos, (long long)step);
    ok = false;
  }
  if (ok) return ck;
  rt_checkpoint_destroy(ck);
  return NULL;
}
