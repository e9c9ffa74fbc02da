/* The strided-map emitter: one kernel computing out[idx] = f(args at affine
 * offsets of idx) with static strides. Elementwise ops, broadcasting,
 * transpose, slice, broadcast_to, iota and sequence_mask are all this shape;
 * one emitter collapses contiguous dims and shapes the loops so that LLVM's
 * vectorizer sees a unit-stride innermost loop. Internal to backend/. */
#ifndef KILN_LOWER_MAP_H
#define KILN_LOWER_MAP_H

#include "backend/cg.h"

#define CG_MAP_MAX_ARGS 8
/* Elements per item when the innermost dim is split so that a flat range
 * still gives the parallel-for many items. */
#define CG_MAP_BLOCK 4096
/* cg_map_arg.src for an argument that is not loaded: the callback receives
 * its affine offset (an i64) instead, e.g. the index along one axis. */
#define CG_MAP_INDEX (-1)

typedef struct cg_map_arg {
  int src;                      /* operand number of the node, or CG_MAP_INDEX */
  ir_dtype dtype;               /* the operand's dtype */
  bool raw;                     /* load the storage type as is (bool stays i8): data movement */
  int64_t offset;               /* element offset of output index 0 */
  int64_t strides[IR_MAX_RANK]; /* element stride per output dim */
} cg_map_arg;

/* Produces the value stored at the output element: from the arguments'
 * values v[] (loaded, or offsets for CG_MAP_INDEX) and the flat output
 * index. Returns the compute type of the output dtype, or its storage type
 * when raw_out. */
typedef LLVMValueRef (*cg_map_value_fn)(cg_ctx *c, void *ud, LLVMValueRef *v, LLVMValueRef flat);

typedef struct cg_map {
  int rank; /* the iteration space = the output, row-major and contiguous */
  int64_t dims[IR_MAX_RANK];
  ir_dtype dtype; /* the output's dtype */
  bool raw_out;   /* the value is already the storage type */
  int nargs;
  cg_map_arg args[CG_MAP_MAX_ARGS];
  cg_map_value_fn value;
  /* Optional: runs once in the kernel's entry block (hoisted loads). */
  void (*setup)(cg_ctx *c, cg_kernel *k, void *ud);
  void *ud;
} cg_map;

/* A map over n's result type with no arguments yet. */
void cg_map_init(cg_map *m, const ir_node *n, cg_map_value_fn value, void *ud);
/* Appends an argument reading operand src of type t broadcast to the map's
 * shape (numpy rules: stride 0 on broadcast dims); returns it for edits. */
cg_map_arg *cg_map_add_bcast(cg_map *m, int src, const ir_type *t, bool raw);
/* Appends an argument with explicit offset and strides. */
cg_map_arg *cg_map_add(cg_map *m, int src, ir_dtype dt, bool raw, int64_t offset,
                       const int64_t *strides);

/* Emits the whole kernel for n (cg_kernel_begin .. cg_kernel_end). */
void cg_map_emit(cg_ctx *c, const ir_node *n, const cg_map *m);

/* Loads base[idx] as the storage type (raw) or compute type of dt. */
LLVMValueRef cg_map_load(cg_ctx *c, ir_dtype dt, bool raw, LLVMValueRef base, LLVMValueRef idx);
/* A value callback returning its first argument: copies (raw in and out). */
LLVMValueRef cg_map_copy_value(cg_ctx *c, void *ud, LLVMValueRef *v, LLVMValueRef flat);
/* Emits n as a copy of operand 0 read at offset + strides (raw); NULL
 * strides: operand 0 has n's shape, row-major. */
void cg_map_copy(cg_ctx *c, const ir_node *n, int64_t offset, const int64_t *strides);

#endif
