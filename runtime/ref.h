/* The reference interpreter: a plain, obviously-correct evaluation of every
 * op in the op table, in every dtype the shape rules admit. It is the oracle
 * of every test and the engine of constant folding; clarity beats speed. */
#ifndef KILN_RT_REF_H
#define KILN_RT_REF_H

#include "ir/ir.h"
#include "runtime/tensor.h"

typedef struct rt_ref_opts {
  bool training; /* dropout active when true; identity otherwise */
  uint64_t seed; /* dropout masks are keyed by (seed, step, rt_dropout_key) */
  uint64_t step; /* also the value of `step` nodes */
  /* Fail at the first node whose float result holds a NaN or inf, with
   * rt_nonfinite_report's message (a region counts as one node). */
  bool check_numerics;
  /* Called for every assign node, in graph order, after all nodes have run
   * and the outputs are taken: param is the assign's PARAM operand, value
   * its new value (borrowed). NULL ignores assigns. Returning false fails
   * the run with d set. */
  bool (*assign)(void *ctx, const ir_node *param, const rt_tensor *value, ir_diag *d);
  void *assign_ctx;
} rt_ref_opts;

/* The Philox stream of a dropout node's mask: its `key` attribute, or its
 * id when the key is -1. The JIT uses the same stream. */
static inline uint32_t rt_dropout_key(const ir_node *n) {
  int64_t k = n->attrs[1].i;
  return k >= 0 ? (uint32_t)k : (uint32_t)n->id;
}

/* Supplies the value of a PARAM node (looked up by its "name" attribute);
 * returns NULL when unknown, which fails the run with a message naming the
 * parameter. The tensor is borrowed. */
typedef const rt_tensor *(*rt_param_lookup)(void *ctx, const ir_node *param);

/* Evaluates g. `args` has one tensor per ARG node, in argument order, each
 * of exactly the argument's type (checked: a mismatch is an error naming the
 * argument and both types). `outs` receives g->nrets owned tensors on
 * success (caller destroys them); on failure nothing is allocated and d
 * names the node, its op and location. opts may be NULL (eval mode). */
bool rt_ref_run(const ir_graph *g, const rt_tensor *const *args, rt_param_lookup params,
                void *params_ctx, const rt_ref_opts *opts, rt_tensor **outs, ir_diag *d);

/* Evaluates one non-leaf node given its operand values into `out` (already
 * created with n->type). For constant folding and per-op tests. */
bool rt_ref_eval_node(const ir_node *n, const rt_tensor *const *in, rt_tensor *out,
                      const rt_ref_opts *opts, ir_diag *d);

#endif
