/* The fused additive-attention kernels the JIT calls (backend/lower_additive.c
 * emits one serial call per node; backend/jit.c registers the symbols).
 * They split the work over the rt_exec's pool themselves. Internal to
 * backend/. */
#ifndef KILN_KERN_ADDITIVE_H
#define KILN_KERN_ADDITIVE_H

#include <stdint.h>

/* The row loops, JIT-compiled for the host (backend/lower_additive.c), in
 * the operands' dtype; scores and ds are doubles:
 * scores(q, k, w, s, t, lim, h): t[j, :] = tanh(q + k[j, :]), s[j] = w . t[j, :]
 * grads(t, w, ds, dq, dk, dw, lim, h): dw += ds[j] t[j, :],
 *     dq, dk[j, :] += ds[j] w (1 - t[j, :]^2)          (both for j < lim)
 * axpy(y, x, a, n): y += a x;  dot(x, y, n): x . y */
typedef struct kad_rows {
  void (*scores)(const void *q, const void *k, const void *w, double *s, void *t, int64_t lim,
                 int64_t h);
  void (*grads)(const void *t, const void *w, const double *ds, void *dq, void *dk, void *dw,
                int64_t lim, int64_t h);
  void (*axpy)(void *y, const void *x, double a, int64_t n);
  double (*dot)(const void *x, const void *y, int64_t n);
} kad_rows;

/* geom: {nb, tq, tk, h, dv, inner, lenkind (0 none, 1 i32, 2 i64), f64,
 *        training}; flt: {mask_value, p}; key: the dropout stream. len (and, forward, dout)
 * may be NULL. The gradient writes flat [dqp, dkp, dwv, dv] into out. */
void kiln_additive_fwd(void *exec, void *out, const void *qp, const void *kp, const void *wv,
                       const void *v, const void *len, const int64_t *geom, const double *flt,
                       const kad_rows *rows, int64_t key);
void kiln_additive_bwd(void *exec, void *out, const void *qp, const void *kp, const void *wv,
                       const void *v, const void *len, const void *dout, const int64_t *geom,
                       const double *flt, const kad_rows *rows, int64_t key);

#endif
