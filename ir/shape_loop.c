/* Shape rule of the loop region (passes/fuse_loops.c): the result is the
 * type its attributes name (the iteration space), and every operand must
 * reach it the way a body op reads it: numpy broadcasting, or a leading
 * prefix of the shape (sequence_mask's lengths). */
#include "ir/shape.h"
#include "ir/shape_util.h"

static bool reaches(const ir_type *t, const ir_type *r) {
  ir_type b;
  if (ir_broadcast(t, r, &b) && ir_shape_eq(&b, r)) return true;
  if (t->rank >= r->rank) return false;
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] != r->dims[i]) return false;
  return true;
}

IR_SHAPE_FN(ir_shape_loop) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 2, d)) return false;
  const ir_ints *s = &attrs[0].ints;
  if (s->n > IR_MAX_RANK)
    return ir_shape_fail(op, nin, in, d, "shape has rank %d, more than %d", s->n, IR_MAX_RANK);
  for (int i = 0; i < s->n; i++)
    if (s->v[i] < 0)
      return ir_shape_fail(op, nin, in, d, "negative dimension %lld in shape", (long long)s->v[i]);
  ir_type r = ir_type_make(attrs[1].dt, s->n, s->v);
  for (int k = 0; k < nin; k++)
    if (!reaches(&in[k], &r))
      return ir_shape_fail(op, nin, in, d, "operand %d does not broadcast to the iteration space",
                           k);
  *out = r;
  return true;
}
