/* The canonicalize pass's shared state and its mask rules (canon_mask.c);
 * private to passes/canonicalize.c and passes/canon_mask.c. */
#ifndef KILN_PASS_CANON_MASK_H
#define KILN_PASS_CANON_MASK_H

#include "passes/rewrite.h"
#include "runtime/tensor.h"

typedef struct canon {
  pass_rw rw;
  const ir_graph *src;
  bool *is_const;   /* passes/canon_eval.h's mask of src */
  rt_tensor **vals; /* compile-time values of src nodes, filled on demand */
  int64_t limit;    /* the fold limit: larger values are not evaluated */
  ir_diag *d;
} canon;

/* The compile-time value of src node id (borrowed), or NULL when it is not
 * a constant within the limit; an interpreter failure also gives NULL (and
 * the rule simply does not fire). */
const rt_tensor *canon_value(canon *c, int id);
/* A new scalar const of dtype dt in dst, located at src node `at`. */
int canon_scalar(canon *c, double v, ir_dtype dt, int at);

/* The mask rules: each returns the dst id replacing src node id, -1 when it
 * does not apply (or on failure: c->rw.failed). */
int canon_fill_mask(canon *c, int id);      /* select(cmp(iota_k, len'), s, V) */
int canon_causal_lengths(canon *c, int id); /* sequence_mask(s, iota + 1) */
int canon_causal_bias(canon *c, int id);    /* add(s, causal -inf/-1e4 tensor) */

#endif
