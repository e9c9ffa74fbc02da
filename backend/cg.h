/* Codegen: how a graph becomes one LLVM module. Every non-leaf node gets a
 * kernel `void kiln_k<ID>(ptr args, i64 begin, i64 end)` computing items
 * [begin, end) of its iteration space, where args = {out, operand 0, ...,
 * rt_exec*, tag} (kernels never see node slots, so nodes with the same op,
 * attributes and types share one kernel). The exported `void
 * kiln_step(ptr bufs)` walks a constant table of calls in node order,
 * filling the argument block from bufs (bufs[id] is node id's buffer,
 * bufs[g->nnodes] the rt_exec*) and calling each kernel directly or through
 * rt_parallel_for; its size does not grow with the node count.
 * The lowering hooks named by ops.def (LOWER column) live in
 * backend/lower_*.c and use the helpers below. Internal to backend/. */
#ifndef KILN_CG_H
#define KILN_CG_H

#include <llvm-c/Core.h>

#include "backend/jit.h"
#include "ir/ir.h"

typedef struct cg_ctx {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef t_void, t_ptr, t_i1, t_i8, t_i32, t_i64, t_f32, t_f64;
  LLVMTypeRef t_kernel; /* void (ptr, i64, i64) */
  const ir_graph *g;
  bool training;       /* dropout active (else it lowers to a copy) */
  bool check_numerics; /* kiln_step checks float results (lower_numerics.c) */
  /* kernels emitted so far, in node order (filled by cg_kernel_end) */
  struct cg_kernel_rec *kernels;
  int nkernels, capkernels;
} cg_ctx;

/* One kernel being emitted. cg_kernel_begin fills the LLVM values; the
 * lowering sets extent (and may set work, grain, serial) before
 * cg_kernel_end. */
typedef struct cg_kernel {
  const ir_node *n;
  LLVMValueRef fn;
  LLVMValueRef bufs;       /* ptr: the argument block {out, in..., exec} */
  LLVMValueRef begin, end; /* i64: this call's share of [0, extent) */
  LLVMValueRef out;        /* ptr: the node's result buffer */
  LLVMValueRef in[8];      /* ptr: operand buffers (first 8; use cg_operand for more) */
  LLVMValueRef exec;       /* ptr: the rt_exec */
  int64_t extent;          /* iteration space size; 0 = the kernel does nothing */
  int64_t work;            /* elements touched per item (default 1), for the
                              parallel decision */
  int64_t grain;           /* minimum items per chunk (default: chosen from work) */
  bool serial;             /* always one call over [0, extent) on the calling
                              thread (BLAS calls: BLAS has its own threads) */
} cg_kernel;

typedef struct cg_kernel_rec {
  LLVMValueRef fn;
  const ir_node *n; /* whose buffers the call uses */
  int64_t extent, grain;
  bool parallel;
} cg_kernel_rec;

/* Lowering hook: emits the kernel(s) for n via cg_kernel_begin/end; returns
 * false with d set (naming the op) if it cannot. Leaves emit nothing. A
 * kernel may depend on n's op, types and the attributes node_signature in
 * cg_core.c keeps, never on n->id: twins reuse it. Per-node values reach
 * it as data (cg_kernel_tag, cg_operand_offset). */
typedef bool (*cg_lower_fn)(cg_ctx *c, const ir_node *n, ir_diag *d);

#define CG_LOWER_FN(name) bool name(cg_ctx *c, const ir_node *n, ir_diag *d)
#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER, GRAD_) CG_LOWER_FN(LOWER);
#include "ir/ops.def"
#undef IR_OP

/* ---- module -------------------------------------------------------- */

/* Builds the whole module for g into a fresh module in ctx (owned by the
 * caller: LLVMDisposeModule) with o's training and check_numerics (o NULL:
 * both off). NULL with d set on failure. */
LLVMModuleRef cg_lower_graph(LLVMContextRef ctx, const ir_graph *g, const cg_jit_opts *o,
                             ir_diag *d);

/* ---- kernels --------------------------------------------------------- */

/* Creates kiln_k<id>, loads bufs/out/in[]/exec in its entry block and leaves
 * the builder there. */
void cg_kernel_begin(cg_ctx *c, const ir_node *n, cg_kernel *k);
/* Terminates the current block with `ret void` and records the kernel. */
void cg_kernel_end(cg_ctx *c, cg_kernel *k);
/* Operand i's buffer pointer (any i), loaded in the current block. */
LLVMValueRef cg_operand(cg_ctx *c, cg_kernel *k, int i);
/* Bytes kiln_step adds to operand 0's pointer before calling n's kernel:
 * a slice's first element (so slices differing only in starts share a
 * kernel), 0 for every other op. */
int64_t cg_operand_offset(const ir_graph *g, const ir_node *n);
/* The kernel tag: an i64 kiln_step passes to every kernel call (loaded in
 * the current block), cg_node_tag of the calling node. Kernels read per-node
 * values from it instead of embedding them, so twins can share them. */
LLVMValueRef cg_kernel_tag(cg_ctx *c, cg_kernel *k);
/* The dropout key (rt_dropout_key) for dropout, else the node id (error
 * records name it). */
int64_t cg_node_tag(const ir_node *n);
/* A loop region's body in kernel-signature form (backend/lower_loop.c),
 * appended by node_signature: the kernel is the body. snprintf-style:
 * returns the length it needed. */
size_t cg_loop_signature(const ir_node *n, char *buf, size_t len);
/* snprintf at buf + k that keeps counting past len: returns k plus the
 * length the text needed, so a signature can be measured, then written. */
size_t cg_sig_put(char *buf, size_t len, size_t k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An attribute's value in signature form, by cg_sig_put. */
size_t cg_sig_attr(char *buf, size_t len, size_t k, const ir_attr *a);

/* ---- loops ----------------------------------------------------------- */

/* for (i = from; i < to; i++): cg_loop_begin emits the header and leaves the
 * builder in the body, returning i (i64); cg_loop_end closes it and leaves
 * the builder after the loop. Nest freely. Loops with from >= to run zero
 * times. */
typedef struct cg_loop {
  LLVMBasicBlockRef pre, head, body, exit;
  LLVMValueRef i, to;
} cg_loop;
LLVMValueRef cg_loop_begin(cg_ctx *c, cg_loop *l, LLVMValueRef from, LLVMValueRef to);
void cg_loop_end(cg_ctx *c, cg_loop *l);

/* ---- values ---------------------------------------------------------- */

/* Storage type of a dtype: float, double, i32, i64, i8 (bool). */
LLVMTypeRef cg_type(cg_ctx *c, ir_dtype dt);
/* Compute type: as storage, except bool is i1. */
LLVMTypeRef cg_ctype(cg_ctx *c, ir_dtype dt);
LLVMValueRef cg_i64(cg_ctx *c, int64_t v);
LLVMValueRef cg_i32(cg_ctx *c, int32_t v);
/* A private constant global array of n elements of type elt named name
 * (the step's call tables, kernels' descriptors). */
LLVMValueRef cg_const_table(cg_ctx *c, const char *name, LLVMTypeRef elt, LLVMValueRef *v,
                            unsigned n);
/* A compute-type constant of dt with value v (ints truncate, bool v != 0). */
LLVMValueRef cg_const(cg_ctx *c, ir_dtype dt, double v);
/* &base[idx] for elements of dt's storage type. */
LLVMValueRef cg_elem_ptr(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx);
/* base[idx] of dt as a compute value (bool: i8 != 0); store the reverse. */
LLVMValueRef cg_load(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx);
void cg_store(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
/* A call to an LLVM intrinsic overloaded on `type`, e.g. ("llvm.exp", f32). */
LLVMValueRef cg_intrinsic(cg_ctx *c, const char *name, LLVMTypeRef type, LLVMValueRef *args,
                          int nargs);
/* A call to an external C function (declared once per module): libm
 * (erf, erff, ...), cblas_*, and the rt_* functions the JIT registers
 * (see backend/jit.c: rt_parallel_for, rt_exec_error, rt_dropout_uniform). */
LLVMValueRef cg_call(cg_ctx *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int nparams,
                     LLVMValueRef *args);

/* ---- --check-numerics (backend/lower_numerics.c) ------------------------ */

typedef struct cg_numerics {
  LLVMValueRef table; /* kiln_checks: per step call {numel, kind, node id} */
  LLVMTypeRef table_t, entry_t;
  LLVMValueRef f32, f64; /* the scan kernels over blocks of a buffer */
  LLVMValueRef args;     /* kiln_step's alloca: the scan's {x, n, &first} */
  LLVMValueRef first;    /* kiln_step's alloca: i64, the first bad index */
} cg_numerics;
/* Emits the check table for the step's calls (the records with extent > 0,
 * in order; kind 1 f32 / 2 f64 on a node's last call, else 0) and the scan
 * kernels. Call before emitting kiln_step; then cg_numerics_allocas in its
 * entry block. False with d set. */
bool cg_numerics_begin(cg_ctx *c, cg_numerics *nx, ir_diag *d);
void cg_numerics_allocas(cg_ctx *c, cg_numerics *nx);
/* In kiln_step after call i (block: its argument block, slot 0 the
 * result): scans the result when the table says so, and on a NaN or inf
 * records RT_ERR_NONFINITE (node, index) in exec and returns from
 * kiln_step. Leaves the builder where the call loop goes on. */
void cg_numerics_check(cg_ctx *c, const cg_numerics *nx, LLVMValueRef i, LLVMValueRef block,
                       LLVMValueRef exec);

/* ---- math (backend/cg_math.c) ------------------------------------------ */

/* e^x, tanh x and 1 / (1 + e^-x) of a float dt: inline, branch-free,
 * vectorizable code for f32 (within a few ulp, see cg_math.c); f64 uses
 * llvm.exp and libm. */
LLVMValueRef cg_exp(cg_ctx *c, ir_dtype dt, LLVMValueRef x);
LLVMValueRef cg_tanh(cg_ctx *c, ir_dtype dt, LLVMValueRef x);
LLVMValueRef cg_erf(cg_ctx *c, ir_dtype dt, LLVMValueRef x);
LLVMValueRef cg_sigmoid(cg_ctx *c, ir_dtype dt, LLVMValueRef x);

#endif
