/* Internal to the optimizer pass (optimizer.c, lr_schedule.c): the shared
 * nesting node builder (passes/builder.h) plus the step counter and the
 * learning-rate schedule, made once per pass. */
#ifndef KILN_PASS_OPTIM_BUILD_H
#define KILN_PASS_OPTIM_BUILD_H

#include "passes/builder.h"
#include "passes/optimizer.h"

typedef struct ob {
  pass_builder pb;
  int t1; /* step() + 1 as f64, made on first use; -1 before */
} ob;

/* step() + 1 (the 1-based step of PyTorch's optimizers) as an f64 scalar. */
int ob_t1(ob *b);
/* The learning rate of the current step as an f64 scalar node, from the
 * schedule in o (already checked, defaults applied). */
int ob_lr_schedule(ob *b, const pass_optim *o);
/* Whether o's schedule fields make sense; false with the error recorded. */
bool ob_lr_check(ob *b, const pass_optim *o);

#endif
