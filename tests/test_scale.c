/* Scale (issue 16): a 10^6-node elementwise chain and a 10^5-value return
 * go through the whole pipeline and run on both backends within generous
 * bounds, with the results of the reference interpreter; and the
 * pipeline's time grows linearly in the node count. The graphs come from
 * tests/support/scale_graphs.h; bench_scale measures the same per pass. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "passes/pipeline.h"
#include "runtime/ref.h"
#include "tests/support/ir_check.h"
#include "tests/support/scale_graphs.h"

/* AddressSanitizer makes kiln's own code several times slower (LLVM's is
 * not instrumented), so the sanitizer build runs the big chain at 10^5
 * nodes against the same bounds: still 10^5 nodes, far past where the old
 * quadratic passes took minutes (20k nodes: 2 s in fuse-loops alone). */
#if defined(__SANITIZE_ADDRESS__)
#define SCALE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCALE_ASAN 1
#endif
#endif
#ifdef SCALE_ASAN
#define BIG_CHAIN 100000
#else
#define BIG_CHAIN 1000000
#endif

/* Generous bounds, not benchmarks: the release build measured about 8 s
 * (reference) and 13 s (JIT, cold cache) for the 10^6 chain, including
 * parsing; a quadratic pass would take hours. */
#define BOUND_REF_S 30.0
#define BOUND_JIT_S 60.0

#define WIDTH 16

/* Process CPU time, not wall time: the bounds and the growth ratio are
 * about the work the code does, and a shared machine's load (CI next to
 * other jobs) inflated wall-clock ratios past the bar on linear code. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static kl_tensor *input_x(void) {
  float x[WIDTH];
  for (int i = 0; i < WIDTH; i++)
    x[i] = (float)(i - WIDTH / 2) * 0.25f;
  return kl_tensor_from(KL_TENSOR_F32, 1, (int64_t[]){WIDTH}, x);
}

/* Compiles g for backend (the whole default pipeline; no on-disk cache, so
 * the JIT's time is a cold compile) and runs it on x; nouts outputs. */
static kl_tensor **run(const ir_graph *g, kl_backend backend, kl_tensor *x, int nouts) {
  kl_compile_opts co = {.backend = backend, .threads = 2, .no_cache = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &co, &err);
  cr_assert_not_null(p, "compile: %s", err);
  kl_tensor **outs = calloc((size_t)nouts, sizeof *outs);
  cr_assert_not_null(outs);
  const char *msg = kl_run(p, &x, 1, outs, nouts);
  cr_assert_null(msg, "run: %s", msg);
  kl_program_destroy(p);
  return outs;
}

static void free_outs(kl_tensor **outs, int n) {
  for (int i = 0; i < n; i++)
    kl_tensor_destroy(outs[i]);
  free(outs);
}

static ir_graph *parse_owned(char *text) {
  cr_assert_not_null(text);
  ir_graph *g = tc_parse(text);
  free(text);
  return g;
}

/* The chain's value at one element, computed directly in double: the
 * same cycle add c, mul c, neg, tanh as sg_chain, independent of kiln. */
static double chain_value(double x, int n) {
  const double c = 0.75;
  for (int i = 0; i < n; i++)
    switch (i % 4) {
    case 0: x += c; break;
    case 1: x *= c; break;
    case 2: x = -x; break;
    default: x = tanh(x); break;
    }
  return x;
}

static void expect_chain(kl_tensor *out, kl_tensor *x, int n, const char *what) {
  const float *o = kl_tensor_data(out), *in = kl_tensor_data(x);
  for (int i = 0; i < WIDTH; i++) {
    double want = chain_value(in[i], n);
    /* the chain contracts (|d/dx| <= 0.5625 per cycle), so f32 rounding
     * stays near one ulp however long it is */
    cr_expect(fabs(o[i] - want) <= 1e-5, "%s: element %d is %.8g, want %.8g", what, i, o[i], want);
  }
}

/* The loop regions of g after the whole pipeline, each within the body cap. */
static int loops_after_pipeline(const ir_graph *g, int *max_body) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert_not_null(c, "%s", d.msg);
  cr_assert(pass_run_pipeline(&c, NULL, &d), "%s", d.msg);
  int loops = 0;
  *max_body = 0;
  for (int i = 0; i < c->nnodes; i++) {
    const ir_node *n = c->nodes[i];
    if (n->op != IR_OP_LOOP) continue;
    loops++;
    int members =
        n->body->nnodes - tc_count_op(n->body, IR_OP_ARG) - tc_count_op(n->body, IR_OP_CONST);
    if (members > *max_body) *max_body = members;
  }
  ir_graph_destroy(c);
  return loops;
}

Test(scale, chain_prefix_matches_the_reference, .timeout = 300) {
  const int n = 2000; /* four loop regions: 512 + 512 + 512 + 464 members */
  ir_graph *g = parse_owned(sg_chain(n, WIDTH));
  int max_body;
  cr_expect_eq(loops_after_pipeline(g, &max_body), 4);
  cr_expect_eq(max_body, 512);
  rt_tensor **args = tc_random_args(g, 5, 4);
  rt_tensor **want = tc_ref_outputs(g, args, false); /* unoptimized graph, interpreted */
  kl_tensor *x = kl_tensor_from(KL_TENSOR_F32, 1, (int64_t[]){WIDTH}, args[0]->data);
  kl_tensor *w = kl_tensor_from(KL_TENSOR_F32, 1, (int64_t[]){WIDTH}, want[0]->data);
  for (int b = 0; b < 2; b++) {
    kl_tensor **out = run(g, b ? KL_BACKEND_JIT : KL_BACKEND_REF, x, 1);
    cr_expect_leq(tc_rel_err(out[0], w, IR_F32), 1e-6, "%s backend", b ? "jit" : "ref");
    free_outs(out, 1);
  }
  kl_tensor_destroy(x);
  kl_tensor_destroy(w);
  tc_free_tensors(want);
  tc_free_tensors(args);
  ir_graph_destroy(g);
}

Test(scale, big_chain_compiles_and_runs_in_seconds, .timeout = 600) {
  double t0 = now_s();
  ir_graph *g = parse_owned(sg_chain(BIG_CHAIN, WIDTH));
  kl_tensor *x = input_x();
  kl_tensor **ref = run(g, KL_BACKEND_REF, x, 1);
  double t_ref = now_s() - t0;
  cr_expect_lt(t_ref, BOUND_REF_S, "%d nodes: parse, pipeline and reference run took %.1f s",
               BIG_CHAIN, t_ref);
  expect_chain(ref[0], x, BIG_CHAIN, "ref backend");
  t0 = now_s();
  kl_tensor **jit = run(g, KL_BACKEND_JIT, x, 1);
  double t_jit = now_s() - t0;
  cr_expect_lt(t_jit, BOUND_JIT_S, "%d nodes: pipeline, JIT compile and run took %.1f s", BIG_CHAIN,
               t_jit);
  cr_expect_leq(tc_rel_err(jit[0], ref[0], IR_F32), 1e-5, "jit against the ref backend");
  free_outs(ref, 1);
  free_outs(jit, 1);
  kl_tensor_destroy(x);
  ir_graph_destroy(g);
}

Test(scale, hundred_thousand_returns, .timeout = 600) {
  const int k = 100000;
  ir_graph *g = parse_owned(sg_returns(k, WIDTH));
  kl_tensor *x = input_x();
  const float *in = kl_tensor_data(x);
  for (int b = 0; b < 2; b++) {
    double t0 = now_s();
    kl_tensor **out = run(g, b ? KL_BACKEND_JIT : KL_BACKEND_REF, x, k);
    double t = now_s() - t0;
    cr_expect_lt(t, BOUND_REF_S, "%s backend: %d returns took %.1f s", b ? "jit" : "ref", k, t);
    int bad = 0;
    for (int r = 0; r < k; r++) {
      const float *o = kl_tensor_data(out[r]);
      for (int i = 0; i < WIDTH; i++)
        bad += !(fabs(o[i] - tanh(in[i])) <= 1e-6);
    }
    cr_expect_eq(bad, 0, "%s backend: %d wrong elements", b ? "jit" : "ref", bad);
    free_outs(out, k);
  }
  kl_tensor_destroy(x);
  ir_graph_destroy(g);
}

/* Best of three pipeline runs on the graph text builds (seconds). */
static double pipeline_time(char *(*gen)(int, int), int n) {
  char *text = gen(n, WIDTH);
  ir_graph *g = parse_owned(text);
  double best = INFINITY;
  for (int rep = 0; rep < 3; rep++) {
    ir_diag d = {0};
    ir_graph *c = ir_graph_clone(g, &d);
    cr_assert_not_null(c, "%s", d.msg);
    double t0 = now_s();
    cr_assert(pass_run_pipeline(&c, NULL, &d), "%s", d.msg);
    double t = now_s() - t0;
    if (t < best) best = t;
    ir_graph_destroy(c);
  }
  ir_graph_destroy(g);
  return best;
}

/* A quadratic pass makes 4x the nodes cost 16x the time, a linear one 4x.
 * Both sizes must be well past the caches: on this EPYC 100k -> 400k nodes
 * measured 10.1x in CI beside another suite (failing the bar) and
 * 100k -> 800k 21x alone, because the smaller graph still partly fits; 400k ->
 * 1.6M nodes 5.0x (fan-out 4.5x). The bar is 10x, on the best of three
 * runs, and only once the larger run is long enough (50 ms) for the ratio
 * to mean something on a shared 2-core machine. */
static void expect_linear(const char *what, char *(*gen)(int, int), int n) {
  double a = pipeline_time(gen, n), b = pipeline_time(gen, 4 * n);
  if (b < 0.05) return;
  cr_expect_lt(b / a, 10.0, "%s: %d nodes %.3f s, %d nodes %.3f s (x%.1f)", what, n, a, 4 * n, b,
               b / a);
  cr_log_info("%s: %d nodes %.3f s, %d nodes %.3f s (x%.1f)", what, n, a, 4 * n, b, b / a);
}

Test(scale, pipeline_time_grows_linearly, .timeout = 600) {
  expect_linear("elementwise chain", sg_chain, 400000);
  expect_linear("fan-out", sg_fanout, 133000); /* three nodes per step */
}

Test(scale, hundred_thousand_parameters, .timeout = 600) {
  const int n = 100000; /* looked up by name at compile time and per run */
  ir_graph *g = parse_owned(sg_params(n, WIDTH));
  kl_tensor *x = input_x();
  kl_tensor **out[2];
  for (int b = 0; b < 2; b++) {
    double t0 = now_s();
    out[b] = run(g, b ? KL_BACKEND_JIT : KL_BACKEND_REF, x, 1);
    double t = now_s() - t0;
    cr_expect_lt(t, BOUND_JIT_S, "%s backend: %d parameters took %.1f s", b ? "jit" : "ref", n, t);
  }
  /* both initialise every parameter from the same seeded streams */
  cr_expect_leq(tc_rel_err(out[1][0], out[0][0], IR_F32), 1e-5, "jit against the ref backend");
  free_outs(out[0], 1);
  free_outs(out[1], 1);
  kl_tensor_destroy(x);
  ir_graph_destroy(g);
}
