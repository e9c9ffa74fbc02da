/* Fused embedding kernels (kern_embed.h). The forward is one parallel pass
 * over the output rows: gather, scale, add pe, dropout, store, with no
 * intermediate tensor. The backward scatters into the table with each
 * thread owning a strip of KE_COLS columns over every row, in row order:
 * no two threads touch one element and the sum order is fixed, so the
 * result is deterministic without float atomics.
 * Dropout draws the stream rt_dropout_uniform defines (philox.h) at the
 * output's flat index, as the dropout op does, but one Philox block per
 * four consecutive elements instead of one per element: the mask is the
 * same bits, at a quarter of the cost that otherwise dominates. */
#include "backend/kern_embed.h"

#include <string.h>

#include "runtime/philox.h"

#define KE_COLS 128 /* one backward strip: eight cache lines of f32 */

typedef struct ke_job {
  const ke_desc *a;
  void *out;
  const void *table, *ids, *src, *pe; /* src: dy in the backward */
  rt_exec *x;
  int64_t tag;
  uint32_t key;
  double keep; /* 1 / (1 - p), 0 when p >= 1 */
} ke_job;

static int64_t load_id(const ke_desc *a, const void *ids, int64_t r) {
  return a->ids64 ? ((const int64_t *)ids)[r] : ((const int32_t *)ids)[r];
}

/* Walks result rows in order keeping pe's element offset of the current
 * row (pe's last dim is the row's, contiguous: ir/shape_embed.c). */
typedef struct ke_rows {
  int64_t idx[IR_MAX_RANK], off;
} ke_rows;

static void rows_at(const ke_desc *a, int64_t r, ke_rows *w) {
  w->off = 0;
  for (int k = (int)a->rank - 2; k >= 0; k--) {
    int64_t dk = a->dims[k] > 0 ? a->dims[k] : 1; /* empty results walk no rows */
    w->idx[k] = r % dk;
    w->off += w->idx[k] * a->pe_str[k];
    r /= dk;
  }
}

static void rows_next(const ke_desc *a, ke_rows *w) {
  for (int k = (int)a->rank - 2; k >= 0; k--) {
    w->off += a->pe_str[k];
    if (++w->idx[k] < a->dims[k]) return;
    w->off -= a->pe_str[k] * a->dims[k];
    w->idx[k] = 0;
  }
}

/* rt_dropout_uniform's stream with the last Philox block cached. */
typedef struct ke_rng {
  uint64_t blk;
  uint32_t w[4];
} ke_rng;

/* The dropout factors of elements [e, e + n): 0 or 1 / (1 - p). */
static void factors(const ke_job *j, ke_rng *s, uint64_t e, int64_t n, double *f) {
  const uint32_t key[2] = {(uint32_t)j->x->seed, (uint32_t)(j->x->seed >> 32)};
  double p = j->a->p;
  for (int64_t c = 0; c < n; c++, e++) {
    if (e >> 2 != s->blk) {
      s->blk = e >> 2;
      const uint32_t ctr[4] = {(uint32_t)(e >> 2), (uint32_t)(e >> 34), j->key,
                               (uint32_t)j->x->step};
      rt_philox4x32(ctr, key, s->w);
    }
    f[c] = p < 1 && rt_u32_to_unit(s->w[e & 3]) >= p ? j->keep : 0.0;
  }
}

/* Multi-versioned and vectorized where the compiler supports it (-O2's
 * "very cheap" vectorizer skips loops that need an epilogue). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define KE_VECTOR __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#else
#define KE_VECTOR
#endif

/* The row loops: o = row * scale + pe; o *= f (in double, rounded once);
 * dr += g * scale and dp += g. */
#define KE_LOOPS(T, SFX)                                                                           \
  KE_VECTOR static void lin_##SFX(T *restrict o, const T *restrict row, const T *restrict pr,      \
                                  T scale, int64_t n) {                                            \
    for (int64_t c = 0; c < n; c++)                                                                \
      o[c] = row[c] * scale + pr[c];                                                               \
  }                                                                                                \
  KE_VECTOR static void drop_##SFX(T *restrict o, const T *restrict x, const double *restrict f,   \
                                   int64_t n) {                                                    \
    for (int64_t c = 0; c < n; c++)                                                                \
      o[c] = (T)((double)x[c] * f[c]);                                                             \
  }                                                                                                \
  KE_VECTOR static void drop_in_##SFX(T *restrict o, const double *restrict f, int64_t n) {        \
    for (int64_t c = 0; c < n; c++)                                                                \
      o[c] = (T)((double)o[c] * f[c]);                                                             \
  }                                                                                                \
  KE_VECTOR static void acc_##SFX(T *restrict dr, T *restrict dp, const T *restrict g, T scale,    \
                                  int64_t n) {                                                     \
    if (dr)                                                                                        \
      for (int64_t c = 0; c < n; c++)                                                              \
        dr[c] += g[c] * scale;                                                                     \
    if (dp)                                                                                        \
      for (int64_t c = 0; c < n; c++)                                                              \
        dp[c] += g[c];                                                                             \
  }

KE_LOOPS(float, f32)
KE_LOOPS(double, f64)

/* Rounding follows the reference: scale and the pe add in T, the dropout
 * factor applied in double and rounded once. */
#define KE_DEFINE(T, SFX)                                                                          \
  static void fwd_##SFX(void **bufs, int64_t begin, int64_t end) {                                 \
    const ke_job *j = bufs[0];                                                                     \
    const ke_desc *a = j->a;                                                                       \
    const T *tab = j->table, *pe = j->pe;                                                          \
    T scale = (T)a->scale;                                                                         \
    int64_t d = a->d;                                                                              \
    ke_rows w;                                                                                     \
    ke_rng s = {.blk = UINT64_MAX};                                                                \
    double f[KE_COLS];                                                                             \
    rows_at(a, begin, &w);                                                                         \
    for (int64_t r = begin; r < end; r++, rows_next(a, &w)) {                                      \
      int64_t ix = load_id(a, j->ids, r);                                                          \
      T *restrict o = (T *)j->out + r * d;                                                         \
      if (ix < 0 || ix >= a->v) {                                                                  \
        rt_exec_error(j->x, (int32_t)j->tag, RT_ERR_INDEX, r, ix, a->v);                           \
        memset(o, 0, (size_t)d * sizeof(T));                                                       \
        continue;                                                                                  \
      }                                                                                            \
      const T *restrict row = tab + ix * d, *restrict pr = pe + w.off;                             \
      lin_##SFX(o, row, pr, scale, d);                                                             \
      if (!a->dropout) continue;                                                                   \
      for (int64_t c0 = 0; c0 < d; c0 += KE_COLS) {                                                \
        int64_t m = d - c0 < KE_COLS ? d - c0 : KE_COLS;                                           \
        factors(j, &s, (uint64_t)(r * d + c0), m, f);                                              \
        drop_in_##SFX(o + c0, f, m);                                                               \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* items: strips of KE_COLS columns */                                                           \
  static void bwd_##SFX(void **bufs, int64_t begin, int64_t end) {                                 \
    const ke_job *j = bufs[0];                                                                     \
    const ke_desc *a = j->a;                                                                       \
    T *dt = j->out, *dpe = a->has_pe ? (T *)j->out + a->v * a->d : NULL;                           \
    T scale = (T)a->scale;                                                                         \
    int64_t d = a->d;                                                                              \
    ke_rows w;                                                                                     \
    ke_rng s = {.blk = UINT64_MAX};                                                                \
    double f[KE_COLS];                                                                             \
    T gb[KE_COLS];                                                                                 \
    for (int64_t b = begin; b < end; b++) {                                                        \
      int64_t c0 = b * KE_COLS, m = d - c0 < KE_COLS ? d - c0 : KE_COLS;                           \
      rows_at(a, 0, &w);                                                                           \
      for (int64_t r = 0; r < a->n; r++, rows_next(a, &w)) {                                       \
        int64_t ix = load_id(a, j->ids, r);                                                        \
        bool bad = ix < 0 || ix >= a->v;                                                           \
        if (bad && c0 == 0) rt_exec_error(j->x, (int32_t)j->tag, RT_ERR_INDEX, r, ix, a->v);       \
        const T *restrict g = (const T *)j->src + r * d + c0;                                      \
        if (a->dropout) {                                                                          \
          factors(j, &s, (uint64_t)(r * d + c0), m, f);                                            \
          drop_##SFX(gb, g, f, m);                                                                 \
          g = gb;                                                                                  \
        }                                                                                          \
        acc_##SFX(bad ? NULL : dt + ix * d + c0, dpe ? dpe + w.off + c0 : NULL, g, scale, m);      \
      }                                                                                            \
    }                                                                                              \
  }

KE_DEFINE(float, f32)
KE_DEFINE(double, f64)

static void zero(void **bufs, int64_t begin, int64_t end) {
  const ke_job *j = bufs[0];
  size_t es = j->a->f64 ? 8 : 4;
  memset((char *)j->out + begin * es, 0, (size_t)(end - begin) * es);
}

static ke_job job(const ke_desc *a, void *out, rt_exec *x, int64_t tag) {
  ke_job j = {.a = a, .out = out, .x = x, .tag = tag};
  j.key = a->key >= 0 ? (uint32_t)a->key : (uint32_t)tag;
  j.keep = a->p < 1 ? 1.0 / (1.0 - a->p) : 0.0;
  return j;
}

void kiln_embed_fwd(const ke_desc *a, void *out, const void *table, const void *ids, const void *pe,
                    rt_exec *x, int64_t tag) {
  ke_job j = job(a, out, x, tag);
  j.table = table, j.ids = ids, j.pe = pe;
  void *bufs[1] = {&j};
  int64_t grain = a->d > 0 ? 1 + 4096 / a->d : 1;
  rt_parallel_for(x, a->f64 ? fwd_f64 : fwd_f32, bufs, a->n, grain);
}

void kiln_embed_bwd(const ke_desc *a, void *out, const void *ids, const void *dy, rt_exec *x,
                    int64_t tag) {
  ke_job j = job(a, out, x, tag);
  j.ids = ids, j.src = dy;
  void *bufs[1] = {&j};
  int64_t total = a->v * a->d + (a->has_pe ? a->npe : 0);
  rt_parallel_for(x, zero, bufs, total, 1 << 16);
  int64_t strips = (a->d + KE_COLS - 1) / KE_COLS;
  if (a->d > 0) rt_parallel_for(x, a->f64 ? bwd_f64 : bwd_f32, bufs, strips, 1);
}
