/* Shape rule of the loop region (passes/fuse_loops.c): the result is the
 * type its attributes name. Its operands reach the iteration space, which a
 * loop ending in a reduction takes from its body, so ir_verify checks them
 * (ir_loop_reaches) where the body is at hand. */
#include "ir/shape.h"
#include "ir/shape_util.h"

bool ir_loop_reaches(const ir_type *t, const ir_type *space) {
  ir_type b;
  if (ir_broadcast(t, space, &b) && ir_shape_eq(&b, space)) return true;
  if (t->rank >= space->rank) return false;
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] != space->dims[i]) return false;
  return true;
}

const ir_node *ir_loop_reduction(const ir_node *loop) {
  if (!loop || loop->op != IR_OP_LOOP || !loop->body || loop->body->nrets != 1) return NULL;
  const ir_node *r = loop->body->nodes[loop->body->rets[0]];
  bool red = r->op == IR_OP_SUM || r->op == IR_OP_MEAN || r->op == IR_OP_REDUCE_MAX;
  return red ? r : NULL;
}

IR_SHAPE_FN(ir_shape_loop) {
  if (!ir_shape_begin(op, nin, in, attrs, -1, 2, d)) return false;
  const ir_ints *s = &attrs[0].ints;
  if (s->n > IR_MAX_RANK)
    return ir_shape_fail(op, nin, in, d, "shape has rank %d, more than %d", s->n, IR_MAX_RANK);
  for (int i = 0; i < s->n; i++)
    if (s->v[i] < 0)
      return ir_shape_fail(op, nin, in, d, "negative dimension %lld in shape", (long long)s->v[i]);
  *out = ir_type_make(attrs[1].dt, s->n, s->v);
  return true;
}
