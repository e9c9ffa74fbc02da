/* Runtime support for JIT-compiled code: the execution context and its
 * first-error record, the thread pool behind rt_parallel_for, and the
 * flush-to-zero / denormals-are-zero switch. Idle workers block on a
 * condition variable: OpenBLAS runs its own threads on the same cores. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "runtime/exec.h"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

void rt_exec_init(rt_exec *x, rt_pool *pool, uint64_t seed, uint64_t step) {
  *x = (rt_exec){.seed = seed, .step = step, .pool = pool, .err_node = -1};
}

void rt_exec_error(rt_exec *x, int32_t node, int32_t kind, int64_t pos, int64_t val,
                   int64_t limit) {
  /* err_node is a plain int32_t because generated code and the header
   * share the struct; it has the size and alignment of its atomic twin. */
  int32_t none = -1;
  if (node < 0) node = 0; /* a negative id would read as "no error" */
  if (!atomic_compare_exchange_strong((_Atomic int32_t *)&x->err_node, &none, node)) return;
  /* Only the winner writes these; readers look after the pool joined. */
  x->err_kind = kind;
  x->err_pos = pos;
  x->err_val = val;
  x->err_limit = limit;
}

/* ---- flush-to-zero ---------------------------------------------------- */

#define MXCSR_FTZ (1u << 15)
#define MXCSR_DAZ (1u << 6)

uint32_t rt_fp_fast(void) {
#if defined(__x86_64__)
  uint32_t old = _mm_getcsr();
  _mm_setcsr(old | MXCSR_FTZ | MXCSR_DAZ);
  return old;
#else
  return 0;
#endif
}

void rt_fp_restore(uint32_t state) {
#if defined(__x86_64__)
  _mm_setcsr(state);
#else
  (void)state;
#endif
}

/* ---- thread pool ------------------------------------------------------- */

/* One job at a time. The job is split into nchunks contiguous chunks; the
 * caller always runs chunk 0 and everyone claims the rest under the mutex
 * (at most one chunk per thread, so the lock is taken a handful of times).
 * `gen` counts jobs so that a worker sleeps until a new one is published;
 * `busy` serialises callers from different threads. */
struct rt_pool {
  int n;
  pthread_t *threads;
  int nstarted;
  pthread_mutex_t mu;
  pthread_cond_t work; /* workers: a job was published, or stop */
  pthread_cond_t done; /* caller: all chunks finished, or the pool is free */
  uint64_t gen;
  bool stop, busy;
  rt_kernel_fn fn;
  void **bufs;
  int64_t extent, nchunks, next, ndone;
};

static void chunk_range(const rt_pool *p, int64_t i, int64_t *b, int64_t *e) {
  int64_t q = p->extent / p->nchunks, r = p->extent % p->nchunks;
  *b = i * q + (i < r ? i : r);
  *e = *b + q + (i < r ? 1 : 0);
}

/* Claims and runs chunks until none is left; called and returns with mu
 * held. */
static void run_chunks(rt_pool *p) {
  while (p->next < p->nchunks) {
    int64_t i = p->next++, b, e;
    chunk_range(p, i, &b, &e);
    rt_kernel_fn fn = p->fn;
    void **bufs = p->bufs;
    pthread_mutex_unlock(&p->mu);
    fn(bufs, b, e);
    pthread_mutex_lock(&p->mu);
    if (++p->ndone == p->nchunks) pthread_cond_broadcast(&p->done);
  }
}

static void *worker_main(void *arg) {
  rt_pool *p = arg;
  rt_fp_fast();
  pthread_mutex_lock(&p->mu);
  uint64_t seen = p->gen;
  for (;;) {
    while (!p->stop && p->gen == seen)
      pthread_cond_wait(&p->work, &p->mu);
    if (p->stop) break;
    seen = p->gen;
    run_chunks(p);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

rt_pool *rt_pool_create(int n) {
  if (n < 1) return NULL;
  rt_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = n;
  p->threads = calloc((size_t)n, sizeof *p->threads);
  if (!p->threads) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  for (int i = 0; i < n - 1; i++) {
    if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
      rt_pool_destroy(p);
      return NULL;
    }
    p->nstarted++;
  }
  return p;
}

void rt_pool_destroy(rt_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nstarted; i++)
    pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p);
}

int rt_pool_threads(const rt_pool *p) { return p ? p->n : 1; }

void rt_parallel_for(rt_exec *x, rt_kernel_fn fn, void **bufs, int64_t extent, int64_t grain) {
  if (extent <= 0) return;
  if (grain < 1) grain = 1;
  rt_pool *p = x ? x->pool : NULL;
  if (!p || p->n < 2 || extent < 2 * grain) {
    fn(bufs, 0, extent);
    return;
  }
  int64_t nchunks = extent / grain; /* so every chunk has >= grain items */
  if (nchunks > p->n) nchunks = p->n;
  pthread_mutex_lock(&p->mu);
  while (p->busy)
    pthread_cond_wait(&p->done, &p->mu);
  p->busy = true;
  p->fn = fn;
  p->bufs = bufs;
  p->extent = extent;
  p->nchunks = nchunks;
  p->next = 1; /* chunk 0 is the caller's */
  p->ndone = 0;
  p->gen++;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);

  int64_t b, e;
  chunk_range(p, 0, &b, &e);
  fn(bufs, b, e);

  pthread_mutex_lock(&p->mu);
  p->ndone++;
  run_chunks(p);
  while (p->ndone < p->nchunks)
    pthread_cond_wait(&p->done, &p->mu);
  p->busy = false;
  pthread_cond_broadcast(&p->done); /* wake callers waiting for the pool */
  pthread_mutex_unlock(&p->mu);
}
