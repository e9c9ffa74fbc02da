/* A node builder for passes that compose IR from primitives (autodiff's
 * gradient rules, the optimizer update): calls nest, because a -1 operand
 * makes the next call return -1 and only the first failure is reported, so
 * formulas read like the maths. Scalar constants are made once per builder. */
#ifndef KILN_PASS_BUILDER_H
#define KILN_PASS_BUILDER_H

#include "ir/ir.h"

#define PASS_BUILDER_CONSTS 32

typedef struct pass_builder {
  ir_graph *g;
  ir_diag *d;
  bool failed;
  char prefix[256]; /* put before the first error's text: "optimizer: " */
  ir_loc loc;       /* given to every node made; file NULL: none */
  struct {
    double v;
    ir_dtype dt;
    int id;
  } consts[PASS_BUILDER_CONSTS];
  int nconsts;
} pass_builder;

void pb_init(pass_builder *b, ir_graph *g, ir_diag *d, const char *prefix);
/* Records the first failure (prefix + text) and returns false. */
bool pb_fail(pass_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* attrs NULL: the schema defaults; declared: the type of a leaf op. */
int pb_node(pass_builder *b, ir_op op, int nin, const int *in, const ir_attr *attrs,
            const ir_type *declared);
int pb_unary(pass_builder *b, ir_op op, int x);
int pb_binary(pass_builder *b, ir_op op, int x, int y);
/* A rank-0 constant of dtype dt. */
int pb_scalar(pass_builder *b, double v, ir_dtype dt);
/* v broadcast to type t (a scalar constant, not a big payload). */
int pb_fill(pass_builder *b, double v, const ir_type *t);
/* x itself when it already has dtype dt / shape dims. */
int pb_cast(pass_builder *b, int x, ir_dtype dt);
int pb_reshape(pass_builder *b, int x, int rank, const int64_t *dims);
/* Sum of every element of x, rank 0. */
int pb_sum_all(pass_builder *b, int x);
/* Sums x (of a broadcast result's shape) down to type `to`: over leading
 * axes `to` lacks and axes where `to` has 1. */
int pb_unbroadcast(pass_builder *b, int x, const ir_type *to);

#endif
