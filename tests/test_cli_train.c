/* `kiln train` and `kiln models` as a user meets them: nw-kernel trains in
 * a temp dir, writes both figures, prints d2l's epoch lines and a JSON last
 * line; bad flags, keys and models are usage errors (exit 2), planned models
 * and failed writes are errors (exit 1) that leave no file behind. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_train"); }

TestSuite(cli_train, .init = make_dir, .fini = test_dir_remove, .timeout = 300);

/* Runs `kiln ARGS` inside the temp dir. */
static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

/* A figure counts only when it has content. */
static bool exists(const char *name) { return test_file_size(name) > 0; }

static double num(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  cr_assert(json_is_number(v), "%s is not a number", key);
  return json_number_value(v);
}

Test(cli_train, nw_kernel_trains_and_writes_figures) {
  cr_assert_eq(kiln("train nw-kernel --json --threads 1"), 0, "%s", test_err);
  cr_expect(exists("nw_kernel_fit.svg"));
  cr_expect(exists("nw_kernel_attention.svg"));
  /* d2l's lines: the loss of each epoch, decreasing. */
  double prev = INFINITY;
  for (int e = 1; e <= 5; e++) {
    char key[32];
    snprintf(key, sizeof key, "epoch %d, loss ", e);
    const char *p = strstr(test_out, key);
    cr_assert_not_null(p, "no '%s' in %s", key, test_out);
    double l = strtod(p + strlen(key), NULL);
    cr_expect_lt(l, prev, "epoch %d loss %f", e, l);
    prev = l;
  }
  json_t *j = test_last_json();
  cr_expect_str_eq(json_string_value(json_object_get(j, "model")), "nw-kernel");
  cr_expect_eq(json_integer_value(json_object_get(j, "epochs")), 5);
  cr_expect_float_eq(num(j, "final_loss"), prev, 1e-5 * prev);
  double w = num(j, "w"), w0 = num(j, "w0");
  cr_expect(w0 >= 0 && w0 < 1, "w0 %f is U[0,1)", w0);
  cr_expect(w > w0, "training sharpens the kernel: w %f from %f", w, w0);
  json_t *mse = json_object_get(j, "test_mse");
  cr_assert(json_is_object(mse));
  /* The trained kernel beats average pooling on the noiseless truth. */
  cr_expect_lt(num(mse, "parametric"), num(mse, "average"));
  cr_expect_lt(num(mse, "gaussian"), num(mse, "average"));
  json_decref(j);
}

Test(cli_train, backends_agree_and_settings_apply) {
  cr_assert_eq(kiln("train nw-kernel --json --epochs 3 --lr 0.25 --seed 3 --set "
                    "plot=a.svg,heatmap=b.svg,w0=0.5,n_train=20,backend=ref"),
               0, "%s", test_err);
  cr_expect(exists("a.svg") && exists("b.svg"));
  cr_expect(!exists("nw_kernel_fit.svg"));
  cr_expect(strstr(test_out, "20 training points"), "%s", test_out);
  json_t *ref = test_last_json();
  cr_expect_float_eq(num(ref, "w0"), 0.5, 1e-7);
  cr_expect_eq(json_integer_value(json_object_get(ref, "epochs")), 3);
  cr_assert_eq(kiln("train nw-kernel --json --steps 3 --lr 0.25 --seed 3 --set w0=0.5 "
                    "--set n_train=20,plot=c.svg --set heatmap=d.svg"),
               0, "%s", test_err);
  json_t *jit = test_last_json();
  cr_expect_float_eq(num(jit, "final_loss"), num(ref, "final_loss"), 1e-5 * num(ref, "final_loss"));
  cr_expect_float_eq(num(jit, "w"), num(ref, "w"), 1e-5 * fabs(num(ref, "w")));
  json_decref(ref);
  json_decref(jit);
}

Test(cli_train, usage_errors) {
  static const char *const cases[][2] = {
      {"train", "which model"},
      {"train nosuchmodel", "unknown model 'nosuchmodel'"},
      {"train nw-kernel --bogus", "unknown option '--bogus'"},
      {"train nw-kernel --epochs 0", "--epochs"},
      {"train nw-kernel --epochs x", "--epochs"},
      {"train nw-kernel --lr nan", "--lr"},
      {"train nw-kernel --threads 0", "--threads"},
      {"train nw-kernel --epochs 2 --steps 2", "not both"},
      {"train nw-kernel --set embed=3", "no setting 'embed'"},
      {"train nw-kernel --set plot", "KEY=VALUE"},
      {"train nw-kernel --set n_train=1", "n_train"},
      {"train nw-kernel --set backend=tpu", "backend"},
      {"train nw-kernel --set w0=abc", "w0"},
      {"train nw-kernel --data x.txt", "--data"},
      {"train nw-kernel --batch 8", "--batch"},
      {"train nw-kernel --save m.ckpt", "checkpoints"},
      {"train nw-kernel --save-every 2", "checkpoints"},
      {"train gpt --save-every 2", "--save-every needs --save"},
      {"train gpt --save g.ckpt --save-every 0", "--save-every wants an integer in [1, "},
      {"train gpt --save g.ckpt --save-every -3", "--save-every wants an integer"},
      {"train gpt --save g.ckpt --save-every", "needs a value"},
      {"train nw-kernel extra", "more than one model"},
      {"models --describe", "needs a value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(kiln(cases[i][0]), 2, "%s: %s", cases[i][0], test_err);
    cr_expect(strstr(test_err, cases[i][1]), "%s: %s", cases[i][0], test_err);
  }
  cr_expect(!exists("nw_kernel_fit.svg"), "a usage error writes nothing");
}

Test(cli_train, planned_models_and_failed_writes_exit_1) {
  /* The heatmap's directory does not exist: refused before training, so
   * neither figure is written. */
  cr_expect_eq(kiln("train nw-kernel --set heatmap=missing/h.svg"), 1);
  cr_expect(strstr(test_err, "missing/h.svg"), "%s", test_err);
  cr_expect(!exists("missing"));
  cr_expect(!exists("nw_kernel_fit.svg"));
  cr_expect(!strstr(test_out, "epoch"), "%s", test_out);
  cr_expect_eq(kiln("models --describe nosuch"), 1);
}

Test(cli_train, models_lists_and_describes) {
  cr_assert_eq(kiln("models"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "nw-kernel"), "%s", test_out);
  cr_expect(strstr(test_out, "gpt"), "%s", test_out);
  cr_expect(!strstr(test_out, "planned"), "every model is built: %s", test_out);
  cr_assert_eq(kiln("models --describe nw-kernel"), 0, "%s", test_err);
  const char *keys[] = {"plot",    "heatmap",           "n_train",    "w0",
                        "backend", "nw_kernel_fit.svg", "--epochs 5", "--lr 0.5"};
  for (int i = 0; i < 8; i++)
    cr_expect(strstr(test_out, keys[i]), "%s missing: %s", keys[i], test_out);
  cr_assert_eq(kiln("train --help"), 0);
  cr_expect(strstr(test_out, "usage: kiln train"), "%s", test_out);
  cr_expect(strstr(test_out, "--save-every N") && strstr(test_out, "130 or 143"), "%s", test_out);
  cr_assert_eq(kiln("--help"), 0);
  cr_expect(strstr(test_out, "train MODEL"), "%s", test_out);
}
