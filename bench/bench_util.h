/* Timing helpers shared by the benchmarks: a monotonic clock and the median
 * of a set of runs (each benchmark reports medians so that drift on a shared
 * machine hits kiln and its baseline alike). */
#ifndef KILN_BENCH_UTIL_H
#define KILN_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* kiln and its OpenBLAS baselines are timed in blocks of BENCH_BLOCK runs,
 * each after bench_pause(): OpenBLAS's threaded workers spin (sched_yield)
 * for a while after a threaded call, and back-to-back runs would hand the
 * baseline's spinning workers to kiln's pool. */
#define BENCH_BLOCK 5
static inline void bench_pause(void) {
  struct timespec ts = {0, 250000000};
  nanosleep(&ts, NULL);
}

/* Sorts v in place. */
static inline double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
