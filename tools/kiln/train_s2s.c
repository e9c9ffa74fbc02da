/* `kiln train seq2seq-attn` and `kiln train transformer`: d2l's
 * train_seq2seq on the built-in dates or a tab-separated file. Teacher-forced Adam steps with
 * clipping compiled into one program, a progress line, per-epoch summaries, checkpoints that resume
 * the exact run, then greedy translations of held-out pairs, their exact-match accuracy (dates) or
 * corpus BLEU-4, and an attention heatmap. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver/kiln_train.h"
#include "runtime/synth_dates.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/out_path.h"
#include "tools/kiln/s2s_data.h"
#include "tools/kiln/train.h"
#include "tools/kiln/train_s2s.h"

/* Settings from --set, "auto" resolved for the data in use. */
static int read_settings(const train_opts *o, s2s_settings *s) {
  bool dates = !o->data;
  tm_config *c = &s->meta.cfg;
  if (!tm_arch_from_name(o->model->name, &c->arch))
    return cli_usage_error("train", "%s is not a translation model", o->model->name);
  struct {
    const char *key;
    int64_t *dst, lo, hi, auto_dates, auto_file;
  } ints[] = {
      {"embed", &c->embed, 1, 4096, 0, 0},
      {"hidden", &c->hidden, 1, 4096, 0, 0},
      {"layers", &c->layers, 1, 8, 0, 0},
      {"heads", &c->heads, 1, 256, 0, 0},
      {"ffn", &c->ffn, 1, 65536, 0, 0},
      {"num_steps", &c->src_steps, 1, 512, 30, 10},
      {"tgt_steps", &c->tgt_steps, 1, 512, 11, -1},
      {"max_examples", &s->max_examples, 1, 100000000, 20000, 0},
      {"n_test", &s->n_test, 0, 1000000, 1000, 0},
      {"min_freq", &s->min_freq, 1, 1000000, 1, 2},
      {"samples", &s->samples, 0, 1000, 0, 0},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    const char *v = train_get(o, ints[i].key);
    unsigned long long u;
    if (!v) continue; /* not a key of this model */
    if (!strcmp(v, "auto")) {
      *ints[i].dst = dates ? ints[i].auto_dates : ints[i].auto_file;
      continue;
    }
    if (!cli_parse_u64(v, &u) || (int64_t)u < ints[i].lo || (int64_t)u > ints[i].hi)
      return cli_usage_error("train", "%s wants an integer in [%lld, %lld] or auto, got '%s'",
                             ints[i].key, (long long)ints[i].lo, (long long)ints[i].hi, v);
    *ints[i].dst = (int64_t)u;
  }
  if (c->tgt_steps < 0) c->tgt_steps = c->src_steps;
  const char *v = train_get(o, "dropout");
  char *end;
  c->dropout = strtod(v, &end);
  if (end == v || *end || !(c->dropout >= 0 && c->dropout < 1))
    return cli_usage_error("train", "dropout wants a number in [0, 1), got '%s'", v);
  v = train_get(o, "clip");
  s->clip = strtod(v, &end);
  if (end == v || *end || !(s->clip >= 0) || !isfinite(s->clip))
    return cli_usage_error("train", "clip wants a number >= 0, got '%s'", v);
  v = train_get(o, "tokens");
  if (!strcmp(v, "auto")) {
    s->meta.char_tokens = dates;
  } else if (!strcmp(v, "char") || !strcmp(v, "word")) {
    s->meta.char_tokens = !strcmp(v, "char");
  } else {
    return cli_usage_error("train", "tokens wants char, word or auto, got '%s'", v);
  }
  v = train_get(o, "backend");
  if (strcmp(v, "jit") && strcmp(v, "ref"))
    return cli_usage_error("train", "backend wants jit or ref, got '%s'", v);
  s->backend = !strcmp(v, "jit") ? KL_BACKEND_JIT : KL_BACKEND_REF;
  s->heatmap = train_get(o, "heatmap");
  if (*s->heatmap) {
    int rc = cli_check_output("train", "heatmap", s->heatmap);
    if (rc != CLI_OK) return rc;
  }
  if (c->arch == TM_TRANSFORMER) {
    v = train_get(o, "norm");
    if (strcmp(v, "post") && strcmp(v, "pre"))
      return cli_usage_error("train", "norm wants post or pre, got '%s'", v);
    c->pre_ln = !strcmp(v, "pre");
    v = train_get(o, "tie_output");
    if (strcmp(v, "0") && strcmp(v, "1"))
      return cli_usage_error("train", "tie_output wants 0 or 1, got '%s'", v);
    c->tie_output = !strcmp(v, "1");
  }
  c->batch = o->batch ? o->batch : 64;
  c->dtype = KL_F32;
  return CLI_OK;
}

/* The pairs: the dates generator or the file, max_examples + n_test of them
 * (the file's first max_examples train, the next n_test are held out). */
static bool load_pairs(const train_opts *o, s2s_settings *s, rt_pairs *p, ir_diag *d) {
  int64_t want = s->max_examples ? s->max_examples + s->n_test : 0;
  bool ok = o->data ? rt_pairs_read(o->data, want, p, d) : rt_dates_make(o->seed, want, p, d);
  if (!ok) return false;
  if (!s->max_examples) s->max_examples = p->n;
  if (s->max_examples > p->n) s->max_examples = p->n;
  if (s->n_test > p->n - s->max_examples) s->n_test = p->n - s->max_examples;
  if (s->max_examples < 1) {
    ir_diag_set(d, "%s: no sentence pairs", o->data ? o->data : "dates");
    return false;
  }
  return true;
}

/* --load: the checkpoint's config and vocabularies replace the settings'
 * model part (its data settings must agree with this run's). */
static rt_checkpoint *open_resume(const train_opts *o, s2s_settings *s, ir_diag *d) {
  s2s_meta m;
  rt_checkpoint *ck = s2s_ckpt_open(o->load, &m, d);
  if (!ck) return NULL;
  uint64_t seed = 0;
  bool ok = m.cfg.arch == s->meta.cfg.arch;
  if (!ok)
    ir_diag_set(d, "%s: a checkpoint of %s, not %s", o->load, tm_arch_name(m.cfg.arch),
                tm_arch_name(s->meta.cfg.arch));
  ok = ok && rt_checkpoint_meta_u64(ck, RT_CKPT_SEED, &seed, d);
  if (ok && seed != o->seed) {
    ir_diag_set(d, "%s: saved with --seed %llu; resume with the same seed (this run: %llu)",
                o->load, (unsigned long long)seed, (unsigned long long)o->seed);
    ok = false;
  }
  if (ok && (m.cfg.batch != s->meta.cfg.batch || m.cfg.src_steps != s->meta.cfg.src_steps ||
             m.cfg.tgt_steps != s->meta.cfg.tgt_steps || m.char_tokens != s->meta.char_tokens)) {
    ir_diag_set(d,
                "%s: saved with batch %lld, num_steps %lld, tgt_steps %lld, %s tokens; give "
                "the same settings to resume",
                o->load, (long long)m.cfg.batch, (long long)m.cfg.src_steps,
                (long long)m.cfg.tgt_steps, m.char_tokens ? "char" : "word");
    ok = false;
  }
  /* The run's settings include the checkpoint's record (train_settings_resume),
   * so a difference here is a checkpoint whose record and config disagree. */
  const char *field = ok ? tm_config_differs(&m.cfg, &s->meta.cfg) : NULL;
  if (field) {
    ir_diag_set(d, "%s: metadata '%s' and '%s' disagree on %s", o->load, RT_CKPT_CONFIG,
                TRAIN_CKPT_SETTINGS, field);
    ok = false;
  }
  if (!ok) {
    s2s_meta_free(&m);
    rt_checkpoint_destroy(ck);
    return NULL;
  }
  m.settings = o->settings_json;
  s->meta = m;
  return ck;
}

int train_translation(const train_opts *o) {
  s2s_run r = {0};
  int rc = read_settings(o, &r.set);
  if (rc != CLI_OK) return rc;
  ir_diag d = {0};
  rt_checkpoint *ck = NULL;
  r.set.meta.settings = o->settings_json;
  bool ok = !o->load || (ck = open_resume(o, &r.set, &d));
  ok = ok && load_pairs(o, &r.set, &r.pairs, &d);
  if (ok) {
    ok = s2s_data_build(&r.set.meta, &r.pairs, 0, r.set.max_examples, r.set.min_freq, &r.train,
                        &d) &&
         (r.set.n_test == 0 ||
          s2s_data_build(&r.set.meta, &r.pairs, r.set.max_examples, r.set.n_test, 1, &r.test, &d));
  }
  const char *why = ok ? tm_check(&r.set.meta.cfg) : NULL;
  if (why) {
    rc = cli_usage_error("train", "%s", why);
  } else if (!ok) {
    rc = cli_error("train", "%s", d.msg);
  } else {
    rc = s2s_train_run(o, &r, ck);
  }
  rt_checkpoint_destroy(ck);
  s2s_run_free(&r);
  return rc;
}

void s2s_run_free(s2s_run *r) {
  kl_train_step_destroy(r->step);
  s2s_data_free(&r->train);
  s2s_data_free(&r->test);
  rt_pairs_free(&r->pairs);
  s2s_meta_free(&r->set.meta);
}
