/* Sampling text from the gpt (nanoGPT's generate): the next id is drawn
 * from softmax(logits / temperature) restricted to the top_k largest
 * logits, temperature 0 meaning argmax; the context slides when the text
 * outgrows the model's block. The draw itself is a pure function over a
 * logits array so it can be tested without a model. */
#ifndef KILN_CLI_GPT_SAMPLE_H
#define KILN_CLI_GPT_SAMPLE_H

#include <stdint.h>

#include "backend/kiln_run.h"

/* A counter-based stream of uniforms: draw n is Philox keyed by seed with
 * counter {n lo, n hi, 0x5a4d, 0}, so a run's samples depend only on the
 * seed and on how many draws came before, not on threads. */
typedef struct gpt_rng {
  uint64_t seed, n;
} gpt_rng;

/* The next uniform in [0, 1) (53 random bits). */
double gpt_rng_uniform(gpt_rng *r);

/* The id drawn from logits[0..vocab) with the uniform u in [0, 1):
 * temperature <= 0 or top_k == 1 gives the argmax (the lowest id among
 * equal maxima); otherwise p_i is proportional to exp(logit_i / temperature)
 * over the ids whose logit is at least the top_k-th largest (nanoGPT's
 * rule: ties at that value stay; top_k <= 0 or >= vocab: all ids), and the
 * result is the first id whose cumulative probability exceeds u. scratch
 * holds vocab floats (used only for top_k). */
int32_t gpt_sample_pick(const float *logits, int64_t vocab, double temperature, int64_t top_k,
                        double u, float *scratch);

/* Which program and how to draw. prog maps tokens i32[batch, block] to
 * logits f32[batch, block, vocab] (gpt_build_logits compiled for
 * inference). */
typedef struct gpt_sampler {
  kl_program *prog;
  int64_t batch, block, vocab;
  double temperature;
  int64_t top_k;
  int32_t stop; /* a row ends after emitting this id; < 0: never */
} gpt_sampler;

/* Extends rows <= batch texts at once: row r holds len[r] >= 1 ids in
 * ids[r] (room for cap), and receives up to n_new more, one program run
 * per new id for all rows; a row stops early after `stop` or when full.
 * The model sees each row's last `block` ids. Draws are taken row by row
 * within each step, so the same rng, rows and prompts give the same text.
 * NULL or a message (the program's, borrowed; or a static one). */
const char *gpt_generate(const gpt_sampler *s, int64_t rows, int32_t *const *ids, int64_t *len,
                         int64_t cap, int64_t n_new, gpt_rng *rng);

#endif
