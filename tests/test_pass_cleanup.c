/* The clean-up passes (canonicalize, constant-fold, cse, dce) keep what a
 * graph computes: every rewrite is run on f64 graphs and the reference
 * interpreter compares outputs before and after on random inputs, forward
 * and gradients (pass_autodiff on clones). Plus the counts the issue asks
 * for: the Transformer's positional encodings fold to one constant each,
 * and CSE leaves one W_k(keys) in a recomputing Bahdanau decoder. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "models/models.h"
#include "passes/autodiff.h"
#include "passes/pipeline.h"
#include "runtime/ref.h"
#include "tests/support/ir_check.h"

/* ---- helpers ----------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}
static double rng_unit(uint64_t *s) { return (double)rng_next(s) / (double)(1ull << 53); }

static void fill_random(rt_tensor *t, uint64_t seed) {
  uint64_t s = seed * 2654435761u + 12345;
  for (int64_t i = 0, e = rt_numel(t); i < e; i++) {
    if (ir_dtype_is_float(t->type.dtype))
      rt_set_f(t, i, 2 * rng_unit(&s) - 1);
    else /* lengths and indices: 1..3, valid for every graph below */
      rt_set_i(t, i, 1 + (int64_t)(rng_next(&s) % 3));
  }
}

typedef struct params {
  const char *name[32];
  rt_tensor *val[32];
  int n;
} params;

static const rt_tensor *lookup(void *ctx, const ir_node *p) {
  params *ps = ctx;
  const char *name = p->attrs[0].s;
  for (int i = 0; i < ps->n; i++)
    if (strcmp(ps->name[i], name) == 0) return ps->val[i];
  if (ps->n == 32) return NULL;
  rt_tensor *t = rt_tensor_create(&p->type);
  uint64_t h = 7;
  for (const char *c = name; *c; c++)
    h = h * 31 + (unsigned char)*c;
  fill_random(t, h);
  ps->name[ps->n] = name;
  ps->val[ps->n++] = t;
  return t;
}

/* Runs g on inputs drawn from `seed`; outs gets g->nrets tensors. */
static void run(const ir_graph *g, uint64_t seed, params *ps, rt_tensor **outs) {
  int ids[32], na = ir_graph_args(g, NULL);
  cr_assert(na <= 32);
  ir_graph_args(g, ids);
  rt_tensor *args[32];
  for (int i = 0; i < na; i++) {
    args[i] = rt_tensor_create(&g->nodes[ids[i]]->type);
    fill_random(args[i], seed + (uint64_t)i);
  }
  ir_diag d = {0};
  bool ok = rt_ref_run(g, (const rt_tensor *const *)args, lookup, ps, NULL, outs, &d);
  for (int i = 0; i < na; i++)
    rt_tensor_destroy(args[i]);
  cr_assert(ok, "reference run of @%s failed: %s", g->name, d.msg);
}

/* Outputs of a and b agree within tol (relative to max(1, |x|)); softmax
 * outputs of masks rewritten from additive to select agree to rounding. */
static void expect_same(const ir_graph *a, const ir_graph *b, double tol, const char *what) {
  cr_assert_eq(a->nrets, b->nrets, "%s: return count changed", what);
  params pa = {0}, pb = {0};
  for (uint64_t seed = 1; seed <= 3; seed++) {
    rt_tensor *oa[16], *ob[16];
    cr_assert(a->nrets <= 16);
    run(a, seed, &pa, oa);
    run(b, seed, &pb, ob);
    for (int r = 0; r < a->nrets; r++) {
      cr_assert(ir_type_eq(&oa[r]->type, &ob[r]->type), "%s: output %d changed type", what, r);
      for (int64_t i = 0, e = rt_numel(oa[r]); i < e; i++) {
        double x = rt_get_f(oa[r], i), y = rt_get_f(ob[r], i);
        bool same = x == y || fabs(x - y) <= tol * fmax(1, fabs(x));
        cr_expect(same, "%s: output %d element %lld: %.17g before, %.17g after", what, r,
                  (long long)i, x, y);
        if (!same) break;
      }
      rt_tensor_destroy(oa[r]);
      rt_tensor_destroy(ob[r]);
    }
  }
  for (int i = 0; i < pa.n; i++)
    rt_tensor_destroy(pa.val[i]);
  for (int i = 0; i < pb.n; i++)
    rt_tensor_destroy(pb.val[i]);
}

/* A copy of g returning the gradients of sum(return 0) with respect to
 * every float argument. */
static ir_graph *grad_graph(const ir_graph *g) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert_not_null(c, "%s", d.msg);
  int ids[32], wrt[32], grads[32], nw = 0, na = ir_graph_args(c, ids);
  for (int i = 0; i < na; i++)
    if (ir_dtype_is_float(c->nodes[ids[i]]->type.dtype)) wrt[nw++] = ids[i];
  cr_assert(nw > 0);
  cr_assert(pass_autodiff(c, c->rets[0], nw, wrt, grads, &d), "autodiff: %s", d.msg);
  ir_set_returns(c, nw, grads);
  return c;
}

/* Runs pass p (to a fixpoint when asked) on a clone of g; the clone must
 * verify and, when expect_change, differ. */
static ir_graph *apply(const ir_graph *g, pass_fn p, bool fixpoint, bool expect_change,
                       const pass_opts *o) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert_not_null(c);
  pass_opts none = {0};
  bool any = false, changed;
  int rounds = 0;
  do {
    changed = false;
    cr_assert(p(&c, o ? o : &none, &changed, &d), "pass failed: %s", d.msg);
    cr_assert(ir_verify(c, &d), "pass left an invalid graph: %s", d.msg);
    any |= changed;
  } while (fixpoint && changed && ++rounds < 20);
  cr_assert(rounds < 20, "no fixpoint");
  if (expect_change) cr_assert(any, "the pass changed nothing in @%s", g->name);
  return c;
}

/* Forward and gradient equivalence of pass p on text. */
static void check_pass(const char *text, pass_fn p, bool fixpoint, double tol, ir_op gone,
                       ir_op appears) {
  ir_graph *g = tc_parse(text);
  ir_graph *h = apply(g, p, fixpoint, true, NULL);
  if (gone != IR_NUM_OPS)
    cr_expect_eq(tc_count_op(h, gone), 0, "@%s: %s left", g->name, ir_op_get(gone)->name);
  if (appears != IR_NUM_OPS)
    cr_expect_gt(tc_count_op(h, appears), 0, "@%s: no %s", g->name, ir_op_get(appears)->name);
  expect_same(g, h, tol, "forward");
  ir_graph *gg = grad_graph(g), *hg = grad_graph(h);
  expect_same(gg, hg, tol, "gradients");
  ir_graph_destroy(gg);
  ir_graph_destroy(hg);
  ir_graph_destroy(h);
  ir_graph_destroy(g);
}

#define NONE IR_NUM_OPS

/* ---- canonicalize ------------------------------------------------------- */

Test(canonicalize, div_by_const) {
  check_pass("graph @g(%x: f64[2,3]) {\n"
             "  %c = const(3.0) : f64[]\n"
             "  %y = div(%x, %c) : f64[2,3]\n"
             "  %v = const(dense [2.0, -0.5, 7.0]) : f64[3]\n"
             "  %z = div(%y, %v) : f64[2,3]\n"
             "  %t = tanh(%z) : f64[2,3]\n"
             "  return %t\n}\n",
             pass_canonicalize, true, 1e-14, IR_OP_DIV, IR_OP_MUL);
}

Test(canonicalize, fill_lt_to_sequence_mask) {
  check_pass("graph @g(%s: f64[3,2,4], %len: i32[3]) {\n"
             "  %k = iota() {shape = [1, 1, 4], axis = 2, dtype = \"i32\"} : i32[1,1,4]\n"
             "  %l3 = reshape(%len) {shape = [3, 1, 1]} : i32[3,1,1]\n"
             "  %keep = cmp_lt(%k, %l3) : bool[3,1,4]\n"
             "  %v = const(-1000000.0) : f64[]\n"
             "  %m = select(%keep, %s, %v) : f64[3,2,4]\n"
             "  %p = softmax(%m) {axis = -1} : f64[3,2,4]\n"
             "  return %p\n}\n",
             pass_canonicalize, true, 0, IR_OP_SELECT, IR_OP_SEQUENCE_MASK);
}

Test(canonicalize, fill_ge_per_query_lengths) {
  check_pass("graph @g(%s: f64[2,3,4], %len: i64[2,3]) {\n"
             "  %k = iota() {shape = [4], axis = 0, dtype = \"i64\"} : i64[4]\n"
             "  %l3 = reshape(%len) {shape = [2, 3, 1]} : i64[2,3,1]\n"
             "  %pad = cmp_ge(%k, %l3) : bool[2,3,4]\n"
             "  %v = const(-10000.0) : f64[]\n"
             "  %m = select(%pad, %v, %s) : f64[2,3,4]\n"
             "  %p = softmax(%m) {axis = -1} : f64[2,3,4]\n"
             "  return %p\n}\n",
             pass_canonicalize, true, 0, IR_OP_SELECT, IR_OP_SEQUENCE_MASK);
}

Test(canonicalize, fill_broadcast_over_heads) {
  check_pass("graph @g(%s: f64[2,2,3,4], %len: i32[2]) {\n"
             "  %k = iota() {shape = [3, 4], axis = 1, dtype = \"i32\"} : i32[3,4]\n"
             "  %l4 = reshape(%len) {shape = [2, 1, 1, 1]} : i32[2,1,1,1]\n"
             "  %lb = broadcast_to(%l4) {shape = [2, 2, 1, 1]} : i32[2,2,1,1]\n"
             "  %keep = cmp_gt(%lb, %k) : bool[2,2,3,4]\n"
             "  %v = const(-1000000.0) : f64[]\n"
             "  %m = select(%keep, %s, %v) : f64[2,2,3,4]\n"
             "  %p = softmax(%m) {axis = -1} : f64[2,2,3,4]\n"
             "  return %p\n}\n",
             pass_canonicalize, true, 0, IR_OP_SELECT, IR_OP_SEQUENCE_MASK);
}

Test(canonicalize, causal_lengths_to_select) {
  check_pass("graph @g(%s: f64[2,2,4,4]) {\n"
             "  %q = iota() {shape = [2, 2, 4], axis = 2, dtype = \"i32\"} : i32[2,2,4]\n"
             "  %one = const(1) : i32[]\n"
             "  %len = add(%q, %one) : i32[2,2,4]\n"
             "  %m = sequence_mask(%s, %len) {value = -1000000.0} : f64[2,2,4,4]\n"
             "  %p = softmax(%m) {axis = -1} : f64[2,2,4,4]\n"
             "  return %p\n}\n",
             pass_canonicalize, true, 0, IR_OP_SEQUENCE_MASK, IR_OP_SELECT);
}

/* s + (-1e9) and the select's -1e9 differ before the softmax, not after:
 * exp(-1e9 - max) is 0 either way. */
Test(canonicalize, causal_bias_tensor_to_select) {
  check_pass("graph @g(%s: f64[2,3,3]) {\n"
             "  %b = const(dense [0.0, -1e9, -1e9, 0.0, 0.0, -1e9, 0.0, 0.0, 0.0]) : f64[3,3]\n"
             "  %m = add(%s, %b) : f64[2,3,3]\n"
             "  %p = softmax(%m) {axis = -1} : f64[2,3,3]\n"
             "  return %p\n}\n",
             pass_canonicalize, true, 1e-15, IR_OP_ADD, IR_OP_SELECT);
}

Test(canonicalize, causal_bias_select_to_select) {
  check_pass("graph @g(%s: f64[1,4,4]) {\n"
             "  %i = iota() {shape = [4, 4], axis = 0, dtype = \"i32\"} : i32[4,4]\n"
             "  %j = iota() {shape = [4, 4], axis = 1, dtype = \"i32\"} : i32[4,4]\n"
             "  %fut = cmp_gt(%j, %i) : bool[4,4]\n"
             "  %ninf = const(-inf) : f64[]\n"
             "  %zero = const(0.0) : f64[]\n"
             "  %bias = select(%fut, %ninf, %zero) : f64[4,4]\n"
             "  %m = add(%bias, %s) : f64[1,4,4]\n"
             "  %p = softmax(%m) {axis = -1} : f64[1,4,4]\n"
             "  return %p\n}\n",
             pass_canonicalize, true, 0, IR_OP_ADD, IR_OP_SELECT);
}

Test(canonicalize, matmul_absorbs_transposes) {
  check_pass("graph @g(%q: f64[2,3,4], %k: f64[2,5,4], %a: f64[2,4,3]) {\n"
             "  %kt = transpose(%k) {perm = [0, 2, 1]} : f64[2,4,5]\n"
             "  %at = transpose(%a) {perm = [0, 2, 1]} : f64[2,3,4]\n"
             "  %s = matmul(%at, %kt) : f64[2,3,5]\n"
             "  %t = matmul(%kt, %q) {transpose_a = true, transpose_b = true} : f64[2,5,3]\n"
             "  %u = matmul(%s, %t) : f64[2,3,3]\n"
             "  return %u\n}\n",
             pass_canonicalize, true, 1e-14, IR_OP_TRANSPOSE, NONE);
}

/* ---- constant-fold ------------------------------------------------------- */

static const char *pe_text =
    "graph @pe(%x: f64[1,6,8]) {\n"
    "  %pos = iota() {shape = [6, 1], axis = 0, dtype = \"f64\"} : f64[6,1]\n"
    "  %j = iota() {shape = [1, 4], axis = 1, dtype = \"f64\"} : f64[1,4]\n"
    "  %base = const(10000.0) : f64[]\n"
    "  %two = const(2.0) : f64[]\n"
    "  %dm = const(8.0) : f64[]\n"
    "  %e0 = mul(%j, %two) : f64[1,4]\n"
    "  %e = div(%e0, %dm) : f64[1,4]\n"
    "  %den = pow(%base, %e) : f64[1,4]\n"
    "  %ang = div(%pos, %den) : f64[6,4]\n"
    "  %s = sin(%ang) : f64[6,4]\n"
    "  %c = cos(%ang) : f64[6,4]\n"
    "  %s3 = reshape(%s) {shape = [6, 4, 1]} : f64[6,4,1]\n"
    "  %c3 = reshape(%c) {shape = [6, 4, 1]} : f64[6,4,1]\n"
    "  %sc = concat(%s3, %c3) {axis = 2} : f64[6,4,2]\n"
    "  %pe = reshape(%sc) {shape = [1, 6, 8]} : f64[1,6,8]\n"
    "  %o = mul(%x, %pe) : f64[1,6,8]\n"
    "  return %o\n}\n";

Test(constant_fold, positional_encoding) {
  check_pass(pe_text, pass_constant_fold, false, 0, IR_OP_SIN, IR_OP_CONST);
  ir_graph *g = tc_parse(pe_text);
  ir_graph *h = apply(g, pass_constant_fold, false, true, NULL);
  cr_expect_eq(h->nnodes, 3, "x, the table and the mul remain (got %d nodes)", h->nnodes);
  ir_graph_destroy(h);
  ir_graph_destroy(g);
}

/* Over the limit the table stays computed; the heavy pieces under it
 * ([1,4] pow) still fold. */
Test(constant_fold, size_limit) {
  ir_graph *g = tc_parse(pe_text);
  pass_opts o = {.fold_limit = 20};
  ir_graph *h = apply(g, pass_constant_fold, false, true, &o);
  cr_expect_eq(tc_count_op(h, IR_OP_SIN), 1);
  cr_expect_eq(tc_count_op(h, IR_OP_POW), 0);
  for (int i = 0; i < h->nnodes; i++)
    if (h->nodes[i]->op == IR_OP_CONST)
      cr_expect_leq(ir_type_numel(&h->nodes[i]->type), 20, "a const over the limit");
  expect_same(g, h, 0, "limited fold");
  ir_graph_destroy(h);
  ir_graph_destroy(g);
}

Test(constant_fold, leaves_cheap_index_math_alone) {
  ir_graph *g = tc_parse("graph @g(%s: f64[2,4,4]) {\n"
                         "  %q = iota() {shape = [2, 4], axis = 1, dtype = \"i32\"} : i32[2,4]\n"
                         "  %one = const(1) : i32[]\n"
                         "  %len = add(%q, %one) : i32[2,4]\n"
                         "  %m = sequence_mask(%s, %len) {value = -1000000.0} : f64[2,4,4]\n"
                         "  return %m\n}\n");
  ir_graph *h = apply(g, pass_constant_fold, false, false, NULL);
  cr_expect_eq(h->nnodes, g->nnodes);
  cr_expect_eq(tc_count_op(h, IR_OP_IOTA), 1);
  ir_graph_destroy(h);
  ir_graph_destroy(g);
}

/* The Transformer's training graph: each positional-encoding table (one
 * per sequence length: encoder and decoder) is one constant after
 * constant-fold, and no sin, cos or pow remains. */
Test(constant_fold, transformer_pe_is_one_constant) {
  const kl_model_info *m = kl_model_find("transformer");
  cr_assert(m && m->graph);
  int loss;
  kl_graph *kg = m->graph(&loss);
  cr_assert_not_null(kg);
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(kl_graph_ir(kg), &d);
  kl_graph_destroy(kg);
  cr_assert_not_null(g);
  int before = tc_count_op(g, IR_OP_SIN) + tc_count_op(g, IR_OP_COS);
  cr_assert_gt(before, 0, "the model builds its encoding from sin/cos");
  pass_opts o = {.stop_after = "constant-fold", .verify_each = true};
  cr_assert(pass_run_pipeline(&g, &o, &d), "%s", d.msg);
  cr_expect_eq(tc_count_op(g, IR_OP_SIN) + tc_count_op(g, IR_OP_COS) + tc_count_op(g, IR_OP_POW),
               0);
  int tables = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_CONST || n->type.rank != 2) continue;
    tables++;
    /* PE[t, 0] = sin(0 * ..) = 0 and PE[t, 1] = cos(0) = 1 at t = 0 */
    rt_tensor v = {.type = n->type, .data = n->data};
    cr_expect_eq(rt_get_f(&v, 0), 0.0);
    cr_expect_eq(rt_get_f(&v, 1), 1.0);
  }
  cr_expect_eq(tables, 2, "one table for the source length, one for the target (got %d)", tables);
  ir_graph_destroy(g);
}

/* ---- cse ------------------------------------------------------------------ */

/* A Bahdanau decoder unrolled over T steps that recomputes the key
 * projection W_k(keys) at every step, as a straightforward port of d2l
 * (and PyTorch's eager execution) does. */
#define BT 4
static kl_graph *bahdanau(void) {
  kl_graph *g = kl_graph_create("bahdanau");
  int64_t b = 2, tk = 5, h = 3;
  kl_value keys = kl_input(g, "keys", KL_F64, KL_SHAPE(b, tk, h));
  kl_value x = kl_input(g, "x", KL_F64, KL_SHAPE(b, BT, h));
  kl_value len = kl_input(g, "len", KL_I32, KL_SHAPE(b));
  kl_value wk = kl_param(g, "W_k", KL_F64, KL_SHAPE(h, h));
  kl_value wq = kl_param(g, "W_q", KL_F64, KL_SHAPE(h, h));
  kl_value wv = kl_param(g, "w_v", KL_F64, KL_SHAPE(h, 1));
  kl_value state = kl_slice(x, KL_INTS(0, 0, 0), KL_INTS(b, 1, h));
  kl_value outs[BT];
  for (int t = 0; t < BT; t++) {
    kl_value xt = kl_slice(x, KL_INTS(0, t, 0), KL_INTS(b, t + 1, h));
    kl_value q = kl_tanh(kl_add(xt, state)); /* [b, 1, h] */
    kl_value qp = kl_reshape(kl_matmul(q, wq), KL_SHAPE(b, 1, 1, h));
    kl_value kp = kl_reshape(kl_matmul(keys, wk), KL_SHAPE(b, 1, tk, h));
    kl_value f = kl_tanh(kl_add(qp, kp)); /* [b, 1, tk, h] */
    kl_value s = kl_reshape(kl_matmul(f, wv), KL_SHAPE(b, 1, tk));
    kl_value a = kl_softmax(kl_sequence_mask(s, len, -1e6), -1);
    state = kl_matmul(a, keys); /* [b, 1, h] */
    outs[t] = state;
  }
  kl_output(kl_sum_all(kl_concat(BT, outs, 1)));
  return g;
}

static int count_wk_projections(const ir_graph *g) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *m = g->nodes[i];
    if (m->op != IR_OP_MATMUL) continue;
    const ir_node *w = g->nodes[m->in[1]];
    n += w->op == IR_OP_PARAM && strcmp(w->attrs[0].s, "W_k") == 0;
  }
  return n;
}

Test(cse, bahdanau_key_projection_once) {
  kl_graph *kg = bahdanau();
  cr_assert_null(kl_graph_error(kg), "%s", kl_graph_error(kg));
  const ir_graph *g = kl_graph_ir(kg);
  cr_assert_eq(count_wk_projections(g), BT);
  ir_graph *h = apply(g, pass_cse, false, true, NULL);
  cr_expect_eq(count_wk_projections(h), 1, "W_k(keys) computed %d times after cse",
               count_wk_projections(h));
  expect_same(g, h, 0, "forward");
  ir_graph *gg = grad_graph(g), *hg = grad_graph(h);
  expect_same(gg, hg, 1e-12, "gradients");
  ir_graph_destroy(gg);
  ir_graph_destroy(hg);
  ir_graph_destroy(h);
  kl_graph_destroy(kg);
}

Test(cse, keeps_unkeyed_dropout_apart) {
  ir_graph *g = tc_parse("graph @g(%x: f64[4]) {\n"
                         "  %a = dropout(%x) {p = 0.5} : f64[4]\n"
                         "  %b = dropout(%x) {p = 0.5} : f64[4]\n"
                         "  %e = exp(%x) : f64[4]\n"
                         "  %f = exp(%x) : f64[4]\n"
                         "  %s = add(%e, %f) : f64[4]\n"
                         "  return %a, %b, %s\n}\n");
  ir_graph *h = apply(g, pass_cse, false, true, NULL);
  cr_expect_eq(tc_count_op(h, IR_OP_DROPOUT), 2);
  cr_expect_eq(tc_count_op(h, IR_OP_EXP), 1);
  ir_graph_destroy(h);
  ir_graph_destroy(g);
}

/* ---- dce ------------------------------------------------------------------ */

Test(dce, drops_dead_keeps_signature_and_assigns) {
  const char *text = "graph @g(%x: f64[4], %unused: f64[2]) {\n"
                     "  %w = param(\"w\") : f64[4]\n"
                     "  %g = mul(%x, %w) : f64[4]\n"
                     "  %dead = exp(%g) : f64[4]\n"
                     "  %w1 = sub(%w, %g) : f64[4]\n"
                     "  %a = assign(%w, %w1) : f64[4]\n"
                     "  %y = tanh(%g) : f64[4]\n"
                     "  return %y\n}\n";
  ir_graph *g = tc_parse(text);
  ir_graph *h = apply(g, pass_dce, false, true, NULL);
  cr_expect_eq(tc_count_op(h, IR_OP_EXP), 0);
  cr_expect_eq(tc_count_op(h, IR_OP_ASSIGN), 1);
  cr_expect_eq(ir_graph_args(h, NULL), 2);
  expect_same(g, h, 0, "forward");
  bool changed = true;
  ir_diag d = {0};
  cr_expect(pass_dce(&h, &(pass_opts){0}, &changed, &d));
  cr_expect_not(changed, "a second dce run still found something");
  ir_graph_destroy(h);
  ir_graph_destroy(g);
}

/* The passes in pipeline order on the Bahdanau graph: same loss. */
Test(cleanup, pipeline_prefix_keeps_values) {
  kl_graph *kg = bahdanau();
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(kl_graph_ir(kg), &d);
  pass_opts o = {.stop_after = "dce", .verify_each = true};
  cr_assert(pass_run_pipeline(&g, &o, &d), "%s", d.msg);
  expect_same(kl_graph_ir(kg), g, 1e-12, "canonicalize..dce");
  ir_graph_destroy(g);
  kl_graph_destroy(kg);
}
