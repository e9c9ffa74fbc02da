/* The kiln CLI as a user meets it: exit codes (0 / 1 error / 2 usage),
 * messages that name the place, no output file after a failure, dump-ir
 * output that parses back to itself, and the README's example. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/safetensors.h"

static char dir[256];
static char out_text[1 << 16], err_text[1 << 16];

static void make_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/kiln_cli_XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(cli, .init = make_dir, .fini = remove_dir);

static void slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = 0;
  if (f) fclose(f);
}

/* Runs `kiln ARGS` with the shell (ARGS may use $D for the temp dir);
 * returns the exit status and leaves stdout/stderr in out_text/err_text. */
static int kiln(const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && D='%s' && XDG_CACHE_HOME=\"$D/cache\" '%s' %s >'%s/stdout' 2>'%s/stderr'",
           KILN_SOURCE_DIR, dir, KILN_CLI, args, dir, dir);
  int st = system(cmd);
  char p[512];
  snprintf(p, sizeof p, "%s/stdout", dir);
  slurp(p, out_text, sizeof out_text);
  snprintf(p, sizeof p, "%s/stderr", dir);
  slurp(p, err_text, sizeof err_text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_text(const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

static bool exists(const char *name) {
  char p[512];
  struct stat sb;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &sb) == 0;
}

Test(cli, help_and_usage_errors) {
  cr_expect_eq(kiln("--help"), 0);
  cr_expect(strstr(out_text, "usage: kiln"));
  cr_expect_eq(kiln(""), 2);
  cr_expect_eq(kiln("frobnicate"), 2);
  cr_expect(strstr(err_text, "unknown command 'frobnicate'"), "%s", err_text);
  const char *cmds[] = {"run", "dump-ir", "models", "passes"};
  for (int i = 0; i < 4; i++) {
    char a[64];
    snprintf(a, sizeof a, "%s --help", cmds[i]);
    cr_expect_eq(kiln(a), 0, "%s", a);
    cr_expect(strstr(out_text, "usage: kiln"), "%s: %s", a, out_text);
  }
  cr_expect_eq(kiln("run"), 2);
  cr_expect_eq(kiln("run examples/attention.kir --bogus"), 2);
  cr_expect(strstr(err_text, "unknown option '--bogus'"), "%s", err_text);
  cr_expect_eq(kiln("run examples/attention.kir --backend tpu"), 2);
  cr_expect_eq(kiln("run examples/attention.kir --seed"), 2);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --after nosuchpass"), 2);
}

Test(cli, unbuilt_features_say_so) {
  cr_expect_eq(kiln("train seq2seq-attn"), 1);
  cr_expect(strstr(err_text, "not available yet"), "%s", err_text);
}

/* dump-ir --train prints the training step (gradients, the SGD update as an
 * assign) of a shipped model, and the text parses back; a graph without
 * parameters has nothing to train. */
Test(cli, dump_ir_train) {
  cr_assert_eq(kiln("dump-ir nw-kernel --train"), 0, "%s", err_text);
  cr_expect(strstr(out_text, "softmax(") && strstr(out_text, "assign(%w, "), "%s", out_text);
  write_text("train.kir", out_text);
  char *first = strdup(out_text), args[512];
  snprintf(args, sizeof args, "dump-ir %s/train.kir --stage input", dir);
  cr_expect_eq(kiln(args), 0, "%s", err_text);
  cr_expect_str_eq(out_text, first);
  free(first);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --train"), 1);
  cr_expect(strstr(err_text, "no trainable parameter"), "%s", err_text);
  cr_expect_eq(kiln("dump-ir no-such-model"), 1);
}

Test(cli, jit_is_the_default_and_matches_ref) {
  cr_assert_eq(kiln("run examples/attention.kir --no-cache --time"), 0, "%s", err_text);
  cr_expect(strstr(err_text, "compile ") && strstr(err_text, "run "), "%s", err_text);
  static char jit[1 << 14];
  strcpy(jit, out_text);
  cr_assert_eq(kiln("run examples/attention.kir --backend ref"), 0, "%s", err_text);
  cr_expect_str_eq(jit, out_text); /* printed with 6 significant digits */
  cr_expect_eq(kiln("run examples/attention.kir --threads 0"), 2);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --stage llvm"), 0, "%s", err_text);
  cr_expect(strstr(out_text, "define void @kiln_step(ptr"), "%.300s", out_text);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --stage asm"), 0, "%s", err_text);
  cr_expect(strstr(out_text, "kiln_step:"), "%.300s", out_text);
}

Test(cli, passes_and_models) {
  cr_expect_eq(kiln("passes"), 0);
  cr_expect(strstr(out_text, "verify"), "%s", out_text);
  cr_expect_eq(kiln("models"), 0);
  cr_expect_eq(kiln("models --describe transformer"), 1);
}

Test(cli, dump_ir_parses_back_to_itself) {
  static char a[8192];
  cr_assert_eq(kiln("dump-ir examples/attention.kir"), 0, "%s", err_text);
  strcpy(a, out_text);
  write_text("a.kir", a);
  cr_assert_eq(kiln("dump-ir \"$D/a.kir\""), 0, "%s", err_text);
  cr_expect(strstr(a, "graph @attention(%q: f32[2,4,8]"), "%s", a);
  cr_expect(strstr(a, "sequence_mask(%sc, %len) {value = -1000000.0} : f32[2,4,6]"), "%s", a);
  cr_expect_str_eq(out_text, a);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --stage input"), 0);
  cr_expect_str_eq(out_text, a);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --format dot"), 0);
  cr_expect(strstr(out_text, "digraph \"attention\""), "%s", out_text);
  cr_expect(strstr(out_text, "n1 -> n4;"), "%s", out_text); /* %k feeds the transpose */
}

Test(cli, run_writes_outputs_and_prints) {
  cr_assert_eq(kiln("run examples/attention.kir --outputs \"$D/out.safetensors\""), 0, "%s",
               err_text);
  char p[512];
  snprintf(p, sizeof p, "%s/out.safetensors", dir);
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
  cr_expect(strstr(out_text, "out0: f32[2,4,8] = ["), "%s", out_text);
}

Test(cli, malformed_graph_names_line_and_col_and_writes_nothing) {
  write_text("bad.kir", "graph @g(%x: f32[2]) {\n  %y = nosuchop(%x) : f32[2]\n  return %y\n}\n");
  cr_expect_eq(kiln("run \"$D/bad.kir\" --outputs \"$D/o.safetensors\""), 1);
  cr_expect(strstr(err_text, "bad.kir:2:8:"), "%s", err_text);
  cr_expect(strstr(err_text, "nosuchop"), "%s", err_text);
  cr_expect(!exists("o.safetensors"));
  cr_expect_eq(kiln("dump-ir \"$D/bad.kir\""), 1);
  cr_expect_eq(kiln("run \"$D/missing.kir\""), 1);
  cr_expect(strstr(err_text, "cannot open"), "%s", err_text);
}

static void write_inputs(const char *name, const char *tensor, ir_type t) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
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
  cr_expect(strstr(err_text, "tensor 'query' is neither an input nor a parameter"), "%s", err_text);
  cr_expect(strstr(err_text, "q, k, v, len"), "%s", err_text);
  write_inputs("wrongshape.safetensors", "q", ir_type_make(IR_F32, 2, bad));
  cr_expect_eq(kiln("run examples/attention.kir --inputs \"$D/wrongshape.safetensors\" "
                    "--outputs \"$D/o.safetensors\""),
               1);
  cr_expect(strstr(err_text, "tensor 'q' is f32[2,4], but input %q of @attention is f32[2,4,8]"),
            "%s", err_text);
  write_text("trunc.safetensors", "\x40\x00\x00");
  cr_expect_eq(kiln("run examples/attention.kir --inputs \"$D/trunc.safetensors\" "
                    "--outputs \"$D/o.safetensors\""),
               1);
  cr_expect(strstr(err_text, "trunc.safetensors"), "%s", err_text);
  cr_expect_eq(kiln("run examples/attention.kir --outputs \"$D/no/such/dir/o.safetensors\""), 1);
  cr_expect(!exists("o.safetensors"));
  cr_expect(!exists("no"));
}

Test(cli, readme_shows_the_example_verbatim) {
  static char readme[1 << 16], example[1 << 14];
  slurp(KILN_SOURCE_DIR "/README.md", readme, sizeof readme);
  slurp(KILN_SOURCE_DIR "/examples/attention.c", example, sizeof example);
  const char *body = strstr(example, "#include <stdio.h>");
  cr_assert_not_null(body);
  cr_expect(strstr(readme, body),
            "README.md must contain examples/attention.c from its includes on");
  char cmd[512];
  snprintf(cmd, sizeof cmd, "'%s/bin/attention' >'%s/stdout' 2>&1", KILN_BINARY_DIR, dir);
  cr_expect_eq(system(cmd), 0);
  char p[512];
  snprintf(p, sizeof p, "%s/stdout", dir);
  slurp(p, out_text, sizeof out_text);
  cr_expect(strstr(out_text, "softmax("), "%s", out_text);
  cr_expect(strstr(out_text, "out[0,0,:3] = "), "%s", out_text);
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
  snprintf(p, sizeof p, "%s/in.safetensors", dir);
  cr_assert(rt_st_write(in, p, &d), "%s", d.msg);
  cr_assert_eq(kiln("run examples/attention.kir --backend ref --inputs \"$D/in.safetensors\" "
                    "--outputs \"$D/out.safetensors\""),
               0, "%s", err_text);
  snprintf(p, sizeof p, "%s/out.safetensors", dir);
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
