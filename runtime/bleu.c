/* BLEU (see bleu.h). Sentences are short, so clipped n-gram counts are
 * found by direct comparison (quadratic in the length) instead of hash
 * tables; text is first mapped to per-pair integer ids. */
#include "runtime/bleu.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool same_gram(const int32_t *a, const int32_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

static size_t count_gram(const int32_t *seq, size_t len, const int32_t *gram, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i + n <= len; i++)
    c += same_gram(seq + i, gram, n);
  return c;
}

/* Sum over distinct pred n-grams of min(count in pred, count in label):
 * the number of matches d2l's decrementing dictionary produces. */
static size_t clipped_matches(const int32_t *pred, size_t lp, const int32_t *label, size_t ll,
                              size_t n) {
  size_t m = 0;
  for (size_t i = 0; i + n <= lp; i++) {
    if (count_gram(pred, i + n - 1, pred + i, n) > 0) continue; /* counted at first occurrence */
    size_t cp = count_gram(pred + i, lp - i, pred + i, n);
    size_t cl = count_gram(label, ll, pred + i, n);
    m += cp < cl ? cp : cl;
  }
  return m;
}

double rt_bleu(const int32_t *pred, size_t len_pred, const int32_t *label, size_t len_label,
               int k) {
  if (k < 1 || (!pred && len_pred) || (!label && len_label)) return NAN;
  if (len_pred < (size_t)k || len_pred == 0) return 0.0;
  double score = exp(fmin(0.0, 1.0 - (double)len_label / (double)len_pred));
  for (int n = 1; n <= k; n++) {
    size_t m = clipped_matches(pred, len_pred, label, len_label, (size_t)n);
    score *= pow((double)m / (double)(len_pred - (size_t)n + 1), ldexp(1.0, -n));
  }
  return score;
}

/* ---- text ---------------------------------------------------------------- */

typedef struct {
  const char *s;
  size_t len;
} span;

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Splits s into spans (malloc'd into *out); returns the count, or
 * (size_t)-1 when out of memory. */
static size_t split(const char *s, span **out) {
  size_t n = 0;
  for (const char *p = s; *p;) {
    while (blank(*p))
      p++;
    if (!*p) break;
    n++;
    while (*p && !blank(*p))
      p++;
  }
  *out = malloc((n ? n : 1) * sizeof **out);
  if (!*out) return (size_t)-1;
  size_t i = 0;
  for (const char *p = s; *p;) {
    while (blank(*p))
      p++;
    if (!*p) break;
    (*out)[i].s = p;
    while (*p && !blank(*p))
      p++;
    (*out)[i].len = (size_t)(p - (*out)[i].s);
    i++;
  }
  return n;
}

/* Tokenized pair: ids are equal exactly when the token texts are. */
typedef struct {
  int32_t *a, *b;
  size_t la, lb;
} id_pair;

static bool to_ids(const char *x, const char *y, id_pair *p) {
  span *sx = NULL, *sy = NULL;
  memset(p, 0, sizeof *p);
  p->la = split(x, &sx);
  p->lb = split(y, &sy);
  bool ok = p->la != (size_t)-1 && p->lb != (size_t)-1;
  if (ok) {
    p->a = malloc((p->la + p->lb + 1) * sizeof *p->a);
    ok = p->a != NULL;
  }
  if (ok) {
    p->b = p->a + p->la;
    /* id = index of the token's first occurrence in x followed by y */
    for (size_t i = 0; i < p->la + p->lb; i++) {
      const span *t = i < p->la ? &sx[i] : &sy[i - p->la];
      int32_t id = (int32_t)i;
      for (size_t j = 0; j < i; j++) {
        const span *u = j < p->la ? &sx[j] : &sy[j - p->la];
        if (u->len == t->len && memcmp(u->s, t->s, t->len) == 0) {
          id = p->a[j];
          break;
        }
      }
      p->a[i] = id;
    }
  }
  free(sx);
  free(sy);
  return ok;
}

double rt_bleu_str(const char *pred, const char *label, int k) {
  if (!pred || !label) return NAN;
  id_pair p;
  if (!to_ids(pred, label, &p)) return NAN;
  double r = rt_bleu(p.a, p.la, p.b, p.lb, k);
  free(p.a);
  return r;
}

/* ---- corpus BLEU-4 ------------------------------------------------------- */

enum { CORPUS_N = 4 };

typedef struct {
  double matches[CORPUS_N], total[CORPUS_N];
  double c, r;
} corpus_acc;

static void accumulate(corpus_acc *acc, const int32_t *p, size_t lp, const int32_t *r, size_t lr) {
  acc->c += (double)lp;
  acc->r += (double)lr;
  for (size_t n = 1; n <= CORPUS_N; n++) {
    if (lp < n) continue;
    acc->matches[n - 1] += (double)clipped_matches(p, lp, r, lr, n);
    acc->total[n - 1] += (double)(lp - n + 1);
  }
}

static double corpus_score(const corpus_acc *acc) {
  if (acc->c == 0) return 0.0;
  double logsum = 0;
  for (int n = 0; n < CORPUS_N; n++) {
    if (acc->matches[n] == 0) return 0.0;
    logsum += log(acc->matches[n] / acc->total[n]) / CORPUS_N;
  }
  double bp = acc->c < acc->r ? exp(1.0 - acc->r / acc->c) : 1.0;
  return bp * exp(logsum);
}

double rt_bleu_corpus(const int32_t *const *preds, const size_t *pred_lens,
                      const int32_t *const *refs, const size_t *ref_lens, size_t n) {
  if (n && (!preds || !pred_lens || !refs || !ref_lens)) return NAN;
  corpus_acc acc = {0};
  for (size_t i = 0; i < n; i++) {
    if ((!preds[i] && pred_lens[i]) || (!refs[i] && ref_lens[i])) return NAN;
    accumulate(&acc, preds[i], pred_lens[i], refs[i], ref_lens[i]);
  }
  return corpus_score(&acc);
}

double rt_bleu_corpus_str(const char *const *preds, const char *const *refs, size_t n) {
  if (n && (!preds || !refs)) return NAN;
  corpus_acc acc = {0};
  for (size_t i = 0; i < n; i++) {
    if (!preds[i] || !refs[i]) return NAN;
    id_pair p;
    if (!to_ids(preds[i], refs[i], &p)) return NAN;
    accumulate(&acc, p.a, p.la, p.b, p.lb);
    free(p.a);
  }
  return corpus_score(&acc);
}
