/* Shared checks for pass and fused-kernel tests (ir_check.h). */
#include "tests/support/ir_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

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
