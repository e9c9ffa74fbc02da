/* Compile-time evaluation of constant sub-graphs through the reference
 * interpreter, shared by constant-fold (which materializes values) and
 * canonicalize (which inspects a mask tensor's pattern before folding). */
#ifndef KILN_PASS_CANON_EVAL_H
#define KILN_PASS_CANON_EVAL_H

#include "ir/ir.h"
#include "runtime/tensor.h"

/* Per node of g (malloc'd, caller frees; NULL when out of memory): whether
 * its value is known at compile time with at most `limit` elements: consts,
 * iotas, and deterministic non-region ops whose operands all are. Never
 * args, params, steps, assigns, dropout or regions. */
bool *pass_const_mask(const ir_graph *g, int64_t limit);

/* Evaluates every node marked in `want` (each must be marked in is_const)
 * and what it needs into vals[id] (nnodes entries, NULL where not
 * evaluated; entries already set are reused). False with d naming the node
 * when the interpreter fails or memory runs out. */
bool pass_const_eval(const ir_graph *g, const bool *is_const, const bool *want, rt_tensor **vals,
                     ir_diag *d);

/* The same for one node: the cost is its cone's, not the graph's. */
bool pass_const_eval_one(const ir_graph *g, const bool *is_const, int id, rt_tensor **vals,
                         ir_diag *d);

/* Destroys vals' tensors and the array. */
void pass_const_free(rt_tensor **vals, int n);

#endif
