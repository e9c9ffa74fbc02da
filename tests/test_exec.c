/* The runtime's execution support: rt_parallel_for covers every index once
 * for many (extent, grain, threads) with the caller taking part, the first
 * of many concurrent errors is kept, FTZ/DAZ flush denormals, and pools
 * come and go without leaks (run under ASan in the sanitizer build). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/exec.h"

/* bufs[0]: per-index hit counters; bufs[1]: the caller's thread id;
 * bufs[2]: count of calls made on the caller; bufs[3]: the grain; bufs[4]:
 * count of chunks smaller than the grain. */
static void count_kernel(void **bufs, int64_t begin, int64_t end) {
  atomic_int *hits = bufs[0];
  const pthread_t *caller = bufs[1];
  atomic_int *on_caller = bufs[2];
  const int64_t *grain = bufs[3];
  atomic_int *small = bufs[4];
  for (int64_t i = begin; i < end; i++)
    atomic_fetch_add(&hits[i], 1);
  if (pthread_equal(pthread_self(), *caller)) atomic_fetch_add(on_caller, 1);
  if (end - begin < *grain) atomic_fetch_add(small, 1);
}

static void check_cover(rt_pool *pool, int64_t extent, int64_t grain) {
  rt_exec x;
  rt_exec_init(&x, pool, 0, 0);
  atomic_int *hits = calloc((size_t)(extent > 0 ? extent : 1), sizeof *hits);
  cr_assert_not_null(hits);
  pthread_t self = pthread_self();
  atomic_int on_caller = 0, small = 0;
  void *bufs[] = {hits, &self, &on_caller, &grain, &small};
  rt_parallel_for(&x, count_kernel, bufs, extent, grain);
  int threads = rt_pool_threads(pool);
  for (int64_t i = 0; i < extent; i++)
    cr_assert_eq(atomic_load(&hits[i]), 1, "extent %lld grain %lld threads %d: index %lld hit %d",
                 (long long)extent, (long long)grain, threads, (long long)i, atomic_load(&hits[i]));
  if (extent > 0) {
    cr_assert_geq(atomic_load(&on_caller), 1, "extent %lld grain %lld threads %d: caller idle",
                  (long long)extent, (long long)grain, threads);
    /* A lone call over a small extent may be shorter than the grain. */
    if (extent >= 2 * grain)
      cr_assert_eq(atomic_load(&small), 0, "extent %lld grain %lld threads %d: chunk < grain",
                   (long long)extent, (long long)grain, threads);
  }
  cr_assert_eq(x.err_node, -1);
  free(hits);
}

Test(exec, parallel_for_covers_every_index_once) {
  static const int64_t extents[] = {0, 1, 2, 3, 5, 7, 13, 64, 97, 1000, 4099, 65537};
  static const int64_t grains[] = {0, 1, 2, 3, 16, 1000, 100000};
  static const int threads[] = {1, 2, 3, 4, 7};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    rt_pool *pool = rt_pool_create(threads[t]);
    cr_assert_not_null(pool);
    cr_assert_eq(rt_pool_threads(pool), threads[t]);
    for (size_t e = 0; e < sizeof extents / sizeof extents[0]; e++)
      for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
        check_cover(pool, extents[e], grains[g]);
    rt_pool_destroy(pool);
  }
  for (size_t e = 0; e < sizeof extents / sizeof extents[0]; e++)
    check_cover(NULL, extents[e], 1);
}

/* Adds up the indices of its range; back-to-back jobs of varying extent
 * exercise the hand-over between generations of jobs. */
static void slow_kernel(void **bufs, int64_t begin, int64_t end) {
  atomic_llong *sum = bufs[0];
  long long s = 0;
  for (int64_t i = begin; i < end; i++)
    s += i;
  atomic_fetch_add(sum, s);
}

Test(exec, many_back_to_back_jobs) {
  rt_pool *pool = rt_pool_create(4);
  cr_assert_not_null(pool);
  rt_exec x;
  rt_exec_init(&x, pool, 1, 2);
  for (int rep = 0; rep < 2000; rep++) {
    atomic_llong sum = 0;
    void *bufs[] = {&sum};
    int64_t extent = 1 + rep % 257;
    rt_parallel_for(&x, slow_kernel, bufs, extent, 1);
    cr_assert_eq(atomic_load(&sum), (long long)extent * (extent - 1) / 2, "rep %d", rep);
  }
  rt_pool_destroy(pool);
}

/* Callers on two threads share one pool: jobs are serialised, not mixed. */
static void *submit_many(void *arg) {
  rt_pool *pool = arg;
  rt_exec x;
  rt_exec_init(&x, pool, 0, 0);
  for (int rep = 0; rep < 500; rep++) {
    atomic_llong sum = 0;
    void *bufs[] = {&sum};
    rt_parallel_for(&x, slow_kernel, bufs, 1000, 10);
    if (atomic_load(&sum) != 1000LL * 999 / 2) return (void *)1;
  }
  return NULL;
}

Test(exec, concurrent_callers_share_a_pool) {
  rt_pool *pool = rt_pool_create(3);
  cr_assert_not_null(pool);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, submit_many, pool), 0);
  for (int i = 0; i < 2; i++) {
    void *r;
    pthread_join(t[i], &r);
    cr_expect_null(r, "caller %d saw a wrong sum", i);
  }
  rt_pool_destroy(pool);
}

Test(exec, pool_rejects_bad_sizes) {
  cr_expect_null(rt_pool_create(0));
  cr_expect_null(rt_pool_create(-3));
  cr_expect_eq(rt_pool_threads(NULL), 1);
}

Test(exec, init_sets_fields) {
  rt_exec x;
  memset(&x, 0x5a, sizeof x);
  rt_exec_init(&x, NULL, 42, 7);
  cr_expect_eq(x.seed, 42);
  cr_expect_eq(x.step, 7);
  cr_expect_null(x.pool);
  cr_expect_eq(x.err_node, -1);
  cr_expect_eq(x.err_kind, RT_ERR_NONE);
}

Test(exec, first_error_wins_sequential) {
  rt_exec x;
  rt_exec_init(&x, NULL, 0, 0);
  rt_exec_error(&x, 5, RT_ERR_INDEX, 3, 99, 10);
  rt_exec_error(&x, 6, RT_ERR_LABEL, 4, -1, 7);
  cr_expect_eq(x.err_node, 5);
  cr_expect_eq(x.err_kind, RT_ERR_INDEX);
  cr_expect_eq(x.err_pos, 3);
  cr_expect_eq(x.err_val, 99);
  cr_expect_eq(x.err_limit, 10);
}

/* Every index reports an error whose fields are all derived from the index:
 * whichever wins, the record must be one consistent report. */
static void error_kernel(void **bufs, int64_t begin, int64_t end) {
  rt_exec *x = bufs[0];
  for (int64_t i = begin; i < end; i++)
    rt_exec_error(x, (int32_t)(i % 1000), RT_ERR_INDEX, i, 2 * i, 3 * i);
}

Test(exec, first_of_concurrent_errors_wins) {
  rt_pool *pool = rt_pool_create(4);
  cr_assert_not_null(pool);
  for (int rep = 0; rep < 200; rep++) {
    rt_exec x;
    rt_exec_init(&x, pool, 0, 0);
    void *bufs[] = {&x};
    rt_parallel_for(&x, error_kernel, bufs, 4000, 1);
    cr_assert_geq(x.err_node, 0);
    cr_assert_eq(x.err_kind, RT_ERR_INDEX);
    cr_assert_eq(x.err_node, x.err_pos % 1000, "rep %d: node %d pos %lld", rep, x.err_node,
                 (long long)x.err_pos);
    cr_assert_eq(x.err_val, 2 * x.err_pos);
    cr_assert_eq(x.err_limit, 3 * x.err_pos);
  }
  rt_pool_destroy(pool);
}

#if defined(__x86_64__)
Test(exec, fp_fast_flushes_denormals) {
  volatile float tiny = 1e-39f; /* a denormal */
  volatile float half = 0.5f;
  uint32_t old = rt_fp_fast();
  volatile float r = tiny * half;
  cr_expect_eq(r, 0.0f, "FTZ/DAZ on: got %g", (double)r);
  rt_fp_restore(old);
  r = tiny * half;
  cr_expect_neq(r, 0.0f, "after restore the product must be denormal, not 0");
}

/* Workers set FTZ/DAZ themselves; a kernel records what it computed. */
static void denormal_kernel(void **bufs, int64_t begin, int64_t end) {
  float *out = bufs[0];
  const pthread_t *caller = bufs[1];
  volatile float tiny = 1e-39f, half = 0.5f;
  bool on_caller = pthread_equal(pthread_self(), *caller);
  /* Give the workers time to wake and claim chunks of their own. */
  if (on_caller) nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
  for (int64_t i = begin; i < end; i++)
    out[i] = on_caller ? -1.0f : tiny * half;
}

Test(exec, workers_run_with_ftz) {
  rt_pool *pool = rt_pool_create(4);
  cr_assert_not_null(pool);
  rt_exec x;
  rt_exec_init(&x, pool, 0, 0);
  float out[4000];
  pthread_t self = pthread_self();
  void *bufs[] = {out, &self};
  int worker_items = 0;
  for (int rep = 0; rep < 50 && worker_items == 0; rep++) {
    rt_parallel_for(&x, denormal_kernel, bufs, 4000, 1);
    for (int i = 0; i < 4000; i++) {
      if (out[i] == -1.0f) continue;
      worker_items++;
      cr_assert_eq(out[i], 0.0f, "worker computed %g", (double)out[i]);
    }
  }
  cr_expect_gt(worker_items, 0, "no worker ever ran a chunk");
  rt_pool_destroy(pool);
}
#endif

Test(exec, pool_create_destroy_repeatedly) {
  for (int rep = 0; rep < 200; rep++) {
    rt_pool *pool = rt_pool_create(1 + rep % 5);
    cr_assert_not_null(pool);
    if (rep % 2) {
      atomic_llong sum = 0;
      void *bufs[] = {&sum};
      rt_exec x;
      rt_exec_init(&x, pool, 0, 0);
      rt_parallel_for(&x, slow_kernel, bufs, 100, 1);
      cr_assert_eq(atomic_load(&sum), 100LL * 99 / 2);
    }
    rt_pool_destroy(pool);
  }
  rt_pool_destroy(NULL);
}
