/* The pipeline as a user sees it from the CLI: `kiln passes` lists the
 * table, --print-after-all writes one numbered file per pass that parses
 * back, --stop-after and --print-after agree with those files, and bad
 * flags are usage errors that write nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/pipeline.h"
#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_cli_passes"); }

TestSuite(cli_passes, .init = make_dir, .fini = test_dir_remove);

static int kiln(const char *args) { return cli_run(KILN_CLI, KILN_SOURCE_DIR, args); }

/* The whole file at test_dir/NAME, malloc'd ("" when missing). */
static char *slurp(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", test_dir, name);
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t n = 0;
  if (f) {
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)sz + 1);
    n = buf ? fread(buf, 1, (size_t)sz, f) : 0;
    fclose(f);
  }
  if (!buf) buf = calloc(1, 1);
  buf[n] = 0;
  *len = n;
  return buf;
}

Test(cli_passes, passes_lists_the_table_in_order) {
  cr_assert_eq(kiln("passes"), 0, "%s", test_err);
  int n;
  const pass_info *p = pass_pipeline(&n);
  const char *at = test_out;
  for (int i = 0; i < n; i++) {
    const char *hit = strstr(at, p[i].name);
    cr_assert(hit, "'%s' missing or out of order in:\n%s", p[i].name, test_out);
    at = hit + strlen(p[i].name);
  }
}

/* Every stage of the Transformer's training step is written, numbered in
 * pipeline order, and parses back to the same text. */
Test(cli_passes, print_after_all_writes_every_stage_and_each_parses) {
  cr_assert_eq(kiln("dump-ir transformer --train --print-after-all \"$D/stages\" > /dev/null"), 0,
               "%s", test_err);
  int n, k = 0;
  const pass_info *p = pass_pipeline(&n);
  for (int i = 0; i < n; i++) {
    char name[128];
    snprintf(name, sizeof name, "stages/%02d-%s.kir", k, p[i].name);
    size_t len;
    char *text = slurp(name, &len);
    cr_assert(len > 0, "%s was not written", name);
    ir_diag d = {0};
    ir_graph *g = ir_parse(text, len, name, &d);
    cr_assert(g, "%s does not parse: %s", name, d.msg);
    char *again = ir_print_str(g, NULL);
    cr_expect(again && strncmp(again, text, strlen(again)) == 0, "%s does not round-trip", name);
    free(again);
    ir_graph_destroy(g);
    free(text);
    k++;
  }
}

Test(cli_passes, stop_after_and_print_after_agree_with_the_stage_files) {
  cr_assert_eq(kiln("dump-ir nw-kernel --train --print-after-all \"$D/nw\" --stop-after dce"), 0,
               "%s", test_err);
  int n, k = 0;
  const pass_info *p = pass_pipeline(&n);
  while (k < n && strcmp(p[k].name, "dce"))
    k++;
  char name[64];
  snprintf(name, sizeof name, "nw/%02d-dce.kir", k);
  size_t a;
  char *stage = slurp(name, &a);
  cr_assert(a > 0 && a < sizeof test_out - 1, "%s: %zu bytes", name, a);
  cr_expect_str_eq(test_out, stage);
  snprintf(name, sizeof name, "nw/%02d-%s.kir", k + 1, p[k + 1].name);
  cr_expect(!test_exists(name), "%s written after --stop-after dce", name);
  free(stage);
  cr_assert_eq(kiln("dump-ir examples/attention.kir --print-after verify"), 0, "%s", test_err);
  cr_expect(strstr(test_err, "# after verify\ngraph @attention("), "%s", test_err);
}

Test(cli_passes, bad_flags_are_usage_errors) {
  cr_expect_eq(kiln("dump-ir examples/attention.kir --stop-after nosuch"), 2);
  cr_expect(strstr(test_err, "no pass named 'nosuch'"), "%s", test_err);
  cr_expect_eq(kiln("run examples/attention.kir --print-after nosuch"), 2);
  cr_expect_eq(cli_run(KILN_CLI, NULL, "train nw-kernel --print-after nosuch"), 2);
  test_write_text("afile", "x");
  cr_expect_eq(kiln("dump-ir examples/attention.kir --print-after-all \"$D/afile\""), 2);
  cr_expect(strstr(test_err, "cannot make directory"), "%s", test_err);
  cr_expect_eq(kiln("dump-ir examples/attention.kir --stage input --print-after verify"), 2);
}

/* The flags reach kiln run and kiln train too. */
Test(cli_passes, run_and_train_take_the_flags) {
  cr_assert_eq(kiln("run examples/attention.kir --backend ref --print-after verify"), 0, "%s",
               test_err);
  cr_expect(strstr(test_err, "# after verify"), "%s", test_err);
  /* in the temp dir: training writes its SVGs to the working directory */
  cr_assert_eq(
      cli_run(KILN_CLI, NULL, "train nw-kernel --steps 1 --print-after autodiff --no-fusion"), 0,
      "%s", test_err);
  cr_expect(strstr(test_err, "# after autodiff") && strstr(test_err, "assign("), "%s", test_err);
}

/* --fold-limit bounds constant-fold: the Transformer's positional-encoding
 * tables (30 x 32 and 11 x 32 elements) fold by default, not under 100. */
Test(cli_passes, fold_limit_bounds_constant_folding) {
  cr_assert_eq(kiln("dump-ir transformer --stop-after constant-fold | grep -c ' = sin('"), 1,
               "grep found sin after folding: %s", test_out);
  cr_expect_str_eq(test_out, "0\n");
  cr_assert_eq(
      kiln("dump-ir transformer --stop-after constant-fold --fold-limit 100 | grep -c ' = sin('"),
      0, "%s", test_err);
  cr_expect_str_eq(test_out, "2\n");
  cr_expect_eq(kiln("dump-ir transformer --fold-limit 0"), 2);
  cr_expect(strstr(test_err, "--fold-limit: '0'"), "%s", test_err);
}
