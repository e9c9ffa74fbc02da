/* Parameter initialisers (runtime/init.h). Every random init is a uniform or
 * normal fill with a computed range or deviation, so all of them share
 * philox.c's streams; "normal" with scale 0 is exactly the fill programs
 * used before init attributes existed, which keeps old seeds' weights. */
#include <math.h>
#include <string.h>

#include "runtime/init.h"
#include "runtime/philox.h"

void rt_param_fans(const ir_type *t, double *fan_in, double *fan_out) {
  if (t->rank == 0) {
    *fan_in = *fan_out = 1.0;
    return;
  }
  if (t->rank == 1) {
    *fan_in = *fan_out = (double)t->dims[0];
    return;
  }
  int64_t last = t->dims[t->rank - 1];
  *fan_out = (double)last;
  *fan_in = last > 0 ? (double)(ir_type_numel(t) / last) : 0.0;
}

typedef enum { DRAW_NONE, DRAW_UNIFORM, DRAW_NORMAL } draw_kind;

/* The distribution an init names: a uniform bound or a normal deviation
 * (*width), or a constant fill (*constant) when it draws nothing. */
static bool plan(const char *init, double scale, const ir_type *t, draw_kind *kind, double *width,
                 double *constant) {
  double fan_in, fan_out;
  rt_param_fans(t, &fan_in, &fan_out);
  double fan_sum = fan_in + fan_out;
  *constant = 0.0;
  if (strcmp(init, "normal") == 0 || strcmp(init, "uniform") == 0) {
    *kind = init[0] == 'n' ? DRAW_NORMAL : DRAW_UNIFORM;
    *width = scale != 0.0 ? scale : 0.1;
  } else if (strcmp(init, "zeros") == 0 || strcmp(init, "ones") == 0) {
    *kind = DRAW_NONE;
    *constant = init[0] == 'o' ? 1.0 : 0.0;
  } else if (strncmp(init, "xavier_", 7) == 0) {
    double gain = scale != 0.0 ? scale : 1.0;
    /* an empty tensor has no fans and draws nothing: any width will do */
    double f = fan_sum > 0 ? fan_sum : 1.0;
    if (strcmp(init + 7, "uniform") == 0) {
      *kind = DRAW_UNIFORM;
      *width = gain * sqrt(6.0 / f);
    } else if (strcmp(init + 7, "normal") == 0) {
      *kind = DRAW_NORMAL;
      *width = gain * sqrt(2.0 / f);
    } else {
      return false;
    }
  } else if (strncmp(init, "kaiming_", 8) == 0) {
    double gain = scale != 0.0 ? scale : sqrt(2.0);
    double std = gain / sqrt(fan_in > 0 ? fan_in : 1.0);
    if (strcmp(init + 8, "uniform") == 0) {
      *kind = DRAW_UNIFORM;
      *width = sqrt(3.0) * std;
    } else if (strcmp(init + 8, "normal") == 0) {
      *kind = DRAW_NORMAL;
      *width = std;
    } else {
      return false;
    }
  } else {
    return false;
  }
  return true;
}

bool rt_param_init(rt_tensor *t, const char *init, double scale, uint64_t seed, uint32_t stream,
                   ir_diag *d) {
  if (!init) init = "normal";
  if (!(scale >= 0.0 && scale < INFINITY)) {
    ir_diag_set(d, "init \"%.64s\": scale must be finite and >= 0, got %g", init, scale);
    return false;
  }
  draw_kind kind;
  double width, constant;
  if (!plan(init, scale, &t->type, &kind, &width, &constant)) {
    ir_diag_set(d, "unknown init \"%.64s\"", init);
    return false;
  }
  switch (kind) {
  case DRAW_NORMAL: rt_fill_normal(t, seed, stream, 0.0, width); break;
  case DRAW_UNIFORM: rt_fill_uniform(t, seed, stream, -width, width); break;
  case DRAW_NONE:
    for (int64_t i = 0, n = rt_numel(t); i < n; i++)
      rt_set_f(t, i, constant);
    break;
  }
  return true;
}
