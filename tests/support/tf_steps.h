/* A small Transformer trained for a few JIT steps under given pass options,
 * for tests that compare a pass on and off (memory planning, loop fusion,
 * GEMM epilogue folding): the batch, the run, and the comparison of two
 * runs' losses and parameters. */
#ifndef KILN_TEST_TF_STEPS_H
#define KILN_TEST_TF_STEPS_H

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "models/transformer.h"
#include "passes/pipeline.h"

#define TC_TF_STEPS 3

typedef struct tc_tf_run {
  double loss[TC_TF_STEPS];
  int nparams;
  char **names;
  kl_tensor **params;
} tc_tf_run;

/* The small configuration these tests train (hidden 16, 2 heads, 2 blocks). */
tf_config tc_tf_small(void);
/* src, src_len, dec_in, tgt, tgt_len: valid tokens, varied lengths and
 * pads; the caller destroys the five tensors. */
void tc_tf_batch(kl_tensor **in, const tf_config *c);
/* Compiles c's training step with po and co, lets inspect (may be NULL)
 * look at the compiled graph, runs TC_TF_STEPS steps on one batch and
 * keeps the losses and every parameter after them (asserting on any
 * failure). */
tc_tf_run tc_tf_train(const tf_config *c, const kl_optim_opts *opt, const pass_opts *po,
                      const kl_compile_opts *co, void (*inspect)(const ir_graph *g, void *ud),
                      void *ud);
/* Expects a and b to agree: bit for bit when tol is 0, else every loss and
 * parameter within tol relative. `what` names the difference in messages. */
void tc_tf_expect_same(const tc_tf_run *a, const tc_tf_run *b, double tol, const char *what);
void tc_tf_free(tc_tf_run *r);

#endif
