/* The learning-rate schedules of the optimizer pass as scalar graph nodes
 * computed from the program's `step` counter, and the nesting node builder
 * the pass uses. The schedule is computed in f64 (PyTorch computes it in
 * Python floats) and cast once to each parameter dtype by the caller. */
#include <math.h>

#include "passes/optim_build.h"

static const double pi = 3.14159265358979323846;

int ob_node(ob *b, ir_op op, int nin, const int *in, const ir_attr *attrs,
            const ir_type *declared) {
  if (b->failed) return -1;
  for (int i = 0; i < nin; i++)
    if (in[i] < 0) return -1;
  ir_diag d = {0};
  int id = ir_add_node(b->g, op, nin, in, attrs, declared, &d);
  if (id < 0) {
    ir_diag_set(b->d, "optimizer: %s", d.msg);
    b->failed = true;
  }
  return id;
}

int ob_un(ob *b, ir_op op, int x) { return ob_node(b, op, 1, &x, NULL, NULL); }

int ob_bin(ob *b, ir_op op, int x, int y) {
  int in[2] = {x, y};
  return ob_node(b, op, 2, in, NULL, NULL);
}

int ob_scalar(ob *b, double v, ir_dtype dt) {
  if (b->failed) return -1;
  ir_type t = ir_type_make(dt, 0, NULL);
  float f = (float)v;
  ir_diag d = {0};
  int id = ir_add_const(b->g, &t, dt == IR_F32 ? (const void *)&f : (const void *)&v, &d);
  if (id < 0) {
    ir_diag_set(b->d, "optimizer: %s", d.msg);
    b->failed = true;
  }
  return id;
}

int ob_cast(ob *b, int x, ir_dtype dt) {
  if (x < 0) return -1;
  if (b->g->nodes[x]->type.dtype == dt) return x;
  ir_attr to = {.kind = IR_ATTR_DTYPE, .dt = dt};
  return ob_node(b, IR_OP_CAST, 1, &x, &to, NULL);
}

int ob_sum_all(ob *b, int x) {
  if (x < 0) return -1;
  const ir_type *t = &b->g->nodes[x]->type;
  if (t->rank == 0) return x;
  int64_t axes[IR_MAX_RANK];
  for (int i = 0; i < t->rank; i++)
    axes[i] = i;
  ir_attr a[2] = {{.kind = IR_ATTR_INTS, .ints = {t->rank, axes}},
                  {.kind = IR_ATTR_BOOL, .b = false}};
  return ob_node(b, IR_OP_SUM, 1, &x, a, NULL);
}

int ob_t1(ob *b) {
  if (b->t1 >= 0 || b->failed) return b->t1;
  /* The counter is an integer; cast it so schedules compute in f64. */
  ir_type it = ir_type_make(IR_I64, 0, NULL);
  int step = ob_node(b, IR_OP_STEP, 0, NULL, NULL, &it);
  b->t1 = ob_bin(b, IR_OP_ADD, ob_cast(b, step, IR_F64), ob_scalar(b, 1.0, IR_F64));
  return b->t1;
}

bool ob_lr_check(ob *b, const pass_optim *o) {
  switch (o->schedule) {
  case PASS_LR_CONSTANT: return true;
  case PASS_LR_WARMUP_RSQRT:
    if (o->warmup <= 0) {
      ir_diag_set(b->d, "optimizer: the WARMUP_RSQRT schedule needs warmup > 0, got %lld",
                  (long long)o->warmup);
      return false;
    }
    return true;
  case PASS_LR_COSINE:
    if (o->warmup < 0 || o->total_steps <= o->warmup) {
      ir_diag_set(b->d,
                  "optimizer: the COSINE schedule needs 0 <= warmup < total_steps, got warmup "
                  "%lld and total_steps %lld",
                  (long long)o->warmup, (long long)o->total_steps);
      return false;
    }
    if (!(o->min_lr >= 0) || o->min_lr > o->lr) {
      ir_diag_set(b->d, "optimizer: the COSINE schedule needs 0 <= min_lr <= lr, got %g and %g",
                  o->min_lr, o->lr);
      return false;
    }
    return true;
  }
  ir_diag_set(b->d, "optimizer: unknown learning-rate schedule %d", (int)o->schedule);
  return false;
}

/* lr sqrt(w) min(t1^-1/2, t1 w^-3/2) */
static int warmup_rsqrt(ob *b, const pass_optim *o) {
  double w = (double)o->warmup;
  int t1 = ob_t1(b);
  int decay = ob_un(b, IR_OP_RSQRT, t1);
  int ramp = ob_bin(b, IR_OP_MUL, t1, ob_scalar(b, pow(w, -1.5), IR_F64));
  return ob_bin(b, IR_OP_MUL, ob_scalar(b, o->lr * sqrt(w), IR_F64),
                ob_bin(b, IR_OP_MIN, decay, ramp));
}

/* Warm-up lr t1 / w while t < w (so lr is reached at t1 = w), then
 * min_lr + (lr - min_lr) (1 + cos(pi s / S)) / 2 with s = min(t - w, S). */
static int cosine(ob *b, const pass_optim *o) {
  double w = (double)o->warmup, S = (double)(o->total_steps - o->warmup);
  int t1 = ob_t1(b);
  int t = ob_bin(b, IR_OP_SUB, t1, ob_scalar(b, 1.0, IR_F64));
  int s = ob_bin(b, IR_OP_MIN, ob_bin(b, IR_OP_SUB, t, ob_scalar(b, w, IR_F64)),
                 ob_scalar(b, S, IR_F64));
  int c = ob_un(b, IR_OP_COS, ob_bin(b, IR_OP_MUL, s, ob_scalar(b, pi / S, IR_F64)));
  int half = ob_bin(b, IR_OP_MUL, ob_bin(b, IR_OP_ADD, c, ob_scalar(b, 1.0, IR_F64)),
                    ob_scalar(b, 0.5 * (o->lr - o->min_lr), IR_F64));
  int decay = ob_bin(b, IR_OP_ADD, half, ob_scalar(b, o->min_lr, IR_F64));
  if (o->warmup == 0) return decay;
  int ramp = ob_bin(b, IR_OP_MUL, t1, ob_scalar(b, o->lr / w, IR_F64));
  int in[3] = {ob_bin(b, IR_OP_CMP_LT, t, ob_scalar(b, w, IR_F64)), ramp, decay};
  return ob_node(b, IR_OP_SELECT, 3, in, NULL, NULL);
}

int ob_lr_schedule(ob *b, const pass_optim *o) {
  switch (o->schedule) {
  case PASS_LR_WARMUP_RSQRT: return warmup_rsqrt(b, o);
  case PASS_LR_COSINE: return cosine(b, o);
  case PASS_LR_CONSTANT: break;
  }
  return ob_scalar(b, o->lr, IR_F64);
}
