/* After `kiln train gpt` trains: samples from the prompt, on the date data
 * the held-out exact match (greedy completion of "<human date> => " against
 * the ISO date), and the --json summary line. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/kiln/cli.h"
#include "tools/kiln/gpt_sample.h"
#include "tools/kiln/train_gpt.h"

/* Room for an ISO date, its newline and a little more. */
#define ISO_ROOM 12

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void print_json(const train_opts *o, const gpt_run *r) {
  json_t *obj = json_object(), *losses = json_array();
  for (int64_t i = 0; i < r->nepochs && i < GPT_MAX_EPOCH_LOG; i++)
    json_array_append_new(losses, real_or_null(r->epoch_losses[i]));
  json_object_set_new(obj, "model", json_string("gpt"));
  json_object_set_new(obj, "steps", json_integer(r->steps));
  json_object_set_new(obj, "final_loss", real_or_null(r->final_loss));
  json_object_set_new(obj, "val_loss", real_or_null(r->val_loss));
  json_object_set_new(obj, "epoch_losses", losses);
  json_t *evals = json_array();
  for (int64_t i = 0; i < r->nevals && i < GPT_MAX_EPOCH_LOG; i++)
    json_array_append_new(
        evals, json_pack("[Io]", (json_int_t)r->eval_steps[i], real_or_null(r->eval_losses[i])));
  json_object_set_new(obj, "val_losses", evals);
  json_object_set_new(obj, "optimizer", json_string(r->set.optim.adamw ? "adamw" : "adam"));
  json_object_set_new(obj, "tokens_per_s", real_or_null(r->tokens_per_s));
  json_object_set_new(obj, "train_s", real_or_null(r->train_s));
  json_object_set_new(obj, "compile_s", real_or_null(r->compile_s));
  json_object_set_new(obj, "exact_match", real_or_null(r->exact_match));
  json_object_set_new(obj, "seed", json_integer((json_int_t)o->seed));
  char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
  if (s) puts(s);
  free(s);
  json_decref(obj);
}

/* Row buffers for up to `batch` texts of cap ids each. */
typedef struct rows {
  int32_t *buf, **ids;
  int64_t *len, *plen, cap;
  bool *known;
} rows;

static bool rows_alloc(rows *w, int64_t batch, int64_t cap) {
  w->cap = cap;
  w->buf = malloc((size_t)(batch * cap) * sizeof *w->buf);
  w->ids = malloc((size_t)batch * sizeof *w->ids);
  w->len = calloc((size_t)batch, sizeof *w->len);
  w->plen = calloc((size_t)batch, sizeof *w->plen);
  w->known = calloc((size_t)batch, sizeof *w->known);
  for (int64_t i = 0; w->ids && w->buf && i < batch; i++)
    w->ids[i] = w->buf + i * cap;
  return w->buf && w->ids && w->len && w->plen && w->known;
}

static void rows_free(rows *w) {
  free(w->buf);
  free(w->ids);
  free(w->len);
  free(w->plen);
  free(w->known);
}

static int print_samples(const train_opts *o, gpt_run *r, gpt_sampler *s) {
  const gpt_settings *st = &r->set;
  int64_t np = 0, plen = (int64_t)strlen(st->prompt);
  rows w = {0};
  int32_t *pr = malloc((size_t)plen * sizeof *pr);
  int rc = CLI_OK;
  if (!pr || !rows_alloc(&w, s->batch, plen + st->length)) rc = cli_error("train", "out of memory");
  if (rc == CLI_OK && !gpt_text_encode(&r->text, st->prompt, pr, plen, &np))
    rc = cli_error("train", "prompt: '%s' holds a character that is not in the text", st->prompt);
  if (rc == CLI_OK)
    printf("samples (temperature %g, top_k %lld):\n", st->temperature, (long long)st->top_k);
  gpt_rng rng = {.seed = o->seed};
  for (int64_t done = 0; rc == CLI_OK && done < st->samples; done += s->batch) {
    int64_t n = st->samples - done < s->batch ? st->samples - done : s->batch;
    for (int64_t i = 0; i < n; i++) {
      memcpy(w.ids[i], pr, (size_t)np * sizeof *pr);
      w.len[i] = np;
    }
    const char *e = gpt_generate(s, n, w.ids, w.len, w.cap, st->length, &rng);
    if (e) rc = cli_error("train", "sampling: %s", e);
    for (int64_t i = 0; rc == CLI_OK && i < n; i++) {
      char *text = gpt_text_decode(&r->text, w.ids[i], w.len[i]);
      if (!text)
        rc = cli_error("train", "out of memory");
      else
        printf("--- sample %lld\n%s%s", (long long)(done + i + 1), text,
               *text && text[strlen(text) - 1] == '\n' ? "" : "\n");
      free(text);
    }
  }
  rows_free(&w);
  free(pr);
  return rc;
}

/* Greedy completions of the first n_test held-out dates. */
static int exact_match(gpt_run *r, gpt_sampler *s) {
  const rt_pairs *h = &r->text.held;
  int64_t n = h->n < r->set.n_test ? h->n : r->set.n_test, hits = 0;
  if (n == 0) return CLI_OK;
  rows w = {0};
  if (!rows_alloc(&w, s->batch, 128 + ISO_ROOM)) return cli_error("train", "out of memory");
  gpt_sampler g = *s;
  g.temperature = 0;
  gpt_rng rng = {0};
  int rc = CLI_OK;
  for (int64_t i0 = 0; rc == CLI_OK && i0 < n; i0 += s->batch) {
    int64_t m = n - i0 < s->batch ? n - i0 : s->batch, *plen = w.plen;
    bool *known = w.known;
    for (int64_t i = 0; i < m; i++) {
      char prompt[128];
      snprintf(prompt, sizeof prompt, "\n%s => ", h->src[i0 + i]);
      w.len[i] = 0;
      known[i] = gpt_text_encode(&r->text, prompt, w.ids[i], w.cap - ISO_ROOM, &w.len[i]);
      if (!known[i]) w.ids[i][0] = 0, w.len[i] = 1; /* a miss; the row still runs */
      plen[i] = w.len[i];
    }
    const char *e = gpt_generate(&g, m, w.ids, w.len, w.cap, ISO_ROOM, &rng);
    if (e) rc = cli_error("train", "exact match: %s", e);
    for (int64_t i = 0; rc == CLI_OK && i < m; i++) {
      char *out = gpt_text_decode(&r->text, w.ids[i] + plen[i], w.len[i] - plen[i]);
      if (!out) {
        rc = cli_error("train", "out of memory");
        break;
      }
      out[strcspn(out, "\n")] = 0;
      bool hit = known[i] && !strcmp(out, h->tgt[i0 + i]);
      hits += hit;
      if (i0 + i < 3)
        printf("  %s => %s  (%s%s)\n", h->src[i0 + i], out, hit ? "correct" : "want ",
               hit ? "" : h->tgt[i0 + i]);
      free(out);
    }
  }
  rows_free(&w);
  if (rc == CLI_OK) {
    r->exact_match = (double)hits / (double)n;
    printf("held out: exact match %.1f%% (%lld of %lld)\n", 100 * r->exact_match, (long long)hits,
           (long long)n);
  }
  return rc;
}

int gpt_evaluate(const train_opts *o, gpt_run *r) {
  const gpt_config *c = &r->set.cfg;
  kl_program_copy_params(r->logits, kl_train_step_program(r->step));
  int32_t nl = -1; /* dates: a sample is one line */
  int64_t one = 0;
  if (o->data || !gpt_text_encode(&r->text, "\n", &nl, 1, &one)) nl = -1;
  gpt_sampler s = {.prog = r->logits,
                   .batch = c->batch,
                   .block = c->block,
                   .vocab = c->vocab,
                   .temperature = r->set.temperature,
                   .top_k = r->set.top_k,
                   .stop = nl};
  int rc = r->set.samples ? print_samples(o, r, &s) : CLI_OK;
  if (rc == CLI_OK && !o->data) rc = exact_match(r, &s);
  if (rc == CLI_OK && o->json) print_json(o, r);
  return rc;
}
