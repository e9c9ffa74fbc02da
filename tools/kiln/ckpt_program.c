/* ckpt_program_save (tools/kiln/ckpt_program.h): the program's parameters
 * gathered as checkpoint tensors, the common metadata, one atomic write. */
#include <stdio.h>
#include <stdlib.h>

#include "backend/tensor_bridge.h"
#include "tools/kiln/ckpt_program.h"

#define MAX_EXTRA 8

bool ckpt_program_save(const char *path, kl_program *train, const char *model, uint64_t seed,
                       int64_t data_position, const rt_ckpt_meta *extra, int nextra, ir_diag *d) {
  if (nextra < 0 || nextra > MAX_EXTRA) {
    ir_diag_set(d, "%s: %d extra metadata entries (at most %d)", path, nextra, MAX_EXTRA);
    return false;
  }
  int n = kl_program_num_params(train);
  rt_ckpt_tensor *ts = calloc((size_t)(n > 0 ? n : 1), sizeof *ts);
  kl_tensor **owned = calloc((size_t)(n > 0 ? n : 1), sizeof *owned);
  bool ok = ts && owned;
  if (!ok) ir_diag_set(d, "%s: out of memory", path);
  for (int i = 0; ok && i < n; i++) {
    ts[i].name = kl_program_param_name(train, i);
    const char *e = kl_program_get_param(train, ts[i].name, &owned[i]);
    if (e)
      ok = false, ir_diag_set(d, "%s: %s", path, e);
    else
      ts[i].t = cg_tensor_rt(owned[i]);
  }
  if (ok) {
    char step[32], seeds[32], pos[32];
    snprintf(step, sizeof step, "%llu", (unsigned long long)kl_program_step(train));
    snprintf(seeds, sizeof seeds, "%llu", (unsigned long long)seed);
    snprintf(pos, sizeof pos, "%lld", (long long)data_position);
    rt_ckpt_meta meta[5 + MAX_EXTRA] = {{RT_CKPT_MODEL, model},
                                        {RT_CKPT_STEP, step},
                                        {RT_CKPT_SEED, seeds},
                                        {RT_CKPT_DATA_POS, pos},
                                        {RT_CKPT_OPTIMIZER, "adam"}};
    for (int i = 0; i < nextra; i++)
      meta[5 + i] = extra[i];
    ok = rt_checkpoint_save(path, ts, n, meta, 5 + nextra, d);
  }
  for (int i = 0; owned && i < n; i++)
    kl_tensor_destroy(owned[i]);
  free(owned);
  free(ts);
  return ok;
}
