/* Rewriting by copying: node ids are positions in a topologically ordered
 * list, so a pass that deletes, replaces or inserts nodes copies the graph
 * node by node into a new one, keeping a map from old ids to new ones.
 * Also the use counts every matcher needs to know what it may swallow. */
#ifndef KILN_PASS_REWRITE_H
#define KILN_PASS_REWRITE_H

#include "ir/ir.h"

typedef struct pass_rw {
  const ir_graph *src;
  ir_graph *dst;
  int *map; /* src id -> dst id, -1 while unmapped */
  ir_diag *d;
  bool failed; /* sticky: every later call returns -1 / NULL */
} pass_rw;

/* An empty dst named like src. False (d set) when out of memory. */
bool pass_rw_init(pass_rw *rw, const ir_graph *src, ir_diag *d);
/* Copies src node id into dst with its operands mapped (each must be
 * mapped already), its attributes, name, location, payload and a clone of
 * its body; maps id to the copy and returns it, or -1 with d set. */
int pass_rw_copy(pass_rw *rw, int id);
/* Appends a new node to dst (operands are dst ids) carrying src node
 * like's name and location (like < 0: none); -1 with d set on failure. */
int pass_rw_add(pass_rw *rw, ir_op op, int nin, const int *in, const ir_attr *attrs,
                const ir_type *declared, int like);
/* As pass_rw_add for a region op (body taken). */
int pass_rw_add_region(pass_rw *rw, ir_op op, int nin, const int *in, const ir_attr *attrs,
                       ir_graph *body, int like);
/* src id now means dst id (a replacement). */
static inline void pass_rw_map(pass_rw *rw, int id, int dst_id) { rw->map[id] = dst_id; }
/* dst id of src id, copying it first (with its unmapped operands,
 * recursively) when it has not been copied yet. */
int pass_rw_get(pass_rw *rw, int id);
/* Sets dst's returns to the mapped returns of src (copying them if
 * needed), frees the map and returns dst; NULL (everything freed) after
 * any failure. */
ir_graph *pass_rw_finish(pass_rw *rw);
void pass_rw_abort(pass_rw *rw);

/* Assign positions for the question "does an assign lie strictly between
 * nodes from and to?". A fused node runs where the last node it replaces
 * was, so it must not carry a read made before a parameter's update (at
 * from) past that update. prefix[i] is the number of assigns among nodes
 * 0..i-1 (nnodes + 1 entries), so that each question costs O(1) where a
 * scan of the range per candidate was quadratic. malloc'd; NULL when out
 * of memory. */
int *pass_assign_prefix(const ir_graph *g);
static inline bool pass_assign_in(const int *prefix, int from, int to) {
  return to > from + 1 && prefix[to] > prefix[from + 1];
}

/* Per node: how many operand slots of other nodes use it, plus one per
 * return slot. malloc'd (caller frees); NULL when out of memory. */
int *pass_use_counts(const ir_graph *g);

#endif
