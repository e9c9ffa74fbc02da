/* Internal to frontend/: the kl_graph structure and the helpers every builder
 * shares (operand checks, attribute construction, node emission with source
 * locations, sticky error recording). Not part of the public API. */
#ifndef KILN_FRONTEND_INTERNAL_H
#define KILN_FRONTEND_INTERNAL_H

#include <stdarg.h>

#include "frontend/kiln.h"
#include "ir/ir.h"

#define KL_MAX_SCOPES 32

struct kl_graph {
  ir_graph *ir;                /* owned; its error/has_error hold the sticky first error */
  char *scopes[KL_MAX_SCOPES]; /* malloc'd copies */
  int nscopes;
  /* Set while a composition (kl_attention) emits primitives, so an error
   * inside says which DSL call it came from. */
  const char *ctx;
};

/* An invalid value of graph g (g may be NULL). */
static inline kl_value kl__invalid(kl_graph *g) { return (kl_value){g, -1}; }

/* The last path component of a __FILE__ string ("?" for NULL). */
const char *kl__basename(const char *file);

/* Records the graph's first error as "FILE:LINE: [ctx: ]MESSAGE" (no location
 * prefix when file is NULL); later errors are dropped. */
void kl__error(kl_graph *g, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kl__verror(kl_graph *g, const char *file, int line, const char *fmt, va_list ap);

/* "matmul(f32[2,3], f32[4,5])": the op and its operands' types, for messages.
 * Operands that are invalid print as "<invalid>". */
void kl__describe(ir_op op, int n, const kl_value *xs, char *buf, size_t len);

/* Records "FILE:LINE: <describe>: MESSAGE" for a bad builder argument. */
void kl__fail(kl_graph *g, const char *file, int line, ir_op op, int n, const kl_value *xs,
              const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Checks a builder's operands. Returns the graph to build in, or NULL when
 * the builder must return kl__invalid(*gout): an operand is invalid, the
 * graph already has an error, or operands come from different graphs (which
 * records an error). *gout is NULL only when no operand names a graph. */
kl_graph *kl__operands(int n, const kl_value *xs, ir_op op, const char *file, int line,
                       kl_graph **gout);

/* Appends a node (ir_add_node), sets its location, and records a failure. */
kl_value kl__node(kl_graph *g, ir_op op, int n, const kl_value *xs, const ir_attr *attrs,
                  const ir_type *declared, const char *file, int line);
/* kl__operands followed by kl__node. */
kl_value kl__op(ir_op op, int n, const kl_value *xs, const ir_attr *attrs, const char *file,
                int line);

/* Validates a kl_ints list used as a shape: 0 <= n <= KL_MAX_RANK, no
 * negative dims (unless allow_minus1, which admits -1), element count in
 * range. On failure writes a message into msg and returns false. */
bool kl__shape_ok(const kl_ints *s, bool allow_minus1, char *msg, size_t len);
/* 0 <= n <= 8 (the capacity of kl_ints). */
bool kl__ints_ok(const kl_ints *s);
bool kl__dtype_ok(kl_dtype dt);
ir_type kl__type(kl_dtype dt, const kl_ints *shape);
/* The type of a valid value. */
const ir_type *kl__type_of(kl_value v);

/* Converts a double to one element of dt; false when it does not fit (NaN or
 * out of range for an integer dtype). out holds at least 8 bytes. */
bool kl__scalar_bytes(double v, ir_dtype dt, void *out);
/* A rank-0 CONST of dtype dt (g must be usable); `op` names the builder for
 * messages when v does not fit dt. */
kl_value kl__scalar_node(kl_graph *g, double v, ir_dtype dt, ir_op op, int n, const kl_value *xs,
                         const char *file, int line);

/* Attribute constructors. Lists point into the kl_ints (copied by the IR). */
static inline ir_attr kl__a_int(int64_t i) { return (ir_attr){.kind = IR_ATTR_INT, .i = i}; }
static inline ir_attr kl__a_float(double f) { return (ir_attr){.kind = IR_ATTR_FLOAT, .f = f}; }
static inline ir_attr kl__a_bool(bool b) { return (ir_attr){.kind = IR_ATTR_BOOL, .b = b}; }
static inline ir_attr kl__a_str(const char *s) { return (ir_attr){.kind = IR_ATTR_STR, .s = s}; }
static inline ir_attr kl__a_dtype(ir_dtype dt) {
  return (ir_attr){.kind = IR_ATTR_DTYPE, .dt = dt};
}
static inline ir_attr kl__a_ints(kl_ints *s) {
  return (ir_attr){.kind = IR_ATTR_INTS, .ints = {.n = s->n, .v = s->v}};
}

#endif
