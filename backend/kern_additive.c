/* The driver of fused additive attention: per query row, the scores
 * sum_h w_v[h] tanh(qp[h] + kp[j, h]) (the JIT-compiled row loops of
 * kern_additive.h; the [.., Tq, Tk, H] features never exist beyond one
 * row's [Tk, H] scratch), the mask, the softmax, dropout (the Philox
 * stream of runtime/philox.h, element index = flat index into
 * [.., Tq, Tk]) and the weighted sum of v; the gradient recomputes one
 * row's tanh once and reuses it. Work is split over the rt_exec's pool. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kern_additive.h"
#include "runtime/exec.h"
#include "runtime/philox.h"

typedef struct kad {
  rt_exec *x;
  const kad_rows *f;
  char *out;
  const char *qp, *kp, *wv, *v, *len, *dout;
  int64_t nb, tq, tk, h, dv, inner, lenkind, nblk;
  size_t es; /* element size */
  bool drop;
  double mask_value, p, scale;
  uint32_t key;
  char *part; /* backward: nblk rows of partial dwv */
} kad;

static void setup(kad *a, void *exec, void *out, const void *qp, const void *kp, const void *wv,
                  const void *v, const void *len, const int64_t *geom, const double *flt,
                  const kad_rows *rows, int64_t key) {
  *a = (kad){.x = exec, .f = rows, .out = out, .qp = qp, .kp = kp, .wv = wv, .v = v, .len = len};
  a->nb = geom[0], a->tq = geom[1], a->tk = geom[2], a->h = geom[3], a->dv = geom[4];
  a->inner = geom[5], a->lenkind = geom[6], a->es = geom[7] ? sizeof(double) : sizeof(float);
  a->mask_value = flt[0], a->p = flt[1], a->scale = flt[1] < 1 ? 1.0 / (1.0 - flt[1]) : 0.0;
  a->drop = geom[8] != 0 && flt[1] > 0, a->key = (uint32_t)key;
}

/* Valid keys of query row `row`. */
static int64_t limit(const kad *a, int64_t row) {
  int64_t i = row / a->inner, l = a->tk;
  if (a->lenkind == 1) l = ((const int32_t *)a->len)[i];
  if (a->lenkind == 2) l = ((const int64_t *)a->len)[i];
  return l < 0 ? 0 : l > a->tk ? a->tk : l;
}

/* Softmax weights pr[] of query row `row` and keep[] (the dropout
 * factor); t receives the row's tanh features of the unmasked keys. */
static int64_t weights(const kad *a, int64_t row, double *pr, double *keep, void *t) {
  int64_t b = row / a->tq, tk = a->tk, lim = limit(a, row);
  size_t es = a->es;
  a->f->scores(a->qp + es * (size_t)(row * a->h), a->kp + es * (size_t)(b * tk * a->h), a->wv, pr,
               t, lim, a->h);
  double mx = -INFINITY;
  for (int64_t j = 0; j < tk; j++) {
    if (j >= lim) pr[j] = a->mask_value;
    if (pr[j] > mx) mx = pr[j];
  }
  double sum = 0;
  for (int64_t j = 0; j < tk; j++)
    sum += pr[j] = exp(pr[j] - mx);
  for (int64_t j = 0; j < tk; j++) {
    pr[j] /= sum;
    keep[j] = 1;
    if (a->drop) {
      float u = rt_dropout_uniform(a->x->seed, a->x->step, a->key, (uint64_t)(row * tk + j));
      keep[j] = a->p < 1 && u >= a->p ? a->scale : 0;
    }
  }
  return lim;
}

enum { STACK_BYTES = 1 << 15 };

/* Per-task scratch: 4 rows of tk doubles, then tk * h elements. */
typedef struct scratch {
  double buf[STACK_BYTES / sizeof(double)];
  double *heap;
} scratch;
static double *scratch_get(scratch *s, const kad *a) {
  size_t n = sizeof(double) * (size_t)(4 * a->tk) + a->es * (size_t)(a->tk * a->h);
  s->heap = NULL;
  if (n <= sizeof s->buf) return s->buf;
  return s->heap = malloc(n);
}

static void fwd_task(void **bufs, int64_t begin, int64_t end) {
  const kad *a = (const kad *)bufs;
  int64_t tk = a->tk, dv = a->dv;
  size_t es = a->es;
  scratch sc;
  double *pr = scratch_get(&sc, a);
  if (!pr) return;
  double *keep = pr + tk;
  void *t = keep + 3 * tk;
  for (int64_t row = begin; row < end; row++) {
    int64_t b = row / a->tq;
    weights(a, row, pr, keep, t);
    char *o = a->out + es * (size_t)(row * dv);
    memset(o, 0, es * (size_t)dv);
    for (int64_t j = 0; j < tk; j++)
      if (pr[j] * keep[j] != 0)
        a->f->axpy(o, a->v + es * (size_t)((b * tk + j) * dv), pr[j] * keep[j], dv);
  }
  free(sc.heap);
}

void kiln_additive_fwd(void *exec, void *out, const void *qp, const void *kp, const void *wv,
                       const void *v, const void *len, const int64_t *geom, const double *flt,
                       const kad_rows *rows, int64_t key) {
  kad a;
  setup(&a, exec, out, qp, kp, wv, v, len, geom, flt, rows, key);
  int64_t nrows = a.nb * a.tq, work = a.tk * (a.h * 8 + a.dv);
  rt_parallel_for(a.x, fwd_task, (void **)&a, nrows, work > 0 ? 1 + 32768 / work : nrows);
}

/* Blocks of batch rows: each owns its rows' dqp, dkp, dv and one row of
 * partial dwv, so no two tasks write the same element and dwv is summed in
 * block order whatever the thread count. */
static void bwd_task(void **bufs, int64_t begin, int64_t end) {
  const kad *a = (const kad *)bufs;
  int64_t tq = a->tq, tk = a->tk, h = a->h, dv = a->dv, nb = a->nb;
  size_t es = a->es;
  char *dqp = a->out, *dkp = dqp + es * (size_t)(nb * tq * h);
  char *dvv = dkp + es * (size_t)(nb * tk * h) + es * (size_t)h;
  scratch sc;
  double *pr = scratch_get(&sc, a);
  if (!pr) return;
  double *keep = pr + tk, *dp = keep + tk, *ds = dp + tk;
  void *t = ds + tk;
  for (int64_t blk = begin; blk < end; blk++) {
    char *dw = a->part + es * (size_t)(blk * h);
    memset(dw, 0, es * (size_t)h);
    int64_t b0 = blk * nb / a->nblk, b1 = (blk + 1) * nb / a->nblk;
    memset(dqp + es * (size_t)(b0 * tq * h), 0, es * (size_t)((b1 - b0) * tq * h));
    memset(dkp + es * (size_t)(b0 * tk * h), 0, es * (size_t)((b1 - b0) * tk * h));
    memset(dvv + es * (size_t)(b0 * tk * dv), 0, es * (size_t)((b1 - b0) * tk * dv));
    for (int64_t b = b0; b < b1; b++)
      for (int64_t i = 0; i < tq; i++) {
        int64_t row = b * tq + i, lim = weights(a, row, pr, keep, t);
        const char *go = a->dout + es * (size_t)(row * dv);
        double dot = 0;
        for (int64_t j = 0; j < tk; j++) {
          size_t vj = es * (size_t)((b * tk + j) * dv);
          dp[j] = a->f->dot(go, a->v + vj, dv) * keep[j];
          if (pr[j] * keep[j] != 0) a->f->axpy(dvv + vj, go, pr[j] * keep[j], dv);
          dot += pr[j] * dp[j];
        }
        for (int64_t j = 0; j < lim; j++)
          ds[j] = pr[j] * (dp[j] - dot);
        a->f->grads(t, a->wv, ds, dqp + es * (size_t)(row * h), dkp + es * (size_t)(b * tk * h), dw,
                    lim, h);
      }
  }
  free(sc.heap);
}

void kiln_additive_bwd(void *exec, void *out, const void *qp, const void *kp, const void *wv,
                       const void *v, const void *len, const void *dout, const int64_t *geom,
                       const double *flt, const kad_rows *rows, int64_t key) {
  kad a;
  setup(&a, exec, out, qp, kp, wv, v, len, geom, flt, rows, key);
  a.dout = dout;
  a.nblk = a.nb < 16 ? a.nb : 16;
  double stack[STACK_BYTES / sizeof(double)];
  size_t pbytes = a.es * (size_t)(a.nblk * a.h);
  a.part = pbytes <= sizeof stack ? (char *)stack : malloc(pbytes);
  char *dwv = a.out + a.es * (size_t)(a.nb * (a.tq + a.tk) * a.h);
  if (!a.part) return;
  rt_parallel_for(a.x, bwd_task, (void **)&a, a.nblk, 1);
  for (int64_t e = 0; e < a.h; e++) {
    double s = 0;
    for (int64_t k = 0; k < a.nblk; k++)
      s += a.es == sizeof(double) ? ((const double *)a.part)[k * a.h + e]
                                  : ((const float *)a.part)[k * a.h + e];
    if (a.es == sizeof(double))
      ((double *)dwv)[e] = s;
    else
      ((float *)dwv)[e] = (float)s;
  }
  if (a.part != (char *)stack) free(a.part);
}
