/* The learning-rate schedules of the optimizer pass as scalar graph nodes
 * computed from the program's `step` counter. The schedule is computed in f64 (PyTorch computes it
 * in Python floats) and cast once to each parameter dtype by the caller. */
#include <math.h>

#include "passes/optim_build.h"

static const double pi = 3.14159265358979323846;

int ob_t1(ob *b) {
  pass_builder *pb = &b->pb;
  if (b->t1 >= 0 || pb->failed) return b->t1;
  /* The counter is an integer; cast it so schedules compute in f64. */
  ir_type it = ir_type_make(IR_I64, 0, NULL);
  int step = pb_node(pb, IR_OP_STEP, 0, NULL, NULL, &it);
  b->t1 = pb_binary(pb, IR_OP_ADD, pb_cast(pb, step, IR_F64), pb_scalar(pb, 1.0, IR_F64));
  return b->t1;
}

bool ob_lr_check(ob *b, const pass_optim *o) {
  const char *name = o->schedule == PASS_LR_NANOGPT ? "NANOGPT" : "COSINE";
  switch (o->schedule) {
  case PASS_LR_CONSTANT: return true;
  case PASS_LR_WARMUP_RSQRT:
    if (o->warmup <= 0) {
      pb_fail(&b->pb, "the WARMUP_RSQRT schedule needs warmup > 0, got %lld", (long long)o->warmup);
      return false;
    }
    return true;
  case PASS_LR_COSINE:
  case PASS_LR_NANOGPT:
    if (o->warmup < 0 || o->total_steps <= o->warmup) {
      pb_fail(&b->pb,
              "the %s schedule needs 0 <= warmup < total_steps, got warmup "
              "%lld and total_steps %lld",
              name, (long long)o->warmup, (long long)o->total_steps);
      return false;
    }
    if (!(o->min_lr >= 0) || o->min_lr > o->lr) {
      pb_fail(&b->pb, "the %s schedule needs 0 <= min_lr <= lr, got %g and %g", name, o->min_lr,
              o->lr);
      return false;
    }
    return true;
  }
  pb_fail(&b->pb, "unknown learning-rate schedule %d", (int)o->schedule);
  return false;
}

/* lr sqrt(w) min(t1^-1/2, t1 w^-3/2) */
static int warmup_rsqrt(ob *b, const pass_optim *o) {
  pass_builder *pb = &b->pb;
  double w = (double)o->warmup;
  int t1 = ob_t1(b);
  int decay = pb_unary(pb, IR_OP_RSQRT, t1);
  int ramp = pb_binary(pb, IR_OP_MUL, t1, pb_scalar(pb, pow(w, -1.5), IR_F64));
  return pb_binary(pb, IR_OP_MUL, pb_scalar(pb, o->lr * sqrt(w), IR_F64),
                   pb_binary(pb, IR_OP_MIN, decay, ramp));
}

/* Warm-up lr t1 / w while t < w (so lr is reached at t1 = w), then
 * min_lr + (lr - min_lr) (1 + cos(pi s / S)) / 2 with s = min(t - w, S).
 * nanoGPT's get_lr ramps to lr t1 / (w + 1) instead, never reaching lr
 * before the cosine starts. */
static int cosine(ob *b, const pass_optim *o) {
  pass_builder *pb = &b->pb;
  double w = (double)o->warmup, S = (double)(o->total_steps - o->warmup);
  int t1 = ob_t1(b);
  int t = pb_binary(pb, IR_OP_SUB, t1, pb_scalar(pb, 1.0, IR_F64));
  int s = pb_binary(pb, IR_OP_MIN, pb_binary(pb, IR_OP_SUB, t, pb_scalar(pb, w, IR_F64)),
                    pb_scalar(pb, S, IR_F64));
  int c = pb_unary(pb, IR_OP_COS, pb_binary(pb, IR_OP_MUL, s, pb_scalar(pb, pi / S, IR_F64)));
  int half = pb_binary(pb, IR_OP_MUL, pb_binary(pb, IR_OP_ADD, c, pb_scalar(pb, 1.0, IR_F64)),
                       pb_scalar(pb, 0.5 * (o->lr - o->min_lr), IR_F64));
  int decay = pb_binary(pb, IR_OP_ADD, half, pb_scalar(pb, o->min_lr, IR_F64));
  if (o->warmup == 0) return decay;
  double ramp_div = o->schedule == PASS_LR_NANOGPT ? w + 1 : w;
  int ramp = pb_binary(pb, IR_OP_MUL, t1, pb_scalar(pb, o->lr / ramp_div, IR_F64));
  int in[3] = {pb_binary(pb, IR_OP_CMP_LT, t, pb_scalar(pb, w, IR_F64)), ramp, decay};
  return pb_node(pb, IR_OP_SELECT, 3, in, NULL, NULL);
}

int ob_lr_schedule(ob *b, const pass_optim *o) {
  pass_builder *pb = &b->pb;
  switch (o->schedule) {
  case PASS_LR_WARMUP_RSQRT: return warmup_rsqrt(b, o);
  case PASS_LR_COSINE:
  case PASS_LR_NANOGPT: return cosine(b, o);
  case PASS_LR_CONSTANT: break;
  }
  return pb_scalar(pb, o->lr, IR_F64);
}
