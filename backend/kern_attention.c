/* Flash-style attention kernels (kern_attention.h): per head, keys are
 * visited in tiles of KA_TILE columns; only a [Tq, KA_TILE] block of scores
 * ever exists. The forward keeps a running max and sum per query row and
 * rescales the output accumulator (online softmax); the backward recomputes
 * the row statistics the same way, then per tile forms P, dV, dP, dS, dQ,
 * dK (FlashAttention-2). Masks make each row's valid keys a prefix
 * [0, lim), so tiles no row reaches are skipped whole and a tile's GEMMs
 * cover only the rows that reach it. All products go through cblas. Heads
 * are split over kiln's pool, each thread calling single-threaded BLAS
 * (see run); with fewer heads than threads, BLAS threads itself and the
 * row phases run on the pool between its calls.
 * The file includes itself once per dtype (KA_T). */
#ifndef KA_T
#include "backend/kern_attention.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/philox.h"
#include "runtime/tensor.h"

/* Key tile width. Causal rows skip the tiles past them, so narrower tiles
 * skip more (T=512: 56% of the full work at 64, 62% at 128); 64 was
 * faster than 128 in alternating bench_attention runs, 32 no clearer. */
#define KA_TILE 64

/* Row i of head b: its valid keys are [0, lim); dead rows (every key
 * masked) see constant scores, so softmax is uniform over all tk keys. */
static void row_limits(const ka_desc *a, const void *mask, int64_t b, int64_t *lim, char *dead) {
  for (int64_t i = 0; i < a->tq; i++) {
    int64_t L = a->tk;
    if (a->mask_kind == KA_MASK_LEN32 || a->mask_kind == KA_MASK_LEN64) {
      int64_t li = (b * a->tq + i) / a->len_div;
      int64_t len =
          a->mask_kind == KA_MASK_LEN32 ? ((const int32_t *)mask)[li] : ((const int64_t *)mask)[li];
      if (len < L) L = len;
    }
    if (a->causal && i + 1 < L) L = i + 1;
    dead[i] = L <= 0;
    lim[i] = L <= 0 ? a->tk : L;
  }
}

/* The bias element offset of head b's [0, 0]. */
static int64_t bias_base(const ka_desc *a, int64_t b) {
  int64_t off = 0;
  for (int d = (int)a->nb - 1; d >= 0; d--) {
    off += (b % a->bdims[d]) * a->bias_bstr[d];
    b /= a->bdims[d];
  }
  return off;
}

static uint32_t ka_key(const ka_desc *a, int64_t tag) {
  return a->key >= 0 ? (uint32_t)a->key : (uint32_t)tag;
}

/* Rows [r0, r1) that reach key j0 (lim > j0), and the widest reach into
 * the tile; false when no row reaches it. */
static bool tile_rows(const ka_desc *a, const int64_t *lim, int64_t j0, int64_t tb, int64_t *r0,
                      int64_t *r1, int64_t *cmax) {
  int64_t lo = -1, hi = -1, c = 0;
  for (int64_t i = 0; i < a->tq; i++)
    if (lim[i] > j0) {
      if (lo < 0) lo = i;
      hi = i;
      int64_t ci = lim[i] - j0 < tb ? lim[i] - j0 : tb;
      if (ci > c) c = ci;
    }
  if (lo < 0) return false;
  *r0 = lo, *r1 = hi + 1, *cmax = c;
  return true;
}

/* e^x for f32 without a libm call, so the row loops vectorize: Cody-Waite
 * reduction to r in [-ln2/2, ln2/2], a degree-6 Taylor polynomial (relative
 * error ~2e-7), and 2^n through the exponent bits. Below -87 it is 0 (the
 * reference's expf gives a denormal there, which FTZ flushes anyway). */
static inline float ka_expf(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float t = x * 1.44269504f;
  float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
  float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return x <= -87.0f ? 0.0f : p * scale;
}

/* Multi-versioned where the compiler supports it, so the row loops use the
 * host's vector width without -march flags, and vectorized. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
/* -O2's "very cheap" vectorizer skips loops that need an epilogue */
#define KA_VECTOR __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#else
#define KA_VECTOR
#endif

#define KA_T float
#define KA_SUF(x) x##_f32
#define KA_GEMM cblas_sgemm
#define KA_EXP ka_expf
#include "backend/kern_attention.c"
#undef KA_T
#undef KA_SUF
#undef KA_GEMM
#undef KA_EXP

#define KA_T double
#define KA_SUF(x) x##_f64
#define KA_GEMM cblas_dgemm
#define KA_EXP exp
#include "backend/kern_attention.c"

#else /* one dtype's kernels */

/* What a row phase needs; passed to rt_parallel_for as its buffer array. */
typedef struct KA_SUF(ka_rows) {
  const ka_desc *a;
  KA_T *s, *dp;        /* [tq, KA_TILE] tiles */
  unsigned char *keep; /* [tq, KA_TILE] dropout decisions (backward) */
  KA_T *m, *l, *dsum;  /* per row: running max, sum, rowsum(dO * O) */
  KA_T *acc;           /* forward: the head's output accumulator */
  const KA_T *bias;    /* head's bias at [0, 0], or NULL */
  int64_t *lim;
  char *dead;
  int64_t head, r0, j0, cmax;
  uint32_t key;
  rt_exec *x;
  int phase;  /* the row phase to run, see rows_run */
  bool inner; /* row phases on the pool (heads run one at a time) */
} KA_SUF(ka_rows);

/* Scores of row i in the tile, finished: bias added, dead rows constant.
 * Returns the valid count c (entries [c, cmax) are left alone). */
static int64_t KA_SUF(finish_scores)(const KA_SUF(ka_rows) * r, int64_t i, KA_T *s) {
  const ka_desc *a = r->a;
  int64_t c = r->lim[i] - r->j0;
  if (c > r->cmax) c = r->cmax;
  if (r->dead[i]) {
    for (int64_t j = 0; j < c; j++)
      s[j] = 0;
  } else if (r->bias) {
    const KA_T *bi = r->bias + i * a->bias_si + r->j0 * a->bias_sj;
    for (int64_t j = 0; j < c; j++)
      s[j] += bi[j * a->bias_sj];
  }
  return c;
}

static KA_T KA_SUF(drop_scale)(const ka_desc *a) {
  return a->p < 1 ? (KA_T)(1.0 / (1.0 - a->p)) : 0;
}

static bool KA_SUF(kept)(const KA_SUF(ka_rows) * r, int64_t i, int64_t j) {
  const ka_desc *a = r->a;
  uint64_t e = (uint64_t)((r->head * a->tq + i) * a->tk + r->j0 + j);
  float u = rt_dropout_uniform(r->x->seed, r->x->step, r->key, e);
  return a->p < 1 && u >= (float)a->p;
}

/* Max and sum with eight partial results, so they vectorize without
 * reassociation flags (the order of a float sum is fixed here). */
static inline KA_T KA_SUF(row_max)(const KA_T *s, int64_t n, KA_T init) {
  KA_T mx[8] = {init, init, init, init, init, init, init, init};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int t = 0; t < 8; t++)
      mx[t] = s[j + t] > mx[t] ? s[j + t] : mx[t];
  for (; j < n; j++)
    mx[0] = s[j] > mx[0] ? s[j] : mx[0];
  for (int t = 1; t < 8; t++)
    mx[0] = mx[t] > mx[0] ? mx[t] : mx[0];
  return mx[0];
}

static inline KA_T KA_SUF(row_sum)(const KA_T *s, int64_t n) {
  KA_T acc[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int t = 0; t < 8; t++)
      acc[t] += s[j + t];
  for (; j < n; j++)
    acc[0] += s[j];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Phase 0 (forward): online softmax update of rows, s becomes the dropped
 * weights (unnormalised), acc rows are rescaled. Phase 1 (statistics):
 * the same update of m and l only. */
KA_VECTOR static void KA_SUF(rows_online)(const KA_SUF(ka_rows) * r, int64_t i, bool fwd) {
  const ka_desc *a = r->a;
  KA_T *s = r->s + i * KA_TILE;
  if (r->lim[i] <= r->j0) {
    if (fwd) memset(s, 0, (size_t)r->cmax * sizeof(KA_T));
    return;
  }
  int64_t c = KA_SUF(finish_scores)(r, i, s);
  KA_T mx = KA_SUF(row_max)(s, c, r->m[i]);
  KA_T alpha = KA_EXP(r->m[i] - mx);
  for (int64_t j = 0; j < c; j++)
    s[j] = KA_EXP(s[j] - mx);
  r->l[i] = r->l[i] * alpha + KA_SUF(row_sum)(s, c);
  r->m[i] = mx;
  if (!fwd) return;
  if (a->dropout) {
    KA_T ks = KA_SUF(drop_scale)(a);
    for (int64_t j = 0; j < c; j++)
      s[j] = KA_SUF(kept)(r, i, j) ? s[j] * ks : 0;
  }
  for (int64_t j = c; j < r->cmax; j++)
    s[j] = 0;
  if (alpha != 1) {
    KA_T *o = r->acc + i * a->dv;
    for (int64_t t = 0; t < a->dv; t++)
      o[t] *= alpha;
  }
}

/* Phase 2 (backward, before dV): s becomes P, dp the dropped P (what dV
 * needs), keep records the dropout decisions. */
KA_VECTOR static void KA_SUF(rows_probs)(const KA_SUF(ka_rows) * r, int64_t i) {
  const ka_desc *a = r->a;
  KA_T *s = r->s + i * KA_TILE, *pd = r->dp + i * KA_TILE;
  unsigned char *keep = r->keep + i * KA_TILE;
  int64_t c = r->lim[i] <= r->j0 ? 0 : KA_SUF(finish_scores)(r, i, s);
  KA_T m = r->m[i], inv = r->l[i] > 0 ? 1 / r->l[i] : 0, ks = KA_SUF(drop_scale)(a);
  for (int64_t j = 0; j < c; j++)
    s[j] = KA_EXP(s[j] - m) * inv;
  if (a->dropout) {
    for (int64_t j = 0; j < c; j++) {
      keep[j] = KA_SUF(kept)(r, i, j);
      pd[j] = keep[j] ? s[j] * ks : 0;
    }
  } else {
    memcpy(pd, s, (size_t)c * sizeof(KA_T));
    memset(keep, 1, (size_t)c);
  }
  for (int64_t j = c; j < r->cmax; j++)
    s[j] = pd[j] = 0, keep[j] = 0;
}

/* Phase 3 (backward, after dP = dO V^T): s becomes dS * scale. */
KA_VECTOR static void KA_SUF(rows_dscores)(const KA_SUF(ka_rows) * r, int64_t i) {
  const ka_desc *a = r->a;
  KA_T *s = r->s + i * KA_TILE, *dp = r->dp + i * KA_TILE;
  const unsigned char *keep = r->keep + i * KA_TILE;
  if (r->dead[i] || r->lim[i] <= r->j0) {
    memset(s, 0, (size_t)r->cmax * sizeof(KA_T));
    return;
  }
  KA_T ks = a->dropout ? KA_SUF(drop_scale)(a) : 1, d = r->dsum[i], sc = (KA_T)a->scale;
  for (int64_t j = 0; j < r->cmax; j++) {
    KA_T g = keep[j] ? dp[j] * ks : 0;
    s[j] = s[j] * (g - d) * sc;
  }
}

static void KA_SUF(rows_run)(void **bufs, int64_t begin, int64_t end) {
  const KA_SUF(ka_rows) *r = (const KA_SUF(ka_rows) *)(void *)bufs;
  for (int64_t t = begin; t < end; t++) {
    int64_t i = r->r0 + t;
    switch (r->phase) {
    case 0: KA_SUF(rows_online)(r, i, true); break;
    case 1: KA_SUF(rows_online)(r, i, false); break;
    case 2: KA_SUF(rows_probs)(r, i); break;
    default: KA_SUF(rows_dscores)(r, i); break;
    }
  }
}

static void KA_SUF(rows)(KA_SUF(ka_rows) * r, int phase, int64_t r1) {
  r->phase = phase;
  int64_t n = r1 - r->r0;
  if (!r->inner) {
    KA_SUF(rows_run)((void **)(void *)r, 0, n);
    return;
  }
  int64_t grain = 4096 / (r->cmax + 1) + 1;
  rt_parallel_for(r->x, KA_SUF(rows_run), (void **)(void *)r, n, grain);
}

static void KA_SUF(gemm)(bool ta, bool tb, int64_t m, int64_t n, int64_t k, KA_T alpha,
                         const KA_T *A, int64_t lda, const KA_T *B, int64_t ldb, KA_T beta, KA_T *C,
                         int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++)
        C[i * ldc + j] = beta == 0 ? 0 : C[i * ldc + j] * beta;
    return;
  }
  KA_GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
          (int)n, (int)k, alpha, A, (int)(lda > 1 ? lda : 1), B, (int)(ldb > 1 ? ldb : 1), beta, C,
          (int)(ldc > 1 ? ldc : 1));
}

/* Scratch for one call: tiles and per-row vectors, O(tq * KA_TILE). */
typedef struct KA_SUF(ka_scratch) {
  void *block;
  KA_T *s, *dp, *m, *l, *dsum;
  unsigned char *keep;
  int64_t *lim;
  char *dead;
} KA_SUF(ka_scratch);

static bool KA_SUF(scratch)(const ka_desc *a, bool grad, KA_SUF(ka_scratch) * sc) {
  size_t tile = (size_t)a->tq * KA_TILE, tq = (size_t)a->tq + 1;
  size_t ts = sizeof(KA_T);
  size_t bytes = tile * ts * (grad ? 2 : 1) + tq * ts * 3 + tq * sizeof(int64_t) +
                 (grad ? tile : 0) + tq + 64 * 8;
  char *p = rt_alloc(bytes);
  if (!p) return false;
  sc->block = p;
#define KA_TAKE(ptr, n, type)                                                                      \
  ptr = (type *)(void *)p;                                                                         \
  p += (((n) * sizeof(type)) + 63) / 64 * 64
  KA_TAKE(sc->s, tile, KA_T);
  sc->dp = NULL, sc->keep = NULL;
  if (grad) {
    KA_TAKE(sc->dp, tile, KA_T);
    KA_TAKE(sc->keep, tile, unsigned char);
  }
  KA_TAKE(sc->m, tq, KA_T);
  KA_TAKE(sc->l, tq, KA_T);
  KA_TAKE(sc->dsum, tq, KA_T);
  KA_TAKE(sc->lim, tq, int64_t);
  KA_TAKE(sc->dead, tq, char);
#undef KA_TAKE
  return true;
}

static void KA_SUF(fill_nan)(KA_T *out, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    out[i] = (KA_T)NAN;
}

/* The row statistics (m, l) of head b, visiting every tile's scores. */
static void KA_SUF(statistics)(KA_SUF(ka_rows) * r, const KA_T *Q, const KA_T *K) {
  const ka_desc *a = r->a;
  for (int64_t i = 0; i < a->tq; i++)
    r->m[i] = -INFINITY, r->l[i] = 0;
  for (int64_t j0 = 0; j0 < a->tk; j0 += KA_TILE) {
    int64_t tb = a->tk - j0 < KA_TILE ? a->tk - j0 : KA_TILE, r1;
    if (!tile_rows(a, r->lim, j0, tb, &r->r0, &r1, &r->cmax)) continue;
    r->j0 = j0;
    KA_SUF(gemm)
    (false, true, r1 - r->r0, r->cmax, a->dh, (KA_T)a->scale, Q + r->r0 * a->dh, a->dh,
     K + j0 * a->dh, a->dh, 0, r->s + r->r0 * KA_TILE, KA_TILE);
    KA_SUF(rows)(r, 1, r1);
  }
}

/* One call's operands, shared by the per-head tasks. */
typedef struct KA_SUF(ka_call) {
  const ka_desc *a;
  KA_T *out;
  const KA_T *q, *k, *v, *o, *dy;
  KA_T *lse_out;      /* forward: where each row's log-sum-exp goes, or NULL */
  const KA_T *lse_in; /* backward: the forward's, or NULL to recompute them */
  const void *mask;
  rt_exec *x;
  uint32_t key;
  bool grad, inner;
} KA_SUF(ka_call);

/* Head b's forward: O = softmax(mask(Q K^T * scale)) V, key tile by tile. */
static void KA_SUF(fwd_head)(const KA_SUF(ka_call) * cl, KA_SUF(ka_rows) * r, int64_t b) {
  const ka_desc *a = cl->a;
  const KA_T *Q = cl->q + b * a->tq * a->dh, *K = cl->k + b * a->tk * a->dh,
             *V = cl->v + b * a->tk * a->dv;
  KA_T *O = cl->out + b * a->tq * a->dv;
  row_limits(a, cl->mask, b, r->lim, r->dead);
  r->head = b;
  r->acc = O;
  r->bias = a->mask_kind == KA_MASK_BIAS ? (const KA_T *)cl->mask + bias_base(a, b) : NULL;
  memset(O, 0, (size_t)(a->tq * a->dv) * sizeof(KA_T));
  for (int64_t i = 0; i < a->tq; i++)
    r->m[i] = -INFINITY, r->l[i] = 0;
  for (int64_t j0 = 0; j0 < a->tk; j0 += KA_TILE) {
    int64_t tb = a->tk - j0 < KA_TILE ? a->tk - j0 : KA_TILE, r1;
    if (!tile_rows(a, r->lim, j0, tb, &r->r0, &r1, &r->cmax)) continue;
    r->j0 = j0;
    KA_SUF(gemm)
    (false, true, r1 - r->r0, r->cmax, a->dh, (KA_T)a->scale, Q + r->r0 * a->dh, a->dh,
     K + j0 * a->dh, a->dh, 0, r->s + r->r0 * KA_TILE, KA_TILE);
    KA_SUF(rows)(r, 0, r1);
    KA_SUF(gemm)
    (false, false, r1 - r->r0, a->dv, r->cmax, 1, r->s + r->r0 * KA_TILE, KA_TILE, V + j0 * a->dv,
     a->dv, 1, O + r->r0 * a->dv, a->dv);
  }
  for (int64_t i = 0; i < a->tq; i++) {
    KA_T inv = r->l[i] > 0 ? 1 / r->l[i] : 0;
    for (int64_t t = 0; t < a->dv; t++)
      O[i * a->dv + t] *= inv;
  }
  if (!cl->lse_out) return;
  /* A dead row's scores are all mask_value (the kernel works with 0). */
  for (int64_t i = 0; i < a->tq; i++)
    cl->lse_out[b * a->tq + i] = r->l[i] <= 0 ? (KA_T)-INFINITY
                                 : r->dead[i] ? (KA_T)(a->mask_value + log((double)a->tk))
                                              : r->m[i] + (KA_T)log(r->l[i]);
}

/* Head b's backward (FlashAttention-2): the row statistics (the
 * forward's when attention_lse saved them), then per key tile P,
 * dV += Pd^T dO, dP = dO V^T, dS, dQ += dS K, dK += dS^T Q. */
static void KA_SUF(bwd_head)(const KA_SUF(ka_call) * cl, KA_SUF(ka_rows) * r, int64_t b) {
  const ka_desc *a = cl->a;
  int64_t nq = a->tq * a->dh, nk = a->tk * a->dh, nv = a->tk * a->dv, no = a->tq * a->dv;
  const KA_T *Q = cl->q + b * nq, *K = cl->k + b * nk, *V = cl->v + b * nv, *O = cl->o + b * no,
             *dO = cl->dy + b * no;
  KA_T *dQ = cl->out + b * nq, *dK = cl->out + a->batch * nq + b * nk,
       *dV = cl->out + a->batch * (nq + nk) + b * nv;
  memset(dQ, 0, (size_t)nq * sizeof(KA_T));
  memset(dK, 0, (size_t)nk * sizeof(KA_T));
  memset(dV, 0, (size_t)nv * sizeof(KA_T));
  row_limits(a, cl->mask, b, r->lim, r->dead);
  r->head = b;
  r->bias = a->mask_kind == KA_MASK_BIAS ? (const KA_T *)cl->mask + bias_base(a, b) : NULL;
  for (int64_t i = 0; i < a->tq; i++) {
    KA_T s = 0;
    for (int64_t t = 0; t < a->dv; t++)
      s += dO[i * a->dv + t] * O[i * a->dv + t];
    r->dsum[i] = s;
  }
  if (cl->lse_in) {
    for (int64_t i = 0; i < a->tq; i++) {
      r->m[i] = r->dead[i] ? 0 : cl->lse_in[b * a->tq + i];
      r->l[i] = r->dead[i] ? (KA_T)a->tk : 1;
    }
  } else {
    KA_SUF(statistics)(r, Q, K);
  }
  for (int64_t j0 = 0; j0 < a->tk; j0 += KA_TILE) {
    int64_t tb = a->tk - j0 < KA_TILE ? a->tk - j0 : KA_TILE, r1;
    if (!tile_rows(a, r->lim, j0, tb, &r->r0, &r1, &r->cmax)) continue;
    r->j0 = j0;
    int64_t rows = r1 - r->r0, c = r->cmax;
    KA_T *S = r->s + r->r0 * KA_TILE, *DP = r->dp + r->r0 * KA_TILE;
    KA_SUF(gemm)
    (false, true, rows, c, a->dh, (KA_T)a->scale, Q + r->r0 * a->dh, a->dh, K + j0 * a->dh, a->dh,
     0, S, KA_TILE);
    KA_SUF(rows)(r, 2, r1);
    KA_SUF(gemm)
    (true, false, c, a->dv, rows, 1, DP, KA_TILE, dO + r->r0 * a->dv, a->dv, 1, dV + j0 * a->dv,
     a->dv);
    KA_SUF(gemm)
    (false, true, rows, c, a->dv, 1, dO + r->r0 * a->dv, a->dv, V + j0 * a->dv, a->dv, 0, DP,
     KA_TILE);
    KA_SUF(rows)(r, 3, r1);
    KA_SUF(gemm)
    (false, false, rows, a->dh, c, 1, S, KA_TILE, K + j0 * a->dh, a->dh, 1, dQ + r->r0 * a->dh,
     a->dh);
    KA_SUF(gemm)
    (true, false, c, a->dh, rows, 1, S, KA_TILE, Q + r->r0 * a->dh, a->dh, 1, dK + j0 * a->dh,
     a->dh);
  }
}

/* Heads [b0, b1) with scratch of their own: one pool task's share, or the
 * whole call when heads run one after another. */
static void KA_SUF(heads)(void **bufs, int64_t b0, int64_t b1) {
  const KA_SUF(ka_call) *cl = (const KA_SUF(ka_call) *)(void *)bufs;
  const ka_desc *a = cl->a;
  KA_SUF(ka_scratch) sc;
  if (!KA_SUF(scratch)(a, cl->grad, &sc)) {
    /* No error kind for out-of-memory in rt_exec: NaN makes it visible. */
    int64_t nq = a->tq * a->dh, nk = a->tk * a->dh, nv = a->tk * a->dv, no = a->tq * a->dv;
    for (int64_t b = b0; b < b1; b++) {
      if (!cl->grad) {
        KA_SUF(fill_nan)(cl->out + b * no, no);
        continue;
      }
      KA_SUF(fill_nan)(cl->out + b * nq, nq);
      KA_SUF(fill_nan)(cl->out + a->batch * nq + b * nk, nk);
      KA_SUF(fill_nan)(cl->out + a->batch * (nq + nk) + b * nv, nv);
    }
    return;
  }
  KA_SUF(ka_rows)
  r = {.a = a,
       .s = sc.s,
       .dp = sc.dp,
       .keep = sc.keep,
       .m = sc.m,
       .l = sc.l,
       .dsum = sc.dsum,
       .lim = sc.lim,
       .dead = sc.dead,
       .key = cl->key,
       .x = cl->x,
       .inner = cl->inner};
  for (int64_t b = b0; b < b1; b++) {
    if (cl->grad)
      KA_SUF(bwd_head)(cl, &r, b);
    else
      KA_SUF(fwd_head)(cl, &r, b);
  }
  rt_free(sc.block);
}

/* With at least as many heads as threads, each thread takes whole heads
 * and calls BLAS single-threaded: a head's tile GEMMs (at most Tq x KA_TILE
 * x d) are too small for OpenBLAS to split well (bench_attention, heads in
 * turn with 2 BLAS threads vs split by heads, alternating runs: 330/255,
 * 301/265, 343/315 ms). OpenBLAS is on one thread during every run
 * (program_jit.c), so no BLAS thread runs inside kiln's parallel region.
 * With fewer heads than threads the heads run in turn and the row phases
 * use the pool. */
static void KA_SUF(run)(KA_SUF(ka_call) * cl) {
  int threads = cl->x ? rt_pool_threads(cl->x->pool) : 1;
  cl->inner = threads < 2 || cl->a->batch < threads;
  if (cl->inner) {
    KA_SUF(heads)((void **)(void *)cl, 0, cl->a->batch);
    return;
  }
  rt_parallel_for(cl->x, KA_SUF(heads), (void **)(void *)cl, cl->a->batch, 1);
}

void KA_SUF(kiln_attention)(const ka_desc *a, KA_T *out, KA_T *lse, const KA_T *q, const KA_T *k,
                            const KA_T *v, const void *mask, rt_exec *x, int64_t tag) {
  KA_SUF(ka_call)
  cl = {.a = a,
        .out = out,
        .lse_out = lse,
        .q = q,
        .k = k,
        .v = v,
        .mask = mask,
        .x = x,
        .key = ka_key(a, tag)};
  KA_SUF(run)(&cl);
}

void KA_SUF(kiln_attention_grad)(const ka_desc *a, KA_T *out, const KA_T *q, const KA_T *k,
                                 const KA_T *v, const void *mask, const KA_T *o, const KA_T *lse,
                                 const KA_T *dy, rt_exec *x, int64_t tag) {
  KA_SUF(ka_call)
  cl = {.a = a,
        .out = out,
        .q = q,
        .k = k,
        .v = v,
        .o = o,
        .lse_in = lse,
        .dy = dy,
        .mask = mask,
        .x = x,
        .key = ka_key(a, tag),
        .grad = true};
  KA_SUF(run)(&cl);
}

#endif
