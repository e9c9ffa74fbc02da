/* The token vocabulary of the translation models (d2l's Vocab) and the
 * padded id arrays they train on (d2l's build_array_nmt). */
#ifndef KILN_RT_VOCAB_H
#define KILN_RT_VOCAB_H

#include <stdint.h>

#include "ir/ir.h"
#include "runtime/text.h"

/* Fixed ids, in d2l's order ['<unk>'] + ['<pad>', '<bos>', '<eos>']. The
 * models rely on these values. */
enum { RT_VOCAB_UNK = 0, RT_VOCAB_PAD = 1, RT_VOCAB_BOS = 2, RT_VOCAB_EOS = 3, RT_VOCAB_NRESERVED };

typedef struct rt_vocab rt_vocab;

/* Builds a vocabulary from nseqs token lists: the four reserved tokens, then
 * every other token that occurs at least min_freq times (min_freq < 1 acts
 * as 1), by count descending and, for equal counts, by byte-wise strcmp of
 * the token text ascending. (d2l keeps ties in first-seen order; sorting by
 * text makes the ids independent of example order.) Reserved tokens found
 * in the data are not added twice. NULL with d set when out of memory. */
rt_vocab *rt_vocab_build(const rt_toklist *seqs, int64_t nseqs, int64_t min_freq, ir_diag *d);
/* A vocabulary with exactly the given tokens as ids 0..n-1 (a saved
 * vocabulary read back). The first four must be the reserved tokens in
 * their order, and no token may repeat; else NULL with d set. Counts are 0. */
rt_vocab *rt_vocab_from_tokens(const char *const *tokens, int64_t n, ir_diag *d);
void rt_vocab_free(rt_vocab *v);

int64_t rt_vocab_size(const rt_vocab *v);
/* The id of tok, or RT_VOCAB_UNK when it is not in the vocabulary. */
int32_t rt_vocab_id(const rt_vocab *v, const char *tok);
/* The token of id, or NULL when id is out of range. */
const char *rt_vocab_token(const rt_vocab *v, int64_t id);
/* How often id's token occurred in the data the vocabulary was built from
 * (0 for the reserved tokens). */
int64_t rt_vocab_count(const rt_vocab *v, int64_t id);

/* d2l's build_array_nmt for n token lists: row i of ids[n * num_steps] is
 * the ids of seqs[i] followed by <eos>, truncated to num_steps or padded
 * with <pad>; valid[i] counts the row's entries that are not <pad>. false
 * with d set when num_steps < 1. */
bool rt_vocab_build_array(const rt_vocab *v, const rt_toklist *seqs, int64_t n, int64_t num_steps,
                          int32_t *ids, int32_t *valid, ir_diag *d);

#endif
