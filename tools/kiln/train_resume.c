/* `kiln train --load` and the run's settings (train.h): a checkpoint
 * records the --set values that shape its model, data and training, so a
 * resumed run is the same run: a --set that disagrees with the record is
 * refused rather than silently losing to the checkpoint, and a key not
 * given takes the recorded value. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/checkpoint.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/train.h"

/* Keys that only shape the report or where the run executes, free to
 * change between a run and its resumption (like --epochs, --steps, --lr
 * and --threads). Every other key is recorded. */
static const char *const free_keys[] = {"samples", "heatmap",    "plot",       "backend",
                                        "n_test",  "length",     "prompt",     "temperature",
                                        "top_k",   "eval_every", "eval_iters", NULL};

static bool recorded(const char *key) {
  for (int i = 0; free_keys[i]; i++)
    if (!strcmp(free_keys[i], key)) return false;
  return true;
}

char *train_settings_json(const train_opts *o) {
  json_t *obj = json_object();
  bool ok = obj != NULL;
  for (int i = 0; ok && i < o->model->nkeys; i++) {
    const char *k = o->model->keys[i].name;
    if (recorded(k)) ok = !json_object_set_new(obj, k, json_string(train_get(o, k)));
  }
  char *s = ok ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(obj);
  return s;
}

/* The same setting: the same text or the same number ("0.10" is "0.1"). */
static bool same_value(const char *a, const char *b) {
  if (!strcmp(a, b)) return true;
  char *ea, *eb;
  double x = strtod(a, &ea), y = strtod(b, &eb);
  return ea != a && eb != b && !*ea && !*eb && x == y;
}

/* Puts key=value before the user's entries, so theirs still win in
 * train_get (they agree, or the key is free). */
static bool prepend(train_opts *o, const char *key, const char *value) {
  if (o->nset == TRAIN_MAX_SET) return false;
  char *k = strdup(key), *v = strdup(value);
  if (!k || !v) {
    free(k);
    free(v);
    return false;
  }
  memmove(&o->set[1], &o->set[0], (size_t)o->nset * sizeof o->set[0]);
  o->set[0].key = k, o->set[0].value = v;
  o->nset++;
  return true;
}

int train_settings_resume(train_opts *o) {
  ir_diag d = {0};
  rt_checkpoint *ck = rt_checkpoint_load(o->load, NULL, 0, &d);
  if (!ck) return cli_error("train", "%s", d.msg);
  const char *path = o->load, *model = rt_checkpoint_meta(ck, RT_CKPT_MODEL);
  const char *text = rt_checkpoint_meta(ck, TRAIN_CKPT_SETTINGS);
  json_t *obj = text ? json_loads(text, 0, NULL) : NULL;
  int rc = CLI_OK;
  if (!model || strcmp(model, o->model->name)) {
    /* Not this model's: the trainer's own check says so. */
  } else if (!json_is_object(obj)) {
    rc = cli_error("train",
                   "%s: metadata '%s' is %s; it records the run's settings (a checkpoint written "
                   "by kiln train has it)",
                   path, TRAIN_CKPT_SETTINGS, text ? "not a JSON object" : "missing");
  } else {
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
      const char *v = json_string_value(val), *mine = train_given(o, key);
      if (!v || !kl_model_key_find(o->model, key) || !recorded(key)) {
        rc = cli_error("train", "%s: metadata '%s' has '%.64s', which is not a setting %s records",
                       path, TRAIN_CKPT_SETTINGS, key, o->model->name);
      } else if (mine && !same_value(mine, v)) {
        rc = cli_error("train",
                       "%s: --set %s=%s conflicts with the checkpoint's %s=%s (a resumed run "
                       "keeps its settings; drop the --set or start a new run)",
                       path, key, mine, key, v);
      } else if (!prepend(o, key, v)) {
        rc = cli_error("train", "more than %d settings", TRAIN_MAX_SET);
      }
      if (rc != CLI_OK) break;
    }
  }
  json_decref(obj);
  rt_checkpoint_destroy(ck);
  return rc;
}
