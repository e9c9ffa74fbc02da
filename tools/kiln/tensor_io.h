/* Tensor exchange shared by `kiln run` and `kiln grad` (via run_common.h): binding a
 * safetensors file's tensors to a graph's arguments and parameters,
 * drawing the missing arguments from a seeded RNG, writing named results
 * atomically and printing them. Functions returning int give a CLI exit
 * status with the message already printed ("kiln CMD: ..."). */
#ifndef KILN_CLI_TENSOR_IO_H
#define KILN_CLI_TENSOR_IO_H

#include <stdint.h>

#include "backend/kiln_run.h"
#include "ir/ir.h"
#include "runtime/safetensors.h"

/* Matches every tensor of st (read from path) to an argument (args[j] is
 * set, borrowed from st) or a parameter (copied into prog). */
int tio_bind_inputs(const char *cmd, const ir_graph *g, const rt_safetensors *st, const char *path,
                    const int *arg_ids, int nargs, const rt_tensor **args, kl_program *prog);

/* ins[i] (owned) for every argument: a copy of args[i], or when NULL a
 * tensor filled from (seed, stream i): floats normal(0, 1), integers
 * uniform in [0, 4], bools fair. */
int tio_make_inputs(const char *cmd, const char *file, const ir_graph *g, const int *arg_ids,
                    int nargs, const rt_tensor *const *args, uint64_t seed, kl_tensor **ins);

/* Writes ts[i] as names[i] to path (safetensors, atomically: nothing is
 * left behind on failure). */
int tio_write(const char *cmd, const char *path, int n, const char *const *names,
              kl_tensor *const *ts);

/* "name: f32[2,3] = [...]" (the first 64 elements). */
void tio_print(const char *name, const rt_tensor *t);

#endif
