/* The kiln CLI as a user meets it: exit codes (0 / 1 error / 2 usage),
 * messages that name the place, no output file after a failure, dump-ir
 * output that parses back to itself, and the README's example. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_cli"); }

TestSuite(cli, .init = make_dir, .fini = test_dir_remove);

/* Runs `kiln ARGS` in the source tree (ARGS may use $D for the temp dir). */
static int kiln(const char *args) { return cli_run(KILN_CLI, KILN_SOURCE_DIR, args); }

Test(cli, help_and_usage_errors) {
  cr_expect_eq(kiln("--help"), 0);
  cr_expect(strstr(test_out, "usage: kiln"));
  cr_expect_eq(kiln(""), 2);
  cr_expect_eq(kiln("frobnicate"), 2);
  cr_expect(strstr(test_err, "unknown command 'frobnicate'"), "%s", test_err);
  const char *cmds[] = {"run", "dump-ir", "models", "passes"};
  for (int i = 0; i < 4; i++) {
    char a[64];
    snprintf(a, sizeof a, "%s --help", cmds[i]);
    cr_expect_eq(kiln(a), 0, "%s", a);
    cr_expect(strstr(test_out, "usage: kiln"), "%s: %s", a, test_out);
  }
  cr_expect_eq(kiln("run"), 2);
  cr_expect_eq(kiln("run examples/attention.kir --bogus"), 2);
  cr_expect(strstr(test_err, "unknown option '--bogus'"), "%s", test_err);
  cr_expect_eq(kiln("run examples/attention.kir --backend tpu"), 2);
  cr_expect_eq(kiln("run examples/attention.kir --seed"), 2);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --after nosuchpass"), 2);
}

Test(cli, unbuilt_features_say_so) {
  cr_expect_eq(kiln("bench gpt"), 1);
  cr_expect(strstr(test_err, "not available yet"), "%s", test_err);
}

/* dump-ir --train prints the training step (gradients, the SGD update as an
 * assign) of a shipped model, and the text parses back; a graph without
 * parameters has nothing to train. */
Test(cli, dump_ir_train) {
  cr_assert_eq(kiln("dump-ir nw-kernel --train --no-plan"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "softmax(") && strstr(test_out, "assign(%w, "), "%s", test_out);
  test_write_text("train.kir", test_out);
  char *first = strdup(test_out), args[512];
  snprintf(args, sizeof args, "dump-ir %s/train.kir --stage input", test_dir);
  cr_expect_eq(kiln(args), 0, "%s", test_err);
  cr_expect_str_eq(test_out, first);
  free(first);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --train"), 1);
  cr_expect(strstr(test_err, "no trainable parameter"), "%s", test_err);
  cr_expect_eq(kiln("dump-ir no-such-model"), 1);
}

Test(cli, jit_is_the_default_and_matches_ref) {
  cr_assert_eq(kiln("run examples/attention.kir --no-cache --time"), 0, "%s", test_err);
  cr_expect(strstr(test_err, "compile ") && strstr(test_err, "run "), "%s", test_err);
  static char jit[1 << 14];
  strcpy(jit, test_out);
  cr_assert_eq(kiln("run examples/attention.kir --backend ref"), 0, "%s", test_err);
  cr_expect_str_eq(jit, test_out); /* printed with 6 significant digits */
  cr_expect_eq(kiln("run examples/attention.kir --threads 0"), 2);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --stage llvm"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "define void @kiln_step(ptr"), "%.300s", test_out);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --stage asm"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "kiln_step:"), "%.300s", test_out);
}

Test(cli, passes_and_models) {
  cr_expect_eq(kiln("passes"), 0);
  cr_expect(strstr(test_out, "verify"), "%s", test_out);
  cr_expect_eq(kiln("models"), 0);
  cr_expect_eq(kiln("models --describe gpt"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "block"), "%s", test_out);
}

Test(cli, dump_ir_parses_back_to_itself) {
  static char a[8192];
  cr_assert_eq(kiln("dump-ir examples/attention.kir --stage input"), 0, "%s", test_err);
  strcpy(a, test_out);
  test_write_text("a.kir", a);
  cr_assert_eq(kiln("dump-ir \"$D/a.kir\" --stage input"), 0, "%s", test_err);
  cr_expect(strstr(a, "graph @attention(%q: f32[2,4,8]"), "%s", a);
  cr_expect(strstr(a, "sequence_mask(%sc, %len) {value = -1000000.0} : f32[2,4,6]"), "%s", a);
  cr_expect_str_eq(test_out, a);
  /* the final stage: one fused region, the memory plan as comments; it
   * parses back, and the pipeline leaves its own output alone */
  cr_assert_eq(kiln("dump-ir examples/attention.kir"), 0, "%s", test_err);
  strcpy(a, test_out);
  cr_expect(strstr(a, "= attention(%q, %k, %v, %len) {scale = ") && strstr(a, "# memory plan: "),
            "%s", a);
  test_write_text("final.kir", a);
  cr_assert_eq(kiln("dump-ir \"$D/final.kir\""), 0, "%s", test_err);
  cr_expect_str_eq(test_out, a);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --format dot"), 0);
  cr_expect(strstr(test_out, "digraph \"attention\""), "%s", test_out);
  cr_expect(strstr(test_out, "n1 -> n4;"), "%s", test_out); /* %k feeds the transpose */
}

Test(cli, run_writes_outputs_and_prints) {
  cr_assert_eq(kiln("run examples/attention.kir --outputs \"$D/out.safetensors\""), 0, "%s",
               test_err);
  char p[512];
  snprintf(p, sizeof p, "%s/out.safetensors", test_dir);
  ir_diag d = {0};
  rt_safetensors *st = rt_st_read(p, &d);
  cr_assert_not_null(st, "%s", d.msg);
  const rt_tensor *o = rt_st_get(st, "out0");
  cr_assert_not_null(o);
  int64_t dims[] = {2, 4, 8};
  ir_type want = ir_type_make(IR_F32, 3, dims);
  cr_expect(ir_type_eq(&o->type, &want));
  rt_st_destroy(st);
  cr_expect_eq(kiln("run examples/attention.kir"), 0);
  cr_expect(strstr(test_out, "out0: f32[2,4,8] = ["), "%s", test_out);
}

Test(cli, malformed_graph_names_line_and_col_and_writes_nothing) {
  test_write_text("bad.kir",
                  "graph @g(%x: f32[2]) {\n  %y = nosuchop(%x) : f32[2]\n  return %y\n}\n");
  cr_expect_eq(kiln("run \"$D/bad.kir\" --outputs \"$D/o.safetensors\""), 1);
  cr_expect(strstr(test_err, "bad.kir:2:8:"), "%s", test_err);
  cr_expect(strstr(test_err, "nosuchop"), "%s", test_err);
  cr_expect(!test_exists("o.safetensors"));
  cr_expect_eq(kiln("dump-ir \"$D/bad.kir\""), 1);
  cr_expect_eq(kiln("run \"$D/missing.kir\""), 1);
  cr_expect(strstr(test_err, "cannot open"), "%s", test_err);
}

static void write_inputs(const char *name, const char *tensor, ir_type t) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", test_dir, name);
  rt_safetensors *st = rt_st_create();
  rt_tensor *x = rt_tensor_create(&t);
  ir_diag d = {0};
  cr_assert(rt_st_add(st, tensor, x, &d), "%s", d.msg);
  cr_assert(rt_st_write(st, p, &d), "%s", d.msg);
  rt_tensor_destroy(x);
  rt_st_destroy(st);
}

Test(cli, bad_inputs_are_named_and_write_nothing) {
  int64_t qd[] = {2, 4, 8}, bad[] = {2, 4};
  write_inputs("wrongname.safetensors", "query", ir_type_make(IR_F32, 3, qd));
  cr_expect_eq(kiln("run examples/attention.kir --inputs \"$D/wrongname.safetensors\" "
                    "--outputs \"$D/o.safetensors\""),
               1);
  cr_expect(strstr(test_err, "tensor 'query' is neither an input nor a parameter"), "%s", test_err);
  cr_expect(strstr(test_err, "q, k, v, len"), "%s", test_err);
  write_inputs("wrongshape.safetensors", "q", ir_type_make(IR_F32, 2, bad));
  cr_expect_eq(kiln("run examples/attention.kir --inputs \"$D/wrongshape.safetensors\" "
                    "--outputs \"$D/o.safetensors\""),
               1);
  cr_expect(strstr(test_err, "tensor 'q' is f32[2,4], but input %q of @attention is f32[2,4,8]"),
            "%s", test_err);
  test_write_text("trunc.safetensors", "\x40\x00\x00");
  cr_expect_eq(kiln("run examples/attention.kir --inputs \"$D/trunc.safetensors\" "
                    "--outputs \"$D/o.safetensors\""),
               1);
  cr_expect(strstr(test_err, "trunc.safetensors"), "%s", test_err);
  cr_expect_eq(kiln("run examples/attention.kir --outputs \"$D/no/such/dir/o.safetensors\""), 1);
  cr_expect(!test_exists("o.safetensors"));
  cr_expect(!test_exists("no"));
}

Test(cli, readme_shows_the_example_verbatim) {
  static char readme[1 << 16], example[1 << 14];
  test_slurp(KILN_SOURCE_DIR "/README.md", readme, sizeof readme);
  test_slurp(KILN_SOURCE_DIR "/examples/attention.c", example, sizeof example);
  const char *body = strstr(example, "#include <stdio.h>");
  cr_assert_not_null(body);
  cr_expect(strstr(readme, body),
            "README.md must contain examples/attention.c from its includes on");
  char cmd[512];
  snprintf(cmd, sizeof cmd, "'%s/bin/attention' >'%s/stdout' 2>&1", KILN_BINARY_DIR, test_dir);
  cr_expect_eq(system(cmd), 0);
  char p[512];
  snprintf(p, sizeof p, "%s/stdout", test_dir);
  test_slurp(p, test_out, sizeof test_out);
  cr_expect(strstr(test_out, "softmax("), "%s", test_out);
  /* kl_compile ran the pipeline: the attention became one fused region. */
  cr_expect(strstr(test_out, "fused regions: 1\n"), "%s", test_out);
  cr_expect(strstr(test_out, "out[0,0,:3] = "), "%s", test_out);
}

/* `kiln run` on DESIGN.md's attention graph against PyTorch: the golden file
 * holds the inputs and PyTorch's out0; the inputs go to kiln alone. */
Test(cli, run_matches_pytorch_on_the_design_attention_graph) {
  ir_diag d = {0};
  rt_safetensors *gold = rt_st_read(KILN_SOURCE_DIR "/tests/golden/ops/attention.safetensors", &d);
  cr_assert_not_null(gold, "%s", d.msg);
  rt_safetensors *in = rt_st_create();
  const char *names[] = {"q", "k", "v", "len"};
  for (int i = 0; i < 4; i++) {
    const rt_tensor *t = rt_st_get(gold, names[i]);
    cr_assert_not_null(t, "golden input %s", names[i]);
    cr_assert(rt_st_add(in, names[i], t, &d), "%s", d.msg);
  }
  char p[512];
  snprintf(p, sizeof p, "%s/in.safetensors", test_dir);
  cr_assert(rt_st_write(in, p, &d), "%s", d.msg);
  cr_assert_eq(kiln("run examples/attention.kir --backend ref --inputs \"$D/in.safetensors\" "
                    "--outputs \"$D/out.safetensors\""),
               0, "%s", test_err);
  snprintf(p, sizeof p, "%s/out.safetensors", test_dir);
  rt_safetensors *out = rt_st_read(p, &d);
  cr_assert_not_null(out, "%s", d.msg);
  const rt_tensor *got = rt_st_get(out, "out0"), *want = rt_st_get(gold, "out0");
  cr_assert(got && want && ir_type_eq(&got->type, &want->type));
  for (int64_t i = 0; i < rt_numel(want); i++) {
    double g = rt_get_f(got, i), w = rt_get_f(want, i);
    cr_expect(fabs(g - w) <= 1e-6 + 1e-5 * fabs(w), "out0[%lld]: kiln %.9g, PyTorch %.9g",
              (long long)i, g, w);
  }
  rt_st_destroy(out);
  rt_st_destroy(in);
  rt_st_destroy(gold);
}

/* The training example in README runs and its loss falls. */
Test(cli, readme_shows_the_training_example) {
  static char readme[1 << 16], example[1 << 14];
  test_slurp(KILN_SOURCE_DIR "/README.md", readme, sizeof readme);
  test_slurp(KILN_SOURCE_DIR "/examples/train_mlp.c", example, sizeof example);
  const char *body = strstr(example, "#include <math.h>");
  cr_assert_not_null(body);
  cr_expect(strstr(readme, body),
            "README.md must contain examples/train_mlp.c from its includes on");
  char cmd[512], p[512];
  snprintf(cmd, sizeof cmd, "'%s/bin/train_mlp' >'%s/stdout' 2>&1", KILN_BINARY_DIR, test_dir);
  cr_assert_eq(system(cmd), 0);
  snprintf(p, sizeof p, "%s/stdout", test_dir);
  test_slurp(p, test_out, sizeof test_out);
  const char *a = strstr(test_out, "step   0  loss "), *b = strstr(test_out, "step 500  loss ");
  cr_assert(a && b, "%s", test_out);
  double l0 = atof(a + 15), l500 = atof(b + 15);
  cr_expect(l500 < 0.1 * l0, "loss %g -> %g", l0, l500);
}
