/* The memory guard (kl_compile_opts.max_memory, backend/mem_guard.h): the
 * bytes it counts against hand-computed ones, refusals that name the
 * largest buffers on both backends, graphs under the limit that run, the
 * default limit being the physical memory, and --max-memory's parser. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "backend/mem_guard.h"
#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "tools/kiln/mem_flag.h"

static ir_graph *parse(const char *text) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "m.kir", &d);
  cr_assert_not_null(g, "%s", d.msg);
  return g;
}

/* 4 KiB per value: an argument and a chain of three. */
static const char chain[] = "graph @c(%x: f32[1024]) {\n"
                            "  %a = neg(%x) : f32[1024]\n"
                            "  %b = neg(%a) : f32[1024]\n"
                            "  %c = neg(%b) : f32[1024]\n"
                            "  return %c\n"
                            "}\n";

/* Counted by hand: the JIT (no plan) gives a, b and c a buffer each, 12 KiB,
 * plus the 4 KiB argument and the 4 KiB output. The interpreter holds at
 * most two of a, b, c at once (the new value and its operand) and at the
 * end c and its copy: 8 KiB, plus the same argument and output. */
Test(mem_guard, counts_what_each_backend_allocates) {
  ir_graph *g = parse(chain);
  cr_expect_eq(cg_mem_need(g, false), 20 * 1024);
  cr_expect_eq(cg_mem_need(g, true), 16 * 1024);
  ir_graph_destroy(g);
}

/* A parameter read twice has one storage. */
Test(mem_guard, parameters_count_once_per_name) {
  ir_graph *g = parse("graph @p(%x: f32[256]) {\n"
                      "  %w = param(\"w\") : f32[256]\n"
                      "  %v = param(\"w\") : f32[256]\n"
                      "  %s = add(%w, %v) : f32[256]\n"
                      "  %y = add(%s, %x) : f32[256]\n"
                      "  return %y\n"
                      "}\n");
  /* argument 1 KiB + w 1 KiB + s, y 2 KiB (JIT, no plan) + output 1 KiB */
  cr_expect_eq(cg_mem_need(g, false), 5 * 1024);
  ir_graph_destroy(g);
}

/* A DSL graph whose 4 MiB parameter dwarfs everything else. */
static kl_graph *big_param(void) {
  kl_graph *g = kl_graph_create("bigp");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(4));
  kl_value w = kl_param(g, "w", KL_F32, KL_SHAPE(1024, 1024));
  kl_value s = kl_sum(w, KL_INTS(0), false);
  kl_output(kl_add(kl_slice(s, KL_INTS(0), KL_INTS(4)), x));
  cr_assert_null(kl_graph_error(g));
  return g;
}

/* kl_compile on the reference backend (be 0) or the JIT (be 1). */
static kl_program *compile_on(const ir_graph *g, int be, int64_t max_memory, char **err) {
  kl_compile_opts o = {
      .backend = be ? KL_BACKEND_JIT : KL_BACKEND_REF, .max_memory = max_memory, .no_cache = true};
  *err = NULL;
  return kl_compile_unoptimized(g, &o, err);
}

Test(mem_guard, refusal_names_the_biggest_buffer_on_both_backends) {
  kl_graph *g = big_param();
  for (int be = 0; be < 2; be++) {
    char *err;
    kl_program *p = compile_on(kl_graph_ir(g), be, 1 << 20, &err);
    cr_assert_null(p, "backend %d compiled over the limit", be);
    cr_assert_not_null(err);
    cr_expect(strstr(err, "over the memory limit of 1.0 MiB (1048576 bytes)"), "%s", err);
    /* the first buffer named is the parameter, with its op, type, size and
     * the DSL line that made it */
    const char *list = strstr(err, "largest buffers: ");
    cr_assert_not_null(list, "%s", err);
    cr_expect(
        strncmp(list + 17,
                "%w (param) f32[1024,1024], 4.0 MiB (4194304 bytes) at test_mem_guard.c:", 71) == 0,
        "%s", err);
    free(err);
  }
  kl_graph_destroy(g);
}

/* With w all ones, y = 1024 + x (each column of w sums to 1024). */
Test(mem_guard, a_graph_under_the_limit_runs) {
  kl_graph *g = big_param();
  float *ones = malloc(sizeof(float) << 20);
  cr_assert_not_null(ones);
  for (int i = 0; i < 1 << 20; i++)
    ones[i] = 1.0f;
  kl_tensor *w = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){1024, 1024}, ones);
  free(ones);
  for (int be = 0; be < 2; be++) {
    char *err;
    kl_program *p = compile_on(kl_graph_ir(g), be, 64 << 20, &err);
    cr_assert_not_null(p, "backend %d: %s", be, err);
    cr_assert_null(kl_program_set_param(p, "w", w));
    float xs[4] = {1, 2, 3, 4};
    kl_tensor *x = kl_tensor_from(KL_TENSOR_F32, 1, (int64_t[]){4}, xs), *y = NULL;
    const char *msg = kl_run(p, &x, 1, &y, 1);
    cr_assert_null(msg, "%s", msg);
    const float *yv = kl_tensor_data(y);
    for (int i = 0; i < 4; i++)
      cr_expect_float_eq(yv[i], 1024.0f + xs[i], 1e-3, "backend %d y[%d] = %g", be, i, yv[i]);
    kl_tensor_destroy(x);
    kl_tensor_destroy(y);
    kl_program_destroy(p);
  }
  kl_tensor_destroy(w);
  kl_graph_destroy(g);
}

/* 1 TiB of f32 returned: more than any machine this runs on. With the
 * default (0) the limit is the physical memory, so kl_compile refuses it
 * with the guard's message; had it tried to allocate, the message would be
 * an out-of-memory one (or ASan would abort). */
static const char terabyte[] =
    "graph @t(%x: f32[1]) {\n"
    "  %y = broadcast_to(%x) {shape = [274877906944]} : f32[274877906944]\n"
    "  return %y\n"
    "}\n";

Test(mem_guard, default_limit_is_physical_memory) {
  int64_t phys = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE);
  cr_assert_gt(phys, 0);
  cr_expect_eq(cg_mem_limit(0), phys);
  cr_expect_eq(cg_mem_limit(-1), -1);
  cr_expect_eq(cg_mem_limit(12345), 12345);
  cr_assert_lt(phys, (int64_t)1 << 40, "this machine has 1 TiB; the test needs a bigger graph");
  ir_graph *g = parse(terabyte);
  for (int be = 0; be < 2; be++) {
    char *err;
    kl_program *p = compile_on(g, be, 0, &err);
    cr_assert_null(p);
    cr_expect(strstr(err, "over the machine's physical memory"), "%s", err);
    cr_expect(strstr(err, "largest buffers: %y (broadcast_to) f32[274877906944], 1.0 TiB "
                          "(1099511627776 bytes) at line 2:3"),
              "%s", err);
    free(err);
  }
  /* no limit: the guard lets it through (nothing is compiled here) */
  ir_diag d = {0};
  cr_expect(cg_mem_check(g, false, -1, &d));
  ir_graph_destroy(g);
}

/* Absurd shapes (the text format stops at 2^48 elements, the IR API does
 * not) saturate instead of wrapping to a small total. */
Test(mem_guard, sizes_saturate) {
  ir_graph *g = ir_graph_create("s");
  ir_diag d = {0};
  ir_type t = ir_type_make(IR_F32, 2, (int64_t[]){INT64_C(1) << 62, 4});
  int x = ir_add_arg(g, "x", &t, &d);
  cr_assert_geq(x, 0, "%s", d.msg);
  ir_set_returns(g, 1, &x);
  cr_expect_eq(cg_mem_need(g, true), INT64_MAX);
  cr_expect_not(cg_mem_check(g, true, 1 << 30, &d));
  cr_expect(strstr(d.msg, "largest buffers: %x (arg)"), "%s", d.msg);
  ir_graph_destroy(g);
}

Test(mem_guard, max_memory_flag_parser) {
  static const struct {
    const char *s;
    int64_t v;
  } good[] = {{"0", 0},
              {"1", 1},
              {"512M", 512ll << 20},
              {"512m", 512ll << 20},
              {"2G", 2ll << 30},
              {"2gb", 2ll << 30},
              {"3K", 3072},
              {"1T", 1ll << 40},
              {"none", -1},
              {"8388607T", 8388607ll << 40}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    int64_t v = 7;
    cr_expect(cli_parse_bytes(good[i].s, &v), "'%s' refused", good[i].s);
    cr_expect_eq(v, good[i].v, "'%s' gave %lld", good[i].s, (long long)v);
  }
  static const char *const bad[] = {"",
                                    "-1",
                                    "-5M",
                                    "12X",
                                    "M",
                                    "1.5G",
                                    " 1G",
                                    "1G ",
                                    "1GiB",
                                    "1 G",
                                    "0x10",
                                    "1MM",
                                    "1BG",
                                    "+1",
                                    "8388608T",
                                    "9223372036854775808",
                                    "99999999999999999999",
                                    "None"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int64_t v = 7;
    cr_expect_not(cli_parse_bytes(bad[i], &v), "'%s' taken as %lld", bad[i], (long long)v);
  }
}
