/* The pieces of `kiln train seq2seq-attn` (train_s2s.c: settings and data;
 * train_s2s_loop.c: the training loop and checkpoints; train_s2s_eval.c:
 * held-out translations, accuracy, BLEU, heatmap and the JSON summary). */
#ifndef KILN_CLI_TRAIN_S2S_H
#define KILN_CLI_TRAIN_S2S_H

#include "driver/kiln_train.h"
#include "tools/kiln/s2s_data.h"
#include "tools/kiln/train.h"

typedef struct s2s_settings {
  s2s_meta meta; /* the model config, tokenizer and (owned) vocabularies */
  int64_t max_examples, n_test, min_freq, samples;
  double clip;
  kl_backend backend;
  const char *heatmap;
} s2s_settings;

/* What one run holds, freed by s2s_run_free. */
typedef struct s2s_run {
  s2s_settings set;
  rt_pairs pairs;
  s2s_data train, test;
  kl_train_step *step;
  /* results */
#define S2S_MAX_EPOCH_LOG 4096
  double epoch_losses[S2S_MAX_EPOCH_LOG]; /* per epoch (or partial epoch) of this process */
  int64_t nepochs;
  int64_t steps;     /* optimizer steps taken by this process */
  double final_loss; /* last epoch's loss per token, d2l's metric */
  double tokens_per_s, train_s, compile_s;
  double exact_match, bleu4; /* NaN when not measured */
  double d2l_bleu[4];        /* d2l's four example sentences (file data), else NaN */
} s2s_run;

void s2s_run_free(s2s_run *r);

/* Compiles, trains (resuming from ck when not NULL), saves, evaluates and
 * reports. A CLI exit status. */
int s2s_train_run(const train_opts *o, s2s_run *r, const rt_checkpoint *ck);
/* Greedy translations of the held-out pairs and the report after training. */
int s2s_evaluate(const train_opts *o, s2s_run *r);

#endif
