/* What JIT-compiled code sees of the runtime: the execution context passed
 * as the last slot of kiln_step's buffer array, the thread pool's
 * parallel-for, the first-error record kernels write instead of failing,
 * and flush-to-zero. Generated code reads `seed` and `step` at fixed
 * offsets (checked below), so their place in rt_exec is part of the ABI. */
#ifndef KILN_RT_EXEC_H
#define KILN_RT_EXEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_pool rt_pool;

/* A kernel processes items [begin, end) of its iteration space. */
typedef void (*rt_kernel_fn)(void **bufs, int64_t begin, int64_t end);

typedef struct rt_exec {
  uint64_t seed; /* offset 0: dropout key */
  uint64_t step; /* offset 8: dropout counter */
  rt_pool *pool; /* NULL: run everything on the calling thread */
  /* First kernel error (a data-dependent fault such as a gather index out
   * of range); node < 0 when none. Written once, by whoever comes first. */
  int32_t err_node;
  int32_t err_kind; /* RT_ERR_* */
  int64_t err_pos, err_val, err_limit;
} rt_exec;

_Static_assert(offsetof(rt_exec, seed) == 0 && offsetof(rt_exec, step) == 8,
               "JIT code reads seed and step at offsets 0 and 8");

enum {
  RT_ERR_NONE = 0,
  RT_ERR_INDEX = 1,     /* gather: index value err_val at err_pos outside [0, err_limit) */
  RT_ERR_LABEL = 2,     /* softmax_cross_entropy: label err_val at err_pos outside [0, err_limit) */
  RT_ERR_NONFINITE = 3, /* --check-numerics: the node's result is NaN or inf at err_pos */
};

void rt_exec_init(rt_exec *x, rt_pool *pool, uint64_t seed, uint64_t step);
/* Records the first error; later ones are ignored. Thread-safe. */
void rt_exec_error(rt_exec *x, int32_t node, int32_t kind, int64_t pos, int64_t val, int64_t limit);

/* Thread pool: n threads in all (the caller counts as one; n - 1 workers).
 * Idle workers sleep on a condition variable; they never spin. Every worker
 * sets flush-to-zero and denormals-are-zero. NULL if n < 1 or out of
 * memory. rt_pool_destroy joins the workers. */
rt_pool *rt_pool_create(int n);
void rt_pool_destroy(rt_pool *p);
int rt_pool_threads(const rt_pool *p);

/* Runs fn over [0, extent) split into contiguous chunks of at least
 * `grain` items across the pool, the calling thread included; returns when
 * all are done. With x->pool NULL or a small extent, one call fn(bufs, 0,
 * extent) on the caller. Never called from inside a pool task (kiln does
 * not nest parallel regions). */
void rt_parallel_for(rt_exec *x, rt_kernel_fn fn, void **bufs, int64_t extent, int64_t grain);

/* Sets FTZ and DAZ on the calling thread and returns the previous control
 * state, for rt_fp_restore. Denormal softmax outputs otherwise slow BLAS. */
uint32_t rt_fp_fast(void);
void rt_fp_restore(uint32_t state);

#endif
