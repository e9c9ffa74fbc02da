/* Builders of fused region nodes: each appends one region node whose body is
 * the canonical unfused sub-graph of the op (ir.h, "fused ops"), so the
 * reference interpreter (which runs the body) and the backend's fused
 * kernel (which reads the attributes) compute the same thing. Used by the
 * fusion passes and by tests and benchmarks that want a fused graph. */
#ifndef KILN_PASS_FUSED_BUILD_H
#define KILN_PASS_FUSED_BUILD_H

#include "ir/ir.h"

/* Appends attention(q, k, v [, mask]) to g; operands are ids in g, mask -1
 * for none (integer lengths or a float bias, as ir/shape_fused.c admits).
 * attrs: a full array of attention's schema (scale, causal, mask_value, p,
 * key), NULL for the defaults. When p > 0 and key is -1 the key is pinned
 * to the new node's id, on the node and in its body's dropout, so both
 * draw the same mask stream whatever later rewrites do to ids. loc (NULL:
 * none) is given to the node. Returns the new id, or
 * -1 with d set (g unchanged). */
int pass_build_attention(ir_graph *g, int q, int k, int v, int mask, const ir_attr *attrs,
                         const ir_loc *loc, ir_diag *d);

/* ---- additive attention (the additive-attention helper's builders) ---- */

#endif
