/* gemm and the fold-gemm-epilogue pass: the reference kernel against the
 * unfused matmul, mul and add it replaces (f64, reference interpreter);
 * the JIT against the reference for f32 and f64, batched and broadcast
 * batches, every transpose combination, with and without c, several alpha
 * and beta; gemm's shape rule errors; the in-place accumulator (planned
 * and unplanned runs agree bit for bit); and a Transformer training step
 * with the pass against the pipeline stopped before it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "models/transformer.h"
#include "passes/pipeline.h"
#include "runtime/ref.h"
#include "tests/support/ir_check.h"
#include "tests/support/tf_steps.h"

#define ARGS_MAX 8

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double uniform(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}

/* One random kl_tensor per argument of g (floats in [-1, 1)). */
static int make_inputs(const ir_graph *g, kl_tensor **in) {
  int ids[ARGS_MAX];
  int n = ir_graph_args(g, NULL);
  cr_assert_leq(n, ARGS_MAX);
  ir_graph_args(g, ids);
  for (int i = 0; i < n; i++) {
    const ir_type *t = &g->nodes[ids[i]]->type;
    kl_tensor_dtype dt = t->dtype == IR_F32 ? KL_TENSOR_F32 : KL_TENSOR_F64;
    in[i] = kl_tensor_create(dt, t->rank, t->dims);
    cr_assert_not_null(in[i]);
    for (int64_t e = 0; e < kl_tensor_numel(in[i]); e++) {
      if (t->dtype == IR_F32)
        ((float *)kl_tensor_data(in[i]))[e] = (float)uniform();
      else
        ((double *)kl_tensor_data(in[i]))[e] = uniform();
    }
  }
  return n;
}

static void free_tensors(kl_tensor **t, int n) {
  for (int i = 0; i < n; i++)
    kl_tensor_destroy(t[i]);
}

static void run(const ir_graph *g, kl_backend be, kl_tensor **in, int nin, kl_tensor **out) {
  kl_compile_opts co = {.backend = be, .threads = 2, .no_cache = true, .guard_bytes = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &co, &err);
  cr_assert_not_null(p, "compile: %s", err);
  const char *msg = kl_run(p, in, nin, out, g->nrets);
  cr_assert_null(msg, "run: %s", msg);
  kl_program_destroy(p);
}

/* ---- the reference kernel against the unfused graph -------------------------- */

static const double alphas[] = {1.0, -0.75};
static const double betas[] = {0.0, 1.0, -1.0, 0.5};

Test(gemm_epilogue, reference_matches_unfused_graph) {
  char fused[4096], plain[8192];
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      /* logical a [2,3,4] (batched), b [4,5] shared */
      const char *at = ta ? "f64[2,4,3]" : "f64[2,3,4]", *bt = tb ? "f64[5,4]" : "f64[4,5]";
      size_t kf = 0, kp = 0;
#define F(...) kf += (size_t)snprintf(fused + kf, sizeof fused - kf, __VA_ARGS__)
#define P(...) kp += (size_t)snprintf(plain + kp, sizeof plain - kp, __VA_ARGS__)
      F("graph @f(%%a: %s, %%b: %s, %%c: f64[2,3,5]) {\n", at, bt);
      P("graph @p(%%a: %s, %%b: %s, %%c: f64[2,3,5]) {\n", at, bt);
      P("  %%m = matmul(%%a, %%b) {transpose_a = %s, transpose_b = %s} : f64[2,3,5]\n",
        ta ? "true" : "false", tb ? "true" : "false");
      int r = 0;
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++, r++) {
          F("  %%g%d = gemm(%%a, %%b%s) {transpose_a = %s, transpose_b = %s, alpha = %.17g, "
            "beta = %.17g} : f64[2,3,5]\n",
            r, j ? ", %c" : "", ta ? "true" : "false", tb ? "true" : "false", alphas[i], betas[j]);
          P("  %%al%d = const(%.17g) : f64[]\n  %%s%d = mul(%%m, %%al%d) : f64[2,3,5]\n", r,
            alphas[i], r, r);
          P("  %%be%d = const(%.17g) : f64[]\n  %%t%d = mul(%%c, %%be%d) : f64[2,3,5]\n", r,
            betas[j], r, r);
          P("  %%g%d = add(%%s%d, %%t%d) : f64[2,3,5]\n", r, r, r);
        }
      F("  return %%g0");
      P("  return %%g0");
      for (int i = 1; i < r; i++)
        F(", %%g%d", i), P(", %%g%d", i);
      F("\n}\n");
      P("\n}\n");
#undef F
#undef P
      ir_graph *gf = tc_parse(fused), *gp = tc_parse(plain);
      kl_tensor *in[3], *of[8], *op[8];
      int nin = make_inputs(gf, in);
      run(gf, KL_BACKEND_REF, in, nin, of);
      run(gp, KL_BACKEND_REF, in, nin, op);
      for (int i = 0; i < r; i++) {
        double e = tc_rel_err(of[i], op[i], IR_F64);
        cr_expect_leq(e, 1e-13, "ta %d tb %d case %d: rel err %g", ta, tb, i, e);
      }
      free_tensors(in, nin), free_tensors(of, r), free_tensors(op, r);
      ir_graph_destroy(gf), ir_graph_destroy(gp);
    }
}

/* ---- JIT against the reference -------------------------------------------------- */

typedef struct shape_case {
  const char *name;
  int arank, brank;
  int64_t a[4], b[4]; /* logical (untransposed) dims */
  int orank;
  int64_t o[4];
} shape_case;

static const shape_case shapes[] = {
    {"plain", 2, 2, {3, 4}, {4, 5}, 2, {3, 5}},
    {"batched", 3, 3, {2, 3, 4}, {2, 4, 5}, 3, {2, 3, 5}},
    {"folded batch", 3, 2, {2, 3, 4}, {4, 5}, 3, {2, 3, 5}},
    {"broadcast batch", 4, 3, {2, 1, 3, 4}, {3, 4, 5}, 4, {2, 3, 3, 5}},
    {"empty K", 2, 2, {3, 0}, {0, 5}, 2, {3, 5}},
};

/* "f32[2,4,3]": dims with the last two swapped when trans. */
static void type_str(char *buf, size_t len, const char *dt, int rank, const int64_t *d,
                     bool trans) {
  size_t k = (size_t)snprintf(buf, len, "%s[", dt);
  for (int i = 0; i < rank; i++) {
    int j = trans && i >= rank - 2 ? (i == rank - 2 ? rank - 1 : rank - 2) : i;
    k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)d[j]);
  }
  snprintf(buf + k, len - k, "]");
}

static void jit_vs_ref(ir_dtype dt, const shape_case *s, bool ta, bool tb) {
  const char *dn = ir_dtype_name(dt);
  char at[64], bt[64], ot[64], text[4096];
  type_str(at, sizeof at, dn, s->arank, s->a, ta);
  type_str(bt, sizeof bt, dn, s->brank, s->b, tb);
  type_str(ot, sizeof ot, dn, s->orank, s->o, false);
  size_t k =
      (size_t)snprintf(text, sizeof text, "graph @g(%%a: %s, %%b: %s, %%c: %s) {\n", at, bt, ot);
  int r = 0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++, r++)
      k += (size_t)snprintf(text + k, sizeof text - k,
                            "  %%g%d = gemm(%%a, %%b%s) {transpose_a = %s, transpose_b = %s, "
                            "alpha = %.17g, beta = %.17g} : %s\n",
                            r, j ? ", %c" : "", ta ? "true" : "false", tb ? "true" : "false",
                            alphas[i], betas[j], ot);
  k += (size_t)snprintf(text + k, sizeof text - k, "  return %%g0");
  for (int i = 1; i < r; i++)
    k += (size_t)snprintf(text + k, sizeof text - k, ", %%g%d", i);
  snprintf(text + k, sizeof text - k, "\n}\n");
  ir_graph *g = tc_parse(text);
  kl_tensor *in[3], *oj[8], *orf[8];
  int nin = make_inputs(g, in);
  run(g, KL_BACKEND_JIT, in, nin, oj);
  run(g, KL_BACKEND_REF, in, nin, orf);
  double tol = dt == IR_F32 ? 2e-6 : 1e-13;
  for (int i = 0; i < r; i++) {
    double e = tc_rel_err(oj[i], orf[i], dt);
    cr_expect_leq(e, tol, "%s %s ta %d tb %d alpha %g beta %g: rel err %g", dn, s->name, ta, tb,
                  alphas[i / 4], betas[i % 4], e);
  }
  free_tensors(in, nin), free_tensors(oj, r), free_tensors(orf, r);
  ir_graph_destroy(g);
}

Test(gemm_epilogue, jit_matches_reference) {
  ir_dtype dts[2] = {IR_F32, IR_F64};
  for (int d = 0; d < 2; d++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
          jit_vs_ref(dts[d], &shapes[s], ta, tb);
}

/* ---- the shape rule ---------------------------------------------------------------- */

static void expect_parse_error(const char *text, const char *what) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "bad.kir", &d);
  cr_expect_null(g, "parsed: %s", text);
  if (g) ir_graph_destroy(g);
  cr_expect_not_null(strstr(d.msg, what), "message '%s' lacks '%s'", d.msg, what);
  cr_expect_not_null(strstr(d.msg, "bad.kir:2:"), "message '%s' does not point at the node", d.msg);
}

Test(gemm_epilogue, shape_rule_errors) {
  expect_parse_error("graph @e(%a: f32[2,3], %b: f32[3,4]) {\n"
                     "  %g = gemm(%a, %b) {beta = 1.0} : f32[2,4]\n  return %g\n}\n",
                     "no accumulator");
  expect_parse_error("graph @e(%a: f32[2,3], %b: f32[3,4], %c: f32[4]) {\n"
                     "  %g = gemm(%a, %b, %c) {beta = 1.0} : f32[2,4]\n  return %g\n}\n",
                     "result's type");
  expect_parse_error("graph @e(%a: f32[2,3], %b: f32[3,4], %c: f64[2,4]) {\n"
                     "  %g = gemm(%a, %b, %c) {beta = 1.0} : f32[2,4]\n  return %g\n}\n",
                     "result's type");
  expect_parse_error("graph @e(%a: f32[2,3], %b: f32[3,4]) {\n"
                     "  %g = gemm(%a) : f32[2,4]\n  return %g\n}\n",
                     "2 or 3 operands");
  expect_parse_error("graph @e(%a: f32[2,3], %b: f32[4,4]) {\n"
                     "  %g = gemm(%a, %b) : f32[2,4]\n  return %g\n}\n",
                     "contracting");
}

Test(gemm_epilogue, verifier_names_the_node) {
  /* A pass that left beta set after dropping c: ir_verify says which node. */
  ir_graph *g = tc_parse("graph @e(%a: f32[2,3], %b: f32[3,4]) {\n"
                         "  %prod = gemm(%a, %b) {alpha = 2.0} : f32[2,4]\n  return %prod\n}\n");
  g->nodes[2]->attrs[3].f = 0.5;
  ir_diag d = {0};
  cr_expect_not(ir_verify(g, &d));
  cr_expect_not_null(strstr(d.msg, "%prod"), "'%s' does not name the node", d.msg);
  cr_expect_not_null(strstr(d.msg, "no accumulator"), "%s", d.msg);
  ir_graph_destroy(g);
}

/* ---- in place: the result written over a dying accumulator ---------------------- */

Test(gemm_epilogue, in_place_accumulator_matches_unplanned_bits) {
  /* %c1 dies at %g1 (in place); %c2 is read again by %g3 after %g2, so %g2
   * is not in place but %g3 is. %g1 and %g2 share one kernel (same types
   * and attributes), which must tell them apart at run time. Only BLAS
   * ops, so the planner's choices here are all gemm's. */
  const char *text = "graph @ip(%a: f32[32,24], %b: f32[24,16], %p: f32[32,8], %q: f32[8,16]) {\n"
                     "  %c1 = matmul(%a, %b) : f32[32,16]\n"
                     "  %g1 = gemm(%p, %q, %c1) {alpha = 0.5, beta = -1.0} : f32[32,16]\n"
                     "  %c2 = matmul(%a, %b) {transpose_b = false} : f32[32,16]\n"
                     "  %g2 = gemm(%p, %q, %c2) {alpha = 0.5, beta = -1.0} : f32[32,16]\n"
                     "  %g3 = gemm(%p, %q, %c2) {alpha = 2.0, beta = 0.5} : f32[32,16]\n"
                     "  %r1 = gemm(%p, %q, %g1) {beta = 0.25} : f32[32,16]\n"
                     "  %r2 = gemm(%p, %q, %g2) {beta = 0.25} : f32[32,16]\n"
                     "  %r3 = gemm(%p, %q, %g3) {beta = 0.25} : f32[32,16]\n"
                     "  return %r1, %r2, %r3\n"
                     "}\n";
  ir_graph *unplanned = tc_parse(text), *planned = tc_parse(text);
  ir_diag d = {0};
  bool changed;
  cr_assert(pass_memory_plan(&planned, NULL, &changed, &d), "%s", d.msg);
  const int64_t *off = planned->plan->offset;
  /* ids: 0 a, 1 b, 2 p, 3 q, 4 c1, 5 g1, 6 c2, 7 g2, 8 g3 */
  cr_assert_eq(off[5], off[4], "g1 must be planned over its dying accumulator c1");
  cr_assert_neq(off[7], off[6], "c2 is read again after g2: no sharing");
  cr_assert_eq(off[8], off[6], "g3 is c2's last reader");
  kl_tensor *in[4], *o1[3], *o2[3], *o3[3];
  int nin = make_inputs(unplanned, in);
  run(unplanned, KL_BACKEND_JIT, in, nin, o1);
  run(planned, KL_BACKEND_JIT, in, nin, o2);
  run(unplanned, KL_BACKEND_REF, in, nin, o3);
  for (int r = 0; r < 3; r++) {
    cr_expect_eq(memcmp(kl_tensor_data(o1[r]), kl_tensor_data(o2[r]), 32 * 16 * sizeof(float)), 0,
                 "output %d: planned and unplanned results differ", r);
    double e = tc_rel_err(o2[r], o3[r], IR_F32);
    cr_expect_leq(e, 1e-5, "output %d: planned JIT vs reference: rel err %g", r, e);
  }
  free_tensors(in, nin), free_tensors(o1, 3), free_tensors(o2, 3), free_tensors(o3, 3);
  ir_graph_destroy(unplanned), ir_graph_destroy(planned);
}

/* ---- a Transformer training step with and without the pass ------------------------ */

typedef struct tf_counts {
  int ngemm, nmatmul;
} tf_counts;

static void count_products(const ir_graph *g, void *ud) {
  tf_counts *n = ud;
  n->ngemm = tc_count_op(g, IR_OP_GEMM);
  n->nmatmul = tc_count_op(g, IR_OP_MATMUL);
}

static tc_tf_run tf_steps(const tf_config *c, bool fold, tf_counts *n) {
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 0.05, .clip_norm = 1.0};
  pass_opts po = kl_default_pass_opts();
  if (!fold) po.stop_after = "autodiff";
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .seed = 11, .threads = 2, .no_cache = true};
  return tc_tf_train(c, &opt, &po, &co, count_products, n);
}

Test(gemm_epilogue, transformer_training_step_matches_unfolded, .timeout = 300) {
  tf_config c = tc_tf_small();
  tf_counts noff, non;
  tc_tf_run off = tf_steps(&c, false, &noff), on = tf_steps(&c, true, &non);
  cr_log_info("transformer step: %d matmuls unfolded; folded: %d gemms + %d matmuls", noff.nmatmul,
              non.ngemm, non.nmatmul);
  cr_expect_eq(noff.ngemm, 0);
  cr_expect_gt(non.ngemm, 0, "the pass folded nothing in the training step");
  cr_expect_eq(non.ngemm + non.nmatmul, noff.nmatmul, "every product is still there");
  tc_tf_expect_same(&on, &off, 1e-5, "folded vs unfolded");
  tc_tf_free(&on);
  tc_tf_free(&off);
}
