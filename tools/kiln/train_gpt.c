/* `kiln train gpt`: nanoGPT's character-level training on the built-in
 * date lines ("<human date> => <ISO date>") or a UTF-8 text file. This
 * file reads the settings and turns the text into character ids; the loop
 * and the report live in train_gpt_loop.c and train_gpt_eval.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/synth_dates.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/train_gpt.h"

/* "\n", "\t" and "\\" in a --set value (a newline is awkward to type). */
static char *unescape(const char *s) {
  char *out = malloc(strlen(s) + 1), *o = out;
  if (!out) return NULL;
  for (; *s; s++) {
    if (s[0] == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == '\\')) {
      *o++ = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : '\\';
      s++;
    } else {
      *o++ = *s;
    }
  }
  *o = 0;
  return out;
}

static int read_settings(const train_opts *o, gpt_settings *s) {
  gpt_config *c = &s->cfg;
  *c = GPT_DATES_DEFAULTS;
  struct {
    const char *key;
    int64_t *dst, lo, hi;
  } ints[] = {
      {"layers", &c->layers, 1, 64},
      {"heads", &c->heads, 1, 256},
      {"embed", &c->embed, 1, 4096},
      {"block", &c->block, 1, 4096},
      {"max_examples", &s->max_examples, 1, 100000000},
      {"n_test", &s->n_test, 0, 1000000},
      {"samples", &s->samples, 0, 1000},
      {"length", &s->length, 1, 1000000},
      {"top_k", &s->top_k, 0, 1 << 24},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    const char *v = train_get(o, ints[i].key);
    unsigned long long u;
    if (!cli_parse_u64(v, &u) || (int64_t)u < ints[i].lo || (int64_t)u > ints[i].hi)
      return cli_usage_error("train", "%s wants an integer in [%lld, %lld], got '%s'", ints[i].key,
                             (long long)ints[i].lo, (long long)ints[i].hi, v);
    *ints[i].dst = (int64_t)u;
  }
  int rc = gpt_read_number(o, "dropout", 0, 1, true, &c->dropout);
  if (rc == CLI_OK) rc = gpt_read_number(o, "clip", 0, 1e30, false, &s->clip);
  if (rc == CLI_OK) rc = gpt_read_number(o, "temperature", 0, 100, false, &s->temperature);
  if (rc != CLI_OK) return rc;
  const char *v = train_get(o, "backend");
  if (strcmp(v, "jit") && strcmp(v, "ref"))
    return cli_usage_error("train", "backend wants jit or ref, got '%s'", v);
  s->backend = !strcmp(v, "jit") ? KL_BACKEND_JIT : KL_BACKEND_REF;
  if (!(s->prompt = unescape(train_get(o, "prompt")))) return cli_error("train", "out of memory");
  if (!*s->prompt) return cli_usage_error("train", "prompt must not be empty (default: \\n)");
  /* Batch 16 rather than GPT_DATES_DEFAULTS' 32: twice the steps per
   * minute learn the dates faster (measured). */
  c->batch = o->batch ? o->batch : 16;
  if ((rc = gpt_read_optim(o, s)) != CLI_OK) return rc;
  const char *why = gpt_config_check(c); /* vocab is still the placeholder */
  return why ? cli_usage_error("train", "%s", why) : CLI_OK;
}

/* ---- characters ---------------------------------------------------------- */

bool gpt_utf8_decode(const char *text, size_t len, const char *name, uint32_t **cps, int64_t *n,
                     ir_diag *d) {
  const unsigned char *b = (const unsigned char *)text;
  uint32_t *out = malloc((len ? len : 1) * sizeof *out);
  if (!out) {
    ir_diag_set(d, "%s: out of memory", name);
    return false;
  }
  int64_t k = 0, line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < len;) {
    uint32_t c = b[i];
    size_t need = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    uint32_t min = need == 1 ? 0x80 : need == 2 ? 0x800 : 0x10000;
    bool ok = need < 9 && i + need < len;
    if (ok && need) {
      c &= 0x3fu >> need;
      for (size_t j = 1; ok && j <= need; j++) {
        ok = (b[i + j] & 0xc0) == 0x80;
        c = (c << 6) | (b[i + j] & 0x3f);
      }
      ok = ok && c >= min && c <= 0x10ffff && !(c >= 0xd800 && c <= 0xdfff);
    }
    if (!ok) {
      ir_diag_set(d, "%s:%lld:%zu: invalid UTF-8 (byte 0x%02x); the file must be UTF-8 text", name,
                  (long long)line, i - line_start + 1, b[i]);
      d->line = (int)line;
      d->col = (int)(i - line_start + 1);
      free(out);
      return false;
    }
    out[k++] = c;
    i += need + 1;
    if (c == '\n') line++, line_start = i;
  }
  *cps = out;
  *n = k;
  return true;
}

static int64_t char_id(const gpt_text *t, uint32_t c) {
  int64_t lo = 0, hi = t->vocab - 1;
  while (lo <= hi) {
    int64_t mid = (lo + hi) / 2;
    if (t->chars[mid] == c) return mid;
    if (t->chars[mid] < c)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

bool gpt_text_encode(const gpt_text *t, const char *s, int32_t *out, int64_t cap, int64_t *n) {
  uint32_t *cps;
  int64_t m;
  ir_diag d = {0};
  if (!gpt_utf8_decode(s, strlen(s), "text", &cps, &m, &d)) return false;
  bool ok = *n + m <= cap;
  for (int64_t i = 0; ok && i < m; i++) {
    int64_t id = char_id(t, cps[i]);
    ok = id >= 0;
    out[(*n)++] = (int32_t)id;
  }
  free(cps);
  return ok;
}

char *gpt_text_decode(const gpt_text *t, const int32_t *ids, int64_t n) {
  char *s = malloc((size_t)n * 4 + 1), *o = s;
  if (!s) return NULL;
  for (int64_t i = 0; i < n; i++) {
    uint32_t c = ids[i] >= 0 && ids[i] < t->vocab ? t->chars[ids[i]] : 0xfffd;
    if (c < 0x80) {
      *o++ = (char)c;
    } else if (c < 0x800) {
      *o++ = (char)(0xc0 | c >> 6), *o++ = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      *o++ = (char)(0xe0 | c >> 12), *o++ = (char)(0x80 | (c >> 6 & 0x3f));
      *o++ = (char)(0x80 | (c & 0x3f));
    } else {
      *o++ = (char)(0xf0 | c >> 18), *o++ = (char)(0x80 | (c >> 12 & 0x3f));
      *o++ = (char)(0x80 | (c >> 6 & 0x3f)), *o++ = (char)(0x80 | (c & 0x3f));
    }
  }
  *o = 0;
  return s;
}

void gpt_text_free(gpt_text *t) {
  free(t->chars);
  free(t->ids);
  free(t->line_starts);
  rt_pairs_free(&t->held);
  *t = (gpt_text){0};
}

/* The vocabulary and ids of cps[0..n) (takes cps). */
static bool text_from_chars(uint32_t *cps, int64_t n, gpt_text *t, ir_diag *d) {
  enum { NCP = 0x110000 };
  uint64_t *seen = calloc(NCP / 64, sizeof *seen);
  t->ids = malloc((size_t)n * sizeof *t->ids);
  bool ok = seen && t->ids;
  for (int64_t i = 0; ok && i < n; i++)
    seen[cps[i] / 64] |= 1ull << (cps[i] % 64);
  for (int64_t c = 0; ok && c < NCP; c++)
    t->vocab += (int64_t)(seen[c / 64] >> (c % 64) & 1);
  ok = ok && (t->chars = malloc((size_t)(t->vocab ? t->vocab : 1) * sizeof *t->chars));
  for (int64_t c = 0, k = 0; ok && c < NCP; c++)
    if (seen[c / 64] >> (c % 64) & 1) t->chars[k++] = (uint32_t)c;
  for (int64_t i = 0; ok && i < n; i++)
    t->ids[i] = (int32_t)char_id(t, cps[i]);
  if (!ok) ir_diag_set(d, "out of memory");
  t->n = n;
  t->n_train = n * 9 / 10; /* nanoGPT: int(n * 0.9) */
  free(seen);
  free(cps);
  return ok;
}

/* The built-in text: max_examples date lines; n_test more pairs held out. */
static bool dates_text(const train_opts *o, const gpt_settings *s, gpt_text *t, ir_diag *d) {
  rt_pairs p = {0};
  if (!rt_dates_make(o->seed, s->max_examples + s->n_test, &p, d)) return false;
  size_t len = 0;
  for (int64_t i = 0; i < s->max_examples; i++)
    len += strlen(p.src[i]) + strlen(p.tgt[i]) + 5;
  char *text = malloc(len + 1), *w = text;
  bool ok = text != NULL;
  for (int64_t i = 0; ok && i < s->max_examples; i++)
    w += sprintf(w, "%s => %s\n", p.src[i], p.tgt[i]);
  for (int64_t i = s->max_examples; ok && i < p.n; i++)
    ok = rt_pairs_push(&t->held, p.src[i], p.tgt[i]);
  rt_pairs_free(&p);
  uint32_t *cps = NULL;
  int64_t n = 0;
  if (!ok) ir_diag_set(d, "out of memory");
  ok = ok && gpt_utf8_decode(text, (size_t)(w - text), "dates", &cps, &n, d) &&
       text_from_chars(cps, n, t, d);
  free(text);
  return ok;
}

static bool file_text(const char *path, gpt_text *t, ir_diag *d) {
  size_t len;
  char *text = cli_read_file(path, &len, d);
  if (!text) return false;
  uint32_t *cps = NULL;
  int64_t n = 0;
  bool ok = gpt_utf8_decode(text, len, path, &cps, &n, d);
  free(text);
  if (ok && n == 0) {
    free(cps);
    ir_diag_set(d, "%s: no text (the file is empty)", path);
    return false;
  }
  return ok && text_from_chars(cps, n, t, d);
}

/* ---- the command --------------------------------------------------------- */

/* The newlines that start a full window of block + 1 characters: a window
 * is "\n" then whole lines, as the prompts "\n<human date> => " are. */
static bool find_line_starts(gpt_text *t, int64_t block, ir_diag *d) {
  if (!(t->line_starts = malloc((size_t)t->n_train * sizeof *t->line_starts))) {
    ir_diag_set(d, "out of memory");
    return false;
  }
  uint32_t nl = '\n';
  int64_t nl_id = 0;
  while (nl_id < t->vocab && t->chars[nl_id] != nl)
    nl_id++;
  for (int64_t p = 0; p + block < t->n_train; p++)
    if (t->ids[p] == nl_id) t->line_starts[t->n_line_starts++] = p;
  return true;
}

/* The samples' prompt must be in the text's vocabulary; checked before
 * training so the run does not fail at its end. The default ("\n") falls
 * back to the text's first character when the text has no newline; a
 * prompt the user gave is an error. */
static int check_prompt(const train_opts *o, gpt_run *r) {
  int64_t cap = (int64_t)strlen(r->set.prompt), n = 0;
  int32_t *ids = malloc((size_t)cap * sizeof *ids);
  if (!ids) return cli_error("train", "out of memory");
  bool ok = gpt_text_encode(&r->text, r->set.prompt, ids, cap, &n);
  free(ids);
  if (ok) return CLI_OK;
  if (train_given(o, "prompt"))
    return cli_error("train", "prompt: '%s' holds a character that is not in %s", r->set.prompt,
                     o->data ? o->data : "the text");
  char *first = gpt_text_decode(&r->text, r->text.ids, 1);
  if (!first) return cli_error("train", "out of memory");
  printf("prompt: %s has no newline; samples start from its first character '%s' "
         "(--set prompt=... to choose)\n",
         o->data ? o->data : "the text", first);
  free(r->set.prompt);
  r->set.prompt = first;
  return CLI_OK;
}

int train_gpt(const train_opts *o) {
  gpt_run r = {0};
  int rc = read_settings(o, &r.set);
  r.set.settings = o->settings_json;
  ir_diag d = {0};
  gpt_text *t = &r.text;
  if (rc == CLI_OK && !(o->data ? file_text(o->data, t, &d) : dates_text(o, &r.set, t, &d)))
    rc = cli_error("train", "%s", d.msg);
  int64_t T = r.set.cfg.block;
  if (rc == CLI_OK && t->vocab < 2)
    rc = cli_error("train", "%s: only %lld distinct character; a language model needs 2",
                   o->data ? o->data : "dates", (long long)t->vocab);
  if (rc == CLI_OK && t->n_train < T + 1)
    rc = cli_error("train",
                   "%s: %lld characters of training text (90%% of %lld); block %lld needs at "
                   "least %lld (a smaller --set block?)",
                   o->data ? o->data : "dates", (long long)t->n_train, (long long)t->n,
                   (long long)T, (long long)T + 1);
  r.set.cfg.vocab = t->vocab;
  if (rc == CLI_OK && !o->data && !find_line_starts(t, T, &d)) rc = cli_error("train", "%s", d.msg);
  if (rc == CLI_OK && r.set.samples > 0) rc = check_prompt(o, &r);
  rt_checkpoint *ck = NULL;
  if (rc == CLI_OK && o->load && !(ck = gpt_ckpt_open(o->load, &r, o->seed, &d)))
    rc = cli_error("train", "%s", d.msg);
  if (rc == CLI_OK) rc = gpt_train_run(o, &r, ck);
  rt_checkpoint_destroy(ck);
  gpt_run_free(&r);
  return rc;
}

void gpt_run_free(gpt_run *r) {
  kl_train_step_destroy(r->step);
  kl_program_destroy(r->logits);
  gpt_text_free(&r->text);
  free(r->set.prompt);
}
