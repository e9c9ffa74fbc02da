/* The fused embedding kernels JIT code calls (backend/lower_embed.c emits
 * one serial call per embed / embed_grad node; backend/jit.c registers the
 * symbols). They split the work over the rt_exec's pool themselves.
 * Semantics: ir/ir.h, "fused ops". Internal to backend/. */
#ifndef KILN_KERN_EMBED_H
#define KILN_KERN_EMBED_H

#include <stdint.h>

#include "ir/ir.h"
#include "runtime/exec.h"

/* Every field is 8 bytes, so lower_embed.c emits it as an i64 array
 * (doubles by their bits). */
typedef struct ke_desc {
  int64_t n, d, v;     /* result rows (numel / d), width, table rows */
  int64_t f64, ids64;  /* dtypes: f64 else f32; i64 else i32 ids */
  int64_t dropout;     /* training and p > 0 */
  int64_t key;         /* dropout stream; -1: the tag (the node id) */
  int64_t has_pe, npe; /* pe present (the gradient: dpe wanted) and its size */
  double scale, p;
  int64_t rank;                /* the result's rank */
  int64_t dims[IR_MAX_RANK];   /* the result's dims */
  int64_t pe_str[IR_MAX_RANK]; /* pe's element stride per result dim (0: broadcast) */
} ke_desc;

#define KE_DESC_WORDS ((int)(sizeof(ke_desc) / 8))

/* out [n, d] = dropout(table[ids[r]] * scale + pe); a bad id is recorded
 * (rt_exec_error, RT_ERR_INDEX, the tag as node) and its row zeroed. */
void kiln_embed_fwd(const ke_desc *a, void *out, const void *table, const void *ids, const void *pe,
                    rt_exec *x, int64_t tag);
/* out = dtable (v * d) then dpe (npe, when has_pe) from dy [n, d]. */
void kiln_embed_bwd(const ke_desc *a, void *out, const void *ids, const void *dy, rt_exec *x,
                    int64_t tag);

#endif
