/* BLEU: d2l's per-sentence score against the outputs d2l publishes for its
 * English-French seq2seq (k = 2), hand-computed partial matches, clipping,
 * the brevity penalty, the documented edge cases, and corpus BLEU-4 on a
 * corpus computed by hand. */
#include <criterion/criterion.h>
#include <math.h>

#include "runtime/bleu.h"

#define TOL 1e-12

/* ---- d2l's published translations (k = 2) ------------------------------ */

Test(bleu, d2l_exact_translations_score_one) {
  cr_expect_float_eq(rt_bleu_str("va !", "va !", 2), 1.0, TOL);
  cr_expect_float_eq(rt_bleu_str("j'ai perdu .", "j'ai perdu .", 2), 1.0, TOL);
  cr_expect_float_eq(rt_bleu_str("il est calme .", "il est calme .", 2), 1.0, TOL);
  cr_expect_float_eq(rt_bleu_str("je suis chez moi .", "je suis chez moi .", 2), 1.0, TOL);
}

/* d2l prints "he's calm . => il est riche ., bleu 0.658". Same length, so
 * the brevity factor is 1. Unigrams il est riche . vs il est calme .:
 * 3 of 4 match. Bigrams "il est", "est riche", "riche .": only "il est"
 * matches, 1 of 3. Score = (3/4)^(1/2) * (1/3)^(1/4) = 0.65804... */
Test(bleu, d2l_il_est_riche) {
  double want = sqrt(0.75) * pow(1.0 / 3.0, 0.25);
  cr_expect_float_eq(rt_bleu_str("il est riche .", "il est calme .", 2), want, TOL);
  cr_expect_float_eq(rt_bleu_str("il est <unk> .", "il est calme .", 2), want, TOL);
  cr_expect(fabs(want - 0.658) < 5e-4, "%f", want);
}

/* d2l prints "i'm home . => je suis en retard ?, bleu 0.447". Lengths 5
 * and 5; unigrams je, suis match (2/5); bigram "je suis" matches (1/4).
 * Score = (2/5)^(1/2) * (1/4)^(1/4) = 0.44721... */
Test(bleu, d2l_je_suis_en_retard) {
  double want = sqrt(0.4) * pow(0.25, 0.25);
  cr_expect_float_eq(rt_bleu_str("je suis en retard ?", "je suis chez moi .", 2), want, TOL);
  cr_expect(fabs(want - 0.447) < 5e-4, "%f", want);
}

/* d2l's other printed value, "je suis <unk> ." vs "je suis chez moi ."
 * (0.512): len 4 vs 5 gives exp(1 - 5/4); p1 = 3/4, p2 = 1/3. */
Test(bleu, d2l_short_prediction_brevity) {
  double want = exp(1.0 - 5.0 / 4.0) * sqrt(0.75) * pow(1.0 / 3.0, 0.25);
  cr_expect_float_eq(rt_bleu_str("je suis <unk> .", "je suis chez moi .", 2), want, TOL);
  cr_expect(fabs(want - 0.512) < 5e-4, "%f", want);
}

/* ---- the definition's pieces ----------------------------------------------- */

/* "the" occurs twice in the label, so only 2 of the 4 predicted "the"s
 * count: p1 = 2/4; the label is shorter, so no penalty: sqrt(1/2). */
Test(bleu, repeated_ngrams_are_clipped) {
  cr_expect_float_eq(rt_bleu_str("the the the the", "the cat the", 1), sqrt(0.5), TOL);
  /* label "a a b" is shorter (factor 1); "a": 4 predicted, 2 in the label
   * (p1 = 2/4); "a a": 3 predicted, 1 in the label (p2 = 1/3) */
  double want = pow(2.0 / 4.0, 0.5) * pow(1.0 / 3.0, 0.25);
  cr_expect_float_eq(rt_bleu_str("a a a a", "a a b", 2), want, TOL);
}

/* All n-grams match; only the length ratio 4/2 costs: exp(1 - 2). */
Test(bleu, brevity_penalty) {
  cr_expect_float_eq(rt_bleu_str("a b", "a b c d", 2), exp(-1.0), TOL);
  /* a longer prediction is not penalised by the length term */
  cr_expect_float_eq(rt_bleu_str("a b c d", "a b", 1), sqrt(0.5), TOL);
}

Test(bleu, k_three_weights) {
  /* pred a b c d, label a b c e: p1 = 3/4, p2 = 2/3, p3 = 1/2 with weights
   * 1/2, 1/4, 1/8 */
  double want = pow(0.75, 0.5) * pow(2.0 / 3.0, 0.25) * pow(0.5, 0.125);
  cr_expect_float_eq(rt_bleu_str("a b c d", "a b c e", 3), want, TOL);
}

Test(bleu, int_ids_match_text) {
  const int32_t pred[] = {7, 8, 9, 3}, label[] = {7, 8, 5, 3};
  cr_expect_float_eq(rt_bleu(pred, 4, label, 4, 2), sqrt(0.75) * pow(1.0 / 3.0, 0.25), TOL);
  cr_expect_float_eq(rt_bleu(pred, 4, pred, 4, 4), 1.0, TOL);
}

/* ---- edge cases ------------------------------------------------------------ */

Test(bleu, prediction_shorter_than_k_scores_zero) {
  cr_expect_eq(rt_bleu_str("va", "va", 2), 0.0);
  cr_expect_eq(rt_bleu_str("a b c", "a b c", 4), 0.0);
  cr_expect_float_eq(rt_bleu_str("a b c", "a b c", 3), 1.0, TOL);
}

Test(bleu, empty_inputs) {
  cr_expect_eq(rt_bleu_str("", "va !", 2), 0.0);
  cr_expect_eq(rt_bleu_str("   ", "va !", 1), 0.0);
  cr_expect_eq(rt_bleu(NULL, 0, NULL, 0, 1), 0.0);
  /* nothing can match an empty label */
  cr_expect_eq(rt_bleu_str("va !", "", 1), 0.0);
}

Test(bleu, no_match_scores_zero) { cr_expect_eq(rt_bleu_str("x y z", "a b c", 2), 0.0); }

Test(bleu, blanks_separate_tokens) {
  cr_expect_float_eq(rt_bleu_str("  il\test   riche .\n", "il est calme .", 2),
                     sqrt(0.75) * pow(1.0 / 3.0, 0.25), TOL);
  /* a token is the whole run of non-blanks: "ab" is not "a" */
  cr_expect_eq(rt_bleu_str("ab", "a b", 1), 0.0);
}

Test(bleu, invalid_arguments_are_nan) {
  const int32_t a[] = {1};
  cr_expect(isnan(rt_bleu(a, 1, a, 1, 0)));
  cr_expect(isnan(rt_bleu(NULL, 1, a, 1, 1)));
  cr_expect(isnan(rt_bleu_str(NULL, "a", 1)));
  cr_expect(isnan(rt_bleu_corpus_str(NULL, NULL, 1)));
}

/* ---- corpus BLEU-4 ----------------------------------------------------------- */

/* Sentence 1: "a b c d e" vs itself: matches/total 5/5, 4/4, 3/3, 2/2.
 * Sentence 2: "a b x d" vs "a b c d e f": unigrams a b d match (3/4),
 * bigrams only "a b" (1/3), trigrams none (0/2), 4-grams none (0/1).
 * Pooled: p1 = 8/9, p2 = 5/7, p3 = 3/5, p4 = 2/3, product 16/63.
 * c = 9 < r = 11: penalty exp(1 - 11/9). BLEU = exp(-2/9) (16/63)^(1/4)
 * = 0.56844... */
Test(bleu, corpus_two_sentences) {
  const char *preds[] = {"a b c d e", "a b x d"};
  const char *refs[] = {"a b c d e", "a b c d e f"};
  double want = exp(-2.0 / 9.0) * pow(16.0 / 63.0, 0.25);
  cr_expect_float_eq(rt_bleu_corpus_str(preds, refs, 2), want, TOL);
  cr_expect(fabs(want - 0.56844) < 1e-4, "%f", want);

  const int32_t p0[] = {1, 2, 3, 4, 5}, p1[] = {1, 2, 9, 4}, r1[] = {1, 2, 3, 4, 5, 6};
  const int32_t *ip[] = {p0, p1}, *ir[] = {p0, r1};
  const size_t lp[] = {5, 4}, lr[] = {5, 6};
  cr_expect_float_eq(rt_bleu_corpus(ip, lp, ir, lr, 2), want, TOL);
}

/* Clipping is per sentence before pooling: "the the the the" vs "the cat
 * the" contributes 2 unigram matches of 4 and no higher-order matches. */
Test(bleu, corpus_clipping_and_no_penalty_when_longer) {
  const char *preds[] = {"the the the the", "w x y z"};
  const char *refs[] = {"the cat the", "w x y z"};
  /* p1 = (2+4)/8, p2 = (0+3)/6, p3 = (0+2)/4, p4 = (0+1)/2; c = 8 > r = 7 */
  double want = pow(6.0 / 8 * 3.0 / 6 * 2.0 / 4 * 1.0 / 2, 0.25);
  cr_expect_float_eq(rt_bleu_corpus_str(preds, refs, 2), want, TOL);
}

Test(bleu, corpus_edge_cases) {
  const char *same[] = {"a b c d", "e f g h i"};
  cr_expect_float_eq(rt_bleu_corpus_str(same, same, 2), 1.0, TOL);
  /* no 4-gram anywhere: p4 = 0/0 -> 0 (no smoothing) */
  const char *shortp[] = {"a b c"};
  cr_expect_eq(rt_bleu_corpus_str(shortp, shortp, 1), 0.0);
  cr_expect_eq(rt_bleu_corpus_str(NULL, NULL, 0), 0.0);
  const char *empty[] = {""}, *ref[] = {"a b c d"};
  cr_expect_eq(rt_bleu_corpus_str(empty, ref, 1), 0.0);
}
