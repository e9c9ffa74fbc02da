/* Internal helpers shared by the shape rules (ir/shape_*.c) and the verifier:
 * the "op(operand types): reason" message, input validation, axis
 * normalisation and overflow-checked element counts. Not part of the public
 * IR interface (ir.h). */
#ifndef KILN_IR_SHAPE_UTIL_H
#define KILN_IR_SHAPE_UTIL_H

#include "ir/ir.h"

/* Maps axis in [-rank, rank) to [0, rank); false when out of range. */
bool ir_norm_axis(int64_t axis, int rank, int *out);

/* Known dtype, rank 0..IR_MAX_RANK, every dim >= 0. */
bool ir_type_valid(const ir_type *t);

/* Product of dims; false on int64 overflow or a negative dim. */
bool ir_checked_numel(int rank, const int64_t *dims, int64_t *out);

/* Writes "<op>(<operand types>): <reason>" into d and returns false, so a
 * rule can `return ir_shape_fail(...)`. */
bool ir_shape_fail(ir_op op, int nin, const ir_type *in, ir_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Common preconditions of every rule: op exists, nin == want_nin (or >= 1
 * when want_nin is -1), operand types are valid, and the op's schema has at
 * least want_attrs attributes whose values have the schema's kinds (lists
 * well-formed, dtypes known). Rules then read attrs without further checks. */
bool ir_shape_begin(ir_op op, int nin, const ir_type *in, const ir_attr *attrs, int want_nin,
                    int want_attrs, ir_diag *d);

/* The kind's name for messages: "int", "float", "bool", "string", "dtype",
 * "int list". */
const char *ir_attr_kind_name(ir_attr_kind k);

/* A loop region operand of type t reaches the iteration space: numpy
 * broadcasting, or a leading prefix of it (sequence_mask's lengths). */
bool ir_loop_reaches(const ir_type *t, const ir_type *space);

#endif
