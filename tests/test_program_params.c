/* The parameter API of backend/kiln_run.h on both backends: names in order
 * of first appearance, initialisation from each parameter's init attribute
 * (the default normal unchanged from before init attributes), get returning
 * a copy, copy between programs skipping type mismatches, the step counter,
 * and unknown names or wrong types answered with messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "ir/ir.h"
#include "runtime/philox.h"

static kl_program *compile(const ir_graph *g, kl_backend b, uint64_t seed) {
  kl_compile_opts o = {.backend = b, .seed = seed, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &o, &err);
  cr_assert_not_null(p, "%s", err);
  return p;
}

static ir_graph *parse(const char *text) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "params.kir", &d);
  cr_assert_not_null(g, "%s", d.msg);
  return g;
}

/* b, a, b again (tied), plus optimizer state; y = x @ a + b */
static const char *tied_text =
    "graph @tied(%x: f32[1,2]) {\n"
    "  %b = param(\"lin.b\") : f32[2]\n"
    "  %a = param(\"lin.a\") {init = \"xavier_uniform\"} : f32[2,2]\n"
    "  %m = param(\"lin.a@m\") {init = \"zeros\", trainable = false} : f32[2,2]\n"
    "  %o = param(\"one\") {init = \"ones\"} : i64[3]\n"
    "  %xa = matmul(%x, %a) : f32[1,2]\n"
    "  %b2 = param(\"lin.b\") : f32[2]\n"
    "  %y = add(%xa, %b2) : f32[1,2]\n"
    "  %y2 = add(%y, %b) : f32[1,2]\n"
    "  return %y2, %m, %o\n"
    "}\n";

static float *fdata(kl_tensor *t) { return kl_tensor_data(t); }

Test(params, names_in_order_of_first_appearance) {
  ir_graph *g = parse(tied_text);
  for (int b = 0; b < 2; b++) {
    kl_program *p = compile(g, b ? KL_BACKEND_JIT : KL_BACKEND_REF, 1);
    cr_assert_eq(kl_program_num_params(p), 4);
    const char *want[] = {"lin.b", "lin.a", "lin.a@m", "one"};
    for (int i = 0; i < 4; i++)
      cr_expect_str_eq(kl_program_param_name(p, i), want[i]);
    cr_expect_null(kl_program_param_name(p, 4));
    cr_expect_null(kl_program_param_name(p, -1));
    kl_program_destroy(p);
  }
  ir_graph_destroy(g);
}

Test(params, initialised_by_their_attributes) {
  ir_graph *g = parse(tied_text);
  for (int b = 0; b < 2; b++) {
    kl_program *p = compile(g, b ? KL_BACKEND_JIT : KL_BACKEND_REF, 5);
    kl_tensor *t = NULL;
    /* the default init: the normal(0, 0.1) fill of the parameter's ordinal */
    cr_assert_null(kl_program_get_param(p, "lin.b", &t));
    kl_tensor *want = kl_tensor_create(KL_TENSOR_F32, 1, (int64_t[]){2});
    float *wv = kl_tensor_data(want);
    {
      /* rt_fill_normal needs an rt_tensor: build one over the same memory */
      ir_type ty = ir_type_make(IR_F32, 1, (int64_t[]){2});
      rt_tensor rt = {.type = ty, .data = wv, .bytes = 8, .owned = false};
      rt_fill_normal(&rt, 5, 0, 0.0, 0.1);
    }
    cr_expect(memcmp(fdata(t), wv, 8) == 0, "backend %d: default init changed", b);
    kl_tensor_destroy(want);
    kl_tensor_destroy(t);
    /* xavier_uniform on [2,2]: bound sqrt(6 / 4) */
    cr_assert_null(kl_program_get_param(p, "lin.a", &t));
    bool any_nonzero = false;
    for (int i = 0; i < 4; i++) {
      cr_expect(fabsf(fdata(t)[i]) < sqrtf(1.5f), "%g", fdata(t)[i]);
      any_nonzero = any_nonzero || fdata(t)[i] != 0;
    }
    cr_expect(any_nonzero);
    kl_tensor_destroy(t);
    cr_assert_null(kl_program_get_param(p, "lin.a@m", &t));
    for (int i = 0; i < 4; i++)
      cr_expect_eq(fdata(t)[i], 0.0f);
    kl_tensor_destroy(t);
    cr_assert_null(kl_program_get_param(p, "one", &t));
    for (int i = 0; i < 3; i++)
      cr_expect_eq(((int64_t *)kl_tensor_data(t))[i], 1);
    kl_tensor_destroy(t);
    kl_program_destroy(p);
  }
  ir_graph_destroy(g);
}

Test(params, dsl_initialisers_reach_the_program) {
  kl_graph *g = kl_graph_create("dsl");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(4, 3));
  kl_value w = kl_param_init(g, "w", KL_F32, KL_SHAPE(3, 5), KL_INIT_ONES, 0.0);
  kl_value v = kl_param_init(g, "v", KL_F32, KL_SHAPE(5), KL_INIT_UNIFORM, 0.01);
  kl_output(kl_add(kl_matmul(x, w), v));
  kl_program *p = compile(kl_graph_ir(g), KL_BACKEND_JIT, 3);
  kl_graph_destroy(g);
  kl_tensor *t;
  cr_assert_null(kl_program_get_param(p, "w", &t));
  for (int i = 0; i < 15; i++)
    cr_expect_eq(fdata(t)[i], 1.0f);
  kl_tensor_destroy(t);
  cr_assert_null(kl_program_get_param(p, "v", &t));
  for (int i = 0; i < 5; i++)
    cr_expect(fabsf(fdata(t)[i]) < 0.01f && fdata(t)[i] != 0);
  kl_tensor_destroy(t);
  kl_program_destroy(p);
}

Test(params, get_returns_a_copy_and_follows_set) {
  ir_graph *g = parse(tied_text);
  for (int b = 0; b < 2; b++) {
    kl_program *p = compile(g, b ? KL_BACKEND_JIT : KL_BACKEND_REF, 1);
    const float av[] = {1, 2, 3, 4}, bv[] = {10, 20};
    kl_tensor *a = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){2, 2}, av);
    kl_tensor *bt = kl_tensor_from(KL_TENSOR_F32, 1, (int64_t[]){2}, bv);
    cr_assert_null(kl_program_set_param(p, "lin.a", a));
    cr_assert_null(kl_program_set_param(p, "lin.b", bt));
    kl_tensor *got = NULL;
    cr_assert_null(kl_program_get_param(p, "lin.a", &got));
    cr_assert_eq(kl_tensor_rank(got), 2);
    cr_expect_eq(kl_tensor_dim(got, 0), 2);
    cr_expect(memcmp(fdata(got), av, sizeof av) == 0);
    fdata(got)[0] = 99; /* a copy: the program keeps its value */
    kl_tensor_destroy(got);
    const float xv[] = {1, 1};
    kl_tensor *x = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){1, 2}, xv), *o[3];
    const char *msg = kl_run(p, &x, 1, o, 3);
    cr_assert_null(msg, "%s", msg);
    /* [1,1] @ [[1,2],[3,4]] = [4, 6]; + b twice (tied) */
    cr_expect_eq(fdata(o[0])[0], 24.0f, "%g", fdata(o[0])[0]);
    cr_expect_eq(fdata(o[0])[1], 46.0f, "%g", fdata(o[0])[1]);
    for (int i = 0; i < 3; i++)
      kl_tensor_destroy(o[i]);
    kl_tensor_destroy(x);
    kl_tensor_destroy(a);
    kl_tensor_destroy(bt);
    kl_program_destroy(p);
  }
  ir_graph_destroy(g);
}

Test(params, unknown_names_and_wrong_types_are_messages) {
  ir_graph *g = parse(tied_text);
  kl_program *p = compile(g, KL_BACKEND_REF, 1);
  kl_tensor *t = (kl_tensor *)&t; /* overwritten with NULL on failure */
  const char *msg = kl_program_get_param(p, "lin.c", &t);
  cr_assert_not_null(msg);
  cr_expect(strstr(msg, "no parameter named 'lin.c'"), "%s", msg);
  cr_expect_null(t);
  kl_tensor *wrong = kl_tensor_create(KL_TENSOR_F64, 2, (int64_t[]){2, 2});
  msg = kl_program_set_param(p, "lin.a", wrong);
  cr_assert_not_null(msg);
  cr_expect(strstr(msg, "'lin.a' is f32[2,2], the tensor is f64[2,2]"), "%s", msg);
  msg = kl_program_set_param(p, "nope", wrong);
  cr_assert_not_null(msg);
  cr_expect(strstr(msg, "'nope'"), "%s", msg);
  kl_tensor_destroy(wrong);
  kl_program_destroy(p);
  ir_graph_destroy(g);
}

Test(params, copy_skips_missing_names_and_type_mismatches) {
  ir_graph *gs = parse(tied_text);
  /* dst: lin.a matches, lin.b has another shape, "one" another dtype, and
   * an extra parameter src lacks */
  ir_graph *gd = parse("graph @dst(%x: f32[1,2]) {\n"
                       "  %a = param(\"lin.a\") : f32[2,2]\n"
                       "  %b = param(\"lin.b\") : f32[3]\n"
                       "  %o = param(\"one\") : i32[3]\n"
                       "  %e = param(\"extra\") : f32[2]\n"
                       "  %xa = matmul(%x, %a) : f32[1,2]\n"
                       "  %y = add(%xa, %e) : f32[1,2]\n"
                       "  return %y, %b, %o\n"
                       "}\n");
  for (int b = 0; b < 4; b++) {
    kl_program *src = compile(gs, b & 1 ? KL_BACKEND_JIT : KL_BACKEND_REF, 1);
    kl_program *dst = compile(gd, b & 2 ? KL_BACKEND_JIT : KL_BACKEND_REF, 2);
    kl_tensor *before_b, *before_e, *sa, *da;
    cr_assert_null(kl_program_get_param(dst, "lin.b", &before_b));
    cr_assert_null(kl_program_get_param(dst, "extra", &before_e));
    cr_expect_eq(kl_program_copy_params(dst, src), 1, "backends %d", b);
    cr_assert_null(kl_program_get_param(src, "lin.a", &sa));
    cr_assert_null(kl_program_get_param(dst, "lin.a", &da));
    cr_expect(memcmp(fdata(sa), fdata(da), 16) == 0);
    kl_tensor *after;
    cr_assert_null(kl_program_get_param(dst, "lin.b", &after));
    cr_expect(memcmp(fdata(after), fdata(before_b), 12) == 0, "lin.b was overwritten");
    kl_tensor_destroy(after);
    /* the copy is what dst computes with: x = [1, 0] picks row 0 of lin.a */
    const float xv[] = {1, 0};
    kl_tensor *x = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){1, 2}, xv), *o[3];
    const char *msg = kl_run(dst, &x, 1, o, 3);
    cr_assert_null(msg, "%s", msg);
    for (int i = 0; i < 2; i++)
      cr_expect_eq(fdata(o[0])[i], fdata(sa)[i] + fdata(before_e)[i]);
    for (int i = 0; i < 3; i++)
      kl_tensor_destroy(o[i]);
    kl_tensor_destroy(x);
    /* a program copied onto itself keeps its values */
    cr_expect_eq(kl_program_copy_params(src, src), 4);
    kl_tensor *again;
    cr_assert_null(kl_program_get_param(src, "lin.a", &again));
    cr_expect(memcmp(fdata(sa), fdata(again), 16) == 0);
    kl_tensor_destroy(again);
    kl_tensor_destroy(sa);
    kl_tensor_destroy(da);
    kl_tensor_destroy(before_b);
    kl_tensor_destroy(before_e);
    kl_program_destroy(src);
    kl_program_destroy(dst);
  }
  ir_graph_destroy(gs);
  ir_graph_destroy(gd);
}

Test(params, step_counter_get_and_set) {
  ir_graph *g = parse(tied_text);
  for (int b = 0; b < 2; b++) {
    kl_program *p = compile(g, b ? KL_BACKEND_JIT : KL_BACKEND_REF, 1);
    cr_expect_eq(kl_program_step(p), 0);
    const float xv[] = {1, 0};
    kl_tensor *x = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){1, 2}, xv), *o[3];
    for (int r = 0; r < 2; r++) {
      cr_assert_null(kl_run(p, &x, 1, o, 3));
      for (int i = 0; i < 3; i++)
        kl_tensor_destroy(o[i]);
    }
    cr_expect_eq(kl_program_step(p), 2);
    kl_program_set_step(p, 12345678901ull);
    cr_expect_eq(kl_program_step(p), 12345678901ull);
    /* a failed run (wrong input count) does not count */
    cr_expect_not_null(kl_run(p, NULL, 0, o, 3));
    cr_expect_eq(kl_program_step(p), 12345678901ull);
    kl_tensor_destroy(x);
    kl_program_destroy(p);
  }
  ir_graph_destroy(g);
}
