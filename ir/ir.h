/* kiln IR: dtypes, static shapes, typed attributes, nodes and graphs.
 * A graph is a list of SSA nodes in topological order; operands are node ids
 * (indices into the list). The op table (ops.def) describes every op; the
 * graph owns everything it points to through one arena.
 * This layer depends on libc only. */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IR_MAX_RANK 6
#define IR_MAX_ATTRS 8

/* ---- dtypes ---------------------------------------------------------- */

typedef enum { IR_F32, IR_F64, IR_I32, IR_I64, IR_BOOL, IR_NUM_DTYPES } ir_dtype;

const char *ir_dtype_name(ir_dtype dt); /* "f32" ... */
bool ir_dtype_parse(const char *s, size_t len, ir_dtype *out);
size_t ir_dtype_size(ir_dtype dt); /* bytes per element */
bool ir_dtype_is_float(ir_dtype dt);
bool ir_dtype_is_int(ir_dtype dt); /* i32, i64 (not bool) */

/* ---- types: dtype + static shape -------------------------------------- */

typedef struct ir_type {
  ir_dtype dtype;
  int rank; /* 0 = scalar */
  int64_t dims[IR_MAX_RANK];
} ir_type;

ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims);
int64_t ir_type_numel(const ir_type *t);
bool ir_type_eq(const ir_type *a, const ir_type *b);
bool ir_shape_eq(const ir_type *a, const ir_type *b); /* ignores dtype */
/* "f32[2,4,8]"; returns buf. 64 bytes always suffice. */
char *ir_type_str(const ir_type *t, char *buf, size_t len);
#define IR_TYPE_STRLEN 96
/* numpy broadcasting of two shapes; false if incompatible. dtype of out is
 * a's. */
bool ir_broadcast(const ir_type *a, const ir_type *b, ir_type *out);
/* Row-major strides in elements; broadcast strides are 0 where the operand's
 * dim is 1 (or missing) and the result's is not. */
void ir_strides(const ir_type *t, int64_t *strides);
void ir_broadcast_strides(const ir_type *operand, const ir_type *result, int64_t *strides);
/* Row-major element offset of a slice's first element in an operand of
 * type t (starts already checked by the slice shape rule). */
struct ir_ints;
int64_t ir_slice_base(const ir_type *t, const struct ir_ints *starts);

/* ---- diagnostics --------------------------------------------------- */

/* An error as a value: a message, plus the text position for parse errors
 * and for verifier errors about a parsed node (line/col are 1-based, 0 when
 * not about text). */
typedef struct ir_diag {
  char msg[768];
  int line, col;
} ir_diag;

void ir_diag_set(ir_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- attributes ------------------------------------------------------ */

typedef enum {
  IR_ATTR_INT,   /* int64 */
  IR_ATTR_FLOAT, /* double; text accepts an integer literal too */
  IR_ATTR_BOOL,
  IR_ATTR_STR,
  IR_ATTR_DTYPE, /* a dtype, written as a string: to = "f64" */
  IR_ATTR_INTS,  /* list of int64 */
} ir_attr_kind;

typedef struct ir_ints {
  int n;
  int64_t *v; /* arena-owned */
} ir_ints;

typedef struct ir_attr {
  ir_attr_kind kind;
  union {
    int64_t i;
    double f;
    bool b;
    const char *s; /* arena-owned */
    ir_dtype dt;
    ir_ints ints;
  };
} ir_attr;

/* One entry of an op's attribute schema. Every node carries all attributes
 * of its op's schema, in schema order; defaults fill what the text omits. */
typedef struct ir_attr_spec {
  const char *name; /* NULL terminates a schema */
  ir_attr_kind kind;
  ir_attr dflt;      /* for INTS, a default is the empty list */
  bool required;     /* no default: the text must give it */
  bool print_always; /* printed even when equal to the default */
} ir_attr_spec;

/* ---- the op table ---------------------------------------------------- */

typedef enum {
  IR_FUSE_ELEMENTWISE,
  IR_FUSE_BROADCAST,
  IR_FUSE_REDUCE,
  IR_FUSE_OPAQUE,
  IR_FUSE_REGION, /* owns a body sub-graph (node->body); see "regions" below */
} ir_fusion;

typedef enum {
#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER_, GRAD_) IR_OP_##E,
#include "ir/ops.def"
#undef IR_OP
  IR_NUM_OPS
} ir_op;

/* Shape rule: infers the result type from operand types and attributes.
 * On failure writes a message naming the op and the operand types into d
 * (without a source location: callers add where). */
typedef bool (*ir_shape_fn)(ir_op op, int nin, const ir_type *in, const ir_attr *attrs,
                            ir_type *out, ir_diag *d);

typedef struct ir_op_info {
  const char *name;
  int arity; /* -1: variadic (>= 1) */
  const ir_attr_spec *attrs;
  int nattrs;
  ir_fusion fusion;
  ir_shape_fn shape; /* NULL for leaves, whose type is declared */
} ir_op_info;

const ir_op_info *ir_op_get(ir_op op);
bool ir_op_lookup(const char *name, size_t len, ir_op *out);
/* index of attribute `name` in op's schema, or -1 */
int ir_attr_index(ir_op op, const char *name);

/* ---- nodes and graphs --------------------------------------------- */

typedef struct ir_loc {
  const char *file; /* NULL: unknown. arena-owned */
  int line;
  /* Where the node's statement ("%name = op(") starts in the IR text it
   * was parsed from, so errors found after parsing can point there; 0 when
   * the node was not parsed. */
  int text_line, text_col;
} ir_loc;

struct ir_graph;

typedef struct ir_node {
  ir_op op;
  int id; /* index in graph->nodes */
  int nin;
  int *in; /* operand ids, each < id */
  ir_type type;
  ir_attr *attrs;   /* ir_op_get(op)->nattrs entries, schema order */
  const char *name; /* SSA name without '%', or NULL (printed numbered) */
  ir_loc loc;
  void *data;            /* CONST payload: numel * dtype size bytes, 64-byte aligned */
  struct ir_graph *body; /* region nodes (fusion passes); NULL otherwise */
} ir_node;

typedef struct ir_arena ir_arena;

typedef struct ir_graph {
  const char *name; /* without '@' */
  ir_node **nodes;
  int nnodes, cap;
  int *rets;
  int nrets;
  ir_arena *arena;
  void **blobs; /* aligned const payloads, freed with the graph */
  int nblobs, capblobs;
  /* First builder error (sticky); msg[0] == 0 when none. */
  ir_diag error;
  bool has_error;
  /* The memory plan (passes/memory_plan.c), NULL until planned; owned by
   * the graph, copied by ir_graph_clone. Any rewrite after planning must
   * drop it (ir_graph_drop_plan). */
  struct ir_mem_plan *plan;
} ir_graph;

/* Where every intermediate lives: one arena of arena_bytes; offset[id] is
 * node id's byte offset in it (64-byte aligned), or -1 when the value has
 * storage of its own (arguments, parameters, constants, returned values).
 * naive_bytes is what the same values take with one buffer each. */
typedef struct ir_mem_plan {
  int64_t *offset; /* nnodes entries */
  int nnodes;
  int64_t arena_bytes;
  int64_t naive_bytes;
} ir_mem_plan;

void ir_graph_drop_plan(ir_graph *g);

/* Ownership: ir_graph_create returns an owned graph; ir_graph_destroy frees
 * it and everything it owns (nodes, names, attrs, const payloads). */
ir_graph *ir_graph_create(const char *name);
void ir_graph_destroy(ir_graph *g);

/* Arena allocation owned by the graph (zeroed; never NULL unless out of
 * memory). Strings are copied. */
void *ir_alloc(ir_graph *g, size_t size);
const char *ir_strdup(ir_graph *g, const char *s);
const char *ir_strndup(ir_graph *g, const char *s, size_t len);
/* 64-byte aligned zeroed payload owned by the graph. */
void *ir_alloc_data(ir_graph *g, size_t size);

/* Fills attrs (array of ir_op_get(op)->nattrs) with the schema defaults. */
void ir_attrs_default(ir_graph *g, ir_op op, ir_attr *attrs);

/* Appends a node. `attrs` (may be NULL: defaults) is copied; lists and
 * strings are copied into the arena. For leaf ops (shape rule NULL) the
 * type is `declared`; otherwise the shape rule infers it and, when
 * `declared` is non-NULL, it must match. Returns the new id, or -1 with a
 * message in d (the graph is unchanged). Operand ids must be < nnodes. */
int ir_add_node(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs,
                const ir_type *declared, ir_diag *d);
/* Convenience: a new graph argument (op ARG). */
int ir_add_arg(ir_graph *g, const char *name, const ir_type *t, ir_diag *d);
/* A CONST node holding a copy of `data` (numel * dtype size bytes). */
int ir_add_const(ir_graph *g, const ir_type *t, const void *data, ir_diag *d);
void ir_node_set_name(ir_graph *g, int id, const char *name);
void ir_node_set_loc(ir_graph *g, int id, const char *file, int line);
/* Copies all of *src (the DSL location and the text position) onto node id
 * (rewrites and clones keep where a node came from). */
void ir_node_copy_loc(ir_graph *g, int id, const ir_loc *src);
void ir_set_returns(ir_graph *g, int n, const int *ids);

/* ---- regions ------------------------------------------------------------
 * A node of an IR_FUSE_REGION op owns `body`: a graph whose arguments are
 * the node's operands (same count, same types, in order) and whose single
 * return has the node's type; bodies hold no params, steps or assigns. The
 * body says what the node computes (the reference interpreter runs it);
 * the op's attributes say the same for the backend's fused kernel.
 * Text form: the body follows the type as `region(%a: T, ...) { ... }`.
 *
 * fused ops: scores s = q k^T * scale over [..., Tq, Tk]; the optional
 * mask operand is integer lengths (sequence_mask's rule: key j of a row
 * becomes mask_value where j >= len) or a float bias added to s; causal
 * sets key j > query i to mask_value; softmax over the keys; dropout with
 * probability p on the weights, mask stream `key` (rt_dropout_key's rule,
 * element index = flat index into [..., Tq, Tk]); then weights @ v.
 * additive_attention's scores are s[.., i, j] = sum_h w_v[h] tanh(qp[.., i,
 * h] + kp[.., j, h]), masked, softmax, dropout and @ v alike.
 * scale_mask_softmax(x [, mask]) is attention's scale, mask and softmax
 * over x's last axis.
 * attention_lse(q, k, v [, mask]) is attention's output o followed by lse
 * [..., Tq], the log-sum-exp over keys of the masked, scaled scores (what
 * softmax divides by), packed flat as [o, lse]; attention_grad accepts it
 * in place of o and then reuses lse instead of recomputing it.
 * loop(operands...) {shape, dtype}: the attributes are the result type;
 * its body holds only elementwise and broadcast ops (fusion classes
 * IR_FUSE_ELEMENTWISE, IR_FUSE_BROADCAST), except that the returned node
 * may be one sum, mean or reduce_max (ir_loop_reduction). The iteration
 * space is that reduction's input type, else the result type; every
 * operand broadcasts to it (numpy rules; sequence_mask's lengths by its
 * own prefix rule; checked by ir_verify, which sees the body) and the
 * backend computes every body value per element of it, the reduction
 * accumulating them without storing them.
 * embed(table [V, D], ids [..., T] int, pe) {scale, p, key} =
 * dropout(gather(table, ids) * scale + pe): pe (last dim D) broadcasts to
 * the result [..., T, D] by numpy rules; dropout's element index is the
 * flat index into the result (the dropout op's rule, stream `key`).
 * embed_grad(ids, dy [, pe]) {scale, p, key, rows = V} packs dtable's rows
 * then dpe's (only with pe) as [V + numel(pe) / D, D]: dtable is the
 * scatter-add of dy * (keep / (1 - p)) * scale rows at ids, dpe that
 * product without scale, unbroadcast to pe. */

/* gemm(a, b [, c]) {transpose_a, transpose_b, alpha, beta} is alpha *
 * op(a) @ op(b) + beta * c, with matmul's batching and broadcast rules for
 * a and b; c, when present, has exactly the result's type; without c, beta
 * must be 0. As in BLAS, beta = 0 does not read c and alpha = 0 does not
 * read a and b (their NaNs do not propagate). Made by the
 * fold-gemm-epilogue pass after autodiff, so it has no gradient. */

/* Appends a region node owning `body` (taken even on failure). The type is
 * the shape rule's; the body must agree with it (checked by ir_verify).
 * Returns the id or -1 with d set. */
int ir_add_region(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs,
                  ir_graph *body, ir_diag *d);
/* A loop region's final reduction: its body's returned node when that is a
 * sum, mean or reduce_max, else NULL (also for a node that is not a loop). */
const ir_node *ir_loop_reduction(const ir_node *loop);

static inline ir_node *ir_node_at(const ir_graph *g, int id) { return g->nodes[id]; }
/* Owned deep copy of g (nodes, names, locations, payloads, returns, region
 * bodies); NULL with d set if out of memory. */
ir_graph *ir_graph_clone(const ir_graph *g, ir_diag *d);
/* Typed attribute access by schema name; NULL if op has no such attr. */
const ir_attr *ir_node_attr(const ir_node *n, const char *name);
/* Same kind and value; floats by bits (-0.0 differs from 0.0, NaN equals
 * itself), strings and int lists by content. */
bool ir_attr_eq(const ir_attr *a, const ir_attr *b);
/* A 64-bit hash of a string (FNV-1a, its high bits folded into the low
 * ones that power-of-two tables index by), for the name tables of the
 * layers above. */
uint64_t ir_str_hash(const char *s);
/* Arguments in order (nodes with op ARG); returns count, fills ids if
 * non-NULL. */
int ir_graph_args(const ir_graph *g, int *ids);

/* ---- verification, text ----------------------------------------------- */

/* Checks topological order, arity, attribute kinds against the schema,
 * result types against the shape rules, const payloads, returns, and name
 * uniqueness. The message names the node (%name), its op and its location. */
bool ir_verify(const ir_graph *g, ir_diag *d);

typedef struct ir_print_opts {
  bool locs;            /* print trailing "# file.c:LINE" (default true) */
  int64_t elide_consts; /* consts with more elements print as <folded ...>;
                           0 = never elide */
} ir_print_opts;

/* Printing the canonical text form (DESIGN.md). */
void ir_print(const ir_graph *g, FILE *f, const ir_print_opts *opts);
/* Returns a malloc'd string (caller frees). */
char *ir_print_str(const ir_graph *g, const ir_print_opts *opts);

/* Graphviz DOT form: one box per node (name, op, type), an edge per operand. */
void ir_print_dot(const ir_graph *g, FILE *f);

/* Parses one graph. `filename` is used in messages ("file:line:col: ...").
 * Returns an owned graph, or NULL with d set (line/col filled). The result
 * is verified. */
ir_graph *ir_parse(const char *text, size_t len, const char *filename, ir_diag *d);

/* The memory plan (g->plan) as a comment block to print after the graph:
 * arena size against one buffer per value, then `#   %name  +OFFSET  BYTES`
 * per planned value; says so when g has no plan. */
void ir_print_plan(const ir_graph *g, FILE *f);

#endif
