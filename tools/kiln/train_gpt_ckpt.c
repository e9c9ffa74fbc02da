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

static char *config_json(const gpt_run *r) {
  const gpt_config *c = &r->set.cfg;
  json_t *o = json_pack(
      "{sIsIsIsIsIsfsIsI}", "vocab", (json_int_t)c->vocab, "block", (json_int_t)c->block, "embed",
      (json_int_t)c->embed, "heads", (json_int_t)c->heads, "layers", (json_int_t)c->layers,
      "dropout", c->dropout, "batch", (json_int_t)c->batch, "n_chars", (json_int_t)r->text.n);
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
    rt_ckpt_meta extra[] = {{RT_CKPT_CONFIG, cfg}, {"vocab", voc}};
    ok = ckpt_program_save(path, train, "gpt", seed, (int64_t)kl_program_step(train), extra, 2, d);
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
  json_decref(o);
  const char *why = ok ? gpt_config_check(&c) : NULL;
  char *mine = vocab_json(&r->text);
  if (!ok || why) {
    ir_diag_set(d, "%s: metadata '%s' is not a gpt config%s%s", path, RT_CKPT_CONFIG,
                why ? ": " : "", why ? why : "");
    ok = false;
  } else if (c.batch != r->set.cfg.batch || c.block != r->set.cfg.block) {
    ir_diag_set(d, "%s: saved with batch %lld, block %lld; give the same settings to resume", path,
                (long long)c.batch, (long long)c.block);
    ok = false;
  } else if (n_chars != r->text.n || !voc || !mine || strcmp(voc, mine)) {
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
  if (ok) return ck;
  rt_checkpoint_destroy(ck);
  return NULL;
}
