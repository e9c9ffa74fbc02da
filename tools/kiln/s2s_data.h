/* seq2seq-attn's data in the CLI: sentence pairs turned into padded id
 * arrays with the run's tokenizer and vocabularies (d2l's
 * load_data_nmt), and mini-batches cut from them in the training graph's
 * argument layout. */
#ifndef KILN_CLI_S2S_DATA_H
#define KILN_CLI_S2S_DATA_H

#include "tools/kiln/s2s.h"

typedef struct s2s_data {
  int64_t n, src_steps, tgt_steps;
  int32_t *src, *src_len; /* [n, src_steps], [n] */
  int32_t *tgt, *tgt_len; /* [n, tgt_steps], [n] */
} s2s_data;

/* Tokenizes pairs [from, from + n) of p; vocabularies (and their sizes in
 * m->cfg) are built from these pairs first when m->src is NULL, with
 * min_freq. false with d set (out of memory, no pairs). */
bool s2s_data_build(s2s_meta *m, const rt_pairs *p, int64_t from, int64_t n, int64_t min_freq,
                    s2s_data *out, ir_diag *d);
void s2s_data_free(s2s_data *dt);

/* One batch of `batch` rows into the training graph's five arguments:
 * rows 0..k-1 are examples idx[0..k-1]; rows k.. are empty (<pad>, lengths
 * 0), so they add nothing to the loss or the gradients. dec_in is <bos>
 * then tgt shifted right (d2l's teacher forcing). Returns the number of
 * target tokens (sum of tgt_len). */
int64_t s2s_batch_fill(const s2s_data *dt, const int64_t *idx, int64_t k, int64_t batch,
                       int32_t *src, int32_t *src_len, int32_t *dec_in, int32_t *tgt,
                       int32_t *tgt_len);

/* The ids of one sentence (already preprocessed) as a source row:
 * tokens, <eos>, <pad>... truncated to src_steps; returns the valid length. */
int32_t s2s_source_row(const s2s_meta *m, const char *sentence, int32_t *row, ir_diag *d);

/* Output ids (no <eos>) as text: tokens joined with "" (char tokens) or " "
 * (word tokens). malloc'd; NULL when out of memory. */
char *s2s_detokenize(const s2s_meta *m, const int32_t *ids, int64_t n);

#endif
