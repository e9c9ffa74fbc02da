/* BLEU for evaluating sequence models: the per-sentence score exactly as
 * d2l defines it ("Dive into Deep Learning", seq2seq chapter) and corpus
 * BLEU-4 as Papineni et al. define it. Both work on int32 token ids; the
 * *_str conveniences split text on whitespace first. */
#ifndef KILN_RT_BLEU_H
#define KILN_RT_BLEU_H

#include <stddef.h>
#include <stdint.h>

/* d2l's bleu(pred, label, k):
 *   exp(min(0, 1 - len_label / len_pred)) * prod_{n=1..k} p_n^(1/2^n)
 * where p_n = clipped n-gram matches / (len_pred - n + 1) (each label
 * n-gram can be matched at most as often as it occurs in the label).
 * Where d2l divides by zero or by a negative count (len_pred < n for some
 * n <= k) p_n is defined as 0, so the score is 0; an empty prediction
 * scores 0. Returns NaN for invalid arguments (k < 1, NULL array with a
 * nonzero length) or when out of memory. */
double rt_bleu(const int32_t *pred, size_t len_pred, const int32_t *label, size_t len_label, int k);
/* The same over space-separated tokens (runs of spaces, tabs and newlines
 * separate; leading/trailing blanks are ignored, unlike Python's
 * split(' ')). */
double rt_bleu_str(const char *pred, const char *label, int k);

/* Corpus BLEU-4 over n sentence pairs (one reference each): p_n = sum of
 * clipped n-gram matches / sum of candidate n-grams, geometric mean with
 * weights 1/4, times the brevity penalty exp(1 - r/c) when the total
 * candidate length c is below the total reference length r. 0 when any
 * p_n is 0 (no smoothing) or c is 0; NaN for invalid arguments or when out
 * of memory. */
double rt_bleu_corpus(const int32_t *const *preds, const size_t *pred_lens,
                      const int32_t *const *refs, const size_t *ref_lens, size_t n);
double rt_bleu_corpus_str(const char *const *preds, const char *const *refs, size_t n);

#endif
