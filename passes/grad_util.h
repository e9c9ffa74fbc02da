/* Short names for the node builders the gradient rules (passes/grad_*.c)
 * compose their adjoints from; private to those files. Every helper
 * propagates -1 (a failed builder) like the pass_ad_* calls it wraps. */
#ifndef KILN_PASS_GRAD_UTIL_H
#define KILN_PASS_GRAD_UTIL_H

#include "passes/autodiff.h"

static inline const ir_type *ad_type(pass_ad *ad, int id) {
  return &pass_ad_graph(ad)->nodes[id]->type;
}
/* operand k's type */
static inline const ir_type *ad_in_type(pass_ad *ad, const ir_node *n, int k) {
  return ad_type(ad, n->in[k]);
}
static inline int ad_add(pass_ad *ad, int a, int b) { return pass_ad_binary(ad, IR_OP_ADD, a, b); }
static inline int ad_sub(pass_ad *ad, int a, int b) { return pass_ad_binary(ad, IR_OP_SUB, a, b); }
static inline int ad_mul(pass_ad *ad, int a, int b) { return pass_ad_binary(ad, IR_OP_MUL, a, b); }
static inline int ad_div(pass_ad *ad, int a, int b) { return pass_ad_binary(ad, IR_OP_DIV, a, b); }
static inline int ad_neg(pass_ad *ad, int a) { return pass_ad_unary(ad, IR_OP_NEG, a); }
static inline int ad_select(pass_ad *ad, int c, int a, int b) {
  int in[3] = {c, a, b};
  return pass_ad_op(ad, IR_OP_SELECT, 3, in, NULL);
}
/* x * s for a scalar s in x's dtype */
static inline int ad_scale(pass_ad *ad, int x, double s) {
  if (x < 0) return -1;
  return ad_mul(ad, x, pass_ad_scalar(ad, s, ad_type(ad, x)->dtype));
}
/* sum/mean/reduce_max of x over axes */
static inline int ad_reduce(pass_ad *ad, ir_op op, int x, int nax, int64_t *axes, bool keep) {
  ir_attr a[2] = {pass_attr_ints(nax, axes), pass_attr_bool(keep)};
  return pass_ad_op(ad, op, 1, &x, a);
}
/* sum over the last axis, keeping it (size 1) */
static inline int ad_sum_last(pass_ad *ad, int x) {
  int64_t ax = -1;
  return ad_reduce(ad, IR_OP_SUM, x, 1, &ax, true);
}
static inline int ad_mean_last(pass_ad *ad, int x) {
  int64_t ax = -1;
  return ad_reduce(ad, IR_OP_MEAN, x, 1, &ax, true);
}

#endif
