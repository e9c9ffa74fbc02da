/* The inside of a kl_program, shared by the public API (program.c) and the
 * JIT executor (program_jit.c). Internal to backend/. */
#ifndef KILN_CG_PROGRAM_H
#define KILN_CG_PROGRAM_H

#include "backend/jit.h"
#include "backend/kiln_run.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "runtime/tensor.h"

struct kl_tensor {
  rt_tensor *t;
};

/* The JIT's state: one buffer per node (bufs[nnodes] is the rt_exec);
 * intermediates of a planned graph share one arena. */
typedef struct cg_exec_state {
  cg_jit *jit;
  rt_pool *pool;
  rt_exec exec;
  void **bufs;
  void **owned;  /* per node: the buffer this program allocated (intermediates) */
  size_t *bytes; /* per node: payload bytes */
  int *alias;    /* per node, during a run: the output it is written into, or -1 */
  /* With guard bytes on: per parameter, the guarded allocation its storage
   * lives in (assign kernels write there), else NULL. */
  void **param_base;
  /* The memory plan's arena (ir_graph.plan): planned nodes' buffers point
   * into it. arena_base is the allocation (GUARD bytes before the arena
   * when guard bytes are on), NULL without a plan. */
  unsigned char *arena_base, *arena;
  size_t arena_bytes;
  int nnodes, nparams, threads;
} cg_exec_state;

struct kl_program {
  ir_graph *g;
  kl_compile_opts opts;
  kl_compile_stats stats;
  uint64_t runs; /* the step counter: one per run (dropout masks, step nodes) */
  int nparams;
  const char **param_names; /* borrowed from g */
  int *pindex;              /* param_names' positions by ir_str_hash, -1 empty */
  size_t picap;             /* power of two, over twice the graph's nodes */
  rt_tensor **params;
  cg_exec_state *jit; /* NULL on the reference backend */
  ir_diag err;
};

/* Builds the JIT state for p (after its parameters exist). */
bool cg_exec_create(kl_program *p, ir_diag *d);
void cg_exec_destroy(cg_exec_state *s);
/* One run: inputs checked by the caller; outputs are caller tensors of the
 * right types. On failure p->err holds the message. */
bool cg_exec_run(kl_program *p, kl_tensor *const *inputs, kl_tensor *const *outputs);
/* Index of the parameter called name, or -1. */
int cg_program_param(const kl_program *p, const char *name);

#endif
