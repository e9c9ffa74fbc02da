/* Saving a training program as a checkpoint, shared by every trainer: each
 * parameter (weights and the optimizer's "<name>@slot" state) under its own
 * name, the metadata every checkpoint has (model, step, seed, data
 * position, optimizer) and the trainer's own entries (config, vocabularies).
 * Checking one before use is ckpt_program_check; loading back is
 * s2s_ckpt_apply (tools/kiln/s2s.h), which fits any program. */
#ifndef KILN_CLI_CKPT_PROGRAM_H
#define KILN_CLI_CKPT_PROGRAM_H

#include <stdint.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "frontend/kiln.h"
#include "runtime/checkpoint.h"

/* The optimizer of the translation trainers, and its name in the
 * RT_CKPT_OPTIMIZER metadata; gpt's is "adam" or "adamw" (optim=), whose
 * state is the same "@m" and "@v" slots. */
#define CKPT_OPTIMIZER KL_OPT_ADAM
#define CKPT_OPTIMIZER_NAME "adam"

/* Writes path atomically, recording `optimizer` as RT_CKPT_OPTIMIZER;
 * false with d set (naming path) on failure. */
bool ckpt_program_save(const char *path, kl_program *train, const char *model,
                       const char *optimizer, uint64_t seed, int64_t data_position,
                       const rt_ckpt_meta *extra, int nextra, ir_diag *d);

/* The one validation of a training program's checkpoint, shared by
 * `train --load` and `translate` so that neither accepts what the other
 * refuses: RT_CKPT_STEP and RT_CKPT_DATA_POS are present integers, the
 * optimizer is `optimizer` ("adam" or "adamw"), the tensors are exactly the parameters
 * of the training graph of (g, loss) under that optimizer (weights and
 * their "@m"/"@v" state) with their dtypes and shapes, and every float is
 * finite. false with d set: "PATH: metadata 'KEY' is 'VALUE' ...",
 * "PATH: tensor 'NAME' ...". */
bool ckpt_program_check(const rt_checkpoint *ck, const kl_graph *g, kl_value loss,
                        const char *optimizer, ir_diag *d);

#endif
