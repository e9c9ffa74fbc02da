/* Vocabulary: counting with an open-addressing hash table, a deterministic
 * (count, text) order, and the same table reused for token -> id lookup. */
#include <stdlib.h>
#include <string.h>

#include "runtime/vocab.h"

struct rt_vocab {
  int64_t n;
  char **tok;     /* id -> token, owned */
  int64_t *count; /* id -> occurrences */
  int64_t cap;    /* power of two */
  int32_t *slot;  /* hash slot -> id, -1 when empty */
};

static const char *const reserved[RT_VOCAB_NRESERVED] = {"<unk>", "<pad>", "<bos>", "<eos>"};

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The slot holding tok, or the empty slot where it would go. */
static int64_t find(const rt_vocab *v, const char *tok) {
  int64_t i = (int64_t)(hash(tok) & (uint64_t)(v->cap - 1));
  while (v->slot[i] >= 0 && strcmp(v->tok[v->slot[i]], tok) != 0)
    i = (i + 1) & (v->cap - 1);
  return i;
}

static bool grow(rt_vocab *v) {
  int64_t cap = v->cap ? v->cap * 2 : 64;
  int32_t *slot = malloc((size_t)cap * sizeof *slot);
  char **tok = realloc(v->tok, (size_t)(cap / 2) * sizeof *tok);
  if (tok) v->tok = tok;
  int64_t *count = realloc(v->count, (size_t)(cap / 2) * sizeof *count);
  if (count) v->count = count;
  if (!slot || !tok || !count) {
    free(slot);
    return false;
  }
  free(v->slot);
  v->slot = slot;
  v->cap = cap;
  for (int64_t i = 0; i < cap; i++)
    slot[i] = -1;
  for (int64_t id = 0; id < v->n; id++)
    slot[find(v, v->tok[id])] = (int32_t)id;
  return true;
}

/* Adds tok with count 0 if absent (keeping the table at most half full);
 * returns its id or -1 when out of memory. */
static int64_t intern(rt_vocab *v, const char *tok) {
  if (v->cap) {
    int64_t s = find(v, tok);
    if (v->slot[s] >= 0) return v->slot[s];
  }
  if ((v->n + 1) * 2 > v->cap && !grow(v)) return -1;
  if (v->n >= INT32_MAX) return -1;
  char *c = strdup(tok);
  if (!c) return -1;
  v->tok[v->n] = c;
  v->count[v->n] = 0;
  v->slot[find(v, tok)] = (int32_t)v->n;
  return v->n++;
}

void rt_vocab_free(rt_vocab *v) {
  if (!v) return;
  for (int64_t i = 0; i < v->n; i++)
    free(v->tok[i]);
  free(v->tok);
  free(v->count);
  free(v->slot);
  free(v);
}

typedef struct entry {
  const char *tok;
  int64_t count;
} entry;

static int by_count_then_text(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return strcmp(x->tok, y->tok);
}

rt_vocab *rt_vocab_build(const rt_toklist *seqs, int64_t nseqs, int64_t min_freq, ir_diag *d) {
  rt_vocab *counts = calloc(1, sizeof *counts), *v = calloc(1, sizeof *v);
  entry *order = NULL;
  if (!counts || !v) goto oom;
  for (int r = 0; r < RT_VOCAB_NRESERVED; r++)
    if (intern(counts, reserved[r]) < 0 || intern(v, reserved[r]) < 0) goto oom;
  for (int64_t s = 0; s < nseqs; s++)
    for (int64_t t = 0; t < seqs[s].n; t++) {
      int64_t id = intern(counts, seqs[s].v[t]);
      if (id < 0) goto oom;
      counts->count[id]++;
    }
  int64_t m = counts->n - RT_VOCAB_NRESERVED;
  order = malloc((size_t)(m > 0 ? m : 1) * sizeof *order);
  if (!order) goto oom;
  for (int64_t i = 0; i < m; i++)
    order[i] = (entry){counts->tok[i + RT_VOCAB_NRESERVED], counts->count[i + RT_VOCAB_NRESERVED]};
  qsort(order, (size_t)m, sizeof *order, by_count_then_text);
  for (int64_t i = 0; i < m && order[i].count >= (min_freq < 1 ? 1 : min_freq); i++) {
    int64_t id = intern(v, order[i].tok);
    if (id < 0) goto oom;
    v->count[id] = order[i].count;
  }
  free(order);
  rt_vocab_free(counts);
  return v;
oom:
  ir_diag_set(d, "vocabulary: out of memory");
  free(order);
  rt_vocab_free(counts);
  rt_vocab_free(v);
  return NULL;
}

rt_vocab *rt_vocab_from_tokens(const char *const *tokens, int64_t n, ir_diag *d) {
  if (n < RT_VOCAB_NRESERVED) {
    ir_diag_set(d, "vocabulary: %lld tokens, fewer than the %d reserved ones", (long long)n,
                RT_VOCAB_NRESERVED);
    return NULL;
  }
  rt_vocab *v = calloc(1, sizeof *v);
  if (!v) goto oom;
  for (int64_t i = 0; i < n; i++) {
    if (!tokens[i] || (i < RT_VOCAB_NRESERVED && strcmp(tokens[i], reserved[i]) != 0)) {
      ir_diag_set(d, "vocabulary: token %lld must be '%s'", (long long)i,
                  i < RT_VOCAB_NRESERVED ? reserved[i] : "a string");
      rt_vocab_free(v);
      return NULL;
    }
    int64_t id = intern(v, tokens[i]);
    if (id < 0) goto oom;
    if (id != i) {
      ir_diag_set(d, "vocabulary: token %lld ('%.64s') repeats token %lld", (long long)i, tokens[i],
                  (long long)id);
      rt_vocab_free(v);
      return NULL;
    }
  }
  return v;
oom:
  ir_diag_set(d, "vocabulary: out of memory");
  rt_vocab_free(v);
  return NULL;
}

int64_t rt_vocab_size(const rt_vocab *v) { return v->n; }

int32_t rt_vocab_id(const rt_vocab *v, const char *tok) {
  int32_t id = v->slot[find(v, tok)];
  return id >= 0 ? id : RT_VOCAB_UNK;
}

const char *rt_vocab_token(const rt_vocab *v, int64_t id) {
  return id >= 0 && id < v->n ? v->tok[id] : NULL;
}

int64_t rt_vocab_count(const rt_vocab *v, int64_t id) {
  return id >= 0 && id < v->n ? v->count[id] : 0;
}

bool rt_vocab_build_array(const rt_vocab *v, const rt_toklist *seqs, int64_t n, int64_t num_steps,
                          int32_t *ids, int32_t *valid, ir_diag *d) {
  if (num_steps < 1 || num_steps > INT32_MAX) {
    ir_diag_set(d, "build array: num_steps must be in [1, 2^31), got %lld", (long long)num_steps);
    return false;
  }
  for (int64_t i = 0; i < n; i++) {
    int32_t *row = ids + i * num_steps;
    for (int64_t j = 0; j < num_steps; j++)
      row[j] = j < seqs[i].n    ? rt_vocab_id(v, seqs[i].v[j])
               : j == seqs[i].n ? RT_VOCAB_EOS
                                : RT_VOCAB_PAD;
    int32_t k = 0;
    for (int64_t j = 0; j < num_steps; j++)
      k += row[j] != RT_VOCAB_PAD;
    valid[i] = k;
  }
  return true;
}
