/* fuse-loops: loop regions computed by the JIT's one-kernel lowering agree
 * with the reference interpreter on the unfused graph and, bit for bit,
 * with the JIT's unfused kernels (f32, f64, broadcast operands, dropout in
 * training, compares/select, integer chains, iota and sequence_mask); the
 * Transformer's training graph gets its loop regions (counted) and trains
 * exactly as with the pass stopped before; the pass is idempotent; the
 * verifier refuses a loop body holding a reduction anywhere but as its
 * return. Reduction prologues: sum/mean/reduce_max ending a loop agree
 * with the reference and the unfused JIT (f32, f64, int; last, middle and
 * all axes, keepdims, broadcast operands, dropout/sequence_mask/iota in
 * the body), and memory planning keeps their result off their operands. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "models/models.h"
#include "models/transformer.h"
#include "passes/pipeline.h"
#include "runtime/ref.h"
#include "tests/support/ir_check.h"
#include "tests/support/tf_steps.h"

static ir_graph *fuse(const ir_graph *g, bool *changed) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert(c);
  bool ch = false;
  cr_assert(pass_fuse_loops(&c, NULL, &ch, &d), "fuse-loops: %s", d.msg);
  cr_assert(ir_verify(c, &d), "after fuse-loops: %s", d.msg);
  if (changed) *changed = ch;
  return c;
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

/* One tensor per argument: floats U(-2, 2), integers in [-2, int_hi]. */
static kl_tensor **make_args(const ir_graph *g, int64_t int_hi, int *nargs) {
  int ids[16], n = ir_graph_args(g, ids);
  kl_tensor **a = calloc((size_t)n + 1, sizeof *a);
  uint64_t s = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < n; i++) {
    const ir_type *t = &g->nodes[ids[i]]->type;
    a[i] = kl_tensor_create((kl_tensor_dtype)t->dtype, t->rank, t->dims);
    cr_assert_not_null(a[i]);
    void *p = kl_tensor_data(a[i]);
    for (int64_t e = 0; e < kl_tensor_numel(a[i]); e++) {
      uint64_t r = rng_next(&s);
      double u = (double)(r >> 11) / 9007199254740992.0 * 4 - 2;
      int64_t k = (int64_t)(r % (uint64_t)(int_hi + 3)) - 2;
      switch (t->dtype) {
      case IR_F32: ((float *)p)[e] = (float)u; break;
      case IR_F64: ((double *)p)[e] = u; break;
      case IR_I32: ((int32_t *)p)[e] = (int32_t)k; break;
      case IR_I64: ((int64_t *)p)[e] = k; break;
      default: ((uint8_t *)p)[e] = (uint8_t)(r & 1); break;
      }
    }
  }
  *nargs = n;
  return a;
}

static kl_tensor *jit_run(const ir_graph *g, kl_tensor **args, int nargs, bool training) {
  kl_compile_opts co = {
      .backend = KL_BACKEND_JIT, .seed = 42, .training = training, .no_cache = true, .threads = 2};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &co, &err);
  cr_assert_not_null(p, "compile: %s", err);
  kl_tensor *out = NULL;
  const char *msg = kl_run(p, args, nargs, &out, 1);
  cr_assert_null(msg, "run: %s", msg);
  kl_program_destroy(p);
  return out;
}

/* The reference result of g (unfused) on the same inputs and dropout
 * stream (seed 42, step 0, as a fresh program's first run). */
static rt_tensor *ref_run(const ir_graph *g, kl_tensor **args, int nargs, bool training) {
  rt_tensor *in[16];
  int ids[16];
  ir_graph_args(g, ids);
  for (int i = 0; i < nargs; i++) {
    in[i] = rt_tensor_create(&g->nodes[ids[i]]->type);
    memcpy(in[i]->data, kl_tensor_data(args[i]), in[i]->bytes);
  }
  rt_ref_opts o = {.training = training, .seed = 42, .step = 0};
  rt_tensor *out = NULL;
  ir_diag d = {0};
  cr_assert(rt_ref_run(g, (const rt_tensor *const *)in, NULL, NULL, &o, &out, &d), "ref: %s",
            d.msg);
  for (int i = 0; i < nargs; i++)
    rt_tensor_destroy(in[i]);
  return out;
}

/* Fuses text's graph (asserting nloops regions, nred of them ending in a
 * reduction), optionally memory-plans it, runs both on the JIT and the
 * unfused one on the reference; the fused result must equal the unfused
 * JIT's bit for bit (only within tol when not exact: a broadcast operand
 * can split a reduction's merged axes, so the vectorized partial sums
 * differ) and the reference's within tol. */
static void check_graph_ex(const char *text, int nloops, int nred, bool plan, bool exact,
                           bool training, int64_t int_hi, double tol) {
  ir_graph *g = tc_parse(text);
  ir_graph *f = fuse(g, NULL);
  cr_assert_eq(tc_count_op(f, IR_OP_LOOP), nloops, "loop regions");
  int reds = 0;
  for (int i = 0; i < f->nnodes; i++)
    reds += ir_loop_reduction(f->nodes[i]) != NULL;
  cr_assert_eq(reds, nred, "loop regions ending in a reduction");
  if (plan) {
    ir_diag d = {0};
    bool ch = false;
    cr_assert(pass_memory_plan(&f, NULL, &ch, &d), "memory-plan: %s", d.msg);
  }
  int nargs;
  kl_tensor **args = make_args(g, int_hi, &nargs);
  kl_tensor *fused = jit_run(f, args, nargs, training), *plain = jit_run(g, args, nargs, training);
  rt_tensor *ref = ref_run(g, args, nargs, training);
  ir_dtype dt = ref->type.dtype;
  int64_t n = kl_tensor_numel(fused);
  cr_assert_eq(n, rt_numel(ref));
  if (exact)
    cr_expect_eq(memcmp(kl_tensor_data(fused), kl_tensor_data(plain), ref->bytes), 0,
                 "fused and unfused JIT results differ (%s)", text);
  for (int64_t e = 0; e < n; e++) {
    double x, y = rt_get_f(ref, e);
    const void *p = kl_tensor_data(fused);
    switch (dt) {
    case IR_F32: x = ((const float *)p)[e]; break;
    case IR_F64: x = ((const double *)p)[e]; break;
    case IR_I32: x = ((const int32_t *)p)[e]; break;
    case IR_I64: x = (double)((const int64_t *)p)[e]; break;
    default: x = ((const uint8_t *)p)[e]; break;
    }
    cr_assert(fabs(x - y) <= tol * (1 + fabs(y)), "element %lld: JIT %.17g, reference %.17g",
              (long long)e, x, y);
    if (!exact && dt == IR_F64) {
      double z = ((const double *)kl_tensor_data(plain))[e];
      cr_assert(fabs(x - z) <= tol * (1 + fabs(z)), "element %lld: fused %.17g, unfused %.17g",
                (long long)e, x, z);
    } else if (!exact && dt == IR_F32) {
      double z = ((const float *)kl_tensor_data(plain))[e];
      cr_assert(fabs(x - z) <= tol * (1 + fabs(z)), "element %lld: fused %.17g, unfused %.17g",
                (long long)e, x, z);
    }
  }
  if (training) { /* dropout was on: the eval-mode reference differs */
    rt_tensor *ev = ref_run(g, args, nargs, false);
    cr_expect_neq(memcmp(ev->data, ref->data, ref->bytes), 0, "dropout changed nothing");
    rt_tensor_destroy(ev);
  }
  kl_tensor_destroy(fused), kl_tensor_destroy(plain);
  rt_tensor_destroy(ref);
  for (int i = 0; i < nargs; i++)
    kl_tensor_destroy(args[i]);
  free(args);
  ir_graph_destroy(f), ir_graph_destroy(g);
}

static void check_graph(const char *text, int nloops, bool training, int64_t int_hi, double tol) {
  check_graph_ex(text, nloops, 0, false, true, training, int_hi, tol);
}

static const char *bias_gelu_dropout_add(const char *dt) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "graph @ffn(%%x: %s[16,40], %%b: %s[40], %%r: %s[16,40]) {\n"
           "  %%h = add(%%x, %%b) : %s[16,40]\n"
           "  %%g = gelu(%%h) : %s[16,40]\n"
           "  %%d = dropout(%%g) {p = 0.25} : %s[16,40]\n"
           "  %%y = add(%%d, %%r) : %s[16,40]\n"
           "  return %%y\n}\n",
           dt, dt, dt, dt, dt, dt, dt);
  return buf;
}

Test(fuse_loops, bias_gelu_dropout_add_f32_training) {
  check_graph(bias_gelu_dropout_add("f32"), 1, true, 0, 1e-5);
}
Test(fuse_loops, bias_gelu_dropout_add_f64_training) {
  check_graph(bias_gelu_dropout_add("f64"), 1, true, 0, 1e-13);
}
Test(fuse_loops, bias_gelu_dropout_add_f32_eval) {
  check_graph(bias_gelu_dropout_add("f32"), 1, false, 0, 1e-5);
}

/* Broadcast operands on several axes, a scalar constant copied into the
 * body, unary math. */
Test(fuse_loops, broadcast_chain_f64) {
  check_graph("graph @chain(%x: f64[3,5,7], %a: f64[7], %b: f64[5,1], %s: f64[3,1,1]) {\n"
              "  %t1 = mul(%x, %a) : f64[3,5,7]\n"
              "  %t2 = sub(%t1, %b) : f64[3,5,7]\n"
              "  %t3 = tanh(%t2) : f64[3,5,7]\n"
              "  %c = const(0.25) : f64[]\n"
              "  %t4 = max(%t3, %c) : f64[3,5,7]\n"
              "  %t5 = div(%t4, %s) : f64[3,5,7]\n"
              "  %t6 = sigmoid(%t5) : f64[3,5,7]\n"
              "  return %t6\n}\n",
              1, false, 0, 1e-13);
}

/* Integer operands, a cast, a compare and a select, in f32 (two regions:
 * %q has two users). */
Test(fuse_loops, compare_select_int_operands_f32) {
  check_graph("graph @cs(%x: f32[6,9], %n: i32[6,9], %k: i32[9]) {\n"
              "  %s = add(%n, %k) : i32[6,9]\n"
              "  %c = cast(%s) {to = \"f32\"} : f32[6,9]\n"
              "  %q = mul(%c, %x) : f32[6,9]\n"
              "  %m = cmp_lt(%x, %q) : bool[6,9]\n"
              "  %z = const(-0.5) : f32[]\n"
              "  %y = select(%m, %q, %z) : f32[6,9]\n"
              "  return %y\n}\n",
              2, false, 4, 1e-6);
}

/* An all-integer chain: guarded division by zero, negation, relu. */
Test(fuse_loops, integer_chain_i64) {
  check_graph("graph @ints(%a: i64[4,6], %b: i64[6]) {\n"
              "  %q = div(%a, %b) : i64[4,6]\n"
              "  %n = neg(%q) : i64[4,6]\n"
              "  %r = relu(%n) : i64[4,6]\n"
              "  %m = mul(%r, %a) : i64[4,6]\n"
              "  return %m\n}\n",
              1, false, 5, 0);
}

/* iota and sequence_mask read the index; two single-node groups merge
 * through the add. */
Test(fuse_loops, iota_sequence_mask_f32) {
  check_graph("graph @im(%x: f32[3,4,5], %len: i32[3]) {\n"
              "  %m = sequence_mask(%x, %len) {value = -7.0} : f32[3,4,5]\n"
              "  %i = iota() {shape = [3, 4, 5], axis = 1, dtype = \"f32\"} : f32[3,4,5]\n"
              "  %a = add(%m, %i) : f32[3,4,5]\n"
              "  %e = exp(%a) : f32[3,4,5]\n"
              "  return %e\n}\n",
              1, false, 5, 1e-5);
}

/* Dropout twice in one region, with different streams, in f64. */
Test(fuse_loops, two_dropouts_f64_training) {
  check_graph("graph @dd(%x: f64[8,33], %y: f64[8,33]) {\n"
              "  %a = dropout(%x) {p = 0.5} : f64[8,33]\n"
              "  %b = dropout(%y) {p = 0.2} : f64[8,33]\n"
              "  %s = add(%a, %b) : f64[8,33]\n"
              "  %t = dropout(%s) {p = 0.3} : f64[8,33]\n"
              "  return %t\n}\n",
              1, true, 0, 1e-13);
}

/* Two regions with the same types and different bodies must not share a
 * kernel (the kernel signature includes the body). */
Test(fuse_loops, twins_with_different_bodies) {
  check_graph("graph @tw(%x: f32[4,8], %y: f32[4,8]) {\n"
              "  %a = exp(%x) : f32[4,8]\n"
              "  %b = neg(%a) : f32[4,8]\n"
              "  %c = tanh(%y) : f32[4,8]\n"
              "  %d = neg(%c) : f32[4,8]\n"
              "  %s = matmul(%b, %d) {transpose_b = true} : f32[4,4]\n"
              "  return %s\n}\n",
              2, false, 0, 1e-5);
}

Test(fuse_loops, verifier_refuses_a_reduction_in_the_body) {
  ir_diag d = {0};
  const char *text = "graph @bad(%x: f32[4,8]) {\n"
                     "  %y = loop(%x) {shape = [4, 8], dtype = \"f32\"} : f32[4,8] region(%x: "
                     "f32[4,8]) {\n"
                     "    %s = softmax(%x) {axis = -1} : f32[4,8]\n"
                     "    return %s\n  }\n  return %y\n}\n";
  ir_graph *g = ir_parse(text, strlen(text), "bad.kir", &d);
  cr_expect_null(g);
  cr_expect(strstr(d.msg, "only elementwise and broadcast ops") != NULL, "%s", d.msg);
  ir_graph_destroy(g);
}

/* ---- reduction prologues --------------------------------------------------- */

/* sum / mean / reduce_max of an elementwise chain with a broadcast operand,
 * over axes `axes`, as text for dtype dt. */
static const char *reduce_text(const char *op, const char *dt, const char *axes, bool keep,
                               const char *in_shape, const char *b_shape, const char *out_shape) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "graph @r(%%x: %s[%s], %%b: %s[%s]) {\n"
           "  %%p = mul(%%x, %%b) : %s[%s]\n"
           "  %%t = tanh(%%p) : %s[%s]\n"
           "  %%r = %s(%%t) {axes = [%s]%s} : %s[%s]\n"
           "  return %%r\n}\n",
           dt, in_shape, dt, b_shape, dt, in_shape, dt, in_shape, op, axes,
           keep ? ", keepdims = true" : "", dt, out_shape);
  return buf;
}

/* exact: the operand splits no merged axes (bit-identical to unfused). */
static void check_reduce(const char *op, const char *axes, bool keep, const char *in_shape,
                         const char *b_shape, const char *out_shape, bool exact) {
  check_graph_ex(reduce_text(op, "f32", axes, keep, in_shape, b_shape, out_shape), 1, 1, false,
                 exact, false, 0, 1e-5);
  check_graph_ex(reduce_text(op, "f64", axes, keep, in_shape, b_shape, out_shape), 1, 1, false,
                 exact, false, 0, 1e-12);
}

Test(fuse_loops, reduce_last_axis) {
  check_reduce("sum", "1", false, "6,37", "37", "6", true);
  check_reduce("mean", "-1", false, "3,5,37", "5,1", "3,5", true);
  check_reduce("reduce_max", "2", false, "3,5,37", "37", "3,5", true);
}

/* The kept last axis takes the tiled path; 300 columns make two tiles. */
Test(fuse_loops, reduce_middle_axis) {
  check_reduce("sum", "1", false, "3,5,7", "3,1,7", "3,7", true);
  check_reduce("mean", "1", false, "2,9,300", "300", "2,300", true);
  check_reduce("reduce_max", "0", false, "9,4,6", "4,1", "4,6", true);
}

Test(fuse_loops, reduce_all_axes_and_keepdims) {
  check_reduce("sum", "0, 1, 2", false, "3,5,7", "5,7", "", false);
  check_reduce("mean", "0, 1", false, "40,33", "40,1", "", false);
  check_reduce("reduce_max", "0, 1", true, "6,10", "10", "1,1", true);
  check_reduce("mean", "-1", true, "4,5,6", "4,5,1", "4,5,1", true);
  check_reduce("sum", "0, 2", true, "4,5,6", "5,1", "1,5,1", true);
}

/* Index-reading ops in a reducing loop: their index is the element's in
 * the iteration space (dropout's mask, sequence_mask's column, iota). */
Test(fuse_loops, reduce_of_dropout_and_sequence_mask_training) {
  check_graph_ex("graph @ds(%x: f32[5,4,9], %len: i32[5]) {\n"
                 "  %m = sequence_mask(%x, %len) {value = 0.0} : f32[5,4,9]\n"
                 "  %d = dropout(%m) {p = 0.3} : f32[5,4,9]\n"
                 "  %i = iota() {shape = [5, 4, 9], axis = 2, dtype = \"f32\"} : f32[5,4,9]\n"
                 "  %a = mul(%d, %i) : f32[5,4,9]\n"
                 "  %s = sum(%a) {axes = [2]} : f32[5,4]\n"
                 "  return %s\n}\n",
                 1, 1, false, true, true, 9, 1e-5);
}

Test(fuse_loops, reduce_integer_sum) {
  check_graph_ex("graph @is(%a: i32[7,11], %b: i32[11]) {\n"
                 "  %m = mul(%a, %b) : i32[7,11]\n"
                 "  %s = sum(%m) {axes = [0]} : i32[11]\n"
                 "  return %s\n}\n",
                 1, 1, false, true, false, 5, 0);
}

/* The reducing loop's result has the type of its operand %y, which dies
 * there; memory planning must not put the result over %y: every output
 * reads all of %y. */
Test(fuse_loops, reduce_result_not_planned_over_an_operand) {
  check_graph_ex("graph @mp(%x: f32[8,8], %z: f32[8]) {\n"
                 "  %y = exp(%z) : f32[8]\n"
                 "  %p = mul(%x, %y) : f32[8,8]\n"
                 "  %s = sum(%p) {axes = [1]} : f32[8]\n"
                 "  %o = neg(%s) : f32[8]\n"
                 "  return %o\n}\n",
                 1, 1, true, true, false, 0, 1e-5);
}

/* The printed region parses back to the same graph. */
Test(fuse_loops, reduce_region_text_round_trip) {
  ir_graph *g = tc_parse(reduce_text("mean", "f32", "1", false, "4,8", "8", "4"));
  ir_graph *f = fuse(g, NULL);
  char *a = ir_print_str(f, NULL);
  ir_graph *h = tc_parse(a);
  char *b = ir_print_str(h, NULL);
  cr_expect_str_eq(a, b);
  cr_expect(strstr(a, "mean(%t) {axes = [1]} : f32[4]") != NULL, "%s", a);
  free(a), free(b);
  ir_graph_destroy(h), ir_graph_destroy(f), ir_graph_destroy(g);
}

Test(fuse_loops, verifier_refuses_a_reduction_before_the_return) {
  ir_diag d = {0};
  const char *text = "graph @bad(%x: f32[4,8]) {\n"
                     "  %y = loop(%x) {shape = [4], dtype = \"f32\"} : f32[4] region(%x: "
                     "f32[4,8]) {\n"
                     "    %s = sum(%x) {axes = [1]} : f32[4]\n"
                     "    %e = exp(%s) : f32[4]\n"
                     "    return %e\n  }\n  return %y\n}\n";
  ir_graph *g = ir_parse(text, strlen(text), "bad.kir", &d);
  cr_expect_null(g);
  cr_expect(strstr(d.msg, "holds a sum") != NULL, "%s", d.msg);
  ir_graph_destroy(g);
}

Test(fuse_loops, verifier_refuses_an_operand_outside_the_iteration_space) {
  ir_diag d = {0};
  const char *text = "graph @bad(%x: f32[4,8], %b: f32[3]) {\n"
                     "  %y = loop(%x, %b) {shape = [4], dtype = \"f32\"} : f32[4] region(%x: "
                     "f32[4,8], %b: f32[3]) {\n"
                     "    %s = sum(%x) {axes = [1]} : f32[4]\n"
                     "    return %s\n  }\n  return %y\n}\n";
  ir_graph *g = ir_parse(text, strlen(text), "bad.kir", &d);
  cr_expect_null(g);
  cr_expect(strstr(d.msg, "iteration space") != NULL, "%s", d.msg);
  ir_graph_destroy(g);
}

/* ---- the Transformer ------------------------------------------------------- */

static ir_graph *transformer_train_graph(const char *stop_after) {
  const kl_model_info *m = kl_model_find("transformer");
  cr_assert(m && m->graph);
  int out = 0;
  kl_graph *kg = m->graph(&out);
  cr_assert_not_null(kg);
  const ir_graph *fwd = kl_graph_ir(kg);
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.005, .clip_norm = 1.0};
  pass_opts po = kl_default_pass_opts();
  po.stop_after = stop_after;
  char *err = NULL;
  ir_graph *tg = kl_train_graph_with(fwd, fwd->rets[out], NULL, 0, &opt, &po, &err);
  cr_assert_not_null(tg, "%s", err);
  kl_graph_destroy(kg);
  return tg;
}

static int body_nodes(const ir_graph *g) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_LOOP) continue;
    for (int j = 0; j < n->body->nnodes; j++)
      k += n->body->nodes[j]->op != IR_OP_ARG && n->body->nodes[j]->op != IR_OP_CONST;
  }
  return k;
}

Test(fuse_loops, transformer_training_graph_counts_and_idempotence, .timeout = 120) {
  ir_graph *before = transformer_train_graph("fold-gemm-epilogue");
  ir_graph *after = transformer_train_graph("fuse-loops");
  int nloops = tc_count_op(after, IR_OP_LOOP), absorbed = body_nodes(after), reds = 0;
  for (int i = 0; i < after->nnodes; i++)
    reds += ir_loop_reduction(after->nodes[i]) != NULL;
  int plain_reds = tc_count_op(after, IR_OP_SUM) + tc_count_op(after, IR_OP_MEAN) +
                   tc_count_op(after, IR_OP_REDUCE_MAX);
  cr_log_info("transformer training graph: %d nodes before fuse-loops, %d after; %d loop regions "
              "absorbing %d nodes; %d end in a reduction, %d reductions stay plain",
              before->nnodes, after->nnodes, nloops, absorbed, reds, plain_reds);
  cr_expect_eq(tc_count_op(before, IR_OP_LOOP), 0);
  /* reduction prologues: 95 of the 135 sums, means and maxes fuse */
  cr_expect_eq(reds + plain_reds, tc_count_op(before, IR_OP_SUM) + tc_count_op(before, IR_OP_MEAN) +
                                      tc_count_op(before, IR_OP_REDUCE_MAX));
  cr_expect_geq(reds, 90, "loops ending in a reduction: %d", reds);
  cr_expect_geq(nloops, 200, "loop regions: %d", nloops);
  cr_expect_geq(absorbed, 900, "nodes absorbed: %d", absorbed);
  /* every absorbed node left the graph; a region replaced each group */
  cr_expect_leq(after->nnodes, before->nnodes - absorbed + nloops);
  bool changed = true;
  ir_graph *again = fuse(after, &changed);
  cr_expect_not(changed, "a second run changed the graph");
  char *a = ir_print_str(after, NULL), *b = ir_print_str(again, NULL);
  cr_expect_str_eq(a, b);
  free(a), free(b);
  ir_graph_destroy(again), ir_graph_destroy(after), ir_graph_destroy(before);
}

static void count_loops(const ir_graph *g, void *ud) { *(int *)ud = tc_count_op(g, IR_OP_LOOP); }

/* Three JIT training steps (dropout on) with the whole pipeline, or with
 * it stopped before fuse-loops (planning then is off too: the stop ends
 * the pipeline; planning alone is bit-exact, tests/test_memory_plan.c). */
static tc_tf_run train_steps(const tf_config *c, bool loops, int *nloops) {
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.01, .clip_norm = 1.0};
  pass_opts po = kl_default_pass_opts();
  if (!loops) po.stop_after = "fold-gemm-epilogue";
  kl_compile_opts co = {.backend = KL_BACKEND_JIT,
                        .seed = 7,
                        .training = true,
                        .threads = 2,
                        .no_cache = true,
                        .guard_bytes = true};
  return tc_tf_train(c, &opt, &po, &co, count_loops, nloops);
}

Test(fuse_loops, transformer_steps_match_unfused, .timeout = 300) {
  tf_config c = tc_tf_small();
  int na = -1, nb = -1;
  tc_tf_run a = train_steps(&c, false, &na), b = train_steps(&c, true, &nb);
  cr_expect_eq(na, 0);
  cr_expect_gt(nb, 0);
  tc_tf_expect_same(&a, &b, 0, "without loops vs with");
  tc_tf_free(&a);
  tc_tf_free(&b);
}
