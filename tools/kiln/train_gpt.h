/* The pieces of `kiln train gpt` (train_gpt.c: settings and the character
 * data; train_gpt_loop.c: the training loop, validation loss and
 * checkpoints; train_gpt_eval.c: samples, held-out exact match on the date
 * data and the JSON summary). */
#ifndef KILN_CLI_TRAIN_GPT_H
#define KILN_CLI_TRAIN_GPT_H

#include "driver/kiln_train.h"
#include "models/gpt.h"
#include "runtime/checkpoint.h"
#include "runtime/text.h"
#include "tools/kiln/train.h"

/* The optimizer keys (train_gpt_optim.c); the learning rate is --lr. */
typedef struct gpt_optim {
  bool adamw, cosine; /* optim=adamw, decay=cosine */
  double beta1, beta2, weight_decay, min_lr;
  int64_t warmup, decay_iters; /* decay_iters 0: the run's last step */
} gpt_optim;

typedef struct gpt_settings {
  gpt_config cfg; /* cfg.vocab is set from the data */
  gpt_optim optim;
  int64_t eval_every, eval_iters; /* 0: at epoch ends only; VAL_WINDOWS windows */
  int64_t max_examples, n_test, samples, length, top_k;
  double clip, temperature;
  char *prompt;         /* owned, with \n, \t and \\ unescaped */
  const char *settings; /* borrowed: the run's recorded --set values (train.h) */
  kl_backend backend;
} gpt_settings;

/* The text as character ids: the vocabulary is the sorted set of its code
 * points (nanoGPT's sorted(set(text))); the first 90% train, the rest is
 * the validation text. */
typedef struct gpt_text {
  uint32_t *chars; /* code point of each id, ascending; owned */
  int64_t vocab;
  int32_t *ids; /* owned */
  int64_t n, n_train;
  /* dates: the newlines before training lines; windows start there, so a
   * line's characters sit at the same positions in every window and the
   * held-out prompts "\n<date> => " look like training text. NULL for file
   * text, whose windows start anywhere (nanoGPT's get_batch) */
  int64_t *line_starts, n_line_starts;
  rt_pairs held; /* dates: the held-out pairs (not in the text); else empty */
} gpt_text;

/* --set key as a number in [lo, hi] ([lo, hi) when hi_open) into *dst, or
 * a usage error naming the key. */
int gpt_read_number(const train_opts *o, const char *key, double lo, double hi, bool hi_open,
                    double *dst);
/* Reads the optimizer, bias and evaluation keys into s (usage errors). */
int gpt_read_optim(const train_opts *o, gpt_settings *s);
/* The step's optimizer for a run whose last step is `last`: Adam or AdamW
 * (weight decay on parameters of rank >= 2), clipping, and nanoGPT's
 * get_lr when warmup or decay=cosine is set. A usage error when the
 * schedule's keys disagree. */
int gpt_optim_opts(const train_opts *o, const gpt_settings *s, int64_t last, kl_optim_opts *out);

void gpt_text_free(gpt_text *t);
/* Decodes UTF-8 text[0..len) into its code points (owned); malformed input
 * fails with "NAME:LINE:COL: invalid UTF-8 ..." (COL in bytes, from 1). */
bool gpt_utf8_decode(const char *text, size_t len, const char *name, uint32_t **cps, int64_t *n,
                     ir_diag *d);
/* The ids of UTF-8 s appended to out[*n..cap); false when s holds a
 * character outside the vocabulary (or is malformed, or too long). */
bool gpt_text_encode(const gpt_text *t, const char *s, int32_t *out, int64_t cap, int64_t *n);
/* ids[0..n) as UTF-8 (malloc'd, NUL-terminated); NULL when out of memory. */
char *gpt_text_decode(const gpt_text *t, const int32_t *ids, int64_t n);

#define GPT_MAX_EPOCH_LOG 4096
typedef struct gpt_run {
  gpt_settings set;
  gpt_text text;
  kl_train_step *step;
  kl_program *logits; /* inference graph at the training batch: validation and sampling */
  double epoch_losses[GPT_MAX_EPOCH_LOG];
  int64_t nepochs, steps;
  /* every validation estimate (eval_every and epoch ends): step, loss */
  int64_t eval_steps[GPT_MAX_EPOCH_LOG], nevals;
  double eval_losses[GPT_MAX_EPOCH_LOG];
  double final_loss, val_loss, tokens_per_s, train_s, compile_s, exact_match; /* NaN: none */
} gpt_run;

void gpt_run_free(gpt_run *r);

/* Mean cross-entropy of the logits program (weights copied from the
 * training step) over a fixed set of validation windows; NaN when the
 * validation text is shorter than block + 1. */
const char *gpt_val_loss(gpt_run *r, double *loss);

/* Compiles, trains (resuming from ck when not NULL), saves, then
 * gpt_evaluate. A CLI exit status. */
int gpt_train_run(const train_opts *o, gpt_run *r, const rt_checkpoint *ck);
int gpt_evaluate(const train_opts *o, gpt_run *r);

/* Checkpoints as the translation models' (s2s.h), with metadata
 *   RT_CKPT_MODEL "gpt", RT_CKPT_STEP, RT_CKPT_SEED, RT_CKPT_OPTIMIZER "adam" or "adamw",
 *   RT_CKPT_DATA_POS  the step: batch windows are drawn per step from the seed
 *   RT_CKPT_CONFIG    {"vocab","block","embed","heads","layers","dropout","batch","n_chars",
 *                      "bias"} ("bias" absent in older checkpoints: true)
 *   "vocab"           JSON array of the characters in id order
 *   TRAIN_CKPT_SETTINGS  r->set.settings, when not NULL. */
bool gpt_ckpt_save(const char *path, const gpt_run *r, kl_program *train, uint64_t seed,
                   ir_diag *d);
/* Opens path, checks it is a gpt checkpoint of this run (seed, batch, block,
 * the same characters and length of text), and sets r->set.cfg's model
 * fields (layers, heads, embed, dropout) from it. NULL with d set. */
rt_checkpoint *gpt_ckpt_open(const char *path, gpt_run *r, uint64_t seed, ir_diag *d);

#endif
