/* fold-embedding: the fused embed region computes what it replaced
 * (reference interpreter, forward and gradients, f64, with dropout); the
 * JIT kernels of embed and embed_grad match the reference in f32 and f64,
 * with and without dropout, at odd sizes; the fused gradient matches
 * central differences; a bad token id is an error, not a crash; the
 * shipped models' embeddings become exactly one region each. */
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

#define V 11 /* table rows of every test graph */

static ir_graph *fold(const ir_graph *g) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert(c);
  bool changed = false;
  cr_assert(pass_fold_embedding(&c, NULL, &changed, &d), "fold: %s", d.msg);
  cr_assert(ir_verify(c, &d), "after fold: %s", d.msg);
  return c;
}

/* A clone of g returning [loss, d loss / d arg k for k in wrt]. */
static ir_graph *with_grads(const ir_graph *g, int nwrt, const int *wrt_args) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert(c);
  int args[16], wrt[4], grads[4], rets[5];
  ir_graph_args(c, args);
  for (int i = 0; i < nwrt; i++)
    wrt[i] = args[wrt_args[i]];
  int loss = c->rets[0];
  cr_assert(pass_autodiff(c, loss, nwrt, wrt, grads, &d), "autodiff: %s", d.msg);
  rets[0] = loss;
  for (int i = 0; i < nwrt; i++)
    rets[i + 1] = grads[i];
  ir_set_returns(c, nwrt + 1, rets);
  cr_assert(ir_verify(c, &d), "grad graph: %s", d.msg);
  return c;
}

/* Learned pe (an argument, so it has a gradient), scale on the left,
 * dropout; loss-like output y = x * x so gradients are not constants. */
static const char *tf_graph = "graph @tf(%E: f64[11,133], %ids: i32[3,9], %pe: f64[9,133]) {\n"
                              "  %g = gather(%E, %ids) : f64[3,9,133]\n"
                              "  %s = const(1.7) : f64[]\n"
                              "  %m = mul(%s, %g) : f64[3,9,133]\n"
                              "  %a = add(%m, %pe) : f64[3,9,133]\n"
                              "  %x = dropout(%a) {p = 0.3} : f64[3,9,133]\n"
                              "  %y = mul(%x, %x) : f64[3,9,133]\n"
                              "  return %y\n}\n";
/* GPT's form: pe first, no scale, no dropout, i64 ids, pe [1, T, D]. */
static const char *gpt_graph = "graph @gpt(%E: f64[11,6], %ids: i64[2,5], %pe: f64[1,5,6]) {\n"
                               "  %g = gather(%E, %ids) : f64[2,5,6]\n"
                               "  %x = add(%pe, %g) : f64[2,5,6]\n"
                               "  %y = mul(%x, %x) : f64[2,5,6]\n"
                               "  return %y\n}\n";

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

/* ---- (a) the pass: same values, same gradients ------------------------------ */

Test(fold_embedding, fused_graph_matches_unfused_forward_and_gradients) {
  const char *texts[] = {tf_graph, gpt_graph};
  for (int t = 0; t < 2; t++) {
    ir_graph *g = tc_parse(texts[t]);
    ir_graph *f = fold(g);
    cr_assert_eq(tc_count_op(f, IR_OP_EMBED), 1, "graph %d: no embed region", t);
    cr_assert_eq(tc_count_op(f, IR_OP_GATHER), 0, "graph %d", t);
    rt_tensor **args = tc_random_args(g, 5 + (uint64_t)t, V - 1);
    for (int training = 0; training < 2; training++) {
      rt_tensor **a = tc_ref_outputs(g, args, training), **b = tc_ref_outputs(f, args, training);
      expect_close(a, b, 1, 0, "forward");
      tc_free_tensors(a), tc_free_tensors(b);
    }
    /* E and pe (packed rows, sliced apart), then E alone (no slice) */
    for (int nw = 2; nw >= 1; nw--) {
      ir_graph *gg = with_grads(g, nw, (int[]){0, 2}), *fg = with_grads(f, nw, (int[]){0, 2});
      cr_assert_eq(tc_count_op(fg, IR_OP_EMBED_GRAD), 1, "graph %d", t);
      cr_assert_eq(tc_count_op(fg, IR_OP_SCATTER_ADD), 0, "graph %d", t);
      cr_assert_eq(tc_count_op(fg, IR_OP_SLICE), nw == 2 ? 2 : 0, "graph %d", t);
      rt_tensor **a = tc_ref_outputs(gg, args, true), **b = tc_ref_outputs(fg, args, true);
      expect_close(a, b, nw + 1, 1e-13, t ? "gpt gradients" : "transformer gradients");
      tc_free_tensors(a), tc_free_tensors(b);
      ir_graph_destroy(gg), ir_graph_destroy(fg);
    }
    tc_free_tensors(args);
    ir_graph_destroy(g), ir_graph_destroy(f);
  }
}

/* ---- (b) JIT kernels vs the reference ----------------------------------------- */

static kl_tensor_dtype kdt(ir_dtype dt) {
  switch (dt) {
  case IR_F32: return KL_TENSOR_F32;
  case IR_F64: return KL_TENSOR_F64;
  case IR_I32: return KL_TENSOR_I32;
  case IR_I64: return KL_TENSOR_I64;
  default: return KL_TENSOR_BOOL;
  }
}

static kl_tensor **to_kl(rt_tensor **args, int n) {
  kl_tensor **in = calloc((size_t)n + 1, sizeof *in);
  for (int i = 0; i < n; i++)
    in[i] = kl_tensor_from(kdt(args[i]->type.dtype), args[i]->type.rank, args[i]->type.dims,
                           args[i]->data);
  return in;
}

static void free_kl(kl_tensor **t, int n) {
  for (int i = 0; i < n; i++)
    kl_tensor_destroy(t[i]);
  free(t);
}

/* Runs g (one output) on backend be; the message on failure, else NULL
 * with *out set. The message is copied into msg. */
static bool run_on(const ir_graph *g, kl_backend be, bool training, int threads, rt_tensor **args,
                   kl_tensor **out, char *msg, size_t len) {
  kl_compile_opts co = {
      .backend = be, .seed = 9, .training = training, .threads = threads, .no_cache = true};
  co.guard_bytes = be == KL_BACKEND_JIT;
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &co, &err);
  cr_assert(p, "compile: %s", err ? err : "");
  int n = ir_graph_args(g, NULL);
  kl_tensor **in = to_kl(args, n);
  *out = NULL;
  const char *m = kl_run(p, in, n, out, 1);
  if (m) snprintf(msg, len, "%s", m);
  free_kl(in, n);
  kl_program_destroy(p);
  return m == NULL;
}

static void expect_jit_matches_ref(const ir_graph *g, bool training, int threads,
                                   const char *what) {
  rt_tensor **args = tc_random_args(g, 17, V - 1);
  kl_tensor *r = NULL, *j = NULL;
  char msg[512];
  cr_assert(run_on(g, KL_BACKEND_REF, training, 0, args, &r, msg, sizeof msg), "%s: ref: %s", what,
            msg);
  cr_assert(run_on(g, KL_BACKEND_JIT, training, threads, args, &j, msg, sizeof msg), "%s: jit: %s",
            what, msg);
  ir_dtype dt = g->nodes[g->rets[0]]->type.dtype;
  double err = tc_rel_err(j, r, dt), tol = dt == IR_F32 ? 2e-6 : 1e-13;
  cr_assert(err <= tol, "%s: jit vs reference error %g", what, err);
  kl_tensor_destroy(r), kl_tensor_destroy(j);
  tc_free_tensors(args);
}

Test(fold_embedding, embed_jit_matches_reference) {
  const char *dts[] = {"f32", "f64"};
  for (int t = 0; t < 2; t++)
    for (int drop = 0; drop < 2; drop++) {
      char text[1024];
      snprintf(text, sizeof text,
               "graph @e(%%E: %s[11,133], %%ids: i32[3,9], %%pe: %s[9,133]) {\n"
               "  %%g = gather(%%E, %%ids) : %s[3,9,133]\n"
               "  %%s = const(1.7) : %s[]\n"
               "  %%m = mul(%%g, %%s) : %s[3,9,133]\n"
               "  %%a = add(%%pe, %%m) : %s[3,9,133]\n"
               "  %%x = dropout(%%a) {p = %s} : %s[3,9,133]\n"
               "  return %%x\n}\n",
               dts[t], dts[t], dts[t], dts[t], dts[t], dts[t], drop ? "0.3" : "0.0", dts[t]);
      ir_graph *g = tc_parse(text), *f = fold(g);
      cr_assert_eq(tc_count_op(f, IR_OP_EMBED), 1);
      char what[64];
      for (int threads = 1; threads <= 3; threads += 2) {
        snprintf(what, sizeof what, "embed %s dropout %d threads %d", dts[t], drop, threads);
        expect_jit_matches_ref(f, true, threads, what);
      }
      snprintf(what, sizeof what, "embed %s eval", dts[t]);
      expect_jit_matches_ref(f, false, 2, what);
      ir_graph_destroy(g), ir_graph_destroy(f);
    }
}

Test(fold_embedding, embed_grad_jit_matches_reference) {
  const char *dts[] = {"f32", "f64"};
  for (int t = 0; t < 2; t++)
    for (int drop = 0; drop < 2; drop++)
      for (int pe = 0; pe < 2; pe++) {
        /* 133 columns: two full strips of 64 and a partial one; pe [3, 1, 133]
         * broadcasts over T */
        char full[1024];
        snprintf(full, sizeof full,
                 "graph @eg(%%ids: i64[3,9], %%dy: %s[3,9,133]%s%s%s) {\n"
                 "  %%g = embed_grad(%%ids, %%dy%s) {scale = 1.7, p = %s, key = 5, rows = 11} : "
                 "%s[%d,133]\n"
                 "  return %%g\n}\n",
                 dts[t], pe ? ", %pe: " : "", pe ? dts[t] : "", pe ? "[3,1,133]" : "",
                 pe ? ", %pe" : "", drop ? "0.3" : "0.0", dts[t], 11 + (pe ? 3 : 0));
        ir_graph *g = tc_parse(full);
        char what[80];
        for (int threads = 1; threads <= 3; threads += 2) {
          snprintf(what, sizeof what, "embed_grad %s dropout %d pe %d threads %d", dts[t], drop, pe,
                   threads);
          expect_jit_matches_ref(g, true, threads, what);
        }
        ir_graph_destroy(g);
      }
}

/* ---- (c) gradient vs central differences -------------------------------------- */

/* sum(y) of g's output 0 on the reference. */
static double loss_of(const ir_graph *g, rt_tensor **args) {
  rt_tensor **o = tc_ref_outputs(g, args, true);
  double s = 0;
  for (int64_t e = 0; e < rt_numel(o[0]); e++)
    s += rt_get_f(o[0], e);
  tc_free_tensors(o);
  return s;
}

Test(fold_embedding, fused_gradient_matches_finite_differences) {
  const char *texts[] = {tf_graph, gpt_graph};
  for (int t = 0; t < 2; t++) {
    ir_graph *g = tc_parse(texts[t]), *f = fold(g);
    cr_assert_eq(tc_count_op(f, IR_OP_EMBED), 1);
    ir_graph *fg = with_grads(f, 2, (int[]){0, 2});
    rt_tensor **args = tc_random_args(f, 23, V - 1);
    rt_tensor **an = tc_ref_outputs(fg, args, true);
    /* the JIT's backward (f64, training: the same mask) agrees too */
    kl_tensor *jg[3] = {0};
    {
      kl_compile_opts co = {
          .backend = KL_BACKEND_JIT, .seed = 42, .training = true, .no_cache = true};
      char *err = NULL;
      kl_program *p = kl_compile_unoptimized(fg, &co, &err);
      cr_assert(p, "compile: %s", err ? err : "");
      kl_program_set_step(p, 3);
      kl_tensor **in = to_kl(args, 3);
      const char *m = kl_run(p, in, 3, jg, 3);
      cr_assert(!m, "jit: %s", m);
      free_kl(in, 3);
      kl_program_destroy(p);
    }
    int wrt[2] = {0, 2};
    for (int w = 0; w < 2; w++) {
      rt_tensor *x = args[wrt[w]];
      int64_t stride = rt_numel(x) > 500 ? 7 : 1; /* a sample of the big ones */
      for (int64_t e = 0; e < rt_numel(x); e += stride) {
        double x0 = rt_get_f(x, e), h = 1e-6;
        rt_set_f(x, e, x0 + h);
        double lp = loss_of(f, args);
        rt_set_f(x, e, x0 - h);
        double lm = loss_of(f, args);
        rt_set_f(x, e, x0);
        double fd = (lp - lm) / (2 * h), ad = rt_get_f(an[w + 1], e);
        double jit = ((double *)kl_tensor_data(jg[w + 1]))[e];
        cr_assert(fabs(fd - ad) <= 1e-6 * (1 + fabs(fd)),
                  "graph %d wrt %d element %lld: autodiff %.12g, differences %.12g", t, w,
                  (long long)e, ad, fd);
        cr_assert(fabs(jit - ad) <= 1e-12 * (1 + fabs(ad)),
                  "graph %d wrt %d element %lld: jit %.15g, reference %.15g", t, w, (long long)e,
                  jit, ad);
      }
    }
    for (int i = 0; i < 3; i++)
      kl_tensor_destroy(jg[i]);
    tc_free_tensors(an), tc_free_tensors(args);
    ir_graph_destroy(fg), ir_graph_destroy(f), ir_graph_destroy(g);
  }
}

/* ---- (d) a bad token id ---------------------------------------------------------- */

Test(fold_embedding, out_of_range_id_is_an_error) {
  const char *text = "graph @e(%E: f32[11,133], %ids: i32[3,9], %pe: f32[9,133]) {\n"
                     "  %g = gather(%E, %ids) : f32[3,9,133]\n"
                     "  %x = add(%g, %pe) : f32[3,9,133]\n"
                     "  return %x\n}\n";
  ir_graph *g = tc_parse(text), *f = fold(g);
  cr_assert_eq(tc_count_op(f, IR_OP_EMBED), 1);
  const char *gtext = "graph @eg(%ids: i32[3,9], %dy: f32[3,9,133]) {\n"
                      "  %eg = embed_grad(%ids, %dy) {rows = 11} : f32[11,133]\n"
                      "  return %eg\n}\n";
  ir_graph *gg = tc_parse(gtext);
  const ir_graph *graphs[] = {f, gg};
  int id_arg[] = {1, 0};
  int64_t bads[] = {11, -1, 1000};
  for (int k = 0; k < 2; k++)
    for (int b = 0; b < 3; b++) {
      rt_tensor **args = tc_random_args(graphs[k], 3, V - 1);
      rt_set_i(args[id_arg[k]], 13, bads[b]);
      char msg[512] = "", want[128];
      kl_tensor *out = NULL;
      cr_assert_not(run_on(graphs[k], KL_BACKEND_REF, false, 0, args, &out, msg, sizeof msg));
      cr_assert(strstr(msg, "out of range"), "ref: %s", msg);
      cr_assert_not(run_on(graphs[k], KL_BACKEND_JIT, false, 2, args, &out, msg, sizeof msg),
                    "jit accepted id %lld", (long long)bads[b]);
      snprintf(want, sizeof want, "index %lld out of range [0, 11) at position 13",
               (long long)bads[b]);
      cr_assert(strstr(msg, want), "jit: %s (want %s)", msg, want);
      cr_assert(strstr(msg, k ? "embed_grad" : "embed"), "jit: %s", msg);
      kl_tensor_destroy(out);
      tc_free_tensors(args);
    }
  ir_graph_destroy(g), ir_graph_destroy(f), ir_graph_destroy(gg);
}

/* ---- (e) the shipped models ------------------------------------------------------ */

static void expect_counts(kl_graph *kg, int lo, int embeds, const char *model) {
  for (int fused = 1; fused >= 0; fused--) {
    ir_diag d = {0};
    ir_graph *g = ir_graph_clone(kl_graph_ir(kg), &d);
    cr_assert(g);
    pass_opts po = {.verify_each = true, .stop_after = "autodiff", .no_fusion = !fused};
    char *err = NULL;
    kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 1e-3};
    ir_graph *t = kl_train_graph_with(g, g->rets[lo], NULL, 0, &opt, &po, &err);
    ir_graph_destroy(g);
    cr_assert(t, "%s: %s", model, err ? err : "");
    if (fused) {
      cr_assert_eq(tc_count_op(t, IR_OP_EMBED), embeds, "%s: %d embed regions", model,
                   tc_count_op(t, IR_OP_EMBED));
      cr_assert_eq(tc_count_op(t, IR_OP_EMBED_GRAD), embeds, "%s", model);
      cr_assert_eq(tc_count_op(t, IR_OP_GATHER), 0, "%s: a gather outside the regions", model);
      cr_assert_eq(tc_count_op(t, IR_OP_SCATTER_ADD), 0, "%s", model);
    } else {
      cr_assert_eq(tc_count_op(t, IR_OP_EMBED), 0, "%s", model);
      cr_assert_eq(tc_count_op(t, IR_OP_GATHER), embeds, "%s", model);
    }
    ir_graph_destroy(t);
  }
}

Test(fold_embedding, transformer_has_two_embed_regions) {
  int lo = 0;
  kl_graph *kg = tf_default_graph(&lo);
  cr_assert(kg);
  expect_counts(kg, lo, 2, "transformer");
  kl_graph_destroy(kg);
}

Test(fold_embedding, gpt_has_one_embed_region) {
  int lo = 0;
  kl_graph *kg = gpt_default_graph(&lo);
  cr_assert(kg);
  expect_counts(kg, lo, 1, "gpt");
  kl_graph_destroy(kg);
}
