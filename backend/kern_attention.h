/* The streaming (flash-style) attention kernels JIT code calls: forward and
 * attention_grad in f32 and f64. backend/lower_attention.c emits a serial
 * kernel that passes a constant descriptor and the node's buffers; the
 * kernels split the heads over kiln's pool with single-threaded BLAS in
 * each (kern_attention.c, run). Registered in backend/jit.c's
 * runtime_symbols. */
#ifndef KILN_KERN_ATTENTION_H
#define KILN_KERN_ATTENTION_H

#include <stdint.h>

#include "ir/ir.h"
#include "runtime/exec.h"

enum { KA_MASK_NONE = 0, KA_MASK_LEN32 = 1, KA_MASK_LEN64 = 2, KA_MASK_BIAS = 3 };

/* Every field is 8 bytes, so lower_attention.c emits it as an i64 array
 * (doubles by their bits). */
typedef struct ka_desc {
  int64_t batch, tq, tk, dh, dv; /* heads (product of the batch dims) and sizes */
  int64_t mask_kind;             /* KA_MASK_* */
  int64_t len_div;               /* lengths index = (head * tq + i) / len_div */
  int64_t causal, dropout;       /* dropout: training and p > 0 */
  int64_t key;                   /* dropout stream; -1: the tag (the node id) */
  double scale, mask_value, p;
  int64_t nb;                     /* batch rank */
  int64_t bdims[IR_MAX_RANK];     /* batch dims */
  int64_t bias_bstr[IR_MAX_RANK]; /* bias element stride per batch dim (0: broadcast) */
  int64_t bias_si, bias_sj;       /* bias strides of the query and key axes */
} ka_desc;

#define KA_DESC_WORDS ((int)(sizeof(ka_desc) / 8))

/* lse: NULL, or where each query row's log-sum-exp goes ([batch, tq]). */
void kiln_attention_f32(const ka_desc *a, float *out, float *lse, const float *q, const float *k,
                        const float *v, const void *mask, rt_exec *x, int64_t tag);
void kiln_attention_f64(const ka_desc *a, double *out, double *lse, const double *q,
                        const double *k, const double *v, const void *mask, rt_exec *x,
                        int64_t tag);
/* out = [dq, dk, dv] flat; o is the forward's output, dy its adjoint; lse
 * the forward's row log-sum-exp, or NULL to recompute it. */
void kiln_attention_grad_f32(const ka_desc *a, float *out, const float *q, const float *k,
                             const float *v, const void *mask, const float *o, const float *lse,
                             const float *dy, rt_exec *x, int64_t tag);
void kiln_attention_grad_f64(const ka_desc *a, double *out, const double *q, const double *k,
                             const double *v, const void *mask, const double *o, const double *lse,
                             const double *dy, rt_exec *x, int64_t tag);

#endif
