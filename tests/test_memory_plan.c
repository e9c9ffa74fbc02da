/* The memory_plan pass and the JIT's use of its arena: on hand-built graphs
 * and the Transformer's training graph, no two values alive at once share a
 * byte (liveness recomputed here, every pair of values checked), offsets
 * are aligned and inside the arena; planned and unplanned JIT training steps
 * agree bit for bit; the plan's comment block prints and re-parses. */
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
#include "tests/support/tf_steps.h"

static int64_t bytes_of(const ir_node *n) {
  return ir_type_numel(&n->type) * (int64_t)ir_dtype_size(n->type.dtype);
}

static bool own_storage(const ir_graph *g, int id) {
  ir_op op = g->nodes[id]->op;
  if (op == IR_OP_ARG || op == IR_OP_CONST || op == IR_OP_PARAM || op == IR_OP_STEP ||
      op == IR_OP_ASSIGN)
    return true;
  for (int r = 0; r < g->nrets; r++)
    if (g->rets[r] == id) return true;
  return false;
}

/* Sharing allowed for an elementwise result written over its operand a:
 * a dies at i, same type, same offset exactly. */
static bool in_place_pair(const ir_graph *g, const int *last, int a, int i) {
  const ir_node *n = g->nodes[i];
  ir_fusion fu = ir_op_get(n->op)->fusion;
  /* gemm may write over its accumulator c (operand 2), never over a or b */
  bool gemm_c =
      n->op == IR_OP_GEMM && n->nin == 3 && n->in[2] == a && n->in[0] != a && n->in[1] != a;
  if (fu != IR_FUSE_ELEMENTWISE && fu != IR_FUSE_BROADCAST && n->op != IR_OP_LOOP && !gemm_c)
    return false;
  if (last[a] != i || !ir_type_eq(&g->nodes[a]->type, &n->type)) return false;
  if (g->plan->offset[a] != g->plan->offset[i]) return false;
  if (gemm_c) return true;
  for (int k = 0; k < n->nin; k++)
    if (n->in[k] == a) return true;
  return false;
}

typedef struct plan_stats {
  int planned, in_place;
} plan_stats;

/* Checks g->plan against liveness computed here; returns counts. */
static plan_stats check_plan(const ir_graph *g) {
  const ir_mem_plan *p = g->plan;
  cr_assert_not_null(p, "graph has no plan");
  cr_assert_eq(p->nnodes, g->nnodes);
  int n = g->nnodes;
  int *last = malloc(sizeof(int) * (size_t)n);
  cr_assert_not_null(last);
  for (int i = 0; i < n; i++) {
    last[i] = i;
    for (int j = i + 1; j < n; j++)
      for (int k = 0; k < g->nodes[j]->nin; k++)
        if (g->nodes[j]->in[k] == i) last[i] = j;
  }
  plan_stats st = {0};
  int64_t naive = 0;
  for (int i = 0; i < n; i++) {
    int64_t off = p->offset[i];
    if (own_storage(g, i)) {
      cr_assert_eq(off, -1, "node %d (%s) has storage of its own but offset %lld", i,
                   ir_op_get(g->nodes[i]->op)->name, (long long)off);
      continue;
    }
    cr_assert_geq(off, 0, "intermediate %d (%s) is not planned", i,
                  ir_op_get(g->nodes[i]->op)->name);
    cr_assert_eq(off % 64, 0, "node %d at +%lld is not 64-byte aligned", i, (long long)off);
    cr_assert_leq(off + bytes_of(g->nodes[i]), p->arena_bytes, "node %d overruns the arena", i);
    naive += bytes_of(g->nodes[i]);
    st.planned++;
  }
  cr_assert_eq(p->naive_bytes, naive);
  for (int i = 0; i < n; i++) {
    if (p->offset[i] < 0) continue;
    int64_t ai = p->offset[i], bi = ai + bytes_of(g->nodes[i]);
    for (int j = i + 1; j < n; j++) {
      if (p->offset[j] < 0 || j > last[i]) continue; /* j defined after i died */
      int64_t aj = p->offset[j], bj = aj + bytes_of(g->nodes[j]);
      if (bi <= aj || bj <= ai || ai == bi || aj == bj) continue; /* disjoint or empty */
      if (in_place_pair(g, last, i, j)) {
        st.in_place++;
        continue;
      }
      cr_assert_fail("%%%s [%d, %d] at +%lld..%lld and %%%s [%d, %d] at +%lld..%lld overlap",
                     g->nodes[i]->name ? g->nodes[i]->name : "?", i, last[i], (long long)ai,
                     (long long)bi, g->nodes[j]->name ? g->nodes[j]->name : "?", j, last[j],
                     (long long)aj, (long long)bj);
    }
  }
  free(last);
  return st;
}

static ir_graph *parse_plan(const char *text) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "test.kir", &d);
  cr_assert_not_null(g, "%s", d.msg);
  bool changed;
  cr_assert(pass_memory_plan(&g, NULL, &changed, &d), "%s", d.msg);
  return g;
}

/* ---- hand-built graphs ----------------------------------------------------- */

Test(memory_plan, matmul_chain_needs_two_buffers) {
  /* Each product is alive with its operand: two 64x64 floats at a time. */
  ir_graph *g = parse_plan("graph @chain(%x: f32[64,64], %w: f32[64,64]) {\n"
                           "  %a = matmul(%x, %w) : f32[64,64]\n"
                           "  %b = matmul(%a, %w) : f32[64,64]\n"
                           "  %c = matmul(%b, %w) : f32[64,64]\n"
                           "  %d = matmul(%c, %w) : f32[64,64]\n"
                           "  %s = sum(%d) {axes = [0, 1]} : f32[]\n"
                           "  return %s\n"
                           "}\n");
  plan_stats st = check_plan(g);
  cr_expect_eq(st.planned, 4);
  cr_expect_eq(st.in_place, 0);
  cr_expect_eq(g->plan->arena_bytes, 2 * 64 * 64 * 4);
  cr_expect_eq(g->plan->naive_bytes, 4 * 64 * 64 * 4);
  cr_expect_neq(g->plan->offset[2], g->plan->offset[3], "matmul must not alias its operand");
  ir_graph_destroy(g);
}

Test(memory_plan, elementwise_chain_runs_in_place) {
  ir_graph *g = parse_plan("graph @ew(%x: f32[10,10]) {\n"
                           "  %a = exp(%x) : f32[10,10]\n"
                           "  %b = neg(%a) : f32[10,10]\n"
                           "  %c = mul(%b, %b) : f32[10,10]\n"
                           "  %d = tanh(%c) : f32[10,10]\n"
                           "  %s = sum(%d) {axes = [0, 1]} : f32[]\n"
                           "  return %s\n"
                           "}\n");
  plan_stats st = check_plan(g);
  cr_expect_eq(st.planned, 4);
  cr_expect_eq(st.in_place, 3);
  cr_expect_eq(g->plan->arena_bytes, 448); /* 400 bytes rounded to 64 */
  ir_graph_destroy(g);
}

Test(memory_plan, no_in_place_when_operand_lives_on_or_differs) {
  /* %b reads %a but %a is read again later; %c's operand %b has another
   * shape (broadcast); %m is a bool compare of a float; softmax is a
   * reduction and never aliases. */
  ir_graph *g = parse_plan("graph @keep(%x: f32[4,8], %y: f32[8]) {\n"
                           "  %a = exp(%x) : f32[4,8]\n"
                           "  %b = neg(%a) : f32[4,8]\n"
                           "  %e = add(%a, %b) : f32[4,8]\n"
                           "  %r = sum(%e) {axes = [0]} : f32[8]\n"
                           "  %c = add(%r, %x) : f32[4,8]\n"
                           "  %m = cmp_lt(%c, %x) : bool[4,8]\n"
                           "  %z = const(0.0) : f32[]\n"
                           "  %s = select(%m, %c, %z) : f32[4,8]\n"
                           "  %w = softmax(%s) {axis = -1} : f32[4,8]\n"
                           "  %unused = relu(%w) : f32[4,8]\n"
                           "  return %w\n"
                           "}\n");
  plan_stats st = check_plan(g);
  const int64_t *off = g->plan->offset;
  /* ids: 0 x, 1 y, 2 a, 3 b, 4 e, 5 r, 6 c, 7 m, 8 z, 9 s, 10 w, 11 unused */
  cr_expect_neq(off[3], off[2], "%%a is still needed by %%e");
  cr_expect(off[4] == off[2] || off[4] == off[3], "%%e may reuse a dying operand");
  cr_expect_neq(off[6], off[5], "%%c's operand %%r has a smaller type");
  cr_expect_neq(off[7], off[6], "%%m is bool");
  cr_expect_eq(off[9], off[6], "%%s = select(.., %%c, ..) with %%c dying");
  cr_expect_eq(off[10], -1, "returned");
  cr_expect_geq(off[11], 0, "a dead value is still written");
  cr_expect_eq(st.in_place, 2);
  ir_graph_destroy(g);
}

Test(memory_plan, leaves_returns_and_assigns_keep_their_storage) {
  ir_graph *g = parse_plan("graph @upd(%x: f32[4]) {\n"
                           "  %p = param(\"w\") {init = \"zeros\"} : f32[4]\n"
                           "  %t = step() : f32[]\n"
                           "  %g = mul(%x, %p) : f32[4]\n"
                           "  %n = sub(%p, %g) : f32[4]\n"
                           "  %u = assign(%p, %n) : f32[4]\n"
                           "  %l = sum(%g) {axes = [0]} : f32[]\n"
                           "  return %l, %t\n"
                           "}\n");
  plan_stats st = check_plan(g);
  cr_expect_eq(st.planned, 2); /* %g and %n */
  cr_expect_eq(g->plan->naive_bytes, 32);
  ir_graph_destroy(g);
}

Test(memory_plan, printed_plan_is_a_comment_block) {
  ir_graph *g = parse_plan("graph @chain(%x: f32[64,64], %w: f32[64,64]) {\n"
                           "  %a = matmul(%x, %w) : f32[64,64]\n"
                           "  %b = relu(%a) : f32[64,64]\n"
                           "  %c = matmul(%b, %w) : f32[64,64]\n"
                           "  return %c\n"
                           "}\n");
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_not_null(f);
  ir_print(g, f, NULL);
  ir_print_plan(g, f);
  fclose(f);
  cr_expect_not_null(strstr(buf, "# memory plan: arena 16384 bytes, 2 values (one buffer each: "
                                 "32768 bytes; 50.0% smaller)\n"
                                 "#   %a  +0  16384\n"
                                 "#   %b  +0  16384\n"),
                     "%s", buf);
  ir_diag d = {0};
  ir_graph *back = ir_parse(buf, len, "plan.kir", &d);
  cr_expect_not_null(back, "the plan's comments must parse: %s", d.msg);
  ir_graph_destroy(back);
  free(buf);
  ir_graph_drop_plan(g);
  f = open_memstream(&buf, &len);
  ir_print_plan(g, f);
  fclose(f);
  cr_expect_str_eq(buf, "# memory plan: none (one buffer per value)\n");
  free(buf);
  ir_graph_destroy(g);
}

/* ---- the Transformer's training graph ----------------------------------------- */

static ir_graph *train_graph(const ir_graph *fwd, int loss, bool plan) {
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.005, .clip_norm = 1.0};
  pass_opts po = kl_default_pass_opts();
  po.no_plan = !plan;
  char *err = NULL;
  ir_graph *tg = kl_train_graph_with(fwd, loss, NULL, 0, &opt, &po, &err);
  cr_assert_not_null(tg, "%s", err);
  return tg;
}

Test(memory_plan, transformer_training_graph) {
  const kl_model_info *m = kl_model_find("transformer");
  cr_assert(m && m->graph);
  int out = 0;
  kl_graph *kg = m->graph(&out);
  cr_assert_not_null(kg);
  const ir_graph *fwd = kl_graph_ir(kg);
  ir_graph *tg = train_graph(fwd, fwd->rets[out], true);
  plan_stats st = check_plan(tg);
  const ir_mem_plan *p = tg->plan;
  double saved = 1.0 - (double)p->arena_bytes / (double)p->naive_bytes;
  cr_log_info("transformer training graph: %d nodes, %d planned (%d in place), arena %lld bytes, "
              "one buffer each %lld bytes, %.1f%% smaller",
              tg->nnodes, st.planned, st.in_place, (long long)p->arena_bytes,
              (long long)p->naive_bytes, 100 * saved);
  cr_expect_gt(st.in_place, 0);
  cr_expect_geq(saved, 0.40, "arena %lld of %lld bytes", (long long)p->arena_bytes,
                (long long)p->naive_bytes);
  ir_graph *unplanned = train_graph(fwd, fwd->rets[out], false);
  cr_expect_null(unplanned->plan);
  cr_expect_eq(unplanned->nnodes, tg->nnodes, "planning changes no node");
  ir_graph_destroy(unplanned);
  ir_graph_destroy(tg);
  kl_graph_destroy(kg);
}

/* ---- planned and unplanned JIT steps agree bit for bit --------------------------- */

static void inspect_plan(const ir_graph *g, void *ud) {
  bool plan = *(const bool *)ud;
  cr_assert_eq(g->plan != NULL, plan);
  if (plan) check_plan(g);
}

static tc_tf_run train_steps(const tf_config *c, bool plan, bool guard) {
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.01, .clip_norm = 1.0};
  pass_opts po = kl_default_pass_opts();
  po.no_plan = !plan;
  /* Fusion off: this compares planning, not the fused kernels. */
  po.no_fusion = true;
  kl_compile_opts co = {
      .backend = KL_BACKEND_JIT, .seed = 7, .threads = 2, .no_cache = true, .guard_bytes = guard};
  return tc_tf_train(c, &opt, &po, &co, inspect_plan, &plan);
}

static void same_steps(bool guard) {
  tf_config c = tc_tf_small();
  tc_tf_run a = train_steps(&c, false, guard), b = train_steps(&c, true, guard);
  tc_tf_expect_same(&a, &b, 0, "unplanned vs planned");
  tc_tf_free(&a);
  tc_tf_free(&b);
}

Test(memory_plan, jit_steps_bitwise_equal, .timeout = 300) { same_steps(false); }
Test(memory_plan, jit_steps_bitwise_equal_guarded, .timeout = 300) { same_steps(true); }
