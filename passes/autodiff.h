/* Reverse-mode automatic differentiation as a graph-to-graph transform, and
 * the contract of the per-op gradient rules named by ops.def's GRAD column.
 * The gradient nodes are ordinary IR appended to the same graph: they
 * print, parse and verify like any other node. */
#ifndef KILN_PASS_AUTODIFF_H
#define KILN_PASS_AUTODIFF_H

#include "ir/ir.h"

/* Appends to g the gradient of `loss` with respect to each wrt[i].
 * - loss: a float node of any shape; its adjoint seed is ones, so the
 *   gradient is that of sum(loss) (kiln grad's "sum of output 0").
 * - wrt: float nodes (usually PARAM or ARG nodes); grads[i] receives the id
 *   of a node of exactly wrt[i]'s type holding d sum(loss) / d wrt[i] (a
 *   zeros node when loss does not depend on it). Two PARAM nodes with the
 *   same name are the same parameter: the gradient of either is the sum
 *   over both.
 * - Only nodes on a path from some wrt[i] to loss get gradient nodes
 *   ("gradients that nobody needs are not built"); fan-out accumulates with
 *   add. Forward dropout nodes whose key is -1 get key = their id, so the
 *   backward dropout draws the same mask.
 * - The returns of g are not changed. On failure (an op on the path without
 *   a gradient rule, a non-float wrt, out of memory) returns false with d
 *   naming the node, and g may hold unreachable partial nodes (callers work
 *   on a clone). */
bool pass_autodiff(ir_graph *g, int loss, int nwrt, const int *wrt, int *grads, ir_diag *d);

/* ---- the gradient-rule contract ---------------------------------------- */

/* Builder state of one autodiff run (opaque to rules). */
typedef struct pass_ad pass_ad;

/* A gradient rule. n is the forward node (in pass_ad_graph(ad)); gy is the
 * id of the adjoint of n's result (same type as n). For each operand k the
 * rule sets gx[k] to the id of that operand's gradient contribution, of
 * exactly operand k's type, or leaves it -1 (gx arrives filled with -1)
 * when the operand gets none: integer/bool operands, or
 * !pass_ad_wants(ad, k). Returns false with the error recorded through
 * pass_ad_fail (or a failed builder call). */
typedef bool (*pass_grad_fn)(pass_ad *ad, const ir_node *n, int gy, int *gx);

ir_graph *pass_ad_graph(pass_ad *ad);
/* Whether operand k of the node being differentiated needs a gradient. */
bool pass_ad_wants(pass_ad *ad, int k);
bool pass_ad_fail(pass_ad *ad, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Builders for rules. Each appends one node carrying the forward node's
 * source location and returns its id, or -1 after recording the error (so
 * calls nest: a -1 operand makes the next call return -1). attrs may be
 * NULL for the schema defaults; otherwise it holds every attribute of the
 * op's schema in order. */
int pass_ad_op(pass_ad *ad, ir_op op, int nin, const int *in, const ir_attr *attrs);
int pass_ad_unary(pass_ad *ad, ir_op op, int a);
int pass_ad_binary(pass_ad *ad, ir_op op, int a, int b);
/* A scalar constant of dtype dt. */
int pass_ad_scalar(pass_ad *ad, double v, ir_dtype dt);
/* zeros / ones of type t (a broadcast scalar: no big constant). */
int pass_ad_fill(pass_ad *ad, double v, const ir_type *t);
/* Sums x (of a broadcast result's shape) down to type `to`: over leading
 * axes `to` lacks and axes where `to` has 1; identity when shapes agree. */
int pass_ad_unbroadcast(pass_ad *ad, int x, const ir_type *to);
int pass_ad_reshape(pass_ad *ad, int x, int rank, const int64_t *dims);
int pass_ad_cast(pass_ad *ad, int x, ir_dtype to);

/* Attribute values for pass_ad_op. Lists are copied by the node builder. */
static inline ir_attr pass_attr_int(int64_t v) { return (ir_attr){.kind = IR_ATTR_INT, .i = v}; }
static inline ir_attr pass_attr_float(double v) { return (ir_attr){.kind = IR_ATTR_FLOAT, .f = v}; }
static inline ir_attr pass_attr_bool(bool v) { return (ir_attr){.kind = IR_ATTR_BOOL, .b = v}; }
static inline ir_attr pass_attr_str(const char *s) {
  return (ir_attr){.kind = IR_ATTR_STR, .s = s};
}
static inline ir_attr pass_attr_dtype(ir_dtype dt) {
  return (ir_attr){.kind = IR_ATTR_DTYPE, .dt = dt};
}
static inline ir_attr pass_attr_ints(int n, int64_t *v) {
  return (ir_attr){.kind = IR_ATTR_INTS, .ints = {n, v}};
}

/* The rules, one per distinct GRAD entry in ops.def (passes/grad_*.c). */
#define PASS_GRAD_FN(name) bool name(pass_ad *ad, const ir_node *n, int gy, int *gx)
PASS_GRAD_FN(pass_grad_add_sub);
PASS_GRAD_FN(pass_grad_mul);
PASS_GRAD_FN(pass_grad_div);
PASS_GRAD_FN(pass_grad_pow);
PASS_GRAD_FN(pass_grad_max_min);
PASS_GRAD_FN(pass_grad_select);
PASS_GRAD_FN(pass_grad_unary); /* neg abs relu exp log tanh sigmoid sqrt rsqrt sin cos gelu */
PASS_GRAD_FN(pass_grad_cast);
PASS_GRAD_FN(pass_grad_dropout);
PASS_GRAD_FN(pass_grad_reduce);  /* sum mean reduce_max */
PASS_GRAD_FN(pass_grad_softmax); /* softmax log_softmax */
PASS_GRAD_FN(pass_grad_layernorm);
PASS_GRAD_FN(pass_grad_reshape);
PASS_GRAD_FN(pass_grad_transpose);
PASS_GRAD_FN(pass_grad_broadcast_to);
PASS_GRAD_FN(pass_grad_slice);
PASS_GRAD_FN(pass_grad_concat);
PASS_GRAD_FN(pass_grad_gather);
PASS_GRAD_FN(pass_grad_matmul);
PASS_GRAD_FN(pass_grad_sequence_mask);
PASS_GRAD_FN(pass_grad_attention);          /* grad_attention.c: attention_grad */
PASS_GRAD_FN(pass_grad_additive_attention); /* grad_additive.c */
PASS_GRAD_FN(pass_grad_scale_mask_softmax); /* grad_sms.c */
PASS_GRAD_FN(pass_grad_embed);              /* grad_embed.c: embed_grad */
PASS_GRAD_FN(pass_grad_xent);

#endif
