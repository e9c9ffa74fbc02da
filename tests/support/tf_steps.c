/* A small Transformer's JIT training steps, shared by pass tests
 * (tf_steps.h). */
#include "driver/train_internal.h"
#include "tests/support/tf_steps.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/ir_check.h"

tf_config tc_tf_small(void) {
  tf_config c = TF_DATES_DEFAULTS;
  c.hidden = 16, c.ffn = 24, c.heads = 2, c.blocks = 2, c.batch = 6, c.src_steps = 7;
  c.tgt_steps = 5;
  return c;
}

static kl_tensor *i32(int rank, int64_t d0, int64_t d1) {
  int64_t dims[2] = {d0, d1};
  kl_tensor *t = kl_tensor_create(KL_TENSOR_I32, rank, dims);
  cr_assert_not_null(t);
  return t;
}

void tc_tf_batch(kl_tensor **in, const tf_config *c) {
  int64_t B = c->batch, ts = c->src_steps, tt = c->tgt_steps;
  in[0] = i32(2, B, ts), in[1] = i32(1, B, 1), in[2] = i32(2, B, tt), in[3] = i32(2, B, tt);
  in[4] = i32(1, B, 1);
  int32_t *src = kl_tensor_data(in[0]), *sl = kl_tensor_data(in[1]), *dec = kl_tensor_data(in[2]),
          *tgt = kl_tensor_data(in[3]), *tl = kl_tensor_data(in[4]);
  for (int64_t b = 0; b < B; b++) {
    sl[b] = (int32_t)(2 + b % (ts - 1)), tl[b] = (int32_t)(1 + b % tt);
    for (int64_t t = 0; t < ts; t++)
      src[b * ts + t] = t < sl[b] ? (int32_t)(4 + (7 * b + 3 * t) % (c->src_vocab - 4)) : 1;
    for (int64_t t = 0; t < tt; t++) {
      tgt[b * tt + t] = t < tl[b] ? (int32_t)(4 + (5 * b + 2 * t) % (c->tgt_vocab - 4)) : 1;
      dec[b * tt + t] = t == 0 ? 2 : tgt[b * tt + t - 1];
    }
  }
}

tc_tf_run tc_tf_train(const tf_config *c, const kl_optim_opts *opt, const pass_opts *po,
                      const kl_compile_opts *co, void (*inspect)(const ir_graph *g, void *ud),
                      void *ud) {
  tf_train t = tf_build_train(c);
  cr_assert_not_null(t.g);
  cr_assert_null(kl_graph_error(t.g), "%s", kl_graph_error(t.g));
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(kl_graph_ir(t.g), t.loss.id, NULL, 0, opt, po, co, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  if (inspect) inspect(kl_train_step_graph(s), ud);
  kl_tensor *in[5];
  tc_tf_batch(in, c);
  tc_tf_run r = {0};
  for (int i = 0; i < TC_TF_STEPS; i++) {
    const char *msg = kl_train_step_run(s, in, 5, &r.loss[i]);
    cr_assert_null(msg, "%s", msg);
  }
  kl_program *p = kl_train_step_program(s);
  r.nparams = kl_program_num_params(p);
  r.names = calloc((size_t)r.nparams, sizeof *r.names);
  r.params = calloc((size_t)r.nparams, sizeof *r.params);
  cr_assert(r.names && r.params);
  for (int i = 0; i < r.nparams; i++) {
    r.names[i] = strdup(kl_program_param_name(p, i));
    const char *msg = kl_program_get_param(p, r.names[i], &r.params[i]);
    cr_assert_null(msg, "%s", msg);
  }
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s);
  return r;
}

void tc_tf_expect_same(const tc_tf_run *a, const tc_tf_run *b, double tol, const char *what) {
  for (int i = 0; i < TC_TF_STEPS; i++) {
    bool same = tol == 0 ? memcmp(&a->loss[i], &b->loss[i], sizeof(double)) == 0
                         : fabs(a->loss[i] - b->loss[i]) <= tol * (1 + fabs(b->loss[i]));
    cr_expect(same, "%s: step %d: loss %.17g vs %.17g", what, i, a->loss[i], b->loss[i]);
  }
  cr_expect(isfinite(a->loss[TC_TF_STEPS - 1]) && a->loss[TC_TF_STEPS - 1] != a->loss[0],
            "%s: the steps trained", what);
  cr_assert_eq(a->nparams, b->nparams);
  for (int i = 0; i < a->nparams; i++) {
    cr_assert_str_eq(a->names[i], b->names[i]);
    int64_t n = kl_tensor_numel(a->params[i]);
    cr_assert_eq(n, kl_tensor_numel(b->params[i]));
    if (tol == 0)
      cr_expect_eq(memcmp(kl_tensor_data(a->params[i]), kl_tensor_data(b->params[i]),
                          (size_t)n * sizeof(float)),
                   0, "%s: parameter '%s' differs after %d steps", what, a->names[i], TC_TF_STEPS);
    else
      cr_expect_leq(tc_rel_err(a->params[i], b->params[i], IR_F32), tol,
                    "%s: parameter '%s' after %d steps", what, a->names[i], TC_TF_STEPS);
  }
}

void tc_tf_free(tc_tf_run *r) {
  for (int i = 0; i < r->nparams; i++) {
    free(r->names[i]);
    kl_tensor_destroy(r->params[i]);
  }
  free(r->names);
  free(r->params);
}
