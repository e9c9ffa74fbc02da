/* kl_compile_opts.check_numerics on both backends: graphs that make a NaN
 * or inf at a known DSL line (log of a negative, 0/0, an overflowing exp,
 * log 0) are stopped there with the op, name, line, index and value, in f32
 * and f64, the same message from the JIT and the reference; a fused region
 * names the body node; a diverging training step is caught at its step;
 * clean graphs give bit-identical results; off, no check is compiled;
 * and `kiln run`, `grad` and `train --check-numerics` exit 1 writing
 * nothing. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/jit.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "frontend/kiln.h"
#include "passes/pipeline.h"
#include "tests/support/cli_run.h"

/* The DSL records the file's base name. */
static const char *here(void) {
  const char *s = strrchr(__FILE__, '/');
  return s ? s + 1 : __FILE__;
}

static const kl_backend backends[] = {KL_BACKEND_REF, KL_BACKEND_JIT};
static const char *const backend_names[] = {"ref", "jit"};

/* x: [2,3] of dt holding vals (cast from double). */
static kl_tensor *tensor_of(kl_dtype dt, const double *vals) {
  kl_tensor *t = kl_tensor_create((kl_tensor_dtype)dt, 2, (int64_t[]){2, 3});
  cr_assert(t);
  for (int i = 0; i < 6; i++) {
    if (dt == KL_F32)
      ((float *)kl_tensor_data(t))[i] = (float)vals[i];
    else
      ((double *)kl_tensor_data(t))[i] = vals[i];
  }
  return t;
}

/* Compiles g unfused (kl_compile: one kernel per node) or through the
 * default pipeline (fusion), runs it on x once and returns the message
 * (malloc'd) or NULL; *out receives the output when it ran. */
static char *run_once(const kl_graph *g, kl_backend be, bool check, bool fused, kl_tensor *x,
                      kl_tensor **out) {
  kl_compile_opts o = {.backend = be, .no_cache = true, .check_numerics = check};
  char *err = NULL;
  kl_program *p = fused ? kl_compile_with(kl_graph_ir(g), NULL, &o, &err)
                        : kl_compile_unoptimized(kl_graph_ir(g), &o, &err);
  cr_assert(p, "compile: %s", err);
  kl_tensor *y = NULL;
  const char *msg = kl_run(p, &x, 1, &y, 1);
  char *m = msg ? strdup(msg) : NULL;
  if (out)
    *out = y;
  else
    kl_tensor_destroy(y);
  if (msg) cr_assert_null(y, "no output after an error");
  kl_program_destroy(p);
  return m;
}

/* Expects the message "FILE:LINE: %NAME: OP: WHAT (step 0)" on both
 * backends, and none with the option off. */
static void expect_caught(const kl_graph *g, kl_tensor *x, int line, const char *name,
                          const char *op, const char *what) {
  char want[1024];
  snprintf(want, sizeof want, "%s:%d: %%%s: %s: %s (step 0)", here(), line, name, op, what);
  for (int b = 0; b < 2; b++) {
    char *m = run_once(g, backends[b], true, false, x, NULL);
    cr_assert(m, "%s: no error", backend_names[b]);
    cr_expect_str_eq(m, want, "%s", backend_names[b]);
    free(m);
    m = run_once(g, backends[b], false, false, x, NULL);
    cr_expect_null(m, "%s, option off: %s", backend_names[b], m);
    free(m);
  }
}

static const kl_dtype dtypes[] = {KL_F32, KL_F64};

/* The node under test, built at a known line (*line). */
typedef kl_value (*make_fn)(kl_value x, int *line);
static kl_value make_log(kl_value x, int *line) {
  *line = __LINE__ + 1;
  return kl_log(x);
}
static kl_value make_div(kl_value x, int *line) {
  *line = __LINE__ + 1;
  return kl_div(x, x);
}
static kl_value make_exp(kl_value x, int *line) {
  *line = __LINE__ + 1;
  return kl_exp(x);
}

/* y = make(x) named "y" and followed by y * y, on x = vals[dtype] (f32,
 * f64): caught at y with `what` (the dtype appended). */
typedef struct num_case {
  make_fn make;
  const char *op;
  double vals[2][6];
  const char *what;
} num_case;

static void check_case(const num_case *c) {
  for (int t = 0; t < 2; t++) {
    kl_graph *g = kl_graph_create("case");
    kl_value x = kl_input(g, "x", dtypes[t], KL_SHAPE(2, 3));
    int line = 0;
    kl_value y = kl_name(c->make(x, &line), "y");
    kl_output(kl_mul(y, y));
    kl_tensor *xt = tensor_of(dtypes[t], c->vals[t]);
    char what[96];
    snprintf(what, sizeof what, "%s of %s[2,3]", c->what, t ? "f64" : "f32");
    expect_caught(g, xt, line, "y", c->op, what);
    kl_tensor_destroy(xt);
    kl_graph_destroy(g);
  }
}

Test(check_numerics, log_of_a_negative) {
  check_case(&(num_case){
      make_log, "log", {{1, 2, 3, 4, -5, 6}, {1, 2, 3, 4, -5, 6}}, "nan at index 4 [1,1]"});
}

Test(check_numerics, log_of_zero) {
  check_case(&(num_case){
      make_log, "log", {{1, 0, 3, 4, 5, 6}, {1, 0, 3, 4, 5, 6}}, "-inf at index 1 [0,1]"});
}

Test(check_numerics, zero_over_zero) {
  check_case(&(num_case){
      make_div, "div", {{1, 2, 0, 4, 5, 6}, {1, 2, 0, 4, 5, 6}}, "nan at index 2 [0,2]"});
}

/* exp(100) overflows f32; f64 needs exp(1000) */
Test(check_numerics, overflowing_exp) {
  check_case(&(num_case){
      make_exp, "exp", {{1, 2, 3, 4, 5, 100}, {1, 2, 3, 4, 5, 1000}}, "inf at index 5 [1,2]"});
}

/* An unnamed value is named by its id (x is %0, the log %1). */
Test(check_numerics, an_unnamed_value_by_its_id) {
  const double z[] = {1, 0, 3, 4, 5, 6};
  kl_graph *g = kl_graph_create("log0");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2, 3));
  int line = __LINE__ + 1;
  kl_output(kl_log(x));
  kl_tensor *xt = tensor_of(KL_F32, z);
  expect_caught(g, xt, line, "1", "log", "-inf at index 1 [0,1] of f32[2,3]");
  kl_tensor_destroy(xt);
  kl_graph_destroy(g);
}

/* Two nodes make NaNs; the first in execution order is the one named. */
Test(check_numerics, stops_at_the_first_offender) {
  static const double v[] = {-1, 2, 3, 4, 5, -6};
  kl_graph *g = kl_graph_create("two");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2, 3));
  int line = __LINE__ + 1;
  kl_value s = kl_name(kl_sqrt(x), "s");
  kl_value l = kl_name(kl_log(x), "l");
  kl_output(kl_add(l, s));
  kl_tensor *xt = tensor_of(KL_F32, v);
  expect_caught(g, xt, line, "s", "sqrt", "nan at index 0 [0,0] of f32[2,3]");
  kl_tensor_destroy(xt);
  kl_graph_destroy(g);
}

/* Fused into one loop region: the region is the offender, and re-running
 * its body on the reference names the log inside it. */
Test(check_numerics, a_fused_region_names_its_body_node) {
  static const double v[] = {1, 2, 3, 4, -5, 6};
  kl_graph *g = kl_graph_create("fused");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2, 3));
  int line = __LINE__ + 1;
  kl_value y = kl_name(kl_log(x), "y");
  kl_value z = kl_name(kl_add(kl_mul(y, y), x), "z");
  kl_output(z);
  kl_tensor *xt = tensor_of(KL_F32, v);
  char *msgs[2];
  for (int b = 0; b < 2; b++) {
    msgs[b] = run_once(g, backends[b], true, true, xt, NULL);
    cr_assert(msgs[b], "%s: no error", backend_names[b]);
    cr_expect(strstr(msgs[b], "%z: loop: nan at index 4 [1,1] of f32[2,3] (step 0)"), "%s: %s",
              backend_names[b], msgs[b]);
    char inner[512];
    snprintf(inner, sizeof inner,
             "; first made in its body by %s:%d: %%y: log: nan at index 4 [1,1] of f32[2,3]",
             here(), line);
    cr_expect(strstr(msgs[b], inner), "%s: %s", backend_names[b], msgs[b]);
  }
  cr_expect_str_eq(msgs[0], msgs[1], "both backends say the same");
  free(msgs[0]);
  free(msgs[1]);
  kl_tensor_destroy(xt);
  kl_graph_destroy(g);
}

/* A buffer of 300000 elements is scanned in chunks on the pool's threads
 * (lower_numerics.c splits from 64K elements on): the lowest bad index wins
 * whichever chunk finds its own first, and a bad value in the last
 * element is found. */
Test(check_numerics, large_buffers_report_the_lowest_index) {
  enum { N = 300000 };
  static const int64_t bad_at[][2] = {{200000, 70000}, {N - 1, N - 1}, {5, 299990}};
  for (int c = 0; c < 3; c++) {
    kl_graph *g = kl_graph_create("big");
    kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(N));
    int line = __LINE__ + 1;
    kl_output(kl_name(kl_sqrt(x), "r"));
    kl_tensor *xt = kl_tensor_create(KL_TENSOR_F32, 1, (int64_t[]){N});
    float *xv = kl_tensor_data(xt);
    for (int i = 0; i < N; i++)
      xv[i] = 1.0f + (float)(i % 7);
    xv[bad_at[c][0]] = -1, xv[bad_at[c][1]] = -2;
    int64_t low = bad_at[c][0] < bad_at[c][1] ? bad_at[c][0] : bad_at[c][1];
    char want[256];
    snprintf(want, sizeof want,
             "%s:%d: %%r: sqrt: nan at index %lld [%lld] of f32[300000] (step 0)", here(), line,
             (long long)low, (long long)low);
    for (int b = 0; b < 2; b++) {
      kl_compile_opts o = {
          .backend = backends[b], .threads = 2, .no_cache = true, .check_numerics = true};
      char *err = NULL;
      kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), &o, &err);
      cr_assert(p, "%s", err);
      kl_tensor *y = NULL;
      const char *msg = kl_run(p, &xt, 1, &y, 1);
      cr_expect(msg && strcmp(msg, want) == 0, "%s case %d: %s", backend_names[b], c,
                msg ? msg : "no error");
      kl_tensor_destroy(y);
      kl_program_destroy(p);
    }
    kl_tensor_destroy(xt);
    kl_graph_destroy(g);
  }
}

/* A clean graph passes with the check on and gives the same bits, fused
 * and not, on both backends. */
Test(check_numerics, clean_graphs_are_bit_identical) {
  static const double v[] = {0.5, 2, 3, 4, 0.25, 6};
  kl_graph *g = kl_graph_create("clean");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2, 3));
  kl_value y = kl_softmax(kl_mul(kl_log(x), kl_exp(x)), -1);
  kl_output(kl_add(y, kl_sum(x, KL_INTS(1), true)));
  kl_tensor *xt = tensor_of(KL_F32, v);
  for (int b = 0; b < 2; b++) {
    for (int fused = 0; fused < 2; fused++) {
      kl_tensor *on = NULL, *off = NULL;
      char *m = run_once(g, backends[b], true, fused, xt, &on);
      cr_assert_null(m, "%s: %s", backend_names[b], m);
      cr_assert_null(run_once(g, backends[b], false, fused, xt, &off));
      cr_expect(memcmp(kl_tensor_data(on), kl_tensor_data(off), 6 * sizeof(float)) == 0,
                "%s fused=%d: outputs differ", backend_names[b], fused);
      kl_tensor_destroy(on);
      kl_tensor_destroy(off);
    }
  }
  kl_tensor_destroy(xt);
  kl_graph_destroy(g);
}

/* loss = log(w): SGD with lr 0.3 from w = 1 gives w = 0.7, 0.2714...,
 * -0.8338... so the forward log of step 3 is the first NaN. */
Test(check_numerics, a_diverging_training_step_is_caught_at_its_step) {
  char *msgs[2];
  for (int b = 0; b < 2; b++) {
    kl_graph *g = kl_graph_create("div");
    kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(1));
    kl_value w = kl_param_init(g, "w", KL_F32, KL_SHAPE(1), KL_INIT_ONES, 0);
    int line = __LINE__ + 1;
    kl_value l = kl_name(kl_log(kl_mul(w, x)), "l");
    kl_value loss = kl_sum_all(l);
    kl_output(loss);
    kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 0.3};
    kl_compile_opts co = {.backend = backends[b], .no_cache = true, .check_numerics = true};
    char *err = NULL;
    kl_train_step *s = kl_compile_train(g, loss, NULL, 0, &opt, &co, &err);
    cr_assert(s, "%s", err);
    kl_tensor *xt = kl_tensor_from(KL_TENSOR_F32, 1, (int64_t[]){1}, (float[]){1});
    const char *msg = NULL;
    int step = 0;
    for (; step < 10 && !(msg = kl_train_step_run(s, &xt, 1, NULL)); step++)
      ;
    cr_assert(msg, "%s: no error in 10 steps", backend_names[b]);
    cr_expect_eq(step, 3, "%s: caught at step %d", backend_names[b], step);
    char want[512];
    snprintf(want, sizeof want, "%s:%d: %%l", here(), line);
    cr_expect(strstr(msg, want), "%s: %s", backend_names[b], msg);
    cr_expect(strstr(msg, "log: nan at index 0 [0] of f32[1]"), "%s: %s", backend_names[b], msg);
    cr_expect(strstr(msg, "(step 3)"), "%s: %s", backend_names[b], msg);
    msgs[b] = strdup(msg);
    kl_tensor_destroy(xt);
    kl_train_step_destroy(s);
    kl_graph_destroy(g);
  }
  cr_expect_str_eq(msgs[0], msgs[1], "both backends say the same");
  free(msgs[0]);
  free(msgs[1]);
}

/* Off, the module has no trace of the check; on, the scan is there and
 * the loop vectorizer made it a vector compare. */
Test(check_numerics, compiled_in_only_when_on) {
  kl_graph *g = kl_graph_create("m");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(64, 64));
  kl_output(kl_exp(kl_matmul(x, x)));
  ir_diag d = {0};
  char *off = cg_jit_dump(kl_graph_ir(g), NULL, "llvm", &d);
  cr_assert(off, "%s", d.msg);
  char *on = cg_jit_dump(kl_graph_ir(g), &(cg_jit_opts){.check_numerics = true}, "llvm", &d);
  cr_assert(on, "%s", d.msg);
  cr_expect_null(strstr(off, "nonfinite"));
  cr_expect_null(strstr(off, "kiln_checks"));
  cr_expect_null(strstr(off, "fcmp ueq"));
  cr_expect(strstr(on, "kiln_checks"));
  cr_expect(strstr(on, "fcmp ueq <"), "the scan is not vectorized");
  free(off);
  free(on);
  kl_graph_destroy(g);
}

/* The option is part of the cache key: an object compiled with the check
 * never answers for a compile without it, and back. */
Test(check_numerics, the_cache_keeps_both_settings_apart) {
  char dir[] = "/tmp/kiln_numerics_cache_XXXXXX";
  cr_assert(mkdtemp(dir));
  static const double v[] = {1, 2, 3, 4, -5, 6};
  kl_graph *g = kl_graph_create("cache");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2, 3));
  kl_output(kl_log(x));
  kl_tensor *xt = tensor_of(KL_F32, v);
  static const bool order[] = {true, false, true, false};
  static const bool hit[] = {false, false, true, true};
  for (int i = 0; i < 4; i++) {
    kl_compile_opts o = {.backend = KL_BACKEND_JIT, .cache_dir = dir, .check_numerics = order[i]};
    char *err = NULL;
    kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), &o, &err);
    cr_assert(p, "%s", err);
    cr_expect_eq(kl_program_stats(p)->cache_hit, hit[i], "compile %d", i);
    kl_tensor *y = NULL;
    const char *msg = kl_run(p, &xt, 1, &y, 1);
    cr_expect_eq(msg != NULL, order[i], "compile %d: %s", i, msg ? msg : "no error");
    kl_tensor_destroy(y);
    kl_program_destroy(p);
  }
  kl_tensor_destroy(xt);
  kl_graph_destroy(g);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* ---- the CLI ------------------------------------------------------------ */

static void make_dir(void) { test_dir_make("kiln_check_numerics"); }
TestSuite(cli_check_numerics, .init = make_dir, .fini = test_dir_remove);

static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

/* `kiln ARGS --backend B` for each backend b in backend_names. */
static int kiln_on(int b, const char *args) {
  char line[512];
  snprintf(line, sizeof line, "%s --backend %s", args, backend_names[b]);
  return kiln(line);
}

static const char log_kir[] = "graph @bad(%x: f32[2,3]) {\n"
                              "  %c = const(dense [1.0, 2.0, 3.0, 4.0, -5.0, 6.0]) : f32[2,3]\n"
                              "  %s = add(%x, %c) : f32[2,3]   # model.c:12\n"
                              "  %y = log(%s) : f32[2,3]       # model.c:13\n"
                              "  %z = mul(%y, %y) : f32[2,3]   # model.c:14\n"
                              "  return %z\n"
                              "}\n";

Test(cli_check_numerics, run_names_the_node_and_writes_nothing) {
  test_write_text("bad.kir", log_kir);
  /* the inputs are drawn from seed 0; x + c is negative only at [1,1] */
  for (int b = 0; b < 2; b++) {
    const char *be = backend_names[b];
    cr_expect_eq(kiln_on(b, "run bad.kir --no-fusion --check-numerics --outputs o.safetensors"), 1,
                 "%s: %s", be, test_err);
    cr_expect_str_eq(test_err,
                     "kiln run: bad.kir: model.c:13: %y: log: nan at index 4 [1,1] of f32[2,3] "
                     "(step 0)\n",
                     "%s", be);
    cr_expect(!test_exists("o.safetensors"), "%s: an output file was written", be);
    /* fused: the loop region, and the log inside it */
    cr_expect_eq(kiln_on(b, "run bad.kir --check-numerics"), 1, "%s: %s", be, test_err);
    cr_expect(strstr(test_err, "kiln run: bad.kir: model.c:14: %z: loop: nan at index 4 [1,1] of "
                               "f32[2,3] (step 0); first made in its body by model.c:13: %y: log"),
              "%s: %s", be, test_err);
  }
  cr_expect_eq(kiln("run bad.kir --outputs o.safetensors"), 0, "%s", test_err);
  cr_expect(test_exists("o.safetensors"), "without the option the NaN is written");
}

/* A .kir node with no "# file:line" comment is named by its line:col in
 * the file, which the parser keeps for every node. */
Test(cli_check_numerics, a_node_without_a_location_comment_is_named_by_its_text_position) {
  test_write_text("nl.kir", "graph @nl(%x: f32[2,3]) {\n"
                            "  %n = neg(%x) : f32[2,3]\n"
                            "  %a = abs(%n) : f32[2,3]\n"
                            "  %y = log(%n) : f32[2,3]\n"
                            "  %z = add(%y, %a) : f32[2,3]\n"
                            "  return %z\n"
                            "}\n");
  for (int b = 0; b < 2; b++) {
    cr_expect_eq(kiln_on(b, "run nl.kir --no-fusion --check-numerics"), 1, "%s", test_err);
    cr_expect(strstr(test_err, "kiln run: nl.kir: 4:3: %y: log: "), "%s: %s", backend_names[b],
              test_err);
  }
}

Test(cli_check_numerics, grad_catches_the_backward) {
  /* sqrt is finite at 0, its derivative is not */
  test_write_text("g.kir", "graph @g(%x: f32[3]) {\n"
                           "  %a = abs(%x) : f32[3]\n"
                           "  %c = const(dense [1.0, 0.0, 4.0]) : f32[3]\n"
                           "  %s = mul(%a, %c) : f32[3]\n"
                           "  %r = sqrt(%s) : f32[3]       # model.c:6\n"
                           "  return %r\n"
                           "}\n");
  for (int b = 0; b < 2; b++) {
    const char *be = backend_names[b];
    cr_expect_eq(
        kiln_on(b, "grad g.kir --wrt x --no-fusion --check-numerics --outputs o.safetensors"), 1,
        "%s: %s", be, test_err);
    cr_expect(strstr(test_err, "kiln grad: g.kir: model.c:6: %"), "%s: %s", be, test_err);
    cr_expect(strstr(test_err, ": div: inf at index 1 [1] of f32[3] (step 0)\n"), "%s: %s", be,
              test_err);
    cr_expect(!test_exists("o.safetensors"), "%s: an output file was written", be);
  }
}

/* Adam at lr 1e30: step 0's update is finite and huge, step 1's forward
 * overflows. The run stops there and the checkpoint it would have
 * replaced at the end is untouched. */
Test(cli_check_numerics, train_stops_at_the_step_and_saves_nothing) {
  test_write_text("ck.ckpt", "keep");
  cr_expect_eq(kiln("train gpt --set layers=1,embed=8,heads=2,block=8,max_examples=200,samples=0,"
                    "n_test=10 --lr 1e30 --steps 3 --threads 1 --save ck.ckpt --check-numerics"),
               1, "%s", test_err);
  cr_expect(strstr(test_err, "kiln train: step 1: gpt.c:"), "%s", test_err);
  cr_expect(strstr(test_err, " (step 1)\n"), "%s", test_err);
  char kept[16];
  char path[512];
  snprintf(path, sizeof path, "%s/ck.ckpt", test_dir);
  test_slurp(path, kept, sizeof kept);
  cr_expect_str_eq(kept, "keep", "the checkpoint was replaced");
}

Test(cli_check_numerics, is_listed_in_the_usage) {
  static const char *const cmds[] = {"run --help", "grad --help", "train --help"};
  for (int i = 0; i < 3; i++) {
    cr_expect_eq(kiln(cmds[i]), 0, "%s", cmds[i]);
    cr_expect(strstr(test_out, "--check-numerics"), "%s", cmds[i]);
  }
}
