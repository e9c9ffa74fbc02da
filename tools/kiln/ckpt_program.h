/* Saving a training program as a checkpoint, shared by every trainer: each
 * parameter (weights and the optimizer's "<name>@slot" state) under its own
 * name, the metadata every checkpoint has (model, step, seed, data
 * position, optimizer) and the trainer's own entries (config, vocabularies).
 * Loading back is s2s_ckpt_apply (tools/kiln/s2s.h), which fits any program. */
#ifndef KILN_CLI_CKPT_PROGRAM_H
#define KILN_CLI_CKPT_PROGRAM_H

#include <stdint.h>

#include "backend/kiln_run.h"
#include "runtime/checkpoint.h"

/* Writes path atomically; false with d set (naming path) on failure. */
bool ckpt_program_save(const char *path, kl_program *train, const char *model, uint64_t seed,
                       int64_t data_position, const rt_ckpt_meta *extra, int nextra, ir_diag *d);

#endif
