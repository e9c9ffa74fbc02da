/* The compile/run API of programs (backend/kiln_run.h), compiled with the
 * backend's own entry (no passes) on the reference backend: results against
 * hand-computed values, parameters, and the errors a user
 * meets (a graph with a DSL error, wrong input counts and types, unknown
 * parameters, the JIT not being built yet). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "frontend/graph_ir.h"
#include "frontend/kiln.h"

/* y = x @ w + b with w, b parameters: [1,2] @ [2,2] + [2]. */
static kl_graph *affine(void) {
  kl_graph *g = kl_graph_create("affine");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(1, 2));
  kl_scope_push(g, "lin");
  kl_value w = kl_param(g, "w", KL_F32, KL_SHAPE(2, 2));
  kl_value b = kl_param(g, "b", KL_F32, KL_SHAPE(2));
  kl_scope_pop(g);
  kl_output(kl_add(kl_matmul(x, w), b));
  return g;
}

Test(program, runs_with_parameters_set_by_name) {
  kl_graph *g = affine();
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), NULL, &err);
  cr_assert_not_null(p, "%s", err);
  kl_graph_destroy(g); /* the program keeps its own copy */
  float xs[] = {1, 2}, ws[] = {1, 2, 3, 4}, bs[] = {0.5f, -1};
  kl_tensor *w = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){2, 2}, ws);
  kl_tensor *b = kl_tensor_from(KL_TENSOR_F32, 1, (int64_t[]){2}, bs);
  cr_assert_null(kl_program_set_param(p, "lin.w", w));
  cr_assert_null(kl_program_set_param(p, "lin.b", b));
  kl_tensor *x = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){1, 2}, xs), *y = NULL;
  const char *msg = kl_run(p, &x, 1, &y, 1);
  cr_assert_null(msg, "%s", msg);
  cr_assert_eq(kl_tensor_rank(y), 2);
  cr_assert_eq(kl_tensor_dim(y, -1), 2);
  const float *yv = kl_tensor_data(y);
  /* [1,2] @ [[1,2],[3,4]] = [7, 10]; + [0.5, -1] */
  cr_expect_float_eq(yv[0], 7.5f, 1e-6);
  cr_expect_float_eq(yv[1], 9.0f, 1e-6);
  kl_tensor_destroy(y);
  kl_tensor_destroy(x);
  kl_tensor_destroy(w);
  kl_tensor_destroy(b);
  kl_program_destroy(p);
}

Test(program, parameters_start_seeded_and_reproducible) {
  kl_graph *g = affine();
  kl_compile_opts o1 = {.seed = 1}, o2 = {.seed = 2};
  kl_program *a = kl_compile_unoptimized(kl_graph_ir(g), &o1, NULL),
             *b = kl_compile_unoptimized(kl_graph_ir(g), &o1, NULL),
             *c = kl_compile_unoptimized(kl_graph_ir(g), &o2, NULL);
  float xs[] = {1, -1};
  kl_tensor *x = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){1, 2}, xs), *ya, *yb, *yc;
  cr_assert_null(kl_run(a, &x, 1, &ya, 1));
  cr_assert_null(kl_run(b, &x, 1, &yb, 1));
  cr_assert_null(kl_run(c, &x, 1, &yc, 1));
  cr_expect(memcmp(kl_tensor_data(ya), kl_tensor_data(yb), 8) == 0, "same seed, same params");
  cr_expect(memcmp(kl_tensor_data(ya), kl_tensor_data(yc), 8) != 0, "other seed, other params");
  kl_tensor *ts[] = {x, ya, yb, yc};
  for (int i = 0; i < 4; i++)
    kl_tensor_destroy(ts[i]);
  kl_program_destroy(a);
  kl_program_destroy(b);
  kl_program_destroy(c);
  kl_graph_destroy(g);
}

Test(program, refuses_a_graph_with_a_dsl_error) {
  kl_graph *g = kl_graph_create("bad");
  kl_value a = kl_input(g, "a", KL_F32, KL_SHAPE(2, 3));
  kl_value b = kl_input(g, "b", KL_F32, KL_SHAPE(4, 5));
  int line = __LINE__ + 1;
  kl_output(kl_matmul(a, b));
  char *err = NULL, want[64];
  cr_assert_null(kl_compile_unoptimized(kl_graph_ir(g), NULL, &err));
  cr_assert_not_null(err);
  snprintf(want, sizeof want, "test_program.c:%d: matmul(f32[2,3], f32[4,5])", line);
  cr_expect(strstr(err, want), "%s", err);
  free(err);
  kl_graph_destroy(g);
}

Test(program, user_errors_are_messages) {
  kl_graph *g = affine();
  char *err = NULL;
  kl_compile_opts bad = {.backend = (kl_backend)7};
  cr_expect_null(kl_compile_unoptimized(kl_graph_ir(g), &bad, &err));
  cr_expect(err && strstr(err, "unknown backend"), "%s", err);
  free(err);
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), NULL, NULL);
  cr_assert_not_null(p);
  kl_tensor *wrong = kl_tensor_create(KL_TENSOR_F32, 1, (int64_t[]){3}), *y = NULL;
  const char *m = kl_program_set_param(p, "lin.nope", wrong);
  cr_expect(m && strstr(m, "no parameter named 'lin.nope'"), "%s", m);
  m = kl_program_set_param(p, "lin.b", wrong);
  cr_expect(m && strstr(m, "parameter 'lin.b' is f32[2], the tensor is f32[3]"), "%s", m);
  m = kl_run(p, NULL, 0, &y, 1);
  cr_expect(m && strstr(m, "@affine takes 1 input, got 0"), "%s", m);
  m = kl_run(p, &wrong, 1, &y, 1);
  cr_expect(m && strstr(m, "input %x: expected f32[1,2], got f32[3]"), "%s", m);
  cr_expect_null(y, "no output after a failed run");
  kl_tensor *x = kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){1, 2});
  kl_tensor *y2 = kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){1, 2});
  m = kl_run_into(p, &x, 1, &x, 1);
  cr_expect(m && strstr(m, "output 0 is the same tensor as input 0"), "%s", m);
  m = kl_run_into(p, &x, 1, &y2, 1);
  cr_expect_null(m, "%s", m);
  kl_tensor_destroy(x);
  kl_tensor_destroy(y2);
  cr_expect_null(kl_tensor_create(KL_TENSOR_F32, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}));
  cr_expect_null(kl_tensor_create(KL_TENSOR_F32, 1, (int64_t[]){-1}));
  kl_tensor_destroy(wrong);
  kl_program_destroy(p);
  kl_graph_destroy(g);
}
