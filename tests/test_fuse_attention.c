/* fuse-attention: the shipped models' attentions become exactly one region
 * each; every canonical mask form fuses and computes what it replaced
 * (reference interpreter, forward, dropout and gradients); the
 * scale_mask_softmax kernels (reference vs JIT, gradient vs central
 * differences); --explain-fusion's messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "frontend/kiln.h"
#include "models/gpt.h"
#include "models/transformer.h"
#include "passes/autodiff.h"
#include "passes/pipeline.h"
#include "runtime/ref.h"
#include "tests/support/ir_check.h"

/* ---- helpers ---------------------------------------------------------------- */

static ir_graph *fuse(const ir_graph *g, FILE *explain) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert(c);
  pass_opts o = {.explain = explain};
  bool changed = false;
  cr_assert(pass_fuse_attention(&c, &o, &changed, &d), "fuse: %s", d.msg);
  cr_assert(ir_verify(c, &d), "after fuse: %s", d.msg);
  return c;
}

static void expect_close(rt_tensor **a, rt_tensor **b, int n, double tol, const char *what) {
  for (int r = 0; r < n; r++) {
    cr_assert_eq(rt_numel(a[r]), rt_numel(b[r]));
    for (int64_t e = 0; e < rt_numel(a[r]); e++) {
      double x = rt_get_f(a[r], e), y = rt_get_f(b[r], e);
      cr_assert(fabs(x - y) <= tol * (1 + fabs(x)), "%s: output %d element %lld: %.17g vs %.17g",
                what, r, (long long)e, x, y);
    }
  }
}

/* ---- graphs with each mask form --------------------------------------------- */

enum { M_NONE, M_LEN_B, M_LEN_BQ, M_BIAS };

/* q [2,3,5], k [2,4,5], v [2,4,2] in f64: scores scaled by 0.4, masked,
 * softmax, optional dropout, @ v; returns o (and the weights). */
static void attention_text(char *buf, size_t len, int mask, bool causal, bool dropout,
                           bool explicit_t, bool ret_weights) {
  static const char *margs[] = {"", ", %len: i32[2]", ", %len: i32[2,3]", ", %bias: f64[3,4]"};
  size_t k = (size_t)snprintf(
      buf, len, "graph @att(%%q: f64[2,3,5], %%k: f64[2,4,5], %%v: f64[2,4,2]%s) {\n", margs[mask]);
#define OUT(...) k += (size_t)snprintf(buf + k, len - k, __VA_ARGS__)
  if (explicit_t)
    OUT("  %%kt = transpose(%%k) {perm = [0, 2, 1]} : f64[2,5,4]\n"
        "  %%s = matmul(%%q, %%kt) : f64[2,3,4]\n");
  else
    OUT("  %%s = matmul(%%q, %%k) {transpose_b = true} : f64[2,3,4]\n");
  OUT("  %%c = const(0.4) : f64[]\n  %%x0 = mul(%%s, %%c) : f64[2,3,4]\n");
  const char *cur = "x0";
  if (mask == M_LEN_B || mask == M_LEN_BQ)
    OUT("  %%x1 = sequence_mask(%%x0, %%len) {value = -1000000.0} : f64[2,3,4]\n"), cur = "x1";
  if (mask == M_BIAS) OUT("  %%x1 = add(%%x0, %%bias) : f64[2,3,4]\n"), cur = "x1";
  if (causal) {
    OUT("  %%i = iota() {shape = [3, 4], axis = 0, dtype = \"i32\"} : i32[3,4]\n"
        "  %%j = iota() {shape = [3, 4], axis = 1, dtype = \"i32\"} : i32[3,4]\n"
        "  %%f = cmp_gt(%%j, %%i) : bool[3,4]\n"
        "  %%fill = const(-1000000.0) : f64[]\n"
        "  %%x2 = select(%%f, %%fill, %%%s) : f64[2,3,4]\n",
        cur);
    cur = "x2";
  }
  OUT("  %%w = softmax(%%%s) {axis = -1} : f64[2,3,4]\n", cur);
  if (dropout) OUT("  %%wd = dropout(%%w) {p = 0.3} : f64[2,3,4]\n");
  OUT("  %%o = matmul(%%%s, %%v) : f64[2,3,2]\n", dropout ? "wd" : "w");
  OUT("  return %%o%s\n}\n", ret_weights ? ", %w" : "");
#undef OUT
}

static const struct {
  int mask;
  bool causal, dropout, explicit_t;
  const char *name;
} forms[] = {
    {M_NONE, false, false, false, "scale only"},
    {M_LEN_B, false, false, true, "lengths [B], explicit K^T"},
    {M_LEN_BQ, false, false, false, "lengths per query"},
    {M_BIAS, false, false, false, "bias"},
    {M_NONE, true, false, false, "causal"},
    {M_LEN_B, true, false, false, "causal + lengths"},
    {M_BIAS, true, false, true, "causal + bias"},
    {M_LEN_BQ, true, true, false, "causal + lengths + dropout"},
    {M_LEN_B, false, true, false, "lengths + dropout"},
};
#define NFORMS (sizeof forms / sizeof forms[0])

/* (c) + (b): each form becomes one attention region and computes the same
 * outputs on the reference interpreter, in eval and training mode. */
Test(fuse_attention, each_mask_form_fuses_and_matches) {
  char text[4096];
  for (size_t f = 0; f < NFORMS; f++) {
    attention_text(text, sizeof text, forms[f].mask, forms[f].causal, forms[f].dropout,
                   forms[f].explicit_t, false);
    ir_graph *g = tc_parse(text), *h = fuse(g, NULL);
    cr_assert_eq(tc_count_op(h, IR_OP_ATTENTION), 1, "%s: no attention region", forms[f].name);
    cr_assert_eq(tc_count_op(h, IR_OP_SOFTMAX) + tc_count_op(h, IR_OP_MATMUL), 0, "%s",
                 forms[f].name);
    cr_assert_eq(h->nnodes, ir_graph_args(h, NULL) + 1, "%s: leftovers", forms[f].name);
    for (int training = 0; training < 2; training++) {
      rt_tensor **args = tc_random_args(g, 7 + f, 4);
      rt_tensor **a = tc_ref_outputs(g, args, training), **b = tc_ref_outputs(h, args, training);
      expect_close(a, b, 1, 1e-12, forms[f].name);
      tc_free_tensors(a), tc_free_tensors(b), tc_free_tensors(args);
    }
    ir_graph_destroy(g), ir_graph_destroy(h);
  }
}

/* Gradients of sum(o) w.r.t. q, k, v (and the bias) on g; NULL when g
 * has a node without a gradient rule (the message in *why). */
static rt_tensor **grads(const ir_graph *src, rt_tensor **args, bool bias, char *why) {
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(src, &d);
  int wrt[4] = {0, 1, 2, 3}, gr[4], n = bias ? 4 : 3;
  if (!pass_autodiff(g, g->rets[0], n, wrt, gr, &d)) {
    snprintf(why, 256, "%.200s", d.msg);
    ir_graph_destroy(g);
    return NULL;
  }
  ir_set_returns(g, n, gr);
  rt_tensor **outs = tc_ref_outputs(g, args, true);
  ir_graph_destroy(g);
  return outs;
}

static void expect_same_grads(const ir_graph *g, const ir_graph *h, bool bias, const char *name,
                              char *why, bool *skipped) {
  rt_tensor **args = tc_random_args(g, 99, 4);
  rt_tensor **a = grads(g, args, bias, why), **b = grads(h, args, bias, why);
  cr_assert(a, "unfused %s: %s", name, why);
  if (!b) *skipped = true;
  if (b) expect_close(a, b, bias ? 4 : 3, 1e-10, name);
  tc_free_tensors(a), tc_free_tensors(args);
  if (b) tc_free_tensors(b);
}

/* scale_mask_softmax (weights returned) differentiates through grad_sms.c:
 * the same gradients as the unfused graph, every mask form. */
Test(fuse_attention, sms_gradients_match_unfused) {
  char text[4096], why[256];
  for (size_t f = 0; f < NFORMS; f++) {
    attention_text(text, sizeof text, forms[f].mask, forms[f].causal, forms[f].dropout, false,
                   true);
    ir_graph *g = tc_parse(text), *h = fuse(g, NULL);
    cr_assert_eq(tc_count_op(h, IR_OP_SCALE_MASK_SOFTMAX), 1, "%s", forms[f].name);
    cr_assert_eq(tc_count_op(h, IR_OP_SOFTMAX), 0, "%s", forms[f].name);
    bool skipped = false;
    expect_same_grads(g, h, forms[f].mask == M_BIAS, forms[f].name, why, &skipped);
    cr_assert(!skipped, "%s: %s", forms[f].name, why);
    ir_graph_destroy(g), ir_graph_destroy(h);
  }
}

/* The attention region's gradients need the attention gradient rule
 * (grad_attention.c, another helper's); it gives a bias none, so the bias
 * is a constant input here. */
Test(fuse_attention, attention_gradients_match_unfused) {
  char text[4096], why[256] = "";
  for (size_t f = 0; f < NFORMS; f++) {
    attention_text(text, sizeof text, forms[f].mask, forms[f].causal, forms[f].dropout, false,
                   false);
    ir_graph *g = tc_parse(text), *h = fuse(g, NULL);
    cr_assert_eq(tc_count_op(h, IR_OP_ATTENTION), 1, "%s", forms[f].name);
    bool skipped = false;
    expect_same_grads(g, h, false, forms[f].name, why, &skipped);
    ir_graph_destroy(g), ir_graph_destroy(h);
    if (skipped) cr_skip_test("attention has no usable gradient rule yet: %s", why);
  }
}

/* ---- (a) the shipped models ------------------------------------------------- */

static ir_graph *model_graph(kl_graph *kg, int loss_output, bool loss_only) {
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(kl_graph_ir(kg), &d);
  cr_assert(g);
  if (loss_only) ir_set_returns(g, 1, &g->rets[loss_output]);
  return g;
}

static void expect_counts(kl_graph *kg, int lo, int attentions, const char *model) {
  /* the forward pipeline up to fusion */
  ir_graph *g = model_graph(kg, lo, true);
  pass_opts po = {.verify_each = true, .stop_after = "fuse-attention"};
  ir_diag d = {0};
  cr_assert(pass_run_pipeline(&g, &po, &d), "%s: %s", model, d.msg);
  cr_assert_eq(tc_count_op(g, IR_OP_ATTENTION), attentions, "%s: %d attention regions", model,
               tc_count_op(g, IR_OP_ATTENTION));
  cr_assert_eq(tc_count_op(g, IR_OP_SOFTMAX), 0, "%s", model);
  cr_assert_eq(tc_count_op(g, IR_OP_SCALE_MASK_SOFTMAX), 0, "%s", model);
  ir_graph_destroy(g);

  /* the training pipeline through autodiff: the backward of each region is
   * one attention_grad; the only softmaxes left are those the loss's own
   * gradient makes, which the unfused baseline has as well */
  int base_softmax = 0;
  for (int fused = 1; fused >= 0; fused--) {
    g = model_graph(kg, lo, false);
    po.stop_after = "autodiff";
    po.no_fusion = !fused;
    char *err = NULL;
    kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 1e-3};
    ir_graph *t = kl_train_graph_with(g, g->rets[lo], NULL, 0, &opt, &po, &err);
    ir_graph_destroy(g);
    if (!t && err && strstr(err, "no gradient rule")) {
      cr_log_warn("%s: %s", model, err);
      free(err);
      cr_skip_test("attention has no gradient rule yet");
    }
    cr_assert(t, "%s: %s", model, err ? err : "");
    if (!fused) {
      cr_assert_eq(tc_count_op(t, IR_OP_ATTENTION), 0);
      cr_assert_eq(tc_count_op(t, IR_OP_SOFTMAX) - base_softmax, attentions, "%s", model);
    } else {
      cr_assert_eq(tc_count_op(t, IR_OP_ATTENTION), attentions, "%s: %d attention regions", model,
                   tc_count_op(t, IR_OP_ATTENTION));
      cr_assert_eq(tc_count_op(t, IR_OP_ATTENTION_GRAD), attentions, "%s", model);
      base_softmax = tc_count_op(t, IR_OP_SOFTMAX);
    }
    ir_graph_destroy(t);
  }
}

/* d2l's Transformer: per block one encoder self-attention, one causal
 * decoder self-attention and one cross-attention. */
Test(fuse_attention, transformer_every_attention_is_one_region) {
  tf_config c = TF_DATES_DEFAULTS;
  int lo = 0;
  kl_graph *kg = tf_default_graph(&lo);
  cr_assert(kg);
  /* With the returned cross-attention weights kept, that one attention
   * cannot swallow them: it becomes scale_mask_softmax. */
  ir_graph *g = model_graph(kg, lo, false);
  ir_graph *h = fuse(g, NULL);
  int n = (int)(3 * c.blocks);
  cr_assert_eq(tc_count_op(h, IR_OP_ATTENTION), n - 1);
  cr_assert_eq(tc_count_op(h, IR_OP_SCALE_MASK_SOFTMAX), 1);
  cr_assert_eq(tc_count_op(h, IR_OP_SOFTMAX), 0);
  ir_graph_destroy(g), ir_graph_destroy(h);
  expect_counts(kg, lo, n, "transformer");
  kl_graph_destroy(kg);
}

Test(fuse_attention, gpt_every_attention_is_one_region) {
  gpt_config c = GPT_DATES_DEFAULTS;
  int lo = 0;
  kl_graph *kg = gpt_default_graph(&lo);
  cr_assert(kg);
  expect_counts(kg, lo, (int)c.layers, "gpt");
  kl_graph_destroy(kg);
}

/* ---- (d) scale_mask_softmax kernels ----------------------------------------- */

static const char *sms_graphs[] = {
    "graph @s(%x: f32[2,3,5], %len: i32[2]) {\n"
    "  %p = scale_mask_softmax(%x, %len) {scale = 0.7, causal = true} : f32[2,3,5]\n"
    "  return %p\n}\n",
    "graph @s(%x: f32[2,3,5], %len: i32[2,3]) {\n"
    "  %p = scale_mask_softmax(%x, %len) {scale = 1.5, mask_value = -10000.0} : f32[2,3,5]\n"
    "  return %p\n}\n",
    "graph @s(%x: f32[2,3,5], %b: f32[3,5]) {\n"
    "  %p = scale_mask_softmax(%x, %b) {scale = 0.5, causal = true} : f32[2,3,5]\n"
    "  return %p\n}\n",
    "graph @s(%x: f32[4,7]) {\n"
    "  %p = scale_mask_softmax(%x) {scale = 3.0} : f32[4,7]\n"
    "  return %p\n}\n",
    "graph @s(%x: f64[2,2,3,3], %b: f64[2,1,1,3]) {\n"
    "  %p = scale_mask_softmax(%x, %b) {scale = 0.25} : f64[2,2,3,3]\n"
    "  return %p\n}\n",
};

static kl_tensor_dtype kdt(ir_dtype dt) {
  switch (dt) {
  case IR_F32: return KL_TENSOR_F32;
  case IR_F64: return KL_TENSOR_F64;
  case IR_I32: return KL_TENSOR_I32;
  case IR_I64: return KL_TENSOR_I64;
  default: return KL_TENSOR_BOOL;
  }
}

Test(fuse_attention, sms_jit_matches_reference) {
  for (size_t s = 0; s < sizeof sms_graphs / sizeof *sms_graphs; s++) {
    ir_graph *g = tc_parse(sms_graphs[s]);
    rt_tensor **args = tc_random_args(g, 11 + s, 5);
    for (int64_t e = 0; e < rt_numel(args[0]); e++) /* spread the scores */
      rt_set_f(args[0], e, rt_get_f(args[0], e) * 4);
    rt_tensor **ref = tc_ref_outputs(g, args, false);
    kl_compile_opts co = {.backend = KL_BACKEND_JIT, .no_cache = true, .guard_bytes = true};
    char *err = NULL;
    kl_program *p = kl_compile_unoptimized(g, &co, &err);
    cr_assert(p, "compile: %s", err ? err : "");
    kl_tensor *in[2] = {0}, *out = NULL;
    int nin = ir_graph_args(g, NULL);
    for (int i = 0; i < nin; i++)
      in[i] = kl_tensor_from(kdt(args[i]->type.dtype), args[i]->type.rank, args[i]->type.dims,
                             args[i]->data);
    const char *msg = kl_run(p, in, nin, &out, 1);
    cr_assert(!msg, "run: %s", msg);
    const ir_type *t = &ref[0]->type;
    for (int64_t e = 0; e < rt_numel(ref[0]); e++) {
      double want = rt_get_f(ref[0], e);
      double got = t->dtype == IR_F32 ? ((float *)kl_tensor_data(out))[e]
                                      : ((double *)kl_tensor_data(out))[e];
      cr_assert(fabs(want - got) <= 2e-7, "graph %zu element %lld: jit %.9g ref %.9g", s,
                (long long)e, got, want);
    }
    for (int i = 0; i < nin; i++)
      kl_tensor_destroy(in[i]);
    kl_tensor_destroy(out);
    kl_program_destroy(p);
    tc_free_tensors(ref), tc_free_tensors(args);
    ir_graph_destroy(g);
  }
}

/* loss = sum(sms(x, mask) * r): gradient w.r.t. x (and a bias) against
 * central differences, f64, reference backend. Lengths include 0: a fully
 * masked row is uniform and constant in x. */
static const char *sms_fd_graphs[] = {
    "graph @s(%x: f64[2,3,4], %len: i32[2], %r: f64[2,3,4]) {\n"
    "  %p = scale_mask_softmax(%x, %len) {scale = 0.7, causal = true} : f64[2,3,4]\n"
    "  %pr = mul(%p, %r) : f64[2,3,4]\n"
    "  %l = sum(%pr) {axes = [0, 1, 2]} : f64[]\n"
    "  return %l\n}\n",
    "graph @s(%x: f64[2,3,4], %b: f64[3,4], %r: f64[2,3,4]) {\n"
    "  %p = scale_mask_softmax(%x, %b) {scale = 1.3, causal = true, mask_value = -30.0} : "
    "f64[2,3,4]\n"
    "  %pr = mul(%p, %r) : f64[2,3,4]\n"
    "  %l = sum(%pr) {axes = [0, 1, 2]} : f64[]\n"
    "  return %l\n}\n",
    "graph @s(%x: f64[2,3,4], %len: i64[2,3], %r: f64[2,3,4]) {\n"
    "  %p = scale_mask_softmax(%x, %len) {scale = 0.5} : f64[2,3,4]\n"
    "  %pr = mul(%p, %r) : f64[2,3,4]\n"
    "  %l = sum(%pr) {axes = [0, 1, 2]} : f64[]\n"
    "  return %l\n}\n",
};

Test(fuse_attention, sms_gradient_finite_differences) {
  for (size_t s = 0; s < sizeof sms_fd_graphs / sizeof *sms_fd_graphs; s++) {
    ir_graph *g = tc_parse(sms_fd_graphs[s]);
    rt_tensor **args = tc_random_args(g, 31 + s, 4);
    rt_set_i(args[1], 0, 0); /* one fully masked row or batch */
    bool bias = ir_dtype_is_float(args[1]->type.dtype);
    ir_diag d = {0};
    ir_graph *gg = ir_graph_clone(g, &d);
    int wrt[2] = {0, 1}, gr[2];
    cr_assert(pass_autodiff(gg, gg->rets[0], bias ? 2 : 1, wrt, gr, &d), "%s", d.msg);
    ir_set_returns(gg, bias ? 2 : 1, gr);
    rt_tensor **an = tc_ref_outputs(gg, args, false);
    for (int w = 0; w < (bias ? 2 : 1); w++) {
      for (int64_t e = 0; e < rt_numel(args[w]); e++) {
        double x0 = rt_get_f(args[w], e), h = 1e-6;
        rt_set_f(args[w], e, x0 + h);
        rt_tensor **p = tc_ref_outputs(g, args, false);
        rt_set_f(args[w], e, x0 - h);
        rt_tensor **m = tc_ref_outputs(g, args, false);
        rt_set_f(args[w], e, x0);
        double fd = (rt_get_f(p[0], 0) - rt_get_f(m[0], 0)) / (2 * h);
        double got = rt_get_f(an[w], e);
        cr_assert(fabs(fd - got) <= 1e-7 * (1 + fabs(fd)), "graph %zu d%s[%lld]: %.12g vs fd %.12g",
                  s, w ? "mask" : "x", (long long)e, got, fd);
        tc_free_tensors(p), tc_free_tensors(m);
      }
    }
    tc_free_tensors(an), tc_free_tensors(args);
    ir_graph_destroy(gg), ir_graph_destroy(g);
  }
}

/* ---- (e) --explain-fusion ---------------------------------------------------- */

static char *explain_of(const char *text, ir_graph **out) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_graph *g = tc_parse(text);
  *out = fuse(g, f);
  fclose(f);
  ir_graph_destroy(g);
  return buf;
}

Test(fuse_attention, explain_returned_weights) {
  char text[4096];
  attention_text(text, sizeof text, M_LEN_B, false, false, false, true);
  ir_graph *h;
  char *msg = explain_of(text, &h);
  cr_assert(strstr(msg, "softmax %w"), "%s", msg);
  cr_assert(strstr(msg, "fused scale_mask_softmax"), "%s", msg);
  cr_assert(strstr(msg, "%w has 2 uses (returned)"), "%s", msg);
  cr_assert_eq(tc_count_op(h, IR_OP_SCALE_MASK_SOFTMAX), 1);
  free(msg), ir_graph_destroy(h);

  attention_text(text, sizeof text, M_BIAS, true, true, false, false);
  msg = explain_of(text, &h);
  cr_assert(strstr(msg, "fused attention replacing %o (scale 0.4, bias, causal, dropout)"), "%s",
            msg);
  free(msg), ir_graph_destroy(h);
}

Test(fuse_attention, explain_unfused) {
  static const char *cases[][2] = {
      {"graph @a(%x: f64[2,3,4]) {\n"
       "  %w = softmax(%x) {axis = 1} : f64[2,3,4]\n  return %w\n}\n",
       "unfused: attention: softmax axis is not the last"},
      {"graph @a(%q: f64[2,3,5], %k: f64[2,4,5], %t: f64[4]) {\n"
       "  %s = matmul(%q, %k) {transpose_b = true} : f64[2,3,4]\n"
       "  %x = mul(%s, %t) : f64[2,3,4]\n"
       "  %w = softmax(%x) {axis = -1} : f64[2,3,4]\n  return %w\n}\n",
       "scale %x is not a scalar constant"},
      {"graph @a(%q: f64[2,3,5], %k: f64[2,4,5], %v: f64[2,4,2], %m: bool[3,4]) {\n"
       "  %s = matmul(%q, %k) {transpose_b = true} : f64[2,3,4]\n"
       "  %c = const(-1000000.0) : f64[]\n"
       "  %x = select(%m, %c, %s) : f64[2,3,4]\n"
       "  %w = softmax(%x) {axis = -1} : f64[2,3,4]\n"
       "  %o = matmul(%w, %v) : f64[2,3,2]\n  return %o\n}\n",
       "mask %x is not a canonical mask (run canonicalize)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ir_graph *h;
    char *msg = explain_of(cases[i][0], &h);
    cr_assert(strstr(msg, cases[i][1]), "case %zu: %s", i, msg);
    cr_assert_eq(tc_count_op(h, IR_OP_SOFTMAX), 1, "case %zu", i);
    free(msg), ir_graph_destroy(h);
  }
}
