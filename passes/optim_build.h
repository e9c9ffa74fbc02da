/* Internal to the optimizer pass (optimizer.c, lr_schedule.c): a small node
 * builder whose calls nest (a -1 operand makes the next call return -1 and
 * the first failure is kept), so update formulas read like the maths. */
#ifndef KILN_PASS_OPTIM_BUILD_H
#define KILN_PASS_OPTIM_BUILD_H

#include "passes/optimizer.h"

typedef struct ob {
  ir_graph *g;
  ir_diag *d;
  bool failed;
  int t1; /* step() + 1 as f64, made on first use; -1 before */
} ob;

int ob_node(ob *b, ir_op op, int nin, const int *in, const ir_attr *attrs, const ir_type *declared);
int ob_un(ob *b, ir_op op, int x);
int ob_bin(ob *b, ir_op op, int x, int y);
/* A rank-0 constant of dtype dt. */
int ob_scalar(ob *b, double v, ir_dtype dt);
/* x converted to dt (x itself when it already has that dtype). */
int ob_cast(ob *b, int x, ir_dtype dt);
/* Sum of every element of x, rank 0. */
int ob_sum_all(ob *b, int x);

/* step() + 1 (the 1-based step of PyTorch's optimizers) as an f64 scalar. */
int ob_t1(ob *b);
/* The learning rate of the current step as an f64 scalar node, from the
 * schedule in o (already checked, defaults applied). */
int ob_lr_schedule(ob *b, const pass_optim *o);
/* Whether o's schedule fields make sense; false with b->d set. */
bool ob_lr_check(ob *b, const pass_optim *o);

#endif
