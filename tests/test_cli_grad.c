/* `kiln grad` as a user meets it: gradients of sum(output 0) written as
 * grad.NAME next to out0, checked against hand-computed derivatives on both
 * backends; missing inputs drawn as `kiln run` draws them; errors exit 1
 * and usage errors 2, never leaving an output file behind. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_cli_grad"); }

TestSuite(cli_grad, .init = make_dir, .fini = test_dir_remove);

/* Runs `kiln ARGS` in the temp dir. */
static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

static rt_safetensors *read_st(const char *name) {
  char p[512];
  ir_diag d = {0};
  snprintf(p, sizeof p, "%s/%s", test_dir, name);
  rt_safetensors *st = rt_st_read(p, &d);
  cr_assert(st, "%s", d.msg);
  return st;
}

/* Writes f32 vectors of length 3 called names[i] with values v[i]. */
static void write_inputs(const char *file, int n, const char *const *names, const float (*v)[3]) {
  rt_safetensors *st = rt_st_create();
  int64_t three = 3;
  ir_type t = ir_type_make(IR_F32, 1, &three);
  ir_diag d = {0};
  for (int i = 0; i < n; i++) {
    rt_tensor *x = rt_tensor_create(&t);
    memcpy(x->data, v[i], sizeof v[i]);
    cr_assert(rt_st_add(st, names[i], x, &d), "%s", d.msg);
    rt_tensor_destroy(x);
  }
  char p[512];
  snprintf(p, sizeof p, "%s/%s", test_dir, file);
  cr_assert(rt_st_write(st, p, &d), "%s", d.msg);
  rt_st_destroy(st);
}

static void expect_tensor(const rt_safetensors *st, const char *name, const double *want, int n,
                          double tol) {
  const rt_tensor *t = rt_st_get(st, name);
  cr_assert(t, "no tensor %s", name);
  cr_assert_eq(rt_numel(t), n, "%s has %lld elements", name, (long long)rt_numel(t));
  for (int i = 0; i < n; i++)
    cr_expect(fabs(rt_get_f(t, i) - want[i]) <= tol * (1 + fabs(want[i])),
              "%s[%d] = %.9g, want %.9g", name, i, rt_get_f(t, i), want[i]);
}

static const char prod_kir[] = "graph @prod(%x: f32[3], %y: f32[3], %n: i32[3]) {\n"
                               "  %w = param(\"w\") : f32[3]\n"
                               "  %a = mul(%x, %w) : f32[3]\n"
                               "  %t = tanh(%y) : f32[3]\n"
                               "  %b = mul(%a, %t) : f32[3]\n"
                               "  return %b\n"
                               "}\n";

/* out0 = x w tanh(y): d/dx = w tanh(y), d/dw = x tanh(y),
 * d/dy = x w (1 - tanh(y)^2) */
Test(cli_grad, hand_computed_gradients_on_both_backends) {
  test_write_text("prod.kir", prod_kir);
  const float v[3][3] = {{1, 2, 3}, {0.5f, -1, 2}, {2, 0.25f, -1}};
  write_inputs("in.safetensors", 3, (const char *const[]){"x", "y", "w"}, v);
  double out0[3], gx[3], gw[3], gy[3];
  for (int i = 0; i < 3; i++) {
    double x = v[0][i], y = v[1][i], w = v[2][i], t = tanh(y);
    out0[i] = x * w * t;
    gx[i] = w * t;
    gw[i] = x * t;
    gy[i] = x * w * (1 - t * t);
  }
  const char *backends[] = {"ref", "jit"};
  for (int b = 0; b < 2; b++) {
    char args[512];
    snprintf(args, sizeof args,
             "grad prod.kir --wrt y,x,w --inputs in.safetensors --outputs out.safetensors "
             "--backend %s",
             backends[b]);
    cr_assert_eq(kiln(args), 0, "%s: %s", backends[b], test_err);
    rt_safetensors *st = read_st("out.safetensors");
    cr_expect_eq(rt_st_count(st), 4, "out0 and three gradients");
    expect_tensor(st, "out0", out0, 3, 1e-6);
    expect_tensor(st, "grad.x", gx, 3, 1e-6);
    expect_tensor(st, "grad.w", gw, 3, 1e-6);
    expect_tensor(st, "grad.y", gy, 3, 1e-6);
    rt_st_destroy(st);
  }
  /* without --outputs the results are printed */
  cr_assert_eq(kiln("grad prod.kir --wrt w --inputs in.safetensors"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "out0: f32[3] = [") && strstr(test_out, "grad.w: f32[3] = ["), "%s",
            test_out);
  cr_expect(!strstr(test_out, "grad.x"), "%s", test_out);
}

/* Missing inputs come from the seeded RNG exactly as `kiln run` draws them:
 * d sum(x^2)/dx = 2x where x is run's out1 with the same seed. */
Test(cli_grad, missing_inputs_match_kiln_run) {
  test_write_text("sq.kir", "graph @sq(%x: f64[4]) {\n"
                            "  %s = mul(%x, %x) : f64[4]\n"
                            "  return %s, %x\n"
                            "}\n");
  cr_assert_eq(kiln("run sq.kir --seed 9 --backend ref --outputs run.safetensors"), 0, "%s",
               test_err);
  cr_assert_eq(kiln("grad sq.kir --wrt x --seed 9 --outputs grad.safetensors"), 0, "%s", test_err);
  rt_safetensors *r = read_st("run.safetensors"), *g = read_st("grad.safetensors");
  const rt_tensor *x = rt_st_get(r, "out1");
  cr_assert(x);
  double want[4], sq[4];
  for (int i = 0; i < 4; i++) {
    want[i] = 2 * rt_get_f(x, i);
    sq[i] = rt_get_f(x, i) * rt_get_f(x, i);
  }
  cr_expect_neq(want[0], 0.0);
  expect_tensor(g, "grad.x", want, 4, 1e-15);
  expect_tensor(g, "out0", sq, 4, 1e-15);
  rt_st_destroy(r);
  rt_st_destroy(g);
}

Test(cli_grad, errors_exit_1_without_output) {
  test_write_text("prod.kir", prod_kir);
  test_write_text("nd.kir", "graph @nd(%x: f32[3]) {\n"
                            "  %dg = gelu_deriv(%x) : f32[3]\n"
                            "  %y = mul(%dg, %x) : f32[3]\n"
                            "  return %y\n"
                            "}\n");
  cr_expect_eq(kiln("grad prod.kir --wrt q --outputs o.safetensors"), 1);
  cr_expect(strstr(test_err, "'q'") && strstr(test_err, "x, y, n") && strstr(test_err, "w"), "%s",
            test_err);
  cr_expect_eq(kiln("grad prod.kir --wrt x,n --outputs o.safetensors"), 1);
  cr_expect(strstr(test_err, "'n'") && strstr(test_err, "i32[3]"), "%s", test_err);
  cr_expect_eq(kiln("grad nd.kir --wrt x --outputs o.safetensors"), 1);
  cr_expect(strstr(test_err, "%dg") && strstr(test_err, "gelu_deriv"), "%s", test_err);
  cr_expect_eq(kiln("grad missing.kir --wrt x --outputs o.safetensors"), 1);
  test_write_text("bad.safetensors", "not a safetensors file");
  cr_expect_eq(kiln("grad prod.kir --wrt x --inputs bad.safetensors --outputs o.safetensors"), 1);
  cr_expect(!test_exists("o.safetensors"), "an output file was left after a failure");
}

Test(cli_grad, usage_errors_exit_2) {
  test_write_text("prod.kir", prod_kir);
  cr_expect_eq(kiln("grad --help"), 0);
  cr_expect(strstr(test_out, "usage: kiln grad"), "%s", test_out);
  cr_expect_eq(kiln("grad prod.kir"), 2);
  cr_expect(strstr(test_err, "--wrt"), "%s", test_err);
  cr_expect_eq(kiln("grad --wrt x"), 2);
  cr_expect_eq(kiln("grad prod.kir --wrt x,,y"), 2);
  cr_expect_eq(kiln("grad prod.kir --wrt x,x"), 2);
  cr_expect_eq(kiln("grad prod.kir --wrt x --backend gpu"), 2);
  cr_expect_eq(kiln("grad prod.kir --wrt x --bogus"), 2);
  cr_expect(!test_exists("o.safetensors"));
}
