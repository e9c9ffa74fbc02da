/* --check-numerics on the reference side: the scan the interpreter runs
 * after every node, and the one message format both backends use, so a
 * NaN reads the same whichever backend found it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/numerics.h"
#include "runtime/ref_util.h"

int64_t rt_first_nonfinite(const void *data, int64_t n, ir_dtype dt) {
  if (dt == IR_F32) {
    const float *x = data;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(x[i])) return i;
  } else if (dt == IR_F64) {
    const double *x = data;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(x[i])) return i;
  }
  return -1;
}

/* "nan at index 5 [1,2] of f32[2,3]" */
static void describe(const rt_tensor *out, int64_t idx, char *buf, size_t len) {
  double v = rt_get_f(out, idx);
  const char *val = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  int64_t mi[IR_MAX_RANK];
  rt_unflatten(&out->type, idx, mi);
  char multi[IR_MAX_RANK * 22 + 3], ty[IR_TYPE_STRLEN];
  size_t k = (size_t)snprintf(multi, sizeof multi, "[");
  for (int i = 0; i < out->type.rank; i++)
    k += (size_t)snprintf(multi + k, sizeof multi - k, "%s%lld", i ? "," : "", (long long)mi[i]);
  snprintf(multi + k, sizeof multi - k, "]");
  snprintf(buf, len, "%s at index %lld %s of %s", val, (long long)idx, multi,
           ir_type_str(&out->type, ty, sizeof ty));
}

/* What re-running a region's body on the reference says: the inner node's
 * message without the step (the outer message has it), or why there is
 * none. */
static void body_culprit(const ir_node *n, const rt_tensor *const *in, const rt_ref_opts *opts,
                         char *buf, size_t len) {
  if (!in) {
    snprintf(buf, len, "; its body was not re-run (the result took its operands' memory)");
    return;
  }
  rt_ref_opts o = *opts;
  o.check_numerics = true;
  o.assign = NULL;
  rt_tensor *res = NULL;
  ir_diag inner = {0};
  if (rt_ref_run(n->body, in, NULL, NULL, &o, &res, &inner)) {
    rt_tensor_destroy(res);
    snprintf(buf, len, "; its body, re-run on the reference, makes no non-finite value");
    return;
  }
  char step[40];
  int ls = snprintf(step, sizeof step, " (step %llu)", (unsigned long long)opts->step);
  size_t lm = strlen(inner.msg);
  if (ls > 0 && lm >= (size_t)ls && strcmp(inner.msg + lm - (size_t)ls, step) == 0)
    inner.msg[lm - (size_t)ls] = 0;
  snprintf(buf, len, "; first made in its body by %s", inner.msg);
}

void rt_nonfinite_report(const ir_node *n, const rt_tensor *out, int64_t idx,
                         const rt_tensor *const *in, const rt_ref_opts *opts, ir_diag *d) {
  rt_ref_opts none = {0};
  if (!opts) opts = &none;
  char where[256], what[IR_TYPE_STRLEN + 128], body[sizeof d->msg] = "";
  rt_node_where(n, where, sizeof where);
  describe(out, idx, what, sizeof what);
  if (n->body) body_culprit(n, in, opts, body, sizeof body);
  ir_diag_set(d, "%s: %s: %s (step %llu)%s", where, ir_op_get(n->op)->name, what,
              (unsigned long long)opts->step, body);
}
