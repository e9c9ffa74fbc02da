/* After `kiln train seq2seq-attn` or `transformer` trains: greedy translations of the
 * held-out pairs (exact-match accuracy, corpus BLEU-4), d2l's four example
 * sentences when training on a file, an attention heatmap of one
 * translation, and the --json summary line. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bleu.h"
#include "runtime/svg.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/train_s2s.h"

/* Rows per decoder run when translating many sentences. */
#define EVAL_ROWS 128

/* d2l's examples and references (section 10.7 / 11.4). */
static const char *const d2l_src[] = {"go .", "i lost .", "he's calm .", "i'm home ."};
static const char *const d2l_ref[] = {"va !", "j'ai perdu .", "il est calme .",
                                      "je suis chez moi ."};

typedef struct translations {
  int64_t n, max_len, src_steps;
  int64_t as;             /* attention floats per step: heads x src_steps */
  int32_t *src, *src_len; /* [n, Ts], [n] */
  int32_t *out;           /* [n, max_len] */
  int64_t *out_len;
  float *attn; /* [n, max_len, heads, Ts] */
} translations;

static void tr_free(translations *t) {
  free(t->src);
  free(t->src_len);
  free(t->out);
  free(t->out_len);
  free(t->attn);
}

static bool tr_alloc(translations *t, int64_t n, int64_t max_len, int64_t ts, int64_t heads) {
  *t = (translations){.n = n, .max_len = max_len, .src_steps = ts, .as = heads * ts};
  t->src = calloc((size_t)(n * ts), sizeof *t->src);
  t->src_len = calloc((size_t)n, sizeof *t->src_len);
  t->out = calloc((size_t)(n * max_len), sizeof *t->out);
  t->out_len = calloc((size_t)n, sizeof *t->out_len);
  t->attn = calloc((size_t)(n * max_len * t->as), sizeof *t->attn);
  return t->src && t->src_len && t->out && t->out_len && t->attn;
}

/* Greedy-decodes every row of t in chunks of the decoder's batch; the last
 * chunk is padded with empty rows. */
static const char *translate_all(s2s_decoder *dec, int64_t rows, translations *t) {
  int64_t ts = t->src_steps, ml = t->max_len, as = t->as;
  int32_t *src = malloc((size_t)(rows * ts) * sizeof *src), *len = malloc((size_t)rows * 4);
  int32_t *out = malloc((size_t)(rows * ml) * sizeof *out);
  int64_t *olen = malloc((size_t)rows * sizeof *olen);
  float *attn = malloc((size_t)(rows * ml * as) * sizeof *attn);
  const char *err = !src || !len || !out || !olen || !attn ? "out of memory" : NULL;
  for (int64_t at = 0; !err && at < t->n; at += rows) {
    int64_t k = t->n - at < rows ? t->n - at : rows;
    for (int64_t r = 0; r < rows; r++) {
      for (int64_t j = 0; j < ts; j++)
        src[r * ts + j] = r < k ? t->src[(at + r) * ts + j] : RT_VOCAB_PAD;
      len[r] = r < k ? t->src_len[at + r] : 0;
    }
    err = s2s_greedy(dec, src, len, ml, out, olen, attn);
    for (int64_t r = 0; !err && r < k; r++) {
      memcpy(t->out + (at + r) * ml, out + r * ml, (size_t)ml * sizeof *out);
      memcpy(t->attn + (at + r) * ml * as, attn + r * ml * as, (size_t)(ml * as) * sizeof *attn);
      t->out_len[at + r] = olen[r];
    }
  }
  free(src);
  free(len);
  free(out);
  free(olen);
  free(attn);
  return err;
}

/* Corpus BLEU-4 of t against the reference ids of dt (up to <eos>). */
static double corpus_bleu(const translations *t, const s2s_data *dt) {
  const int32_t **p = malloc((size_t)t->n * sizeof *p), **q = malloc((size_t)t->n * sizeof *q);
  size_t *pl = malloc((size_t)t->n * sizeof *pl), *ql = malloc((size_t)t->n * sizeof *ql);
  double b = NAN;
  if (p && q && pl && ql) {
    for (int64_t i = 0; i < t->n; i++) {
      p[i] = t->out + i * t->max_len;
      pl[i] = (size_t)t->out_len[i];
      q[i] = dt->tgt + i * dt->tgt_steps;
      size_t l = 0;
      while ((int64_t)l < dt->tgt_steps && q[i][l] != RT_VOCAB_EOS && q[i][l] != RT_VOCAB_PAD)
        l++;
      ql[i] = l;
    }
    b = rt_bleu_corpus(p, pl, q, ql, (size_t)t->n);
  }
  free(p);
  free(q);
  free(pl);
  free(ql);
  return b;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void print_json(const train_opts *o, const s2s_run *r) {
  json_t *obj = json_object(), *losses = json_array();
  for (int64_t i = 0; i < r->nepochs && i < S2S_MAX_EPOCH_LOG; i++)
    json_array_append_new(losses, real_or_null(r->epoch_losses[i]));
  json_object_set_new(obj, "model", json_string(tm_arch_name(r->set.meta.cfg.arch)));
  json_object_set_new(obj, "steps", json_integer(r->steps));
  json_object_set_new(obj, "final_loss", real_or_null(r->final_loss));
  json_object_set_new(obj, "epoch_losses", losses);
  json_object_set_new(obj, "tokens_per_s", real_or_null(r->tokens_per_s));
  json_object_set_new(obj, "train_s", real_or_null(r->train_s));
  json_object_set_new(obj, "compile_s", real_or_null(r->compile_s));
  json_object_set_new(obj, "exact_match", real_or_null(r->exact_match));
  json_object_set_new(obj, "bleu", real_or_null(r->bleu4));
  json_object_set_new(obj, "seed", json_integer((json_int_t)o->seed));
  if (isfinite(r->d2l_bleu[0])) {
    json_t *b = json_array();
    for (int i = 0; i < 4; i++)
      json_array_append_new(b, real_or_null(r->d2l_bleu[i]));
    json_object_set_new(obj, "d2l_bleu", b);
  }
  char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
  if (s) puts(s);
  free(s);
  json_decref(obj);
}

/* Fills t: the held-out rows, then (file data) d2l's four sentences. */
static bool fill_sources(const s2s_run *r, int64_t nd2l, translations *t, ir_diag *d) {
  int64_t ts = r->set.meta.cfg.src_steps, nt = r->test.n;
  if (nt > 0) { /* the arrays are NULL when nothing is held out */
    memcpy(t->src, r->test.src, (size_t)(nt * ts) * sizeof *t->src);
    memcpy(t->src_len, r->test.src_len, (size_t)nt * sizeof *t->src_len);
  }
  for (int64_t i = 0; i < nd2l; i++) {
    char *s = rt_text_preprocess(d2l_src[i], strlen(d2l_src[i]));
    int32_t len = s ? s2s_source_row(&r->set.meta, s, t->src + (nt + i) * ts, d) : -1;
    free(s);
    if (len < 0) return false;
    t->src_len[nt + i] = len;
  }
  return true;
}

/* Prints the samples, d2l's sentences, accuracy and BLEU. */
static bool report(s2s_run *r, const translations *t) {
  const s2s_meta *m = &r->set.meta;
  int64_t nt = r->test.n, hits = 0;
  bool ok = true;
  for (int64_t i = 0; ok && i < t->n; i++) {
    char *s = s2s_detokenize(m, t->out + i * t->max_len, t->out_len[i]);
    if (!s) return false;
    if (i < nt) {
      const char *want = r->pairs.tgt[r->set.max_examples + i];
      bool hit = !strcmp(s, want);
      hits += hit;
      const char *src = r->pairs.src[r->set.max_examples + i];
      if (i < r->set.samples && hit) printf("  %s => %s  (correct)\n", src, s);
      if (i < r->set.samples && !hit) printf("  %s => %s  (want %s)\n", src, s, want);
    } else {
      int64_t k = i - nt;
      r->d2l_bleu[k] = rt_bleu_str(s, d2l_ref[k], 2);
      printf("  %s => %s, bleu %.3f\n", d2l_src[k], s, r->d2l_bleu[k]);
    }
    free(s);
  }
  if (nt > 0) {
    r->exact_match = (double)hits / (double)nt;
    r->bleu4 = corpus_bleu(t, &r->test);
    printf("held out: exact match %.1f%% (%lld of %lld), corpus BLEU-4 %.3f\n",
           100 * r->exact_match, (long long)hits, (long long)nt, r->bleu4);
  }
  return ok;
}

int s2s_evaluate(const train_opts *o, s2s_run *r) {
  r->exact_match = r->bleu4 = NAN;
  for (int i = 0; i < 4; i++)
    r->d2l_bleu[i] = NAN;
  int64_t nd2l = o->data ? 4 : 0, n = r->test.n + nd2l;
  int rc = CLI_OK;
  if (n > 0) {
    tm_config dc = r->set.meta.cfg;
    dc.batch = n < EVAL_ROWS ? n : EVAL_ROWS;
    kl_compile_opts co = train_compile_opts(o, r->set.backend, false);
    char *err = NULL;
    ir_diag d = {0};
    translations t = {0};
    s2s_decoder *dec = s2s_decoder_create(&dc, &co, &err);
    const char *e = NULL;
    if (!dec) {
      rc = cli_error("train", "decoder: %s", err ? err : "out of memory");
    } else if (!tr_alloc(&t, n, dc.tgt_steps, dc.src_steps, s2s_attn_heads(&dc))) {
      rc = cli_error("train", "out of memory");
    } else if (!fill_sources(r, nd2l, &t, &d)) {
      rc = cli_error("train", "%s", d.msg);
    } else {
      s2s_decoder_copy_weights(dec, kl_train_step_program(r->step));
      if ((e = translate_all(dec, dc.batch, &t))) {
        rc = cli_error("train", "translating: %s", e);
      } else if (!report(r, &t)) {
        rc = cli_error("train", "out of memory");
      } else if (*r->set.heatmap &&
                 !s2s_heatmap_write(&r->set.meta, NULL, t.src, t.src_len[0], t.out, t.out_len[0],
                                    t.max_len, t.attn, r->set.heatmap, &d)) {
        rc = cli_error("train", "%s", d.msg);
      } else if (*r->set.heatmap) {
        printf("wrote %s\n", r->set.heatmap);
      }
    }
    free(err);
    tr_free(&t);
    s2s_decoder_destroy(dec);
  }
  if (rc == CLI_OK && o->json) print_json(o, r);
  return rc;
}
