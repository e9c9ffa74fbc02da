/* `kiln train`: the options every model's trainer receives, and the
 * trainers. cmd_train parses and validates; a trainer reads its --set keys
 * with train_get (the registry's default when not given). */
#ifndef KILN_CLI_TRAIN_H
#define KILN_CLI_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/kiln_run.h"
#include "models/models.h"
#include "passes/pipeline.h"

#define TRAIN_MAX_SET 64

typedef struct train_opts {
  const kl_model_info *model;
  int64_t epochs; /* the registry's default unless --epochs/--steps */
  double lr;      /* the registry's default unless --lr */
  uint64_t seed;
  int threads;        /* 0 = all cores */
  int64_t max_memory; /* --max-memory: kl_compile_opts.max_memory */
  bool json;
  bool check_numerics;            /* --check-numerics: on the training step's compile */
  int64_t max_steps;              /* --steps on a mini-batch model: stop after N, else 0 */
  int64_t batch;                  /* --batch, 0 = the model's default */
  const char *data, *save, *load; /* --data, --save, --load or NULL */
  int64_t save_every;             /* --save-every N: a checkpoint every N steps, else 0 */
  bool lr_given;                  /* --lr was on the command line */
  char *settings_json;            /* owned: what checkpoints record (train_settings_json) */
  pass_opts passes;               /* the pipeline flags (pass_flags.h) */
  int nset;
  struct {
    char *key, *value; /* owned */
  } set[TRAIN_MAX_SET];
} train_opts;

/* The compile options a trainer's programs share: backend, seed, threads
 * and the memory guard. The training step (step = true) also runs in
 * training mode with --check-numerics; eval and sampling graphs do not. */
kl_compile_opts train_compile_opts(const train_opts *o, kl_backend backend, bool step);

/* The value of --set key (last one wins), else the registry's default. */
const char *train_get(const train_opts *o, const char *key);
/* The value of --set key when given (the last one), else NULL. */
const char *train_given(const train_opts *o, const char *key);
/* Whether the step count `step` (after the step) is one where --save-every
 * asks for a checkpoint. */
bool train_save_due(const train_opts *o, int64_t step);

/* ---- resuming (train_resume.c) ------------------------------------------ */

/* The checkpoint metadata key of the run's settings: a JSON object of the
 * model's --set keys and values except the free ones (samples, heatmap,
 * plot, backend, n_test, length, prompt, temperature, top_k). */
#define TRAIN_CKPT_SETTINGS "settings"

/* That JSON text for o (malloc'd), NULL when out of memory. */
char *train_settings_json(const train_opts *o);
/* --load: reads the settings o->load records; a --set of a recorded key
 * that disagrees is an error (exit 1, naming the key, the checkpoint's
 * value and the flag's), and the recorded values of keys not given join
 * o's --set list. A checkpoint of another model is left to the trainer's
 * check. A CLI status. */
int train_settings_resume(train_opts *o);

/* --set "K=V,K=V": appended to o->set (keys are checked once the model is
 * known). CLI_OK, or CLI_USAGE / CLI_ERROR with the message printed. */
int train_parse_set(train_opts *o, const char *text);

int cmd_train(int argc, char **argv);
int train_nw_kernel(const train_opts *o);
/* seq2seq-attn and transformer (train_s2s.c). */
int train_translation(const train_opts *o);
/* gpt, the character language model (train_gpt.c). */
int train_gpt(const train_opts *o);

#endif
