/* The text side of the translation data pipeline (d2l 9.5): normalising a
 * line, word and character tokenizers, reading tab-separated sentence pairs,
 * and the seeded per-epoch example order with a saveable position. Vocabulary
 * and id arrays live in runtime/vocab.h. */
#ifndef KILN_RT_TEXT_H
#define KILN_RT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* d2l's preprocess_nmt on one string: U+00A0 and U+202F become ' ', ASCII
 * letters are lower-cased (other UTF-8 bytes are kept as they are), and a
 * space is inserted before each of , . ! ? whose previous character is not
 * a space (none at the start of the string). Returns an owned
 * NUL-terminated string (free()), NULL only when out of memory. */
char *rt_text_preprocess(const char *s, size_t len);

/* A list of owned NUL-terminated tokens. */
typedef struct rt_toklist {
  int64_t n, cap;
  char **v;
} rt_toklist;

/* Appends a copy of tok[0..len). false when out of memory. */
bool rt_toklist_push(rt_toklist *t, const char *tok, size_t len);
void rt_toklist_free(rt_toklist *t);

/* Word tokens: s split on ' ', empty pieces dropped (as d2l's
 * `[t for t in s.split(' ') if t]`). Appends to *out. */
bool rt_tokenize_words(const char *s, rt_toklist *out, ir_diag *d);
/* Character tokens: one token per UTF-8 code point of s (a malformed byte is
 * a token by itself, so no input is rejected). Appends to *out. */
bool rt_tokenize_chars(const char *s, rt_toklist *out, ir_diag *d);

/* Sentence pairs; src[i] and tgt[i] are owned strings. */
typedef struct rt_pairs {
  int64_t n, cap;
  char **src, **tgt;
} rt_pairs;

bool rt_pairs_push(rt_pairs *p, const char *src, const char *tgt);
void rt_pairs_free(rt_pairs *p);

/* Parses `source<TAB>target[<TAB>ignored...]` lines from text[0..len) (an
 * optional '\r' before '\n' is dropped; empty lines are skipped) and stores
 * each side after rt_text_preprocess. At most max_examples pairs are read
 * (<= 0: all). A non-empty line without a tab fails with "NAME:LINE: ...",
 * one that is not well-formed UTF-8 with "NAME:LINE:COL: invalid UTF-8"
 * (d->line, d->col set); `name` labels the text in messages. */
bool rt_pairs_parse(const char *text, size_t len, const char *name, int64_t max_examples,
                    rt_pairs *out, ir_diag *d);
/* rt_pairs_parse on the contents of the file at `path`. */
bool rt_pairs_read(const char *path, int64_t max_examples, rt_pairs *out, ir_diag *d);

/* Where a training run is in its data: example `index` of the shuffled
 * order of `epoch` (both from 0). Saving these two numbers and the seed is
 * enough to resume. */
typedef struct rt_data_pos {
  int64_t epoch, index;
} rt_data_pos;

/* The example order: epoch e visits a permutation of 0..n-1 made by a
 * Fisher-Yates shuffle whose draws come from Philox keyed by the seed with
 * counter {step lo, step hi, e lo, e hi}, so any epoch's order can be
 * recomputed without replaying earlier ones. */
typedef struct rt_data_order {
  int64_t n;
  uint64_t seed;
  bool shuffle; /* false: every epoch is 0, 1, ..., n-1 */
  rt_data_pos pos;
  int64_t *perm; /* order of pos.epoch, owned */
} rt_data_order;

bool rt_order_init(rt_data_order *o, int64_t n, uint64_t seed, bool shuffle, ir_diag *d);
void rt_order_free(rt_data_order *o);
/* Writes epoch's permutation of 0..n-1 into perm[n]. */
void rt_order_perm(int64_t n, uint64_t seed, int64_t epoch, int64_t *perm);
/* Moves to `pos` (0 <= index <= n); false with d set if it is out of range. */
bool rt_order_seek(rt_data_order *o, rt_data_pos pos, ir_diag *d);
/* Takes the next up to `batch` example indices into idx and returns how many
 * were taken. When the epoch is used up (or, with drop_last, fewer than
 * `batch` remain) the next epoch starts first, so the result is >= 1 and,
 * with drop_last, always `batch` (requires batch <= n; else 0). */
int64_t rt_order_next(rt_data_order *o, int64_t batch, bool drop_last, int64_t *idx);

#endif
