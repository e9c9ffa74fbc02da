/* The seq2seq-attn model (models/seq2seq_attn.c) against PyTorch running
 * d2l's modules (tests/golden/golden_s2s.py), on both backends: forward loss
 * and attention weights, every parameter's gradient, one clipped Adam step;
 * the decoding graphs (encoder + one step, fed the teacher-forced tokens)
 * against the training graph; an f64 finite-difference gradcheck; configs
 * the model must refuse. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "ir/ir.h"
#include "models/seq2seq_attn.h"
#include "passes/autodiff.h"
#include "runtime/safetensors.h"
#include "tests/grad_harness.h"
#include "tests/support/golden.h"
#include "tests/support/model_golden.h"

#define NPARAMS 23 /* 2 embeddings, 2 x 2 layers x 4 GRU tensors, 3 attention, dense w and b */

/* Float32 kiln against the float64 torch reference, measured on both
 * backends: loss and attention within 1e-7 relative; gradients within
 * 2e-6 of each tensor's largest element and 2e-5 relative wherever an
 * element exceeds 1% of it (elements that cancel to near zero have no
 * relative accuracy in float32); the Adam step within 1.2e-7 absolute. */
#define ATOL 1e-6

typedef struct golden {
  rt_safetensors *st;
  s2s_config cfg;
  kl_tensor *in[5]; /* src, src_len, dec_in, tgt, tgt_len */
} golden;

static const rt_tensor *gget(const golden *g, const char *name) {
  return golden_st_get(g->st, name);
}

static void load(golden *g) {
  g->st = golden_st_read(KILN_SOURCE_DIR "/tests/golden/s2s", "s2s");
  const rt_safetensors *st = g->st;
  g->cfg = (s2s_config){.src_vocab = mg_int(st, "cfg.src_vocab"),
                        .tgt_vocab = mg_int(st, "cfg.tgt_vocab"),
                        .embed = mg_int(st, "cfg.embed"),
                        .hidden = mg_int(st, "cfg.hidden"),
                        .layers = mg_int(st, "cfg.layers"),
                        .dropout = 0,
                        .batch = mg_int(st, "cfg.batch"),
                        .src_steps = mg_int(st, "cfg.src_steps"),
                        .tgt_steps = mg_int(st, "cfg.tgt_steps"),
                        .dtype = KL_F32};
  mg_inputs(st, g->in);
}

static void unload(golden *g) {
  mg_inputs_free(g->in);
  rt_st_destroy(g->st);
}

static const int32_t *gi32(const golden *g, int k) { return kl_tensor_data(g->in[k]); }

static s2s_train build_train(const s2s_config *c) {
  s2s_train t = s2s_build_train(c);
  cr_assert_not_null(t.g);
  cr_assert_null(kl_graph_error(t.g), "%s", kl_graph_error(t.g));
  return t;
}

/* ---- parameter names ------------------------------------------------------ */

/* kiln's parameters are exactly torch's state_dict: same names, shapes. */
Test(s2s_model, parameter_names_are_torchs) {
  golden g;
  load(&g);
  s2s_train t = build_train(&g.cfg);
  kl_program *p = mg_compile(kl_graph_ir(t.g), KL_BACKEND_REF);
  cr_expect_eq(kl_program_num_params(p), NPARAMS);
  int torch_params = mg_expect_torch_names(p, g.st);
  cr_expect_eq(torch_params, NPARAMS);
  cr_expect_eq(mg_set_params(p, g.st), NPARAMS);
  kl_program_destroy(p);
  kl_graph_destroy(t.g);
  unload(&g);
}

/* ---- forward ---------------------------------------------------------------- */

static void forward_matches(kl_backend b) {
  golden g;
  load(&g);
  s2s_train t = build_train(&g.cfg);
  kl_program *p = mg_compile(kl_graph_ir(t.g), b);
  kl_graph_destroy(t.g);
  mg_set_params(p, g.st);
  kl_tensor *out[2] = {NULL, NULL};
  const char *msg = kl_run(p, g.in, 5, out, 2);
  cr_assert_null(msg, "%s", msg);
  cr_assert_eq(kl_tensor_numel(out[0]), 1);
  cr_assert_eq(kl_tensor_numel(out[1]), rt_numel(gget(&g, "attn")));
  double wl = mg_expect_close("loss", kl_tensor_data(out[0]), gget(&g, "loss"), 1e-5, 0);
  double wa = mg_expect_close("attn", kl_tensor_data(out[1]), gget(&g, "attn"), 1e-5, ATOL);
  cr_log_info("forward (%s): loss rel %.2g, attn rel %.2g", mg_backend_name(b), wl, wa);
  /* Masked source positions get exactly zero weight (exp(-1e6 - max)). */
  const float *a = kl_tensor_data(out[1]);
  const int32_t *src_len = gi32(&g, 1);
  int64_t tt = g.cfg.tgt_steps, ts = g.cfg.src_steps;
  for (int64_t r = 0; r < g.cfg.batch; r++)
    for (int64_t s = src_len[r]; s < ts; s++)
      for (int64_t q = 0; q < tt; q++)
        cr_expect_eq(a[(r * tt + q) * ts + s], 0.0f, "attn[%lld, %lld, %lld]", (long long)r,
                     (long long)q, (long long)s);
  kl_tensor_destroy(out[0]);
  kl_tensor_destroy(out[1]);
  kl_program_destroy(p);
  unload(&g);
}

Test(s2s_model, forward_matches_torch_ref) { forward_matches(KL_BACKEND_REF); }
Test(s2s_model, forward_matches_torch_jit) { forward_matches(KL_BACKEND_JIT); }

/* ---- gradients ------------------------------------------------------------------ */

/* Every parameter's gradient (tests/support/model_golden.h). */
static void gradients_match(kl_backend b) {
  golden g;
  load(&g);
  s2s_train t = build_train(&g.cfg);
  mg_expect_gradients(kl_graph_ir(t.g), t.loss.id, NPARAMS, g.st, b, "seq2seq-attn");
  kl_graph_destroy(t.g);
  unload(&g);
}

Test(s2s_model, gradients_match_torch_ref) { gradients_match(KL_BACKEND_REF); }
Test(s2s_model, gradients_match_torch_jit) { gradients_match(KL_BACKEND_JIT); }

/* ---- one training step ------------------------------------------------------------ */

/* d2l's train_seq2seq step: sum loss, backward, clip to norm 1 (torch's
 * gradient norm is 1.12, so the clip applies), Adam lr 0.005. The first
 * Adam step moves each weight by about lr * g / (|g| + eps), so any
 * element with a non-negligible gradient moves by 0.005: an absolute
 * tolerance of 1e-6 checks the direction and size of every update. */
static void adam_step_matches(kl_backend b) {
  golden g;
  load(&g);
  s2s_train t = build_train(&g.cfg);
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.005, .clip_norm = 1.0};
  kl_compile_opts o = {.backend = b, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(t.g, t.loss, NULL, 0, &opt, &o, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  kl_program *p = kl_train_step_program(s);
  cr_assert_eq(mg_set_params(p, g.st), NPARAMS);
  double loss = 0;
  const char *msg = kl_train_step_run(s, g.in, 5, &loss);
  cr_assert_null(msg, "%s", msg);
  double want = rt_get_f(gget(&g, "loss"), 0);
  cr_expect(fabs(loss - want) <= 1e-5 * want, "loss %.9g, torch %.9g", loss, want);
  int checked = 0;
  double worst = 0;
  for (int i = 0; i < kl_program_num_params(p); i++) {
    const char *name = kl_program_param_name(p, i);
    if (strchr(name, '@')) continue;
    char key[160];
    snprintf(key, sizeof key, "adam.%s", name);
    kl_tensor *k = NULL;
    msg = kl_program_get_param(p, name, &k);
    cr_assert_null(msg, "%s", msg);
    const rt_tensor *w = gget(&g, key), *w0 = gget(&g, name);
    cr_assert_eq(kl_tensor_numel(k), rt_numel(w), "%s", key);
    const float *v = kl_tensor_data(k);
    for (int64_t e = 0; e < rt_numel(w); e++)
      worst = fmax(worst, fabs(v[e] - rt_get_f(w, e)));
    mg_expect_close(key, v, w, 0, 1e-6);
    /* The step really moved the weights (a no-op update would pass a loose
     * comparison for parameters with tiny gradients). */
    int moved = 0;
    for (int64_t e = 0; e < rt_numel(w); e++)
      moved += fabs(rt_get_f(w, e) - rt_get_f(w0, e)) > 1e-3;
    if (moved) {
      double dk = 0;
      for (int64_t e = 0; e < rt_numel(w); e++)
        dk = fmax(dk, fabs(v[e] - rt_get_f(w0, e)));
      cr_expect_gt(dk, 4e-3, "%s did not move", name);
    }
    kl_tensor_destroy(k);
    checked++;
  }
  cr_expect_eq(checked, NPARAMS);
  cr_log_info("adam step (%s): worst absolute error %.2g", mg_backend_name(b), worst);
  kl_train_step_destroy(s);
  unload(&g);
}

Test(s2s_model, adam_step_matches_torch_ref) { adam_step_matches(KL_BACKEND_REF); }
Test(s2s_model, adam_step_matches_torch_jit) { adam_step_matches(KL_BACKEND_JIT); }

/* ---- decoding graphs ---------------------------------------------------------------- */

/* Encoder once, then the step graph Tt times fed the teacher-forced tokens
 * dec_in[:, t] and its own state: each step's attention must be the
 * training graph's attn[:, t, :], and the masked per-token losses from its
 * log-probabilities must add up to torch's loss. */
static void decoding_agrees(kl_backend b) {
  golden g;
  load(&g);
  const s2s_config *c = &g.cfg;
  int64_t bs = c->batch, ts = c->src_steps, tt = c->tgt_steps, v = c->tgt_vocab;
  s2s_train t = build_train(c);
  kl_graph *eg = s2s_build_encoder(c), *sg = s2s_build_step(c);
  cr_assert(eg && sg);
  cr_assert_null(kl_graph_error(eg), "%s", kl_graph_error(eg));
  cr_assert_null(kl_graph_error(sg), "%s", kl_graph_error(sg));
  kl_program *tp = mg_compile(kl_graph_ir(t.g), b), *ep = mg_compile(kl_graph_ir(eg), b),
             *sp = mg_compile(kl_graph_ir(sg), b);
  kl_graph_destroy(t.g);
  kl_graph_destroy(eg);
  kl_graph_destroy(sg);
  mg_set_params(tp, g.st);
  cr_expect_gt(mg_set_params(ep, g.st), 0);
  cr_expect_gt(mg_set_params(sp, g.st), 0);

  kl_tensor *tout[2] = {NULL, NULL}, *eout[3] = {NULL, NULL, NULL};
  const char *msg = kl_run(tp, g.in, 5, tout, 2);
  cr_assert_null(msg, "%s", msg);
  msg = kl_run(ep, g.in, 2, eout, 3);
  cr_assert_null(msg, "%s", msg);
  cr_assert_eq(kl_tensor_numel(eout[2]), c->layers * bs * c->hidden);
  const float *train_attn = kl_tensor_data(tout[1]);
  const rt_tensor *gold_attn = gget(&g, "attn");
  const int32_t *dec_in = gi32(&g, 2), *tgt = gi32(&g, 3), *tgt_len = gi32(&g, 4);

  kl_tensor *state = eout[2];
  int64_t bdim = bs;
  kl_tensor *token = kl_tensor_create(KL_TENSOR_I32, 1, &bdim);
  cr_assert_not_null(token);
  double loss = 0, worst_train = 0, worst_torch = 0;
  for (int64_t s = 0; s < tt; s++) {
    for (int64_t r = 0; r < bs; r++)
      ((int32_t *)kl_tensor_data(token))[r] = dec_in[r * tt + s];
    kl_tensor *in[5] = {token, state, eout[0], eout[1], g.in[1]}, *out[3] = {NULL, NULL, NULL};
    msg = kl_run(sp, in, 5, out, 3);
    cr_assert_null(msg, "step %lld: %s", (long long)s, msg);
    cr_assert_eq(kl_tensor_numel(out[0]), bs * v);
    cr_assert_eq(kl_tensor_numel(out[2]), bs * ts);
    const float *logp = kl_tensor_data(out[0]), *a = kl_tensor_data(out[2]);
    for (int64_t r = 0; r < bs; r++) {
      double z = 0;
      for (int64_t k = 0; k < v; k++)
        z += exp(logp[r * v + k]);
      cr_expect(fabs(z - 1) < 1e-5, "step %lld row %lld: sum exp(logp) = %.9g", (long long)s,
                (long long)r, z);
      if (s < tgt_len[r]) loss -= logp[r * v + tgt[r * tt + s]] / (double)tt;
      for (int64_t k = 0; k < ts; k++) {
        double at = train_attn[(r * tt + s) * ts + k];
        double ag = rt_get_f(gold_attn, (r * tt + s) * ts + k);
        worst_train = fmax(worst_train, fabs(a[r * ts + k] - at));
        worst_torch = fmax(worst_torch, fabs(a[r * ts + k] - ag));
        cr_expect(fabs(a[r * ts + k] - at) <= 1e-6 + 1e-5 * at,
                  "step %lld attn[%lld, %lld] = %.9g, training graph %.9g", (long long)s,
                  (long long)r, (long long)k, a[r * ts + k], at);
        cr_expect(fabs(a[r * ts + k] - ag) <= 1e-6 + 1e-5 * ag,
                  "step %lld attn[%lld, %lld] = %.9g, torch %.9g", (long long)s, (long long)r,
                  (long long)k, a[r * ts + k], ag);
      }
    }
    if (state != eout[2]) kl_tensor_destroy(state);
    state = out[1];
    kl_tensor_destroy(out[0]);
    kl_tensor_destroy(out[2]);
  }
  double want = rt_get_f(gget(&g, "loss"), 0), train_loss = *(float *)kl_tensor_data(tout[0]);
  cr_expect(fabs(loss - want) <= 1e-5 * want, "decoded loss %.9g, torch %.9g", loss, want);
  cr_expect(fabs(loss - train_loss) <= 1e-5 * want, "decoded loss %.9g, training graph %.9g", loss,
            train_loss);
  cr_log_info("decoding (%s): attn vs train %.2g, vs torch %.2g; loss rel %.2g", mg_backend_name(b),
              worst_train, worst_torch, fabs(loss - want) / want);
  if (state != eout[2]) kl_tensor_destroy(state);
  kl_tensor_destroy(token);
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(eout[i]);
  kl_tensor_destroy(tout[0]);
  kl_tensor_destroy(tout[1]);
  kl_program_destroy(tp);
  kl_program_destroy(ep);
  kl_program_destroy(sp);
  unload(&g);
}

Test(s2s_model, decoding_graphs_agree_ref) { decoding_agrees(KL_BACKEND_REF); }
Test(s2s_model, decoding_graphs_agree_jit) { decoding_agrees(KL_BACKEND_JIT); }

/* ---- f64 gradient check -------------------------------------------------------------- */

/* One layer keeps the distinct parameters (14) within the harness's
 * GH_MAX; the two-layer stack is covered by the torch gradients above.
 * Row 1 has padded source steps and a target shorter than Tt. */
Test(s2s_model, gradcheck_f64_ref) {
  s2s_config c = {.src_vocab = 5,
                  .tgt_vocab = 4,
                  .embed = 2,
                  .hidden = 3,
                  .layers = 1,
                  .batch = 2,
                  .src_steps = 3,
                  .tgt_steps = 3,
                  .dtype = KL_F64};
  s2s_train t = build_train(&c);
  gh h;
  gh_init_dsl(&h, t.g, 21);
  gh_set(&h, "src", (const double[]){4, 2, 3, 4, 3, 1});
  gh_set(&h, "src_len", (const double[]){3, 2});
  gh_set(&h, "dec_in", (const double[]){2, 1, 3, 2, 3, 1});
  gh_set(&h, "tgt", (const double[]){1, 3, 0, 3, 1, 1});
  gh_set(&h, "tgt_len", (const double[]){3, 1});
  gh_check(&h, "seq2seq-attn", 7,
           ((const char *const[]){"encoder.embedding.weight", "encoder.rnn.weight_hh_l0",
                                  "decoder.attention.W_k.weight", "decoder.attention.W_q.weight",
                                  "decoder.attention.w_v.weight", "decoder.rnn.weight_ih_l0",
                                  "decoder.dense.bias"}));
  gh_free(&h);
}

/* ---- configs ---------------------------------------------------------------------------- */

Test(s2s_model, config_check) {
  s2s_config ok = {.src_vocab = 6,
                   .tgt_vocab = 5,
                   .embed = 2,
                   .hidden = 3,
                   .layers = 2,
                   .dropout = 0.5,
                   .batch = 2,
                   .src_steps = 3,
                   .tgt_steps = 2,
                   .dtype = KL_F32};
  cr_expect_null(s2s_config_check(&ok));
  s2s_config dates = S2S_DATES_DEFAULTS;
  cr_expect_null(s2s_config_check(&dates));
  s2s_config bad[14];
  for (int i = 0; i < 14; i++)
    bad[i] = ok;
  bad[0].src_vocab = 3;
  bad[1].tgt_vocab = 3;
  bad[2].embed = 0;
  bad[3].hidden = 0;
  bad[4].layers = 0;
  bad[5].layers = 9;
  bad[6].dropout = -0.1;
  bad[7].dropout = 1;
  bad[8].dropout = NAN;
  bad[9].batch = 0;
  bad[10].src_steps = 0;
  bad[11].tgt_steps = -1;
  bad[12].dtype = KL_I32;
  bad[13].dtype = KL_BOOL;
  for (int i = 0; i < 14; i++) {
    const char *m = s2s_config_check(&bad[i]);
    cr_expect_not_null(m, "bad config %d accepted", i);
    if (m) cr_expect(strstr(m, "seq2seq-attn") != NULL, "config %d: message '%s'", i, m);
    s2s_train t = s2s_build_train(&bad[i]);
    cr_expect_null(t.g, "train graph built for bad config %d", i);
    cr_expect_not(kl_value_ok(t.loss));
    cr_expect_null(s2s_build_encoder(&bad[i]), "encoder built for bad config %d", i);
    cr_expect_null(s2s_build_step(&bad[i]), "step built for bad config %d", i);
  }
  cr_expect_not_null(s2s_config_check(NULL));
  cr_expect_null(s2s_build_train(NULL).g);
  cr_expect_null(s2s_build_encoder(NULL));
  cr_expect_null(s2s_build_step(NULL));

  /* The good config builds all three graphs without DSL errors, with the
   * documented outputs. */
  s2s_train t = build_train(&ok);
  kl_graph *e = s2s_build_encoder(&ok), *s = s2s_build_step(&ok);
  cr_assert(e && s);
  cr_expect_null(kl_graph_error(e), "%s", kl_graph_error(e));
  cr_expect_null(kl_graph_error(s), "%s", kl_graph_error(s));
  cr_expect_eq(kl_graph_ir(t.g)->nrets, 2);
  cr_expect_eq(kl_graph_ir(e)->nrets, 3);
  cr_expect_eq(kl_graph_ir(s)->nrets, 3);
  kl_graph_destroy(t.g);
  kl_graph_destroy(e);
  kl_graph_destroy(s);
}
