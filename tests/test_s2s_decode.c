/* seq2seq-attn decoding (tools/kiln/s2s_decode.c) on tiny untrained
 * models: greedy against a hand loop over separately compiled batch-1
 * graphs and against teacher forcing through the training graph, beam 1
 * against greedy, wide beams against exhaustive search, padded rows, and
 * refused inputs. Weights come from a training program (copied by name),
 * with the <eos> logit biased to get sequences of every length. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "frontend/graph_ir.h"
#include "tools/kiln/s2s.h"

TestSuite(s2s_decode, .timeout = 300);

#define TS 6
#define MAXL 5

static s2s_config tiny(int64_t batch, int64_t tgt_vocab) {
  return (s2s_config){.src_vocab = 9,
                      .tgt_vocab = tgt_vocab,
                      .embed = 4,
                      .hidden = 8,
                      .layers = 2,
                      .dropout = 0.1, /* decoding must switch it off */
                      .batch = batch,
                      .src_steps = TS,
                      .tgt_steps = MAXL,
                      .dtype = KL_F32};
}

static kl_program *compile_graph(kl_graph *g, kl_backend be) {
  cr_assert_not_null(g);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));
  char *err = NULL;
  kl_compile_opts co = {.backend = be, .seed = 7, .threads = 1};
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), &co, &err);
  cr_assert_not_null(p, "%s", err ? err : "");
  kl_graph_destroy(g);
  return p;
}

/* The weights: a training program (batch 1) initialised from seed, with
 * eos_shift added to the <eos> entry of the output bias. */
static kl_program *weights_gain(uint64_t seed, int64_t tgt_vocab, double eos_shift, float gain) {
  s2s_config c = tiny(1, tgt_vocab);
  s2s_train t = s2s_build_train(&c);
  cr_assert_not_null(t.g);
  char *err = NULL;
  kl_compile_opts co = {.backend = KL_BACKEND_REF, .seed = seed};
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(t.g), &co, &err);
  cr_assert_not_null(p, "%s", err ? err : "");
  kl_graph_destroy(t.g);
  /* Untrained logits hardly depend on the state; a larger output layer
   * makes the argmax, and so the length, vary between steps and rows. */
  kl_tensor *b = NULL;
  const char *e = kl_program_get_param(p, "decoder.dense.weight", &b);
  cr_assert_null(e, "%s", e);
  for (int64_t i = 0; i < kl_tensor_numel(b); i++)
    ((float *)kl_tensor_data(b))[i] *= gain;
  cr_assert_null(kl_program_set_param(p, "decoder.dense.weight", b));
  kl_tensor_destroy(b);
  e = kl_program_get_param(p, "decoder.dense.bias", &b);
  cr_assert_null(e, "%s", e);
  ((float *)kl_tensor_data(b))[RT_VOCAB_EOS] += (float)eos_shift;
  cr_assert_null(kl_program_set_param(p, "decoder.dense.bias", b));
  kl_tensor_destroy(b);
  return p;
}

static kl_program *weights(uint64_t seed, int64_t tgt_vocab, double eos_shift) {
  return weights_gain(seed, tgt_vocab, eos_shift, 8);
}

static s2s_decoder *decoder(int64_t batch, int64_t tgt_vocab, kl_backend be, const kl_program *w) {
  s2s_config sc = tiny(batch, tgt_vocab);
  tm_config c = tm_from_s2s(&sc);
  kl_compile_opts co = {.backend = be, .seed = 99, .threads = 1, .training = true};
  char *err = NULL;
  s2s_decoder *d = s2s_decoder_create(&c, &co, &err);
  cr_assert_not_null(d, "%s", err ? err : "");
  s2s_decoder_copy_weights(d, w);
  return d;
}

/* Sources of every valid length 1..TS, the layout rt_vocab_build_array
 * makes: ids in [4, 9), then <eos>, then <pad>. */
#define NSRC 4
static const int32_t srcs[NSRC][TS] = {
    {5, 6, 7, 8, 4, 3}, {8, 3, 1, 1, 1, 1}, {3, 1, 1, 1, 1, 1}, {4, 4, 5, 6, 7, 8}};
static const int32_t lens[NSRC] = {6, 2, 1, 6};

/* ---- the hand loop: batch-1 graphs run with kl_run, one sentence ------- */

typedef struct hand {
  kl_program *enc, *step;
  kl_tensor *encv, *keys, *len;
} hand;

static hand hand_make(const kl_program *w, int64_t tgt_vocab) {
  s2s_config c = tiny(1, tgt_vocab);
  hand h = {0};
  h.enc = compile_graph(s2s_build_encoder(&c), KL_BACKEND_REF);
  h.step = compile_graph(s2s_build_step(&c), KL_BACKEND_REF);
  cr_assert_gt(kl_program_copy_params(h.enc, w), 0);
  cr_assert_gt(kl_program_copy_params(h.step, w), 0);
  return h;
}

static void hand_free(hand *h) {
  kl_program_destroy(h->enc);
  kl_program_destroy(h->step);
  kl_tensor_destroy(h->encv);
  kl_tensor_destroy(h->keys);
  kl_tensor_destroy(h->len);
}

/* Runs the encoder on one source; returns the initial state (owned). */
static kl_tensor *hand_encode(hand *h, const int32_t *src, int32_t len) {
  kl_tensor_destroy(h->encv);
  kl_tensor_destroy(h->keys);
  kl_tensor_destroy(h->len);
  kl_tensor *in[2] = {kl_tensor_from(KL_TENSOR_I32, 2, (int64_t[]){1, TS}, src),
                      kl_tensor_from(KL_TENSOR_I32, 1, (int64_t[]){1}, &len)};
  kl_tensor *out[3] = {0};
  const char *e = kl_run(h->enc, in, 2, out, 3);
  cr_assert_null(e, "%s", e);
  kl_tensor_destroy(in[0]);
  h->len = in[1];
  h->encv = out[0];
  h->keys = out[1];
  return out[2];
}

/* One step from token and state: logp [V] and attn [TS] copied out, the
 * new state returned (owned); state is consumed. */
static kl_tensor *hand_step(hand *h, int32_t token, kl_tensor *state, double *logp, int64_t v,
                            float *attn) {
  kl_tensor *tok = kl_tensor_from(KL_TENSOR_I32, 1, (int64_t[]){1}, &token);
  kl_tensor *in[5] = {tok, state, h->encv, h->keys, h->len}, *out[3] = {0};
  const char *e = kl_run(h->step, in, 5, out, 3);
  cr_assert_null(e, "%s", e);
  for (int64_t i = 0; i < v; i++)
    logp[i] = ((float *)kl_tensor_data(out[0]))[i];
  if (attn) memcpy(attn, kl_tensor_data(out[2]), TS * sizeof *attn);
  kl_tensor_destroy(tok);
  kl_tensor_destroy(state);
  kl_tensor_destroy(out[0]);
  kl_tensor_destroy(out[2]);
  return out[1];
}

/* Greedy by hand: argmax (first maximum) until <eos> or max_len. */
static int64_t hand_greedy(hand *h, const int32_t *src, int32_t len, int64_t v, int32_t *out,
                           float *attn) {
  kl_tensor *st = hand_encode(h, src, len);
  double lp[16];
  int32_t tok = RT_VOCAB_BOS;
  int64_t n = 0;
  for (int64_t t = 0; t < MAXL; t++) {
    st = hand_step(h, tok, st, lp, v, attn + t * TS);
    int32_t best = 0;
    for (int32_t k = 1; k < v; k++)
      if (lp[k] > lp[best]) best = k;
    if (best == RT_VOCAB_EOS) break;
    out[n++] = tok = best;
  }
  kl_tensor_destroy(st);
  return n;
}

/* log P of ids[0..n) followed by <eos> when n < max_len, and its length
 * L (counting <eos>). */
static double hand_score(hand *h, const int32_t *src, int32_t len, int64_t v, const int32_t *ids,
                         int64_t n, int64_t max_len, double *norm) {
  kl_tensor *st = hand_encode(h, src, len);
  double lp[16], total = 0;
  int32_t tok = RT_VOCAB_BOS;
  int64_t steps = n < max_len ? n + 1 : n;
  for (int64_t t = 0; t < steps; t++) {
    st = hand_step(h, tok, st, lp, v, NULL);
    tok = t < n ? ids[t] : RT_VOCAB_EOS;
    total += lp[tok];
  }
  kl_tensor_destroy(st);
  *norm = total / pow((double)steps, 0.75);
  return total;
}

/* ---- greedy --------------------------------------------------------------- */

/* Decodes every source in one batch and checks each row against the hand
 * loop: the same ids, the same attention (the <eos> step's included) to
 * float rounding. Returns a bit set of the output lengths seen. */
static unsigned greedy_vs_hand(uint64_t seed, double shift, kl_backend be) {
  kl_program *w = weights(seed, 7, shift);
  s2s_decoder *dec = decoder(NSRC, 7, be, w);
  hand h = hand_make(w, 7);
  int32_t out[NSRC * MAXL];
  int64_t out_len[NSRC];
  float attn[NSRC * MAXL * TS];
  const char *e = s2s_greedy(dec, &srcs[0][0], lens, MAXL, out, out_len, attn);
  cr_assert_null(e, "%s", e);
  unsigned seen = 0;
  for (int r = 0; r < NSRC; r++) {
    int32_t ho[MAXL];
    float ha[MAXL * TS] = {0};
    int64_t hn = hand_greedy(&h, srcs[r], lens[r], 7, ho, ha);
    cr_assert_eq(out_len[r], hn, "seed %llu shift %g row %d: %lld tokens, hand loop %lld",
                 (unsigned long long)seed, shift, r, (long long)out_len[r], (long long)hn);
    for (int64_t t = 0; t < hn; t++)
      cr_expect_eq(out[r * MAXL + t], ho[t], "row %d step %lld", r, (long long)t);
    int64_t rows = hn < MAXL ? hn + 1 : hn;
    for (int64_t i = 0; i < MAXL * TS; i++) {
      float want = i < rows * TS ? ha[i] : 0.0f;
      cr_expect(fabsf(attn[r * MAXL * TS + i] - want) <= 1e-5f, "row %d attn[%lld] %g vs %g", r,
                (long long)i, attn[r * MAXL * TS + i], want);
    }
    seen |= 1u << hn;
  }
  hand_free(&h);
  s2s_decoder_destroy(dec);
  kl_program_destroy(w);
  return seen;
}

Test(s2s_decode, greedy_equals_hand_loop) {
  /* Shifting the <eos> logit gives sequences that stop at once, never,
   * and in between; together they must cover several lengths. */
  unsigned seen = 0;
  const double shifts[] = {-50, -1, 0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 50};
  for (int s = 0; s < 11; s++) {
    unsigned sn = greedy_vs_hand(1 + (uint64_t)s, shifts[s], KL_BACKEND_REF);
    seen |= sn;
  }
  cr_expect(seen & 1u, "some row stops at once");
  cr_expect(seen & (1u << MAXL), "some row runs to max_len");
  cr_expect(__builtin_popcount(seen) >= 3, "lengths seen: %#x", seen);
}

Test(s2s_decode, greedy_jit_equals_hand_loop) { (void)greedy_vs_hand(3, 1.5, KL_BACKEND_JIT); }

/* Teacher forcing on greedy's own output reproduces its attention: the
 * training graph is an independent formulation of the same decoder. */
Test(s2s_decode, greedy_matches_teacher_forcing) {
  kl_program *w = weights(4, 7, 1.0);
  s2s_decoder *dec = decoder(NSRC, 7, KL_BACKEND_REF, w);
  int32_t out[NSRC * MAXL];
  int64_t out_len[NSRC];
  float attn[NSRC * MAXL * TS];
  const char *e = s2s_greedy(dec, &srcs[0][0], lens, MAXL, out, out_len, attn);
  cr_assert_null(e, "%s", e);

  s2s_config c = tiny(NSRC, 7);
  c.tgt_steps = MAXL;
  s2s_train t = s2s_build_train(&c);
  kl_program *tp = compile_graph(t.g, KL_BACKEND_REF);
  kl_program_copy_params(tp, w);
  int32_t dec_in[NSRC * MAXL], tgt[NSRC * MAXL] = {0}, tlen[NSRC] = {0};
  for (int r = 0; r < NSRC; r++) {
    dec_in[r * MAXL] = RT_VOCAB_BOS;
    for (int64_t i = 1; i < MAXL; i++)
      dec_in[r * MAXL + i] = i - 1 < out_len[r] ? out[r * MAXL + i - 1] : RT_VOCAB_PAD;
  }
  kl_tensor *in[5] = {kl_tensor_from(KL_TENSOR_I32, 2, (int64_t[]){NSRC, TS}, srcs),
                      kl_tensor_from(KL_TENSOR_I32, 1, (int64_t[]){NSRC}, lens),
                      kl_tensor_from(KL_TENSOR_I32, 2, (int64_t[]){NSRC, MAXL}, dec_in),
                      kl_tensor_from(KL_TENSOR_I32, 2, (int64_t[]){NSRC, MAXL}, tgt),
                      kl_tensor_from(KL_TENSOR_I32, 1, (int64_t[]){NSRC}, tlen)};
  kl_tensor *o[2] = {0};
  e = kl_run(tp, in, 5, o, 2);
  cr_assert_null(e, "%s", e);
  const float *ta = kl_tensor_data(o[1]);
  for (int r = 0; r < NSRC; r++) {
    int64_t rows = out_len[r] < MAXL ? out_len[r] + 1 : out_len[r];
    for (int64_t i = 0; i < rows * TS; i++)
      cr_expect(fabsf(attn[r * MAXL * TS + i] - ta[r * MAXL * TS + i]) <= 1e-5f,
                "row %d attn[%lld]: greedy %g, teacher forcing %g", r, (long long)i,
                attn[r * MAXL * TS + i], ta[r * MAXL * TS + i]);
  }
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
  kl_tensor_destroy(o[0]);
  kl_tensor_destroy(o[1]);
  kl_program_destroy(tp);
  s2s_decoder_destroy(dec);
  kl_program_destroy(w);
}

/* Padded and short rows: attention is zero past each row's valid length
 * and sums to one, and a row decodes as it does alone in a batch of 1. */
Test(s2s_decode, padded_rows_decode_as_alone) {
  kl_program *w = weights(5, 7, 0.5);
  s2s_decoder *many = decoder(NSRC, 7, KL_BACKEND_REF, w), *one = decoder(1, 7, KL_BACKEND_REF, w);
  int32_t out[NSRC * MAXL];
  int64_t out_len[NSRC];
  float attn[NSRC * MAXL * TS];
  cr_assert_null(s2s_greedy(many, &srcs[0][0], lens, MAXL, out, out_len, attn));
  for (int r = 0; r < NSRC; r++) {
    int32_t o1[MAXL];
    int64_t n1;
    float a1[MAXL * TS];
    cr_assert_null(s2s_greedy(one, srcs[r], &lens[r], MAXL, o1, &n1, a1));
    cr_assert_eq(n1, out_len[r], "row %d", r);
    cr_expect_arr_eq(o1, out + r * MAXL, (size_t)n1 * sizeof *o1, "row %d", r);
    int64_t rows = n1 < MAXL ? n1 + 1 : n1;
    for (int64_t t = 0; t < rows; t++) {
      double sum = 0;
      for (int j = 0; j < TS; j++) {
        float a = attn[(r * MAXL + t) * TS + j];
        sum += a;
        if (j >= lens[r])
          cr_expect_eq(a, 0.0f, "row %d step %lld masked key %d: %g", r, (long long)t, j, a);
        cr_expect(fabsf(a - a1[t * TS + j]) <= 1e-5f);
      }
      cr_expect(fabs(sum - 1) < 1e-5, "row %d step %lld sums to %g", r, (long long)t, sum);
    }
  }
  s2s_decoder_destroy(many);
  s2s_decoder_destroy(one);
  kl_program_destroy(w);
}

/* ---- beam search ---------------------------------------------------------- */

Test(s2s_decode, beam1_equals_greedy) {
  const double shifts[] = {-50, 0, 1.5, 3, 50};
  for (int s = 0; s < 5; s++) {
    kl_program *w = weights(10 + (uint64_t)s, 7, shifts[s]);
    s2s_decoder *dec = decoder(1, 7, KL_BACKEND_REF, w);
    for (int r = 0; r < NSRC; r++) {
      int32_t go[MAXL], bo[MAXL];
      int64_t gn, bn;
      float ga[MAXL * TS], ba[MAXL * TS];
      cr_assert_null(s2s_greedy(dec, srcs[r], &lens[r], MAXL, go, &gn, ga));
      cr_assert_null(s2s_beam(dec, srcs[r], lens[r], MAXL, bo, &bn, ba));
      cr_assert_eq(bn, gn, "shift %g row %d", shifts[s], r);
      cr_expect_arr_eq(bo, go, (size_t)gn * sizeof *go);
      cr_expect_arr_eq(ba, ga, sizeof ga, "shift %g row %d: attention differs", shifts[s], r);
    }
    s2s_decoder_destroy(dec);
    kl_program_destroy(w);
  }
}

/* Every sequence over a 5-token vocabulary up to 3 steps, scored by the
 * hand loop: the best by log P / L^0.75. */
static double exhaustive(hand *h, const int32_t *src, int32_t len, int64_t max_len, int32_t *best,
                         int64_t *best_n) {
  double top = -INFINITY;
  int32_t ids[3];
  int64_t total = 1;
  for (int64_t i = 0; i < max_len; i++)
    total *= 5;
  for (int64_t code = 0; code < total; code++) {
    /* code's digits are the tokens; <eos> at digit n ends a sequence of n */
    int64_t c = code, n = 0;
    bool dup = false;
    for (int64_t i = 0; i < max_len; i++, c /= 5) {
      int32_t tk = (int32_t)(c % 5);
      if (n < i)
        dup |= tk != 0; /* after <eos>: count each sequence once */
      else if (tk == RT_VOCAB_EOS)
        continue;
      else
        ids[n++] = tk;
    }
    if (dup) continue;
    double norm;
    hand_score(h, src, len, 5, ids, n, max_len, &norm);
    if (norm > top) {
      top = norm;
      memcpy(best, ids, (size_t)n * sizeof *ids);
      *best_n = n;
    }
  }
  return top;
}

/* With room for every hypothesis (5, then 20, then 80 candidates per
 * step: a beam of 80 keeps them all) beam search is exhaustive. A small output gain keeps the
 * distributions flat, so the best sequence depends on every step's state
 * (a beam that mixes up its rows' states fails here). */
Test(s2s_decode, wide_beam_is_exhaustive) {
  const int64_t max_len = 3;
  const double shifts[] = {-50, -1, 0.5};
  for (int s = 0; s < 3; s++) {
    kl_program *w = weights_gain(20 + (uint64_t)s, 5, shifts[s], 3);
    s2s_decoder *dec = decoder(80, 5, KL_BACKEND_REF, w);
    hand h = hand_make(w, 5);
    for (int r = 0; r < 2; r++) {
      int32_t bo[3], eo[3];
      int64_t bn, en = 0;
      float ba[3 * TS];
      cr_assert_null(s2s_beam(dec, srcs[r], lens[r], max_len, bo, &bn, ba));
      double want = exhaustive(&h, srcs[r], lens[r], max_len, eo, &en), got;
      hand_score(&h, srcs[r], lens[r], 5, bo, bn, max_len, &got);
      cr_expect(fabs(got - want) < 1e-5, "seed %d row %d: beam's %g, best %g", s, r, got, want);
    }
    hand_free(&h);
    s2s_decoder_destroy(dec);
    kl_program_destroy(w);
  }
}

/* Not a theorem of beam search, but on these weights a beam of 3 finds a
 * sequence at least as good as greedy's under its own score. */
Test(s2s_decode, beam3_scores_at_least_greedy) {
  for (int s = 0; s < 3; s++) {
    kl_program *w = weights(30 + (uint64_t)s, 7, 1.0);
    s2s_decoder *g = decoder(1, 7, KL_BACKEND_REF, w), *b = decoder(3, 7, KL_BACKEND_REF, w);
    hand h = hand_make(w, 7);
    for (int r = 0; r < NSRC; r++) {
      int32_t go[MAXL], bo[MAXL];
      int64_t gn, bn;
      cr_assert_null(s2s_greedy(g, srcs[r], &lens[r], MAXL, go, &gn, NULL));
      cr_assert_null(s2s_beam(b, srcs[r], lens[r], MAXL, bo, &bn, NULL));
      double gs, bs;
      hand_score(&h, srcs[r], lens[r], 7, go, gn, MAXL, &gs);
      hand_score(&h, srcs[r], lens[r], 7, bo, bn, MAXL, &bs);
      cr_expect_geq(bs, gs - 1e-6, "seed %d row %d: beam %g < greedy %g", s, r, bs, gs);
    }
    hand_free(&h);
    s2s_decoder_destroy(g);
    s2s_decoder_destroy(b);
    kl_program_destroy(w);
  }
}

/* ---- refused inputs ------------------------------------------------------- */

Test(s2s_decode, bad_inputs_are_refused) {
  kl_program *w = weights(1, 7, 0);
  s2s_decoder *dec = decoder(2, 7, KL_BACKEND_REF, w);
  int32_t src[2 * TS] = {4, 5, 3, 1, 1, 1, 4, 3, 1, 1, 1, 1}, len[2] = {3, 2}, out[2 * MAXL];
  int64_t n[2];
  cr_assert_null(s2s_greedy(dec, src, len, MAXL, out, n, NULL));
  src[7] = 9;
  const char *e = s2s_greedy(dec, src, len, MAXL, out, n, NULL);
  cr_assert(e && strstr(e, "source id 9") && strstr(e, "[0, 9)"), "%s", e ? e : "(null)");
  src[7] = -1;
  cr_expect_not_null(s2s_beam(dec, src + TS, 2, MAXL, out, n, NULL));
  src[7] = 3;
  len[1] = TS + 1;
  e = s2s_greedy(dec, src, len, MAXL, out, n, NULL);
  cr_assert(e && strstr(e, "row 1") && strstr(e, "length 7"), "%s", e ? e : "(null)");
  e = s2s_beam(dec, src, -1, MAXL, out, n, NULL);
  cr_assert(e && strstr(e, "length -1"), "%s", e ? e : "(null)");
  e = s2s_beam(dec, src, 3, -2, out, n, NULL);
  cr_assert(e && strstr(e, "max_len -2"), "%s", e ? e : "(null)");
  /* max_len 0 decodes nothing. */
  len[1] = 2;
  n[0] = n[1] = 9;
  cr_assert_null(s2s_greedy(dec, src, len, 0, out, n, NULL));
  cr_expect(n[0] == 0 && n[1] == 0);
  s2s_decoder_destroy(dec);
  kl_program_destroy(w);

  s2s_config c = tiny(1, 7);
  c.layers = 0;
  char *err = NULL;
  tm_config tc = tm_from_s2s(&c);
  cr_assert_null(s2s_decoder_create(&tc, NULL, &err));
  cr_assert(err && strstr(err, "layers"), "%s", err ? err : "(null)");
  free(err);
}
