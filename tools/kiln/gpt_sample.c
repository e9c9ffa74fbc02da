/* gpt_sample.h: the seeded uniform stream, the pure draw over a logits
 * array, and batched generation over a compiled logits program (no
 * key/value cache: each new id reruns the whole window, which is cheap at
 * character-model sizes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/philox.h"
#include "tools/kiln/gpt_sample.h"

double gpt_rng_uniform(gpt_rng *r) {
  uint32_t ctr[4] = {(uint32_t)r->n, (uint32_t)(r->n >> 32), 0x5a4d, 0};
  uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)}, out[4];
  rt_philox4x32(ctr, key, out);
  r->n++;
  uint64_t bits = ((uint64_t)(out[0] >> 5) << 26) | (out[1] >> 6);
  return (double)bits * (1.0 / 9007199254740992.0);
}

static int desc_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x < y) - (x > y);
}

int32_t gpt_sample_pick(const float *logits, int64_t vocab, double temperature, int64_t top_k,
                        double u, float *scratch) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; i++)
    if (logits[i] > logits[best]) best = i;
  if (!(temperature > 0) || top_k == 1) return (int32_t)best;
  float floor_ = -INFINITY;
  if (top_k > 0 && top_k < vocab) {
    memcpy(scratch, logits, (size_t)vocab * sizeof *scratch);
    qsort(scratch, (size_t)vocab, sizeof *scratch, desc_float);
    floor_ = scratch[top_k - 1];
  }
  /* Weights relative to the maximum, so exp never overflows. */
  double m = logits[best], total = 0;
  for (int64_t i = 0; i < vocab; i++)
    if (logits[i] >= floor_) total += exp(((double)logits[i] - m) / temperature);
  double target = u * total, cum = 0;
  int64_t last = best;
  for (int64_t i = 0; i < vocab; i++) {
    if (!(logits[i] >= floor_)) continue;
    cum += exp(((double)logits[i] - m) / temperature);
    last = i;
    if (cum > target) return (int32_t)i;
  }
  return (int32_t)last; /* u within rounding of 1 */
}

const char *gpt_generate(const gpt_sampler *s, int64_t rows, int32_t *const *ids, int64_t *len,
                         int64_t cap, int64_t n_new, gpt_rng *rng) {
  if (rows < 1 || rows > s->batch) return "gpt_generate: rows must be 1..batch";
  for (int64_t r = 0; r < rows; r++)
    if (len[r] < 1 || len[r] > cap) return "gpt_generate: every prompt needs 1..cap ids";
  int64_t dt[2] = {s->batch, s->block}, dl[3] = {s->batch, s->block, s->vocab};
  kl_tensor *tok = kl_tensor_create(KL_TENSOR_I32, 2, dt);
  kl_tensor *lg = kl_tensor_create(KL_TENSOR_F32, 3, dl);
  float *scratch = malloc((size_t)s->vocab * sizeof *scratch);
  bool *done = calloc((size_t)rows, sizeof *done);
  const char *err = NULL;
  if (!tok || !lg || !scratch || !done) err = "out of memory";
  int32_t *t = err ? NULL : kl_tensor_data(tok);
  const float *l = err ? NULL : kl_tensor_data(lg);
  for (int64_t k = 0; !err && k < n_new; k++) {
    bool any = false;
    for (int64_t r = 0; r < rows; r++) {
      done[r] = done[r] || len[r] >= cap;
      if (done[r]) continue;
      any = true;
      int64_t w = len[r] < s->block ? len[r] : s->block;
      memcpy(t + r * s->block, ids[r] + len[r] - w, (size_t)w * sizeof *t);
    }
    if (!any) break;
    if ((err = kl_run_into(s->prog, &tok, 1, &lg, 1))) break;
    for (int64_t r = 0; r < rows; r++) {
      if (done[r]) continue;
      int64_t w = len[r] < s->block ? len[r] : s->block;
      double u = s->temperature > 0 && s->top_k != 1 ? gpt_rng_uniform(rng) : 0;
      int32_t id = gpt_sample_pick(l + (r * s->block + w - 1) * s->vocab, s->vocab, s->temperature,
                                   s->top_k, u, scratch);
      ids[r][len[r]++] = id;
      if (id == s->stop) done[r] = true;
    }
  }
  kl_tensor_destroy(tok);
  kl_tensor_destroy(lg);
  free(scratch);
  free(done);
  return err;
}
