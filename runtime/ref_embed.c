/* Reference kernel of embed_grad (ir/ir.h, "fused ops"): the adjoint of
 * dropout(gather(table, ids) * scale + pe) as plainly as possible. Each dy
 * element is multiplied by the dropout factor the forward drew (same
 * stream, same flat index), then summed into its table row times scale and
 * into its pe element. embed itself is a region (rt_ref_region). */
#include <stdlib.h>

#include "runtime/philox.h"
#include "runtime/ref_util.h"

RT_REF_FN(rt_ref_embed_grad) {
  const rt_tensor *ids = in[0], *dy = in[1], *pe = n->nin == 3 ? in[2] : NULL;
  double scale = n->attrs[0].f, p = n->attrs[1].f;
  uint32_t key = n->attrs[2].i >= 0 ? (uint32_t)n->attrs[2].i : (uint32_t)n->id;
  int64_t rows = n->attrs[3].i, dd = dy->type.dims[dy->type.rank - 1];
  int64_t nidx = rt_numel(ids), npe = pe ? rt_numel(pe) : 0;
  bool drop = opts && opts->training && p > 0;
  double keep_scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  /* accumulate in doubles, round once */
  double *acc = calloc((size_t)(rows * dd + npe) + 1, sizeof(double));
  if (!acc) {
    ir_diag_set(d, "embed_grad: out of memory");
    return false;
  }
  int64_t pstr[IR_MAX_RANK];
  if (pe) ir_broadcast_strides(&pe->type, &dy->type, pstr);
  for (int64_t r = 0; r < nidx; r++) {
    int64_t ix = rt_load_i(ids, r);
    if (ix < 0 || ix >= rows) {
      free(acc);
      ir_diag_set(d, "embed_grad: index %lld out of range [0, %lld) at position %lld",
                  (long long)ix, (long long)rows, (long long)r);
      return false;
    }
    for (int64_t j = 0; j < dd; j++) {
      int64_t e = r * dd + j;
      double g = rt_get_f(dy, e);
      if (drop) {
        float u = rt_dropout_uniform(opts->seed, opts->step, key, (uint64_t)e);
        g = p < 1 && u >= p ? g * keep_scale : 0.0;
      }
      acc[ix * dd + j] += g * scale;
      if (pe) acc[rows * dd + rt_bcast_offset(&dy->type, pstr, e)] += g;
    }
  }
  for (int64_t i = 0; i < rows * dd + npe; i++)
    rt_store_f(out, i, acc[i]);
  free(acc);
  return true;
}
