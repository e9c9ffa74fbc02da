/* Fuzz harness for the data readers: the tab-separated pair reader
 * (rt_pairs_parse), d2l's preprocessing and both tokenizers, vocabularies
 * built from and read back as token lists (runtime/vocab.c), the padded id
 * arrays, and gpt's UTF-8 text decoder (tools/kiln/train_gpt.c). The first
 * byte picks max_examples, min_freq and num_steps; the rest is the text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/text.h"
#include "runtime/vocab.h"
#include "tools/kiln/train_gpt.h"

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_text: %s %s\n", what, detail ? detail : "");
  abort();
}

/* Tokens of a vocabulary must map back to their ids; the token list read
 * back (rt_vocab_from_tokens) must give the same vocabulary. */
static void check_vocab(const rt_vocab *v) {
  int64_t n = rt_vocab_size(v);
  const char **toks = malloc((size_t)(n ? n : 1) * sizeof *toks);
  if (!toks) return;
  for (int64_t i = 0; i < n; i++) {
    toks[i] = rt_vocab_token(v, i);
    if (!toks[i] || rt_vocab_id(v, toks[i]) != (int32_t)i) fail("vocabulary id mismatch", toks[i]);
  }
  ir_diag d = {0};
  rt_vocab *back = rt_vocab_from_tokens(toks, n, &d);
  if (!back) fail("a built vocabulary does not read back:", d.msg);
  if (rt_vocab_size(back) != n) fail("vocabulary read back has another size", NULL);
  rt_vocab_free(back);
  free(toks);
}

static void tokenize_side(char *const *sents, int64_t n, bool chars, int64_t min_freq,
                          int64_t steps) {
  rt_toklist *seqs = calloc((size_t)(n ? n : 1), sizeof *seqs);
  if (!seqs) return;
  ir_diag d = {0};
  bool ok = true;
  for (int64_t i = 0; ok && i < n; i++) {
    ok = chars ? rt_tokenize_chars(sents[i], &seqs[i], &d)
               : rt_tokenize_words(sents[i], &seqs[i], &d);
    if (ok && chars) {
      /* Character tokens concatenate back to the sentence. */
      size_t at = 0, len = strlen(sents[i]);
      for (int64_t k = 0; k < seqs[i].n; k++) {
        size_t tl = strlen(seqs[i].v[k]);
        if (tl == 0 || at + tl > len || memcmp(sents[i] + at, seqs[i].v[k], tl))
          fail("character tokens do not spell the sentence", sents[i]);
        at += tl;
      }
      if (at != len) fail("character tokens do not cover the sentence", sents[i]);
    }
  }
  rt_vocab *v = ok ? rt_vocab_build(seqs, n, min_freq, &d) : NULL;
  if (v) {
    check_vocab(v);
    int32_t *ids = malloc((size_t)(n ? n : 1) * (size_t)steps * sizeof *ids);
    int32_t *valid = malloc((size_t)(n ? n : 1) * sizeof *valid);
    if (ids && valid && rt_vocab_build_array(v, seqs, n, steps, ids, valid, &d))
      for (int64_t i = 0; i < n * steps; i++)
        if (ids[i] < 0 || ids[i] >= rt_vocab_size(v)) fail("id out of the vocabulary", NULL);
    free(ids);
    free(valid);
    rt_vocab_free(v);
  }
  for (int64_t i = 0; i < n; i++)
    rt_toklist_free(&seqs[i]);
  free(seqs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  unsigned opt = data[0];
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  int64_t max_examples = opt & 3, min_freq = (opt >> 2) & 3, steps = 1 + ((opt >> 4) & 7);
  bool chars = opt >> 7;

  rt_pairs p;
  ir_diag d = {0};
  if (rt_pairs_parse(text, len, "fuzz.txt", max_examples, &p, &d)) {
    if (max_examples > 0 && p.n > max_examples) fail("more pairs than max_examples", NULL);
    tokenize_side(p.src, p.n, chars, min_freq, steps);
    tokenize_side(p.tgt, p.n, !chars, min_freq, steps);
    rt_pairs_free(&p);
  } else if (!d.msg[0]) {
    fail("pairs refused without a message", NULL);
  }

  char *pre = rt_text_preprocess(text, len);
  free(pre);

  uint32_t *cps = NULL;
  int64_t n = 0;
  ir_diag d2 = {0};
  if (gpt_utf8_decode(text, len, "fuzz.txt", &cps, &n, &d2) && n > (int64_t)len)
    fail("more code points than bytes", NULL);
  free(cps);
  return 0;
}
