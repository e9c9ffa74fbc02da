/* The nesting node builder of passes/builder.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "passes/builder.h"

void pb_init(pass_builder *b, ir_graph *g, ir_diag *d, const char *prefix) {
  memset(b, 0, sizeof *b);
  b->g = g;
  b->d = d;
  snprintf(b->prefix, sizeof b->prefix, "%s", prefix ? prefix : "");
}

bool pb_fail(pass_builder *b, const char *fmt, ...) {
  if (b->failed) return false;
  b->failed = true;
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  ir_diag_set(b->d, "%s%s", b->prefix, why);
  return false;
}

static int made(pass_builder *b, int id) {
  if (b->loc.file) b->g->nodes[id]->loc = b->loc;
  return id;
}

int pb_node(pass_builder *b, ir_op op, int nin, const int *in, const ir_attr *attrs,
            const ir_type *declared) {
  if (b->failed) return -1;
  for (int i = 0; i < nin; i++)
    if (in[i] < 0) return -1;
  ir_diag d = {0};
  int id = ir_add_node(b->g, op, nin, in, attrs, declared, &d);
  if (id < 0) return pb_fail(b, "building %s: %s", ir_op_get(op)->name, d.msg), -1;
  return made(b, id);
}

int pb_unary(pass_builder *b, ir_op op, int x) { return pb_node(b, op, 1, &x, NULL, NULL); }

int pb_binary(pass_builder *b, ir_op op, int x, int y) {
  int in[2] = {x, y};
  return pb_node(b, op, 2, in, NULL, NULL);
}

int pb_scalar(pass_builder *b, double v, ir_dtype dt) {
  if (b->failed) return -1;
  for (int i = 0; i < b->nconsts; i++)
    if (b->consts[i].dt == dt && b->consts[i].v == v) return b->consts[i].id;
  union {
    float f;
    double d;
    int32_t i32;
    int64_t i64;
    uint8_t b;
  } u = {0};
  switch (dt) {
  case IR_F32: u.f = (float)v; break;
  case IR_F64: u.d = v; break;
  case IR_I32: u.i32 = (int32_t)v; break;
  case IR_I64: u.i64 = (int64_t)v; break;
  default: u.b = v != 0; break;
  }
  ir_type t = ir_type_make(dt, 0, NULL);
  ir_diag d = {0};
  int id = ir_add_const(b->g, &t, &u, &d);
  if (id < 0) return pb_fail(b, "building a constant: %s", d.msg), -1;
  if (b->nconsts < PASS_BUILDER_CONSTS)
    b->consts[b->nconsts++] = (__typeof__(b->consts[0])){v, dt, id};
  return made(b, id);
}

int pb_fill(pass_builder *b, double v, const ir_type *t) {
  int s = pb_scalar(b, v, t->dtype);
  if (s < 0 || t->rank == 0) return s;
  int64_t dims[IR_MAX_RANK];
  memcpy(dims, t->dims, sizeof dims);
  ir_attr a = {.kind = IR_ATTR_INTS, .ints = {t->rank, dims}};
  return pb_node(b, IR_OP_BROADCAST_TO, 1, &s, &a, NULL);
}

int pb_cast(pass_builder *b, int x, ir_dtype dt) {
  if (b->failed || x < 0) return -1;
  if (b->g->nodes[x]->type.dtype == dt) return x;
  ir_attr a = {.kind = IR_ATTR_DTYPE, .dt = dt};
  return pb_node(b, IR_OP_CAST, 1, &x, &a, NULL);
}

int pb_reshape(pass_builder *b, int x, int rank, const int64_t *dims) {
  if (b->failed || x < 0) return -1;
  const ir_type *xt = &b->g->nodes[x]->type;
  ir_type want = ir_type_make(xt->dtype, rank, dims);
  if (ir_type_eq(xt, &want)) return x;
  int64_t v[IR_MAX_RANK] = {0};
  memcpy(v, dims, (size_t)rank * sizeof *v);
  ir_attr a = {.kind = IR_ATTR_INTS, .ints = {rank, v}};
  return pb_node(b, IR_OP_RESHAPE, 1, &x, &a, NULL);
}

static int sum_axes(pass_builder *b, int x, int nax, int64_t *axes) {
  ir_attr a[2] = {{.kind = IR_ATTR_INTS, .ints = {nax, axes}}, {.kind = IR_ATTR_BOOL, .b = false}};
  return pb_node(b, IR_OP_SUM, 1, &x, a, NULL);
}

int pb_sum_all(pass_builder *b, int x) {
  if (b->failed || x < 0) return -1;
  const ir_type *t = &b->g->nodes[x]->type;
  if (t->rank == 0) return x;
  int64_t axes[IR_MAX_RANK];
  for (int i = 0; i < t->rank; i++)
    axes[i] = i;
  return sum_axes(b, x, t->rank, axes);
}

int pb_unbroadcast(pass_builder *b, int x, const ir_type *to) {
  if (b->failed || x < 0) return -1;
  ir_type xt = b->g->nodes[x]->type;
  if (ir_shape_eq(&xt, to)) return x;
  int lead = xt.rank - to->rank;
  if (lead < 0) {
    char s1[IR_TYPE_STRLEN], s2[IR_TYPE_STRLEN];
    return pb_fail(b, "cannot sum %s down to %s", ir_type_str(&xt, s1, sizeof s1),
                   ir_type_str(to, s2, sizeof s2)),
           -1;
  }
  int64_t axes[IR_MAX_RANK];
  int nax = 0;
  for (int i = 0; i < xt.rank; i++)
    if (i < lead || (to->dims[i - lead] == 1 && xt.dims[i] != 1)) axes[nax++] = i;
  if (nax > 0) x = sum_axes(b, x, nax, axes);
  return pb_reshape(b, x, to->rank, to->dims);
}
