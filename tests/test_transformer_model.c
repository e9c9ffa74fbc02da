/* The transformer model (models/transformer.c) against PyTorch running d2l's
 * modules (tests/golden/golden_transformer.py), post-LN (d2l) and pre-LN, on
 * both backends: parameter names, forward loss and cross-attention, every
 * gradient, one clipped Adam step; the encoder + decoder graphs against the
 * training graph (teacher forcing) and their causality; an f64
 * finite-difference gradcheck; configs the model must refuse. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "ir/ir.h"
#include "models/transformer.h"
#include "passes/autodiff.h"
#include "runtime/ref.h"
#include "runtime/safetensors.h"
#include "tests/support/golden.h"
#include "tests/support/model_golden.h"

#define GOLDEN_DIR KILN_SOURCE_DIR "/tests/golden/transformer"
#define MAXP 96

typedef struct golden {
  rt_safetensors *st;
  tf_config cfg;
  int nparams;      /* torch's parameter count */
  kl_tensor *in[5]; /* src, src_len, dec_in, tgt, tgt_len */
} golden;

static const rt_tensor *gget(const golden *g, const char *name) {
  return golden_st_get(g->st, name);
}

/* variant: "post_ln" or "pre_ln". */
static void load(golden *g, const char *variant) {
  g->st = golden_st_read(GOLDEN_DIR, variant);
  g->cfg = (tf_config){.src_vocab = mg_int(g->st, "cfg.src_vocab"),
                       .tgt_vocab = mg_int(g->st, "cfg.tgt_vocab"),
                       .hidden = mg_int(g->st, "cfg.hidden"),
                       .ffn = mg_int(g->st, "cfg.ffn"),
                       .heads = mg_int(g->st, "cfg.heads"),
                       .blocks = mg_int(g->st, "cfg.blocks"),
                       .dropout = 0,
                       .batch = mg_int(g->st, "cfg.batch"),
                       .src_steps = mg_int(g->st, "cfg.src_steps"),
                       .tgt_steps = mg_int(g->st, "cfg.tgt_steps"),
                       .pre_ln = mg_int(g->st, "cfg.pre_ln") != 0,
                       .dtype = KL_F32};
  cr_assert_eq(g->cfg.pre_ln, !strcmp(variant, "pre_ln"));
  g->nparams = 0;
  for (int i = 0; i < rt_st_count(g->st); i++)
    g->nparams += !strncmp(rt_st_name(g->st, i), "grad.", 5);
  /* Per block: encoder 12 tensors, decoder 18; embeddings, the output
   * layer, and pre-LN's two final norms. */
  cr_assert_eq(g->nparams, 30 * g->cfg.blocks + 4 + (g->cfg.pre_ln ? 4 : 0));
  mg_inputs(g->st, g->in);
}

static void unload(golden *g) {
  mg_inputs_free(g->in);
  rt_st_destroy(g->st);
}

static const int32_t *gi32(const golden *g, int k) { return kl_tensor_data(g->in[k]); }

static tf_train build_train(const tf_config *c) {
  tf_train t = tf_build_train(c);
  cr_assert_not_null(t.g);
  cr_assert_null(kl_graph_error(t.g), "%s", kl_graph_error(t.g));
  return t;
}

/* ---- parameter names ------------------------------------------------------ */

static void names_match(const char *variant) {
  golden g;
  load(&g, variant);
  tf_train t = build_train(&g.cfg);
  kl_program *p = mg_compile(kl_graph_ir(t.g), KL_BACKEND_REF);
  cr_expect_eq(kl_program_num_params(p), g.nparams);
  cr_expect_eq(mg_expect_torch_names(p, g.st), g.nparams);
  cr_expect_eq(mg_set_params(p, g.st), g.nparams);
  kl_program_destroy(p);
  kl_graph_destroy(t.g);
  unload(&g);
}

Test(transformer_model, parameter_names_are_torchs_post_ln) { names_match("post_ln"); }
Test(transformer_model, parameter_names_are_torchs_pre_ln) { names_match("pre_ln"); }

/* ---- forward ---------------------------------------------------------------- */

/* Masked source positions get exactly zero cross-attention. */
static void expect_masked_zero(const golden *g, const float *a) {
  const int32_t *src_len = gi32(g, 1);
  int64_t h = g->cfg.heads, tt = g->cfg.tgt_steps, ts = g->cfg.src_steps;
  for (int64_t r = 0; r < g->cfg.batch; r++)
    for (int64_t q = 0; q < h * tt; q++)
      for (int64_t s = src_len[r]; s < ts; s++)
        cr_expect_eq(a[(r * h * tt + q) * ts + s], 0.0f, "attn row %lld query %lld key %lld",
                     (long long)r, (long long)q, (long long)s);
}

static void forward_matches(const char *variant, kl_backend b) {
  golden g;
  load(&g, variant);
  tf_train t = build_train(&g.cfg);
  kl_program *p = mg_compile(kl_graph_ir(t.g), b);
  kl_graph_destroy(t.g);
  mg_set_params(p, g.st);
  kl_tensor *out[2] = {NULL, NULL};
  const char *msg = kl_run(p, g.in, 5, out, 2);
  cr_assert_null(msg, "%s", msg);
  cr_assert_eq(kl_tensor_numel(out[0]), 1);
  cr_assert_eq(kl_tensor_numel(out[1]), rt_numel(gget(&g, "attn")));
  double wl = mg_expect_close("loss", kl_tensor_data(out[0]), gget(&g, "loss"), 1e-5, 0);
  double wa = mg_expect_close("attn", kl_tensor_data(out[1]), gget(&g, "attn"), 1e-5, 1e-6);
  cr_log_info("forward %s (%s): loss rel %.2g, attn rel %.2g", variant, mg_backend_name(b), wl, wa);
  expect_masked_zero(&g, kl_tensor_data(out[1]));
  kl_tensor_destroy(out[0]);
  kl_tensor_destroy(out[1]);
  kl_program_destroy(p);
  unload(&g);
}

Test(transformer_model, forward_post_ln_ref) { forward_matches("post_ln", KL_BACKEND_REF); }
Test(transformer_model, forward_post_ln_jit) { forward_matches("post_ln", KL_BACKEND_JIT); }
Test(transformer_model, forward_pre_ln_ref) { forward_matches("pre_ln", KL_BACKEND_REF); }
Test(transformer_model, forward_pre_ln_jit) { forward_matches("pre_ln", KL_BACKEND_JIT); }

/* ---- gradients ------------------------------------------------------------------ */

/* Every parameter's gradient (tests/support/model_golden.h). */
static void gradients_match(const char *variant, kl_backend b) {
  golden g;
  load(&g, variant);
  tf_train t = build_train(&g.cfg);
  mg_expect_gradients(kl_graph_ir(t.g), t.loss.id, g.nparams, g.st, b, variant);
  kl_graph_destroy(t.g);
  unload(&g);
}

Test(transformer_model, gradients_post_ln_ref) { gradients_match("post_ln", KL_BACKEND_REF); }
Test(transformer_model, gradients_post_ln_jit) { gradients_match("post_ln", KL_BACKEND_JIT); }
Test(transformer_model, gradients_pre_ln_ref) { gradients_match("pre_ln", KL_BACKEND_REF); }
Test(transformer_model, gradients_pre_ln_jit) { gradients_match("pre_ln", KL_BACKEND_JIT); }

/* ---- one training step ------------------------------------------------------------ */

/* Sum loss, backward, clip to norm 1 (torch's norm is ~3, so the clip
 * applies), Adam lr 0.005. The first Adam step moves each weight by
 * lr g / (|g| + eps) for the clipped gradient g: by about lr wherever |g|
 * >> eps, so 1e-6 absolute checks the direction and size of every update.
 * Where |g| is within a few orders of eps (1e-8) the update amplifies the
 * float32 gradient's error by lr eps / (|g| + eps)^2; the tolerance adds
 * that factor times the gradient test's error bound (1e-5 of the tensor's
 * largest gradient), and every move is at most lr. */
static void adam_step_matches(const char *variant, kl_backend b) {
  golden g;
  load(&g, variant);
  tf_train t = build_train(&g.cfg);
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.005, .clip_norm = 1.0};
  kl_compile_opts o = {.backend = b, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(t.g, t.loss, NULL, 0, &opt, &o, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  kl_program *p = kl_train_step_program(s);
  cr_assert_eq(mg_set_params(p, g.st), g.nparams);
  double loss = 0;
  const char *msg = kl_train_step_run(s, g.in, 5, &loss);
  cr_assert_null(msg, "%s", msg);
  double want = rt_get_f(gget(&g, "loss"), 0);
  cr_expect(fabs(loss - want) <= 1e-5 * want, "loss %.9g, torch %.9g", loss, want);
  int checked = 0, moved_tensors = 0, loose = 0;
  double worst = 0, lr = opt.lr, norm = rt_get_f(gget(&g, "grad_norm"), 0);
  double clip = fmin(1, opt.clip_norm / (norm + 1e-6));
  for (int i = 0; i < kl_program_num_params(p); i++) {
    const char *name = kl_program_param_name(p, i);
    if (strchr(name, '@')) continue;
    char key[200];
    snprintf(key, sizeof key, "adam.%s", name);
    kl_tensor *k = NULL;
    msg = kl_program_get_param(p, name, &k);
    cr_assert_null(msg, "%s", msg);
    const rt_tensor *w = gget(&g, key), *w0 = gget(&g, name);
    cr_assert_eq(kl_tensor_numel(k), rt_numel(w), "%s", key);
    const float *v = kl_tensor_data(k);
    char gkey[200];
    snprintf(gkey, sizeof gkey, "grad.%s", name);
    const rt_tensor *gr = gget(&g, gkey);
    double gmax = 0;
    for (int64_t e = 0; e < rt_numel(gr); e++)
      gmax = fmax(gmax, fabs(rt_get_f(gr, e)) * clip);
    int bad = 0;
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
    }
    cr_expect_eq(bad, 0, "%s: %d elements differ", key, bad);
    /* The step really moved the weights torch moved. */
    int moved = 0;
    for (int64_t e = 0; e < rt_numel(w); e++)
      moved += fabs(rt_get_f(w, e) - rt_get_f(w0, e)) > 1e-3;
    if (moved) {
      double dk = 0;
      for (int64_t e = 0; e < rt_numel(w); e++)
        dk = fmax(dk, fabs(v[e] - rt_get_f(w0, e)));
      cr_expect_gt(dk, 4e-3, "%s did not move", name);
      moved_tensors++;
    }
    kl_tensor_destroy(k);
    checked++;
  }
  cr_expect_eq(checked, g.nparams);
  cr_expect_gt(moved_tensors, g.nparams / 2);
  cr_log_info("adam step %s (%s): worst absolute error %.2g (%d elements with |g| near eps "
              "checked loosely)",
              variant, mg_backend_name(b), worst, loose);
  kl_train_step_destroy(s);
  unload(&g);
}

Test(transformer_model, adam_post_ln_ref) { adam_step_matches("post_ln", KL_BACKEND_REF); }
Test(transformer_model, adam_post_ln_jit) { adam_step_matches("post_ln", KL_BACKEND_JIT); }
Test(transformer_model, adam_pre_ln_ref) { adam_step_matches("pre_ln", KL_BACKEND_REF); }
Test(transformer_model, adam_pre_ln_jit) { adam_step_matches("pre_ln", KL_BACKEND_JIT); }

/* ---- decoding graphs ---------------------------------------------------------------- */

/* Encoder, then the decoder fed the teacher-forced dec_in: its
 * cross-attention must be the training graph's and torch's, and the masked
 * per-token losses from its log-probabilities must add up to torch's loss.
 * Then every token after position t is changed: positions <= t must keep
 * their log-probabilities bit for bit (the causal mask). */
static void decoding_agrees(const char *variant, kl_backend b) {
  golden g;
  load(&g, variant);
  const tf_config *c = &g.cfg;
  int64_t bs = c->batch, tt = c->tgt_steps, v = c->tgt_vocab;
  tf_train t = build_train(c);
  kl_graph *eg = tf_build_encoder(c), *dg = tf_build_decoder(c);
  cr_assert(eg && dg);
  cr_assert_null(kl_graph_error(eg), "%s", kl_graph_error(eg));
  cr_assert_null(kl_graph_error(dg), "%s", kl_graph_error(dg));
  kl_program *tp = mg_compile(kl_graph_ir(t.g), b), *ep = mg_compile(kl_graph_ir(eg), b),
             *dp = mg_compile(kl_graph_ir(dg), b);
  kl_graph_destroy(t.g);
  kl_graph_destroy(eg);
  kl_graph_destroy(dg);
  mg_set_params(tp, g.st);
  int ne = mg_set_params(ep, g.st), nd = mg_set_params(dp, g.st);
  cr_expect_eq(ne + nd, g.nparams, "encoder %d + decoder %d parameters", ne, nd);

  kl_tensor *tout[2] = {NULL, NULL}, *enc = NULL;
  const char *msg = kl_run(tp, g.in, 5, tout, 2);
  cr_assert_null(msg, "%s", msg);
  msg = kl_run(ep, g.in, 2, &enc, 1);
  cr_assert_null(msg, "%s", msg);
  cr_assert_eq(kl_tensor_numel(enc), bs * c->src_steps * c->hidden);
  kl_tensor *din[3] = {g.in[2], enc, g.in[1]}, *dout[2] = {NULL, NULL};
  msg = kl_run(dp, din, 3, dout, 2);
  cr_assert_null(msg, "%s", msg);
  cr_assert_eq(kl_tensor_numel(dout[0]), bs * tt * v);
  cr_assert_eq(kl_tensor_numel(dout[1]), kl_tensor_numel(tout[1]));

  const float *logp = kl_tensor_data(dout[0]);
  const int32_t *tgt = gi32(&g, 3), *tgt_len = gi32(&g, 4);
  double loss = 0;
  for (int64_t r = 0; r < bs; r++)
    for (int64_t s = 0; s < tt; s++) {
      const float *row = logp + (r * tt + s) * v;
      double z = 0;
      for (int64_t k = 0; k < v; k++)
        z += exp(row[k]);
      cr_expect(fabs(z - 1) < 1e-5, "row %lld step %lld: sum exp(logp) = %.9g", (long long)r,
                (long long)s, z);
      if (s < tgt_len[r]) loss -= row[tgt[r * tt + s]] / (double)tt;
    }
  double want = rt_get_f(gget(&g, "loss"), 0), train_loss = *(float *)kl_tensor_data(tout[0]);
  cr_expect(fabs(loss - want) <= 1e-5 * want, "decoded loss %.9g, torch %.9g", loss, want);
  cr_expect(fabs(loss - train_loss) <= 1e-5 * want, "decoded loss %.9g, training graph %.9g", loss,
            train_loss);
  const float *da = kl_tensor_data(dout[1]), *ta = kl_tensor_data(tout[1]);
  double worst = 0;
  for (int64_t i = 0; i < kl_tensor_numel(dout[1]); i++) {
    worst = fmax(worst, fabs(da[i] - ta[i]));
    cr_expect(fabs(da[i] - ta[i]) <= 1e-6 + 1e-5 * ta[i], "attn[%lld] %.9g, training graph %.9g",
              (long long)i, da[i], ta[i]);
  }
  mg_expect_close("decoder attn", da, gget(&g, "attn"), 1e-5, 1e-6);

  /* Causality: scramble the tokens after position t. */
  for (int64_t t0 = 0; t0 + 1 < tt; t0++) {
    int64_t dims[2] = {bs, tt};
    kl_tensor *alt = kl_tensor_create(KL_TENSOR_I32, 2, dims);
    cr_assert_not_null(alt);
    int32_t *ai = kl_tensor_data(alt);
    for (int64_t r = 0; r < bs; r++)
      for (int64_t s = 0; s < tt; s++)
        ai[r * tt + s] = s <= t0 ? gi32(&g, 2)[r * tt + s] : (int32_t)((r + 3 * s + t0) % v);
    kl_tensor *in2[3] = {alt, enc, g.in[1]}, *out2[2] = {NULL, NULL};
    msg = kl_run(dp, in2, 3, out2, 2);
    cr_assert_null(msg, "%s", msg);
    const float *lp2 = kl_tensor_data(out2[0]);
    int differ = 0, changed = 0;
    for (int64_t r = 0; r < bs; r++)
      for (int64_t s = 0; s < tt; s++)
        for (int64_t k = 0; k < v; k++) {
          int64_t i = (r * tt + s) * v + k;
          if (s <= t0)
            differ += lp2[i] != logp[i];
          else
            changed += lp2[i] != logp[i];
        }
    cr_expect_eq(differ, 0, "prefix 0..%lld: %d log-probabilities depend on later tokens",
                 (long long)t0, differ);
    cr_expect_gt(changed, 0, "scrambling tokens after %lld changed nothing", (long long)t0);
    kl_tensor_destroy(out2[0]);
    kl_tensor_destroy(out2[1]);
    kl_tensor_destroy(alt);
  }
  cr_log_info("decoding %s (%s): attn vs train %.2g; loss rel %.2g", variant, mg_backend_name(b),
              worst, fabs(loss - want) / want);
  kl_tensor_destroy(enc);
  for (int i = 0; i < 2; i++) {
    kl_tensor_destroy(tout[i]);
    kl_tensor_destroy(dout[i]);
  }
  kl_program_destroy(tp);
  kl_program_destroy(ep);
  kl_program_destroy(dp);
  unload(&g);
}

Test(transformer_model, decoding_post_ln_ref) { decoding_agrees("post_ln", KL_BACKEND_REF); }
Test(transformer_model, decoding_post_ln_jit) { decoding_agrees("post_ln", KL_BACKEND_JIT); }
Test(transformer_model, decoding_pre_ln_ref) { decoding_agrees("pre_ln", KL_BACKEND_REF); }
Test(transformer_model, decoding_pre_ln_jit) { decoding_agrees("pre_ln", KL_BACKEND_JIT); }

/* ---- f64 gradient check -------------------------------------------------------------- */

typedef struct fd_params {
  int n;
  const char *name[MAXP];
  rt_tensor *t[MAXP];
} fd_params;

static const rt_tensor *fd_lookup(void *ctx, const ir_node *p) {
  fd_params *f = ctx;
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->name[i], ir_node_attr(p, "name")->s)) return f->t[i];
  return NULL;
}

static double fd_rand(uint64_t *s) { /* splitmix64 -> [0, 1) */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

static double fd_loss(const ir_graph *g, rt_tensor **args, fd_params *f) {
  rt_tensor *outs[4] = {0};
  ir_diag d = {0};
  cr_assert(g->nrets <= 4);
  cr_assert(rt_ref_run(g, (const rt_tensor *const *)args, fd_lookup, f, NULL, outs, &d), "%s",
            d.msg);
  double l = rt_get_f(outs[0], 0);
  for (int i = 0; i < g->nrets; i++)
    rt_tensor_destroy(outs[i]);
  return l;
}

/* pass_autodiff's gradient of the loss against central differences of the
 * reference interpreter in f64, for every element of every parameter of a
 * one-block model (more parameters than tests/grad_harness.h holds). Row 1
 * has a padded source and a target shorter than Tt. */
static void gradcheck(bool pre_ln, bool tie) {
  tf_config c = {.src_vocab = 5,
                 .tgt_vocab = 4,
                 .hidden = 4,
                 .ffn = 3,
                 .heads = 2,
                 .blocks = 1,
                 .batch = 2,
                 .src_steps = 3,
                 .tgt_steps = 3,
                 .pre_ln = pre_ln,
                 .tie_output = tie,
                 .dtype = KL_F64};
  tf_train t = build_train(&c);
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(kl_graph_ir(t.g), &d);
  cr_assert_not_null(g, "%s", d.msg);
  int loss = t.loss.id;
  kl_graph_destroy(t.g);

  static const int32_t in[5][6] = {
      {4, 2, 3, 3, 1, 1}, {3, 2}, {2, 1, 3, 2, 3, 1}, {1, 3, 0, 3, 1, 1}, {3, 1}};
  int arg_ids[5];
  cr_assert_eq(ir_graph_args(g, NULL), 5);
  ir_graph_args(g, arg_ids);
  rt_tensor *args[5];
  for (int i = 0; i < 5; i++) {
    args[i] = rt_tensor_create(&g->nodes[arg_ids[i]]->type);
    cr_assert_not_null(args[i]);
    for (int64_t k = 0; k < rt_numel(args[i]); k++)
      rt_set_i(args[i], k, in[i][k]);
  }
  fd_params f = {0};
  int wrt[MAXP], grads[MAXP];
  uint64_t rng = 7;
  for (int id = 0; id < g->nnodes; id++) {
    if (g->nodes[id]->op != IR_OP_PARAM) continue;
    cr_assert_lt(f.n, MAXP);
    f.name[f.n] = ir_node_attr(g->nodes[id], "name")->s;
    f.t[f.n] = rt_tensor_create(&g->nodes[id]->type);
    cr_assert_not_null(f.t[f.n]);
    /* LayerNorm gains near 1 (as initialised), everything else in [-1, 1]. */
    bool gain = strstr(f.name[f.n], "ln.weight") != NULL;
    for (int64_t k = 0; k < rt_numel(f.t[f.n]); k++)
      rt_set_f(f.t[f.n], k, gain ? 0.5 + fd_rand(&rng) : 2 * fd_rand(&rng) - 1);
    wrt[f.n++] = id;
  }
  cr_expect_eq(f.n, 34 + (pre_ln ? 4 : 0) - (tie ? 1 : 0));

  ir_graph *gg = ir_graph_clone(g, &d);
  cr_assert_not_null(gg, "%s", d.msg);
  cr_assert(pass_autodiff(gg, loss, f.n, wrt, grads, &d), "pass_autodiff: %s", d.msg);
  ir_set_returns(gg, f.n, grads);
  rt_tensor *an[MAXP] = {0};
  cr_assert(rt_ref_run(gg, (const rt_tensor *const *)args, fd_lookup, &f, NULL, an, &d), "%s",
            d.msg);
  double l0 = fd_loss(g, args, &f), eps = 1e-6, atol = 1e-8 + 4e-10 * fabs(l0), worst = 0;
  int64_t checked = 0, nonzero = 0;
  for (int k = 0; k < f.n; k++) {
    int bad = 0;
    for (int64_t i = 0; i < rt_numel(f.t[k]); i++) {
      double v = rt_get_f(f.t[k], i);
      rt_set_f(f.t[k], i, v + eps);
      double lp = fd_loss(g, args, &f);
      rt_set_f(f.t[k], i, v - eps);
      double lm = fd_loss(g, args, &f);
      rt_set_f(f.t[k], i, v);
      double num = (lp - lm) / (2 * eps), got = rt_get_f(an[k], i);
      worst = fmax(worst, fabs(got - num) / (atol + 1e-6 * fabs(num)));
      nonzero += fabs(num) > 1e-6;
      checked++;
      if (!(fabs(got - num) <= atol + 1e-6 * fabs(num)) && bad++ < 5)
        cr_expect_fail("d loss / d %s[%lld]: autodiff %.12g, numeric %.12g", f.name[k],
                       (long long)i, got, num);
    }
    cr_expect_eq(bad, 0, "%s: %d elements differ", f.name[k], bad);
    rt_tensor_destroy(an[k]);
  }
  cr_expect_gt(nonzero, checked / 2, "most gradients should be nonzero");
  cr_log_info("gradcheck %s%s: %lld elements, worst error / tolerance %.2g",
              pre_ln ? "pre-LN" : "post-LN", tie ? " tied" : "", (long long)checked, worst);
  for (int k = 0; k < f.n; k++)
    rt_tensor_destroy(f.t[k]);
  for (int i = 0; i < 5; i++)
    rt_tensor_destroy(args[i]);
  ir_graph_destroy(gg);
  ir_graph_destroy(g);
}

Test(transformer_model, gradcheck_f64_post_ln) { gradcheck(false, false); }
Test(transformer_model, gradcheck_f64_pre_ln_tied) { gradcheck(true, true); }

/* ---- dropout and defaults ------------------------------------------------------------ */

/* With dropout on, the graph has d2l's dropout sites: after each
 * positional encoding, on every attention's weights and every sublayer
 * output (encoder block: 3, decoder block: 5); a training step runs. */
Test(transformer_model, dropout_sites_and_training_step) {
  tf_config c = TF_DATES_DEFAULTS;
  c.batch = 4;
  tf_train t = build_train(&c);
  const ir_graph *ir = kl_graph_ir(t.g);
  int drops = 0;
  for (int id = 0; id < ir->nnodes; id++)
    drops += ir->nodes[id]->op == IR_OP_DROPOUT;
  cr_expect_eq(drops, 2 + 8 * c.blocks);
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.001, .clip_norm = 1.0};
  kl_compile_opts o = {.backend = KL_BACKEND_REF, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(ir, t.loss.id, NULL, 0, &opt, NULL, &o, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  int64_t d2[2] = {c.batch, c.src_steps}, dt[2] = {c.batch, c.tgt_steps}, d1 = c.batch;
  kl_tensor *in[5] = {
      kl_tensor_create(KL_TENSOR_I32, 2, d2), kl_tensor_create(KL_TENSOR_I32, 1, &d1),
      kl_tensor_create(KL_TENSOR_I32, 2, dt), kl_tensor_create(KL_TENSOR_I32, 2, dt),
      kl_tensor_create(KL_TENSOR_I32, 1, &d1)};
  for (int i = 0; i < 5; i++) {
    cr_assert_not_null(in[i]);
    int32_t *v = kl_tensor_data(in[i]);
    for (int64_t k = 0; k < kl_tensor_numel(in[i]); k++)
      v[k] = i == 1 ? 7 + (int32_t)k : i == 4 ? 5 + (int32_t)k : 4 + (int32_t)(k % 11);
  }
  double loss = 0;
  const char *msg = kl_train_step_run(s, in, 5, &loss);
  cr_assert_null(msg, "%s", msg);
  /* Untrained: about ln(V) per token, over at most tgt_len / Tt of them. */
  cr_expect(isfinite(loss) && loss > 0 && loss < c.batch * 3 * log((double)c.tgt_vocab), "loss %g",
            loss);
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s);

  int out = -1;
  kl_graph *dg = tf_default_graph(&out);
  cr_assert_not_null(dg);
  cr_expect_null(kl_graph_error(dg), "%s", kl_graph_error(dg));
  cr_expect_eq(out, 0);
  cr_expect_eq(kl_graph_ir(dg)->nrets, 2);
  kl_graph_destroy(dg);
}

/* ---- configs ---------------------------------------------------------------------------- */

Test(transformer_model, config_check) {
  tf_config ok = {.src_vocab = 6,
                  .tgt_vocab = 5,
                  .hidden = 6,
                  .ffn = 5,
                  .heads = 3,
                  .blocks = 2,
                  .dropout = 0.5,
                  .batch = 2,
                  .src_steps = 3,
                  .tgt_steps = 2,
                  .dtype = KL_F32};
  cr_expect_null(tf_config_check(&ok));
  tf_config dates = TF_DATES_DEFAULTS;
  cr_expect_null(tf_config_check(&dates));
  enum { NBAD = 19 };
  tf_config bad[NBAD];
  for (int i = 0; i < NBAD; i++)
    bad[i] = ok;
  bad[0].src_vocab = 3;
  bad[1].tgt_vocab = 3;
  bad[2].hidden = 0;
  bad[3].hidden = 9; /* divisible by heads 3 but odd: no sin/cos pairs */
  bad[4].heads = 0;
  bad[5].heads = 4; /* does not divide 6 */
  bad[6].ffn = 0;
  bad[7].blocks = 0;
  bad[8].blocks = 33;
  bad[9].dropout = -0.1;
  bad[10].dropout = 1;
  bad[11].dropout = NAN;
  bad[12].batch = 0;
  bad[13].src_steps = 0;
  bad[14].tgt_steps = -1;
  bad[15].src_steps = 5000;
  bad[16].dtype = KL_I32;
  bad[17].dtype = KL_BOOL;
  bad[18].hidden = 1 << 17;
  for (int i = 0; i < NBAD; i++) {
    const char *m = tf_config_check(&bad[i]);
    cr_expect_not_null(m, "bad config %d accepted", i);
    if (m) cr_expect(strstr(m, "transformer") != NULL, "config %d: message '%s'", i, m);
    tf_train t = tf_build_train(&bad[i]);
    cr_expect_null(t.g, "train graph built for bad config %d", i);
    cr_expect_not(kl_value_ok(t.loss));
    cr_expect_null(tf_build_encoder(&bad[i]), "encoder built for bad config %d", i);
    cr_expect_null(tf_build_decoder(&bad[i]), "decoder built for bad config %d", i);
  }
  cr_expect(strstr(tf_config_check(&bad[3]), "even") != NULL);
  cr_expect(strstr(tf_config_check(&bad[5]), "divide") != NULL);
  cr_expect_not_null(tf_config_check(NULL));
  cr_expect_null(tf_build_train(NULL).g);
  cr_expect_null(tf_build_encoder(NULL));
  cr_expect_null(tf_build_decoder(NULL));

  /* The good config builds all three graphs with the documented outputs;
   * tied output has no decoder.dense.weight. */
  for (int tie = 0; tie < 2; tie++) {
    ok.tie_output = tie;
    ok.pre_ln = tie;
    tf_train t = build_train(&ok);
    kl_graph *e = tf_build_encoder(&ok), *dg = tf_build_decoder(&ok);
    cr_assert(e && dg);
    cr_expect_null(kl_graph_error(e), "%s", kl_graph_error(e));
    cr_expect_null(kl_graph_error(dg), "%s", kl_graph_error(dg));
    cr_expect_eq(kl_graph_ir(t.g)->nrets, 2);
    cr_expect_eq(kl_graph_ir(e)->nrets, 1);
    cr_expect_eq(kl_graph_ir(dg)->nrets, 2);
    const ir_graph *ir = kl_graph_ir(dg);
    int dense_w = 0, params = 0;
    for (int id = 0; id < ir->nnodes; id++) {
      if (ir->nodes[id]->op != IR_OP_PARAM) continue;
      params++;
      dense_w += !strcmp(ir_node_attr(ir->nodes[id], "name")->s, "decoder.dense.weight");
    }
    cr_expect_eq(dense_w, !tie);
    cr_expect_eq(params, 1 + 18 * ok.blocks + (tie ? 1 : 2) + (tie ? 2 : 0));
    const ir_type *at = &ir->nodes[ir->rets[1]]->type;
    cr_expect(at->rank == 4 && at->dims[0] == 2 && at->dims[1] == 3 && at->dims[2] == 2 &&
              at->dims[3] == 3);
    kl_graph_destroy(t.g);
    kl_graph_destroy(e);
    kl_graph_destroy(dg);
  }
}
