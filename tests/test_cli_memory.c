/* The CLI's side of the memory guard and of running out of memory (issue
 * 16: defects 4 and 10, --max-memory): refusals that name the file and the
 * largest buffers, --max-memory on run, grad, train and dump-ir, dump-ir
 * reading any file and warning about a graph too big to run, and the
 * reference backend's out-of-memory naming the value. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_cli_mem"); }

TestSuite(cli_memory, .init = make_dir, .fini = test_dir_remove);

/* Runs `kiln ARGS` in the temp dir ($D). */
static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

/* A 40 GB argument (more than the 23 GB machines these tests run on; the
 * default limit is the physical memory, checked in test_mem_guard.c). */
static const char big[] = "graph @g(%x: f32[10000000000]) {\n"
                          "  %y = neg(%x) : f32[10000000000]\n"
                          "  return %y\n"
                          "}\n";
/* A 4 KiB argument; fused into one loop on the JIT (4 KiB + 8 bytes), 4 KiB
 * values a and b at once on the interpreter. */
static const char small[] = "graph @s(%x: f32[1024]) {\n"
                            "  %a = neg(%x) : f32[1024]\n"
                            "  %b = exp(%a) : f32[1024]\n"
                            "  %c = sum(%b) {axes = [0]} : f32[]\n"
                            "  return %c\n"
                            "}\n";

Test(cli_memory, default_limit_refuses_naming_file_and_buffers) {
  test_write_text("big.kir", big);
  const char *backends[] = {"jit", "ref"};
  for (int i = 0; i < 2; i++) {
    char a[256];
    snprintf(a, sizeof a, "run big.kir --backend %s --outputs $D/o.safetensors", backends[i]);
    cr_expect_eq(kiln(a), 1, "%s: %s", a, test_err);
    cr_expect(strstr(test_err, "kiln run: big.kir: needs "), "%s", test_err);
    cr_expect(strstr(test_err, "over the machine's physical memory"), "%s", test_err);
    cr_expect(strstr(test_err, "largest buffers: %x (arg) f32[10000000000], 37.3 GiB "
                               "(40000000000 bytes) at line 1:10"),
              "%s", test_err);
    cr_expect(strstr(test_err, "%y (neg) f32[10000000000]"), "%s", test_err);
    cr_expect_not(test_exists("o.safetensors"));
  }
}

Test(cli_memory, max_memory_flag_limits_run_grad_and_train) {
  test_write_text("s.kir", small);
  cr_expect_eq(kiln("run s.kir --max-memory 2K"), 1);
  cr_expect(strstr(test_err, "over the memory limit of 2.0 KiB (2048 bytes)"), "%s", test_err);
  cr_expect(
      strstr(test_err, "largest buffers: %x (arg) f32[1024], 4.0 KiB (4096 bytes) at line 1:10"),
      "%s", test_err);
  cr_expect_eq(kiln("run s.kir --max-memory 8K --backend ref"), 1);
  cr_expect(strstr(test_err, "%a (neg) f32[1024], 4.0 KiB (4096 bytes) at line 2:3"), "%s",
            test_err);
  cr_expect_eq(kiln("run s.kir --max-memory 1M"), 0, "%s", test_err);
  cr_expect_eq(kiln("run s.kir --max-memory=1M --backend ref"), 0, "%s", test_err);
  cr_expect_eq(kiln("grad s.kir --wrt x --max-memory 4K"), 1);
  cr_expect(strstr(test_err, "kiln grad: s.kir: needs "), "%s", test_err);
  cr_expect_eq(kiln("grad s.kir --wrt x --max-memory 1M"), 0, "%s", test_err);
  /* the training step is guarded too, before the first step */
  cr_expect_eq(kiln("train nw-kernel --max-memory 1K"), 1);
  cr_expect(strstr(test_err, "over the memory limit of 1.0 KiB"), "%s", test_err);
  cr_expect_not(strstr(test_out, "epoch"), "trained: %s", test_out);
}

Test(cli_memory, max_memory_junk_is_a_usage_error) {
  test_write_text("s.kir", small);
  static const char *const cmds[] = {"run s.kir", "grad s.kir --wrt x", "dump-ir s.kir",
                                     "train nw-kernel"};
  static const char *const junk[] = {"12X",      "-5",  "''", "1.5G", "99999999999999999999",
                                     "8388608T", "lots"};
  for (size_t c = 0; c < sizeof cmds / sizeof *cmds; c++) {
    for (size_t j = 0; j < sizeof junk / sizeof *junk; j++) {
      char a[256];
      snprintf(a, sizeof a, "%s --max-memory %s", cmds[c], junk[j]);
      cr_expect_eq(kiln(a), 2, "%s: %s", a, test_err);
      cr_expect(strstr(test_err, "--max-memory takes a byte count"), "%s: %s", a, test_err);
    }
    char a[256];
    snprintf(a, sizeof a, "%s --max-memory", cmds[c]);
    cr_expect_eq(kiln(a), 2, "%s: %s", a, test_err);
    cr_expect(strstr(test_err, "max-memory"), "%s: %s", a, test_err);
    snprintf(a, sizeof a, "%s --help", cmds[c]);
    cr_expect_eq(kiln(a), 0, "%s", a);
    cr_expect(strstr(test_out, "[--max-memory B]") && strstr(test_out, "  --max-memory B"),
              "%s: %s", a, test_out);
  }
}

/* dump-ir reads any existing file as IR text; a name that is neither a
 * model nor a file says both. */
Test(cli_memory, dump_ir_reads_files_by_any_name) {
  test_write_text("graph.txt", small);
  cr_expect_eq(kiln("dump-ir graph.txt --stage input"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "graph @s(%x: f32[1024]) {"), "%s", test_out);
  test_write_text("noext", small);
  cr_expect_eq(kiln("dump-ir noext"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "graph @s("), "%s", test_out);
  cr_expect_eq(kiln("dump-ir nosuchthing"), 1);
  cr_expect(strstr(test_err, "'nosuchthing' is neither a shipped model (see 'kiln models') nor an "
                             "existing file"),
            "%s", test_err);
  /* parse errors in such a file carry its name and position */
  test_write_text("bad.txt", "graph @b(%x: f32[2]) {\n  %w = param(\"w\") {init = \"bogus\"} : "
                             "f32[2]\n  return %w\n}\n");
  cr_expect_eq(kiln("dump-ir bad.txt"), 1);
  cr_expect(strstr(test_err, "bad.txt:2:3: %w (param): unknown init \"bogus\""), "%s", test_err);
}

/* dump-ir runs nothing, so a graph too big to run is printed, with a
 * warning naming the largest buffers; --max-memory sets the limit it
 * warns at. */
Test(cli_memory, dump_ir_warns_about_a_graph_too_big_to_run) {
  test_write_text("big.kir", big);
  cr_expect_eq(kiln("dump-ir big.kir"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "graph @g("), "%s", test_out);
  cr_expect(strstr(test_err, "kiln dump-ir: warning: big.kir: too big to run: needs "), "%s",
            test_err);
  cr_expect(strstr(test_err, "%x (arg) f32[10000000000]"), "%s", test_err);
  cr_expect_eq(kiln("dump-ir big.kir --max-memory none"), 0);
  cr_expect_eq(test_err[0], 0, "%s", test_err);
  test_write_text("s.kir", small);
  cr_expect_eq(kiln("dump-ir s.kir"), 0);
  cr_expect_eq(test_err[0], 0, "%s", test_err);
  cr_expect_eq(kiln("dump-ir s.kir --max-memory 1K"), 0);
  cr_expect(strstr(test_err, "over the memory limit of 1.0 KiB"), "%s", test_err);
}

/* With the guard off, the allocation itself fails: 64 TiB is refused by
 * any kernel that does not overcommit without limit (mode 1, where it
 * would be granted and then touched: skipped). Under ASan a failed huge
 * malloc aborts unless allocator_may_return_null is set, so the child
 * gets it. */
Test(cli_memory, reference_out_of_memory_names_the_value) {
  char mode[8] = "";
  test_slurp("/proc/sys/vm/overcommit_memory", mode, sizeof mode);
  if (mode[0] == '1') cr_skip_test("vm.overcommit_memory = 1 would grant 64 TiB and then touch it");
  const char *old = getenv("ASAN_OPTIONS");
  char *saved = old ? strdup(old) : NULL, env[512];
  snprintf(env, sizeof env, "%s%sallocator_may_return_null=1", old ? old : "", old ? ":" : "");
  setenv("ASAN_OPTIONS", env, 1);
  test_write_text("inter.kir",
                  "graph @i(%x: f32[1]) {\n"
                  "  %b = broadcast_to(%x) {shape = [17592186044416]} : f32[17592186044416]\n"
                  "  %s = sum(%b) {axes = [0]} : f32[]\n"
                  "  return %s\n"
                  "}\n");
  int rc = kiln("run inter.kir --backend ref --max-memory none");
  cr_expect_eq(rc, 1, "%s", test_err);
  cr_expect(strstr(test_err, "kiln run: inter.kir: "), "%s", test_err);
  cr_expect(strstr(test_err, "%b: broadcast_to: out of memory for its value (f32[17592186044416], "
                             "70368744177664 bytes)"),
            "%s", test_err);
  test_write_text("arg.kir", "graph @a(%x: f32[17592186044416]) {\n"
                             "  %y = neg(%x) : f32[17592186044416]\n"
                             "  return %y\n"
                             "}\n");
  rc = kiln("run arg.kir --backend ref --max-memory none");
  cr_expect_eq(rc, 1, "%s", test_err);
  cr_expect(strstr(test_err, "kiln run: arg.kir: out of memory for input %x (f32[17592186044416], "
                             "70368744177664 bytes)"),
            "%s", test_err);
  if (saved)
    setenv("ASAN_OPTIONS", saved, 1);
  else
    unsetenv("ASAN_OPTIONS");
  free(saved);
}
