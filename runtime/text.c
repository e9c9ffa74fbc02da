/* d2l 9.5's text preprocessing and tokenizers, the tab-separated pair
 * reader, and the reproducible per-epoch shuffle (see runtime/text.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/philox.h"
#include "runtime/text.h"

static bool is_punct(char c) { return c == ',' || c == '.' || c == '!' || c == '?'; }

char *rt_text_preprocess(const char *s, size_t len) {
  /* Each input byte yields at most two output bytes (a space and itself). */
  char *out = malloc(2 * len + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] == 0xA0) {
      out[o++] = ' ';
      i += 1;
      continue;
    }
    if (c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
        (unsigned char)s[i + 2] == 0xAF) {
      out[o++] = ' ';
      i += 2;
      continue;
    }
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    /* Compare against the output so a replaced NBSP counts as a space. */
    if (is_punct((char)c) && o > 0 && out[o - 1] != ' ') out[o++] = ' ';
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return out;
}

bool rt_toklist_push(rt_toklist *t, const char *tok, size_t len) {
  if (t->n == t->cap) {
    int64_t cap = t->cap ? 2 * t->cap : 16;
    char **v = realloc(t->v, (size_t)cap * sizeof *v);
    if (!v) return false;
    t->v = v;
    t->cap = cap;
  }
  char *c = malloc(len + 1);
  if (!c) return false;
  memcpy(c, tok, len);
  c[len] = '\0';
  t->v[t->n++] = c;
  return true;
}

void rt_toklist_free(rt_toklist *t) {
  if (!t) return;
  for (int64_t i = 0; i < t->n; i++)
    free(t->v[i]);
  free(t->v);
  *t = (rt_toklist){0};
}

bool rt_tokenize_words(const char *s, rt_toklist *out, ir_diag *d) {
  const char *p = s;
  while (*p) {
    while (*p == ' ')
      p++;
    const char *b = p;
    while (*p && *p != ' ')
      p++;
    if (p > b && !rt_toklist_push(out, b, (size_t)(p - b))) {
      ir_diag_set(d, "word tokenizer: out of memory");
      return false;
    }
  }
  return true;
}

/* Length of the UTF-8 sequence starting at p: 1 for ASCII and for any byte
 * that does not start a well-formed sequence. */
static size_t utf8_len(const unsigned char *p) {
  size_t n = p[0] >= 0xF0 && p[0] < 0xF8 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC0 ? 2 : 1;
  if (p[0] >= 0xF8) return 1;
  for (size_t k = 1; k < n; k++)
    if ((p[k] & 0xC0) != 0x80) return 1; /* also stops at the NUL */
  return n;
}

bool rt_tokenize_chars(const char *s, rt_toklist *out, ir_diag *d) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    size_t n = utf8_len(p);
    if (!rt_toklist_push(out, (const char *)p, n)) {
      ir_diag_set(d, "character tokenizer: out of memory");
      return false;
    }
    p += n;
  }
  return true;
}

bool rt_pairs_push(rt_pairs *p, const char *src, const char *tgt) {
  if (p->n == p->cap) {
    int64_t cap = p->cap ? 2 * p->cap : 64;
    char **s = realloc(p->src, (size_t)cap * sizeof *s);
    if (!s) return false;
    p->src = s;
    char **t = realloc(p->tgt, (size_t)cap * sizeof *t);
    if (!t) return false;
    p->tgt = t;
    p->cap = cap;
  }
  char *a = strdup(src), *b = strdup(tgt);
  if (!a || !b) {
    free(a);
    free(b);
    return false;
  }
  p->src[p->n] = a;
  p->tgt[p->n] = b;
  p->n++;
  return true;
}

void rt_pairs_free(rt_pairs *p) {
  if (!p) return;
  for (int64_t i = 0; i < p->n; i++) {
    free(p->src[i]);
    free(p->tgt[i]);
  }
  free(p->src);
  free(p->tgt);
  *p = (rt_pairs){0};
}

/* Offset of the first byte of b[0..n) that is not part of well-formed
 * UTF-8 (overlong forms, surrogates and code points above U+10FFFF
 * included), or n when all of it is. */
static size_t utf8_bad_at(const unsigned char *b, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = b[i];
    size_t k = c < 0x80                ? 1
               : c >= 0xC2 && c < 0xE0 ? 2
               : c >= 0xE0 && c < 0xF0 ? 3
               : c >= 0xF0 && c < 0xF5 ? 4
                                       : 0;
    if (k == 0 || i + k > n) return i;
    for (size_t j = 1; j < k; j++)
      if ((b[i + j] & 0xC0) != 0x80) return i;
    if (k == 3 && ((c == 0xE0 && b[i + 1] < 0xA0) || (c == 0xED && b[i + 1] >= 0xA0))) return i;
    if (k == 4 && ((c == 0xF0 && b[i + 1] < 0x90) || (c == 0xF4 && b[i + 1] >= 0x90))) return i;
    i += k;
  }
  return n;
}

bool rt_pairs_parse(const char *text, size_t len, const char *name, int64_t max_examples,
                    rt_pairs *out, ir_diag *d) {
  *out = (rt_pairs){0};
  size_t i = 0;
  for (int64_t line = 1; i < len && (max_examples <= 0 || out->n < max_examples); line++) {
    const char *b = text + i;
    const char *nl = memchr(b, '\n', len - i);
    size_t n = nl ? (size_t)(nl - b) : len - i;
    i += n + 1;
    if (n > 0 && b[n - 1] == '\r') n--;
    if (n == 0) continue;
    size_t bad = utf8_bad_at((const unsigned char *)b, n);
    if (bad < n) {
      ir_diag_set(d, "%s:%lld:%zu: invalid UTF-8 (byte 0x%02x); the file must be UTF-8 text", name,
                  (long long)line, bad + 1, (unsigned)(unsigned char)b[bad]);
      d->line = (int)line;
      d->col = (int)(bad + 1);
      rt_pairs_free(out);
      return false;
    }
    const char *tab = memchr(b, '\t', n);
    if (!tab) {
      ir_diag_set(d, "%s:%lld: expected 'source<TAB>target', found no tab", name, (long long)line);
      d->line = (int)line;
      rt_pairs_free(out);
      return false;
    }
    const char *t = tab + 1;
    const char *tend = memchr(t, '\t', (size_t)(b + n - t));
    if (!tend) tend = b + n;
    char *src = rt_text_preprocess(b, (size_t)(tab - b));
    char *tgt = rt_text_preprocess(t, (size_t)(tend - t));
    bool ok = src && tgt && rt_pairs_push(out, src, tgt);
    free(src);
    free(tgt);
    if (!ok) {
      ir_diag_set(d, "%s:%lld: out of memory", name, (long long)line);
      rt_pairs_free(out);
      return false;
    }
  }
  return true;
}

bool rt_pairs_read(const char *path, int64_t max_examples, rt_pairs *out, ir_diag *d) {
  *out = (rt_pairs){0};
  FILE *f = fopen(path, "rb");
  if (!f) {
    ir_diag_set(d, "%s: cannot open: %s", path, strerror(errno));
    return false;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - len, f);
    if (len < cap) break;
    char *nb = realloc(buf, cap * 2);
    if (!nb) free(buf);
    buf = nb;
    cap *= 2;
  }
  bool err = ferror(f);
  fclose(f);
  if (!buf || err) {
    free(buf);
    ir_diag_set(d, "%s: %s", path, err ? "read error" : "out of memory");
    return false;
  }
  bool ok = rt_pairs_parse(buf, len, path, max_examples, out, d);
  free(buf);
  return ok;
}

void rt_order_perm(int64_t n, uint64_t seed, int64_t epoch, int64_t *perm) {
  for (int64_t i = 0; i < n; i++)
    perm[i] = i;
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint64_t e = (uint64_t)epoch;
  for (int64_t i = n - 1; i > 0; i--) {
    uint64_t step = (uint64_t)(n - 1 - i);
    const uint32_t ctr[4] = {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)e,
                             (uint32_t)(e >> 32)};
    uint32_t w[4];
    rt_philox4x32(ctr, key, w);
    /* 64 random bits mod (i + 1): the bias is below 2^-40 for any n we hold. */
    uint64_t r = ((uint64_t)w[0] << 32 | w[1]) % (uint64_t)(i + 1);
    int64_t tmp = perm[i];
    perm[i] = perm[r];
    perm[r] = tmp;
  }
}

static void order_fill(rt_data_order *o) {
  if (o->shuffle) {
    rt_order_perm(o->n, o->seed, o->pos.epoch, o->perm);
  } else {
    for (int64_t i = 0; i < o->n; i++)
      o->perm[i] = i;
  }
}

bool rt_order_init(rt_data_order *o, int64_t n, uint64_t seed, bool shuffle, ir_diag *d) {
  *o = (rt_data_order){.n = n, .seed = seed, .shuffle = shuffle};
  if (n < 1) {
    ir_diag_set(d, "data order: need at least one example, got %lld", (long long)n);
    return false;
  }
  o->perm = malloc((size_t)n * sizeof *o->perm);
  if (!o->perm) {
    ir_diag_set(d, "data order: out of memory for %lld examples", (long long)n);
    return false;
  }
  order_fill(o);
  return true;
}

void rt_order_free(rt_data_order *o) {
  if (!o) return;
  free(o->perm);
  *o = (rt_data_order){0};
}

bool rt_order_seek(rt_data_order *o, rt_data_pos pos, ir_diag *d) {
  if (pos.epoch < 0 || pos.index < 0 || pos.index > o->n) {
    ir_diag_set(d, "data position (epoch %lld, index %lld) is out of range for %lld examples",
                (long long)pos.epoch, (long long)pos.index, (long long)o->n);
    return false;
  }
  bool refill = pos.epoch != o->pos.epoch;
  o->pos = pos;
  if (refill) order_fill(o);
  return true;
}

int64_t rt_order_next(rt_data_order *o, int64_t batch, bool drop_last, int64_t *idx) {
  if (batch < 1 || (drop_last && batch > o->n)) return 0;
  int64_t left = o->n - o->pos.index;
  if (left == 0 || (drop_last && left < batch)) {
    o->pos.epoch++;
    o->pos.index = 0;
    order_fill(o);
    left = o->n;
  }
  int64_t k = batch < left ? batch : left;
  memcpy(idx, o->perm + o->pos.index, (size_t)k * sizeof *idx);
  o->pos.index += k;
  return k;
}
