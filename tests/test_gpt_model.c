/* The gpt model (models/gpt.c) against PyTorch running nanoGPT's modules
 * (tests/golden/golden_gpt.py) on both backends: parameter names, order and
 * shapes, logits and loss, every gradient, one clipped Adam step, three
 * steps of nanoGPT's AdamW recipe on the bias=False model; the
 * logits graph's causality; an f64 finite-difference gradcheck; dropout
 * sites and the default graph; configs the model must refuse. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "ir/ir.h"
#include "models/gpt.h"
#include "passes/autodiff.h"
#include "runtime/safetensors.h"
#include "tests/grad_harness.h"
#include "tests/support/golden.h"
#include "tests/support/model_golden.h"

#define GOLDEN_DIR KILN_SOURCE_DIR "/tests/golden/gpt"

typedef struct golden {
  rt_safetensors *st;
  gpt_config cfg;
  int nparams;      /* torch's parameter count */
  kl_tensor *in[2]; /* tokens, targets */
} golden;

static const rt_tensor *gget(const golden *g, const char *name) {
  return golden_st_get(g->st, name);
}

static void load(golden *g) {
  g->st = golden_st_read(GOLDEN_DIR, "gpt");
  g->cfg = (gpt_config){.vocab = mg_int(g->st, "cfg.vocab"),
                        .block = mg_int(g->st, "cfg.block"),
                        .embed = mg_int(g->st, "cfg.embed"),
                        .heads = mg_int(g->st, "cfg.heads"),
                        .layers = mg_int(g->st, "cfg.layers"),
                        .dropout = 0,
                        .batch = mg_int(g->st, "cfg.batch"),
                        .dtype = KL_F32};
  g->nparams = 0;
  for (int i = 0; i < rt_st_count(g->st); i++)
    g->nparams += !strncmp(rt_st_name(g->st, i), "grad.", 5);
  /* wte, wpe, 12 tensors per block, ln_f; no lm_head.weight (tied). */
  cr_assert_eq(g->nparams, 4 + 12 * g->cfg.layers);
  g->in[0] = mg_to_kl(gget(g, "tokens"), KL_TENSOR_I32);
  g->in[1] = mg_to_kl(gget(g, "targets"), KL_TENSOR_I32);
}

static void unload(golden *g) {
  kl_tensor_destroy(g->in[0]);
  kl_tensor_destroy(g->in[1]);
  rt_st_destroy(g->st);
}

static gpt_train build_train(const gpt_config *c) {
  gpt_train t = gpt_build_train(c);
  cr_assert_not_null(t.g);
  cr_assert_null(kl_graph_error(t.g), "%s", kl_graph_error(t.g));
  return t;
}

static kl_graph *build_logits(const gpt_config *c) {
  kl_graph *g = gpt_build_logits(c);
  cr_assert_not_null(g);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));
  return g;
}

/* ---- parameter names ------------------------------------------------------ */

/* Names and shapes are torch's, in nanoGPT's named_parameters() order
 * (written out here from model.py, not read from the golden). */
Test(gpt_model, parameter_names_are_nanogpts) {
  golden g;
  load(&g);
  gpt_train t = build_train(&g.cfg);
  kl_program *p = mg_compile(kl_graph_ir(t.g), KL_BACKEND_REF);
  cr_expect_eq(kl_program_num_params(p), g.nparams);
  cr_expect_eq(mg_expect_torch_names(p, g.st), g.nparams);
  cr_expect_eq(mg_set_params(p, g.st), g.nparams);
  static const char *blk[12] = {"ln_1.weight",      "ln_1.bias",          "attn.c_attn.weight",
                                "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
                                "ln_2.weight",      "ln_2.bias",          "mlp.c_fc.weight",
                                "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias"};
  char want[128];
  for (int i = 0; i < kl_program_num_params(p) && i < g.nparams; i++) {
    int64_t last = g.nparams - 2;
    if (i == 0)
      snprintf(want, sizeof want, "transformer.wte.weight");
    else if (i == 1)
      snprintf(want, sizeof want, "transformer.wpe.weight");
    else if (i >= last)
      snprintf(want, sizeof want, "transformer.ln_f.%s", i == last ? "weight" : "bias");
    else
      snprintf(want, sizeof want, "transformer.h.%d.%s", (i - 2) / 12, blk[(i - 2) % 12]);
    cr_expect_str_eq(kl_program_param_name(p, i), want, "parameter %d", i);
  }
  kl_program_destroy(p);
  kl_graph_destroy(t.g);
  unload(&g);
}

/* ---- forward ---------------------------------------------------------------- */

static void forward_matches(kl_backend b) {
  golden g;
  load(&g);
  gpt_train t = build_train(&g.cfg);
  kl_graph *lg = build_logits(&g.cfg);
  kl_program *p = mg_compile(kl_graph_ir(t.g), b), *lp = mg_compile(kl_graph_ir(lg), b);
  kl_graph_destroy(t.g);
  kl_graph_destroy(lg);
  cr_assert_eq(mg_set_params(p, g.st), g.nparams);
  cr_assert_eq(mg_set_params(lp, g.st), g.nparams);
  kl_tensor *loss = NULL, *logits = NULL;
  const char *msg = kl_run(p, g.in, 2, &loss, 1);
  cr_assert_null(msg, "%s", msg);
  msg = kl_run(lp, g.in, 1, &logits, 1);
  cr_assert_null(msg, "%s", msg);
  cr_assert_eq(kl_tensor_numel(loss), 1);
  cr_assert_eq(kl_tensor_numel(logits), rt_numel(gget(&g, "logits")));
  double wl = mg_expect_close("loss", kl_tensor_data(loss), gget(&g, "loss"), 1e-5, 0);
  double wg = mg_expect_close("logits", kl_tensor_data(logits), gget(&g, "logits"), 1e-5, 1e-5);
  cr_log_info("forward (%s): loss rel %.2g, logits rel %.2g", mg_backend_name(b), wl, wg);
  kl_tensor_destroy(loss);
  kl_tensor_destroy(logits);
  kl_program_destroy(p);
  kl_program_destroy(lp);
  unload(&g);
}

Test(gpt_model, forward_ref) { forward_matches(KL_BACKEND_REF); }
Test(gpt_model, forward_jit) { forward_matches(KL_BACKEND_JIT); }

/* ---- gradients ------------------------------------------------------------------ */

static void gradients_match(kl_backend b) {
  golden g;
  load(&g);
  gpt_train t = build_train(&g.cfg);
  mg_expect_gradients_in(kl_graph_ir(t.g), t.loss.id, g.nparams, g.st, g.in, 2, b, "gpt");
  kl_graph_destroy(t.g);
  unload(&g);
}

Test(gpt_model, gradients_ref) { gradients_match(KL_BACKEND_REF); }
Test(gpt_model, gradients_jit) { gradients_match(KL_BACKEND_JIT); }

/* ---- one training step ------------------------------------------------------------ */

/* loss.backward(), clip to the golden's norm (torch's norm is ~4, so the
 * clip applies), Adam. The first Adam step moves each weight by about
 * lr g / (|g| + eps) for the clipped gradient g, so 1e-6 absolute checks
 * every update where |g| >> eps; nearer eps the update amplifies the
 * float32 gradient's error by lr eps / (|g| + eps)^2, which the tolerance
 * adds (times the gradient test's bound, 1e-5 of the tensor's largest). */
static void adam_step_matches(kl_backend b) {
  golden g;
  load(&g);
  gpt_train t = build_train(&g.cfg);
  double lr = rt_get_f(gget(&g, "lr"), 0), clip_norm = rt_get_f(gget(&g, "clip"), 0);
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = lr, .clip_norm = clip_norm};
  kl_compile_opts o = {.backend = b, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(t.g, t.loss, NULL, 0, &opt, &o, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  kl_program *p = kl_train_step_program(s);
  cr_assert_eq(mg_set_params(p, g.st), g.nparams);
  double loss = 0;
  const char *msg = kl_train_step_run(s, g.in, 2, &loss);
  cr_assert_null(msg, "%s", msg);
  double want = rt_get_f(gget(&g, "loss"), 0), norm = rt_get_f(gget(&g, "grad_norm"), 0);
  cr_expect(fabs(loss - want) <= 1e-5 * want, "loss %.9g, torch %.9g", loss, want);
  cr_assert_gt(norm, 1.05 * clip_norm, "the golden's step must be clipped");
  double clip = clip_norm / (norm + 1e-6), worst = 0;
  int checked = 0, moved_tensors = 0, loose = 0;
  for (int i = 0; i < kl_program_num_params(p); i++) {
    const char *name = kl_program_param_name(p, i);
    if (strchr(name, '@')) continue;
    char key[200], gkey[200];
    snprintf(key, sizeof key, "adam.%s", name);
    snprintf(gkey, sizeof gkey, "grad.%s", name);
    kl_tensor *k = NULL;
    msg = kl_program_get_param(p, name, &k);
    cr_assert_null(msg, "%s", msg);
    const rt_tensor *w = gget(&g, key), *w0 = gget(&g, name), *gr = gget(&g, gkey);
    cr_assert_eq(kl_tensor_numel(k), rt_numel(w), "%s", key);
    const float *v = kl_tensor_data(k);
    double gmax = 0;
    for (int64_t e = 0; e < rt_numel(gr); e++)
      gmax = fmax(gmax, fabs(rt_get_f(gr, e)) * clip);
    int bad = 0, moved = 0;
    double dk = 0;
    for (int64_t e = 0; e < rt_numel(w); e++) {
      double gc = fabs(rt_get_f(gr, e)) * clip, den = gc + 1e-8;
      double tol = 1e-6 + lr * 1e-8 * (1e-5 * gmax) / (den * den);
      double err = fabs(v[e] - rt_get_f(w, e));
      loose += tol > 2e-6;
      if (tol <= 2e-6) worst = fmax(worst, err);
      if (!(err <= tol) && bad++ < 5)
        cr_expect_fail("%s[%lld]: kiln %.9g, torch %.9g (tolerance %.2g)", key, (long long)e, v[e],
                       rt_get_f(w, e), tol);
      cr_expect(fabs(v[e] - rt_get_f(w0, e)) <= lr + 1e-6, "%s[%lld] moved more than lr", name,
                (long long)e);
      moved += fabs(rt_get_f(w, e) - rt_get_f(w0, e)) > 1e-3;
      dk = fmax(dk, fabs(v[e] - rt_get_f(w0, e)));
    }
    cr_expect_eq(bad, 0, "%s: %d elements differ", key, bad);
    if (moved) { /* the step really moved the weights torch moved */
      cr_expect_gt(dk, 4e-3, "%s did not move", name);
      moved_tensors++;
    }
    kl_tensor_destroy(k);
    checked++;
  }
  cr_expect_eq(checked, g.nparams);
  cr_expect_gt(moved_tensors, g.nparams / 2);
  cr_log_info("adam step (%s): worst absolute error %.2g (%d elements with |g| near eps checked "
              "loosely)",
              mg_backend_name(b), worst, loose);
  kl_train_step_destroy(s);
  unload(&g);
}

Test(gpt_model, adam_ref) { adam_step_matches(KL_BACKEND_REF); }
Test(gpt_model, adam_jit) { adam_step_matches(KL_BACKEND_JIT); }

/* ---- nanoGPT's recipe: bias=False, AdamW with two groups, get_lr ---------- */

/* Three steps of nanoGPT's optimizer recipe on the bias=False model
 * (golden_gpt.py's gpt_nobias_adamw): AdamW, beta2 0.99, weight decay on
 * the parameters of rank >= 2 only, get_lr's warm-up, peak and floor, and
 * clipping, in float64 (the golden's precision), so every weight and loss
 * must agree to 1e-9: a wrong group, schedule step or bias-correction
 * shows at 1e-4 or more. */
static double scalar(const rt_safetensors *st, const char *name) {
  return rt_get_f(golden_st_get(st, name), 0);
}

static void nanogpt_recipe_matches(kl_backend b) {
  rt_safetensors *st = golden_st_read(GOLDEN_DIR, "gpt_nobias_adamw");
  gpt_config c = {.vocab = mg_int(st, "cfg.vocab"),
                  .block = mg_int(st, "cfg.block"),
                  .embed = mg_int(st, "cfg.embed"),
                  .heads = mg_int(st, "cfg.heads"),
                  .layers = mg_int(st, "cfg.layers"),
                  .batch = mg_int(st, "cfg.batch"),
                  .dtype = KL_F64,
                  .no_bias = true};
  gpt_train t = build_train(&c);
  kl_optim_opts opt = {.kind = KL_OPT_ADAMW,
                       .lr = scalar(st, "lr"),
                       .beta2 = scalar(st, "beta2"),
                       .weight_decay = scalar(st, "weight_decay"),
                       .clip_norm = scalar(st, "clip"),
                       .schedule = KL_LR_NANOGPT,
                       .warmup = (int64_t)scalar(st, "warmup"),
                       .total_steps = (int64_t)scalar(st, "decay_iters"),
                       .min_lr = scalar(st, "min_lr"),
                       .decay_min_rank = 2};
  kl_compile_opts o = {.backend = b, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(t.g, t.loss, NULL, 0, &opt, &o, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  kl_program *p = kl_train_step_program(s);
  cr_expect_eq(mg_set_params_as(p, st, KL_TENSOR_F64), 3 + 6 * (int)c.layers,
               "wte, wpe, 6 per block, ln_f");
  for (int i = 0; i < kl_program_num_params(p); i++)
    cr_expect_null(strstr(kl_program_param_name(p, i), "bias"), "bias=False has no %s",
                   kl_program_param_name(p, i));
  const rt_tensor *losses = golden_st_get(st, "losses");
  for (int step = 0; step < 3; step++) {
    char key[32];
    snprintf(key, sizeof key, "tokens.%d", step);
    kl_tensor *in[2] = {mg_to_kl(golden_st_get(st, key), KL_TENSOR_I32), NULL};
    snprintf(key, sizeof key, "targets.%d", step);
    in[1] = mg_to_kl(golden_st_get(st, key), KL_TENSOR_I32);
    double loss = 0;
    const char *msg = kl_train_step_run(s, in, 2, &loss);
    cr_assert_null(msg, "step %d: %s", step, msg);
    double want = rt_get_f(losses, step);
    cr_expect(fabs(loss - want) <= 1e-10 * want, "step %d: loss %.12g, torch %.12g", step, loss,
              want);
    kl_tensor_destroy(in[0]);
    kl_tensor_destroy(in[1]);
  }
  double worst = 0;
  for (int i = 0; i < kl_program_num_params(p); i++) {
    const char *name = kl_program_param_name(p, i);
    if (strchr(name, '@')) continue;
    char key[200];
    snprintf(key, sizeof key, "adamw3.%s", name);
    kl_tensor *k = NULL;
    const char *msg = kl_program_get_param(p, name, &k);
    cr_assert_null(msg, "%s", msg);
    const rt_tensor *w = golden_st_get(st, key);
    const double *v = kl_tensor_data(k);
    int bad = 0;
    for (int64_t e = 0; e < rt_numel(w); e++) {
      double d = fabs(v[e] - rt_get_f(w, e));
      worst = fmax(worst, d);
      if (!(d <= 1e-9) && bad++ < 5)
        cr_expect_fail("%s[%lld]: kiln %.12g, torch %.12g", key, (long long)e, v[e],
                       rt_get_f(w, e));
    }
    kl_tensor_destroy(k);
  }
  cr_log_info("nanoGPT recipe, 3 steps (%s): worst absolute error %.2g", mg_backend_name(b), worst);
  kl_train_step_destroy(s);
  rt_st_destroy(st);
}

Test(gpt_model, nanogpt_recipe_ref) { nanogpt_recipe_matches(KL_BACKEND_REF); }
Test(gpt_model, nanogpt_recipe_jit) { nanogpt_recipe_matches(KL_BACKEND_JIT); }

/* ---- causality ----------------------------------------------------------------------- */

/* Changing every token after position t0 keeps the logits at 0..t0 bit for
 * bit (masked weights are exactly 0) and changes some later ones. */
static void causal(kl_backend b) {
  golden g;
  load(&g);
  const gpt_config *c = &g.cfg;
  int64_t bs = c->batch, tt = c->block, v = c->vocab;
  kl_graph *lg = build_logits(c);
  kl_program *p = mg_compile(kl_graph_ir(lg), b);
  kl_graph_destroy(lg);
  mg_set_params(p, g.st);
  kl_tensor *base = NULL;
  const char *msg = kl_run(p, g.in, 1, &base, 1);
  cr_assert_null(msg, "%s", msg);
  const float *l0 = kl_tensor_data(base);
  const int32_t *tok = kl_tensor_data(g.in[0]);
  for (int64_t t0 = 0; t0 + 1 < tt; t0++) {
    int64_t dims[2] = {bs, tt};
    kl_tensor *alt = kl_tensor_create(KL_TENSOR_I32, 2, dims), *out = NULL;
    cr_assert_not_null(alt);
    int32_t *ai = kl_tensor_data(alt);
    for (int64_t r = 0; r < bs; r++)
      for (int64_t s = 0; s < tt; s++)
        ai[r * tt + s] = s <= t0 ? tok[r * tt + s] : (int32_t)((tok[r * tt + s] + 1 + r + s) % v);
    msg = kl_run(p, &alt, 1, &out, 1);
    cr_assert_null(msg, "%s", msg);
    const float *l1 = kl_tensor_data(out);
    int differ = 0, changed = 0;
    for (int64_t r = 0; r < bs; r++)
      for (int64_t s = 0; s < tt; s++)
        for (int64_t k = 0; k < v; k++) {
          int64_t i = (r * tt + s) * v + k;
          if (s <= t0)
            differ += l1[i] != l0[i];
          else
            changed += l1[i] != l0[i];
        }
    cr_expect_eq(differ, 0, "prefix 0..%lld: %d logits depend on later tokens", (long long)t0,
                 differ);
    cr_expect_gt(changed, 0, "changing tokens after %lld changed nothing", (long long)t0);
    kl_tensor_destroy(out);
    kl_tensor_destroy(alt);
  }
  kl_tensor_destroy(base);
  kl_program_destroy(p);
  unload(&g);
}

Test(gpt_model, causal_ref) { causal(KL_BACKEND_REF); }
Test(gpt_model, causal_jit) { causal(KL_BACKEND_JIT); }

/* ---- f64 gradient check -------------------------------------------------------------- */

/* pass_autodiff against central differences (tests/grad_harness.h) for
 * every element of all 16 parameters of a one-layer model; the tied wte
 * gets gradient from both the embedding and the head. */
Test(gpt_model, gradcheck_f64) {
  gpt_config c = {.vocab = 5,
                  .block = 3,
                  .embed = 4,
                  .heads = 2,
                  .layers = 1,
                  .dropout = 0,
                  .batch = 2,
                  .dtype = KL_F64};
  gpt_train t = build_train(&c);
  gh h;
  gh_init_dsl(&h, t.g, 21);
  gh_set(&h, "tokens", (const double[]){4, 0, 2, 1, 1, 3});
  gh_set(&h, "targets", (const double[]){0, 2, 3, 1, 3, 4});
  static const char *names[16] = {
      "transformer.wte.weight",
      "transformer.wpe.weight",
      "transformer.h.0.ln_1.weight",
      "transformer.h.0.ln_1.bias",
      "transformer.h.0.attn.c_attn.weight",
      "transformer.h.0.attn.c_attn.bias",
      "transformer.h.0.attn.c_proj.weight",
      "transformer.h.0.attn.c_proj.bias",
      "transformer.h.0.ln_2.weight",
      "transformer.h.0.ln_2.bias",
      "transformer.h.0.mlp.c_fc.weight",
      "transformer.h.0.mlp.c_fc.bias",
      "transformer.h.0.mlp.c_proj.weight",
      "transformer.h.0.mlp.c_proj.bias",
      "transformer.ln_f.weight",
      "transformer.ln_f.bias",
  };
  cr_assert_eq(h.np, 16);
  for (int i = 0; i < 16; i++)
    if (strstr(names[i], "ln_") && strstr(names[i], "weight")) gh_fill(&h, names[i], 0.5, 1.5);
  gh_check(&h, "gpt", 16, names);
  gh_free(&h);
}

/* ---- dropout and defaults ------------------------------------------------------------ */

/* nanoGPT's dropout sites: after the embeddings, and per block on the
 * attention weights, after attn.c_proj and after mlp.c_proj; a training
 * step with dropout runs and gives about ln(V). */
Test(gpt_model, dropout_sites_and_training_step) {
  gpt_config c = GPT_DATES_DEFAULTS;
  c.batch = 2;
  c.block = 16;
  gpt_train t = build_train(&c);
  const ir_graph *ir = kl_graph_ir(t.g);
  int drops = 0;
  for (int id = 0; id < ir->nnodes; id++)
    drops += ir->nodes[id]->op == IR_OP_DROPOUT;
  cr_expect_eq(drops, 1 + 3 * c.layers);
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.001, .clip_norm = 1.0};
  kl_compile_opts o = {.backend = KL_BACKEND_JIT, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(ir, t.loss.id, NULL, 0, &opt, NULL, &o, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  int64_t dims[2] = {c.batch, c.block};
  kl_tensor *in[2] = {kl_tensor_create(KL_TENSOR_I32, 2, dims),
                      kl_tensor_create(KL_TENSOR_I32, 2, dims)};
  for (int i = 0; i < 2; i++) {
    cr_assert_not_null(in[i]);
    int32_t *v = kl_tensor_data(in[i]);
    for (int64_t k = 0; k < kl_tensor_numel(in[i]); k++)
      v[k] = (int32_t)((7 * k + 3 * i) % c.vocab);
  }
  double loss = 0;
  const char *msg = kl_train_step_run(s, in, 2, &loss);
  cr_assert_null(msg, "%s", msg);
  /* N(0, 0.02) weights: logits near 0, so the loss is near ln(V). */
  cr_expect(fabs(loss - log((double)c.vocab)) < 0.05, "loss %g, ln V %g", loss,
            log((double)c.vocab));
  for (int i = 0; i < 2; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s);

  int out = -1;
  kl_graph *dg = gpt_default_graph(&out);
  cr_assert_not_null(dg);
  cr_expect_null(kl_graph_error(dg), "%s", kl_graph_error(dg));
  cr_expect_eq(out, 0);
  cr_expect_eq(kl_graph_ir(dg)->nrets, 1);
  kl_graph_destroy(dg);
}

/* ---- configs ---------------------------------------------------------------------------- */

Test(gpt_model, config_check) {
  gpt_config ok = {.vocab = 6,
                   .block = 4,
                   .embed = 6,
                   .heads = 3,
                   .layers = 2,
                   .dropout = 0.5,
                   .batch = 2,
                   .dtype = KL_F32};
  cr_expect_null(gpt_config_check(&ok));
  gpt_config defaults = GPT_DATES_DEFAULTS;
  cr_expect_null(gpt_config_check(&defaults));
  enum { NBAD = 17 };
  gpt_config bad[NBAD];
  for (int i = 0; i < NBAD; i++)
    bad[i] = ok;
  bad[0].vocab = 1;
  bad[1].block = 0;
  bad[2].embed = 0;
  bad[3].heads = 0;
  bad[4].heads = 4; /* does not divide 6 */
  bad[5].layers = 0;
  bad[6].layers = 65;
  bad[7].dropout = -0.1;
  bad[8].dropout = 1;
  bad[9].dropout = NAN;
  bad[10].batch = 0;
  bad[11].block = 5000;
  bad[12].dtype = KL_I32;
  bad[13].dtype = KL_BOOL;
  bad[14].embed = 1 << 17;
  bad[15].vocab = (1 << 24) + 1;
  bad[16].batch = -3;
  for (int i = 0; i < NBAD; i++) {
    const char *m = gpt_config_check(&bad[i]);
    cr_expect_not_null(m, "bad config %d accepted", i);
    if (m) cr_expect(strstr(m, "gpt") != NULL, "config %d: message '%s'", i, m);
    gpt_train t = gpt_build_train(&bad[i]);
    cr_expect_null(t.g, "train graph built for bad config %d", i);
    cr_expect_not(kl_value_ok(t.loss));
    cr_expect_null(gpt_build_logits(&bad[i]), "logits graph built for bad config %d", i);
  }
  cr_expect(strstr(gpt_config_check(&bad[4]), "divide") != NULL);
  cr_expect_not_null(gpt_config_check(NULL));
  cr_expect_null(gpt_build_train(NULL).g);
  cr_expect_null(gpt_build_logits(NULL));

  /* The good config builds both graphs with the documented outputs. */
  gpt_train t = build_train(&ok);
  kl_graph *lg = build_logits(&ok);
  const ir_graph *ti = kl_graph_ir(t.g), *li = kl_graph_ir(lg);
  cr_expect_eq(ti->nrets, 1);
  cr_expect_eq(ti->nodes[ti->rets[0]]->type.rank, 0);
  cr_expect_eq(li->nrets, 1);
  const ir_type *lt = &li->nodes[li->rets[0]]->type;
  cr_expect(lt->rank == 3 && lt->dims[0] == 2 && lt->dims[1] == 4 && lt->dims[2] == 6);
  kl_graph_destroy(t.g);
  kl_graph_destroy(lg);
}
