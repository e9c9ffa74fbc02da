/* Shared checks for pass and fused-kernel tests (ir_check.h). */
#include "tests/support/ir_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/ref.h"

ir_graph *tc_parse(const char *text) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "test.kir", &d);
  cr_assert(g, "parse: %s\n%s", d.msg, text);
  return g;
}

int tc_count_op(const ir_graph *g, ir_op op) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++)
    n += g->nodes[i]->op == op;
  return n;
}

double tc_elem(kl_tensor *t, ir_dtype dt, int64_t i) {
  return dt == IR_F32 ? ((float *)kl_tensor_data(t))[i] : ((double *)kl_tensor_data(t))[i];
}

double tc_rel_err(kl_tensor *a, kl_tensor *b, ir_dtype dt) {
  double err = 0, mag = 0;
  cr_assert_eq(kl_tensor_numel(a), kl_tensor_numel(b));
  for (int64_t i = 0; i < kl_tensor_numel(a); i++) {
    double x = tc_elem(a, dt, i), y = tc_elem(b, dt, i);
    cr_assert(isfinite(x), "element %lld is %g", (long long)i, x);
    if (fabs(x - y) > err) err = fabs(x - y);
    if (fabs(y) > mag) mag = fabs(y);
  }
  return err / (1 + mag);
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

rt_tensor **tc_random_args(const ir_graph *g, uint64_t seed, int64_t int_hi) {
  int n = ir_graph_args(g, NULL);
  int *ids = malloc(sizeof(int) * (size_t)(n + 1));
  rt_tensor **a = calloc((size_t)n + 1, sizeof *a);
  cr_assert(ids && a);
  ir_graph_args(g, ids);
  uint64_t s = seed * 2654435761u + 1;
  for (int i = 0; i < n; i++) {
    a[i] = rt_tensor_create(&g->nodes[ids[i]]->type);
    cr_assert_not_null(a[i]);
    for (int64_t e = 0; e < rt_numel(a[i]); e++) {
      uint64_t r = rng_next(&s);
      if (ir_dtype_is_float(a[i]->type.dtype))
        rt_set_f(a[i], e, (double)(r >> 11) / 9007199254740992.0 * 2 - 1);
      else
        rt_set_i(a[i], e, (int64_t)(r % (uint64_t)(int_hi + 1)));
    }
  }
  free(ids);
  return a;
}

rt_tensor **tc_ref_outputs(const ir_graph *g, rt_tensor **args, bool training) {
  rt_tensor **outs = calloc((size_t)g->nrets + 1, sizeof *outs);
  cr_assert_not_null(outs);
  rt_ref_opts o = {.training = training, .seed = 42, .step = 3};
  ir_diag d = {0};
  cr_assert(rt_ref_run(g, (const rt_tensor *const *)args, NULL, NULL, &o, outs, &d), "run: %s",
            d.msg);
  return outs;
}

void tc_free_tensors(rt_tensor **a) {
  for (int i = 0; a && a[i]; i++)
    rt_tensor_destroy(a[i]);
  free(a);
}
