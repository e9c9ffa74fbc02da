/* Builder of additive_attention regions (ir.h, "fused ops"): the fusion pass
 * and tests append a region whose body is the canonical unfused sub-graph,
 * so the reference interpreter runs exactly what the fused kernel replaces. */
#ifndef KILN_PASS_FUSED_BUILD_ADDITIVE_H
#define KILN_PASS_FUSED_BUILD_ADDITIVE_H

#include "ir/ir.h"

/* Appends additive_attention(qp, kp, wv, v [, len]) to g: qp [..., Tq, H],
 * kp [..., Tk, H], wv (H elements), v [..., Tk, dv], len integer lengths
 * (-1: none). attrs: the op's schema (mask_value, p, key), NULL for the
 * defaults; with p > 0 and key -1 the key is pinned to the new node's id
 * so the body's dropout and the fused kernel draw the same mask after any
 * renumbering. loc may be NULL. Returns the id, or -1 with d set. */
int pass_build_additive_attention(ir_graph *g, int qp, int kp, int wv, int v, int len,
                                  const ir_attr *attrs, const ir_loc *loc, ir_diag *d);

#endif
