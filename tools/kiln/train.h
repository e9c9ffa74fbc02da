/* `kiln train`: the options every model's trainer receives, and the
 * trainers. cmd_train parses and validates; a trainer reads its --set keys
 * with train_get (the registry's default when not given). */
#ifndef KILN_CLI_TRAIN_H
#define KILN_CLI_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "models/models.h"
#include "passes/pipeline.h"

#define TRAIN_MAX_SET 32

typedef struct train_opts {
  const kl_model_info *model;
  int64_t epochs; /* the registry's default unless --epochs/--steps */
  double lr;      /* the registry's default unless --lr */
  uint64_t seed;
  int threads; /* 0 = all cores */
  bool json;
  bool check_numerics;            /* --check-numerics: on the training step's compile */
  int64_t max_steps;              /* --steps on a mini-batch model: stop after N, else 0 */
  int64_t batch;                  /* --batch, 0 = the model's default */
  const char *data, *save, *load; /* --data, --save, --load or NULL */
  pass_opts passes;               /* the pipeline flags (pass_flags.h) */
  int nset;
  struct {
    char *key, *value; /* owned */
  } set[TRAIN_MAX_SET];
} train_opts;

/* The value of --set key (last one wins), else the registry's default. */
const char *train_get(const train_opts *o, const char *key);

int cmd_train(int argc, char **argv);
int train_nw_kernel(const train_opts *o);
/* seq2seq-attn and transformer (train_s2s.c). */
int train_translation(const train_opts *o);
/* gpt, the character language model (train_gpt.c). */
int train_gpt(const train_opts *o);

#endif
