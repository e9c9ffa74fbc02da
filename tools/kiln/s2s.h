/* The translation models (seq2seq-attn and transformer; tm.h says which)
 * in the CLI: what a run is besides its programs (config, tokenizer,
 * vocabularies), its checkpoints, and decoding (greedy and beam search over
 * the encoder-side and single-step graphs). Shared by `kiln train`
 * (train_s2s*.c) and `kiln translate` (cmd_translate.c). */
#ifndef KILN_CLI_S2S_H
#define KILN_CLI_S2S_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/kiln_run.h"
#include "runtime/checkpoint.h"
#include "runtime/text.h"
#include "runtime/vocab.h"
#include "tools/kiln/tm.h"

/* ---- a run's settings ---------------------------------------------------- */

typedef struct s2s_meta {
  tm_config cfg;        /* which model and its settings; cfg.batch is the training batch */
  bool char_tokens;     /* true: one token per character (the date task); false: d2l's words */
  rt_vocab *src, *tgt;  /* owned */
  const char *settings; /* borrowed: the run's recorded --set values (train.h), or NULL */
} s2s_meta;

void s2s_meta_free(s2s_meta *m);

/* Splits an already preprocessed sentence into tokens as m says. */
bool s2s_tokenize(const s2s_meta *m, const char *s, rt_toklist *out, ir_diag *d);

/* ---- checkpoints (s2s_ckpt.c) -------------------------------------------- */

/* Metadata written besides RT_CKPT_STEP / SEED / MODEL / OPTIMIZER:
 *   RT_CKPT_DATA_POS  epoch * n_examples + index (rt_data_pos flattened)
 *   RT_CKPT_MODEL     tm_arch_name(m->cfg.arch)
 *   RT_CKPT_CONFIG    tm_config_json: {"hidden":..,"layers":..,"dropout":..,"batch":..,
 *                      "src_steps":..,"tgt_steps":..,"src_vocab":..,"tgt_vocab":..,
 *                      "tokens":"char"|"word"} and "embed" (seq2seq-attn) or
 *                      "heads", "ffn", "pre_ln", "tie_output" (transformer)
 *   "src_vocab", "tgt_vocab"  JSON arrays of the tokens in id order
 *   "settings"                m->settings when not NULL (TRAIN_CKPT_SETTINGS)
 * Tensors: every parameter of the training program (weights and the
 * optimizer's "<name>@m", "@v" state) under its own name. */
bool s2s_ckpt_save(const char *path, const s2s_meta *m, kl_program *train, uint64_t seed,
                   int64_t data_position, ir_diag *d);
/* Opens path and fills *m (model, config, tokenizer, vocabularies) from
 * its metadata; refuses a checkpoint of anything but a translation model,
 * and one that fails ckpt_program_check against the config's training
 * graph (the exact tensor set, finite weights, the optimizer), so train
 * and translate accept the same files. Owned result, NULL with d set. */
rt_checkpoint *s2s_ckpt_open(const char *path, s2s_meta *m, ir_diag *d);
/* Copies the checkpoint's tensors into the parameters of p. weights_only:
 * optimizer state (names with '@') is skipped on both sides and extra
 * tensors are allowed (decoding programs); else every parameter of p must
 * be in ck. Any tensor missing or of another dtype/shape fails with one
 * message listing every mismatch; p is then unchanged. */
bool s2s_ckpt_apply(const rt_checkpoint *ck, kl_program *p, bool weights_only, ir_diag *d);

/* ---- decoding (s2s_decode.c) --------------------------------------------- */

typedef struct s2s_decoder s2s_decoder;

/* Compiles the encoder-side and step graphs of cfg (tm_build_decode_*) with
 * cfg->batch rows (the decoder's batch: many sentences for greedy
 * evaluation, the beam width for beam search). Parameters start from their
 * initialisers: fill them with s2s_decoder_copy_weights or s2s_ckpt_apply
 * on s2s_decoder_program(). */
s2s_decoder *s2s_decoder_create(const tm_config *cfg, const kl_compile_opts *co, char **err);
void s2s_decoder_destroy(s2s_decoder *dec);
/* The encoder (i = 0) and step (i = 1) programs (borrowed). */
kl_program *s2s_decoder_program(s2s_decoder *dec, int i);
/* Copies the weights of a program holding the model's parameters by name
 * (the training step's program). */
void s2s_decoder_copy_weights(s2s_decoder *dec, const kl_program *weights);

/* Greedy decoding of rows = cfg->batch sentences: src [rows, Ts] ids (the
 * training layout: the sentence, <eos>, <pad>...), src_len [rows]. Row r's
 * output ids go to out[r * max_len ...] (at most max_len, stopping before
 * <eos>, which is not written) and their count to out_len[r]; attn (may be
 * NULL) [rows, max_len, H, Ts] (H = s2s_attn_heads: 1, or the Transformer's
 * heads of its last block's cross-attention) receives the attention weights
 * of each emitted step and, when the row ended at <eos> within max_len, of
 * that <eos> step in row out_len[r] (as d2l's heatmaps show it); rows after
 * that are zero. max_len is at most the step graph's limit (the
 * Transformer's tgt_steps, its cache length). NULL or a message (borrowed,
 * valid until the next call). */
const char *s2s_greedy(s2s_decoder *dec, const int32_t *src, const int32_t *src_len,
                       int64_t max_len, int32_t *out, int64_t *out_len, float *attn);
/* Attention maps per decoding step: 1 (seq2seq-attn) or the heads. */
int64_t s2s_attn_heads(const tm_config *c);

/* Beam search (d2l 10.8) for one sentence src [Ts] with valid length
 * src_len, beam width = cfg->batch: keeps the `beam` best partial sequences
 * by total log-probability; a sequence ends at <eos> or max_len; the result
 * is the finished sequence maximising log P / L^0.75 (L counts <eos> when
 * emitted). Beam 1 gives exactly the greedy result. out, out_len, attn as
 * for one row of s2s_greedy. */
const char *s2s_beam(s2s_decoder *dec, const int32_t *src, int32_t src_len, int64_t max_len,
                     int32_t *out, int64_t *out_len, float *attn);

/* ---- attention heatmaps (s2s_heatmap.c) ---------------------------------- */

/* One translation's attention as an SVG heatmap at path (atomically): a row
 * per output token out[0..out_len) plus the <eos> step when the translation
 * ended within max_len, a column per source position src_ids[0..src_len)
 * (the sentence and its <eos>; all src_steps when src_len is 0), one panel
 * per attention head. attn is [max_len, heads, src_steps] as
 * s2s_greedy/s2s_beam write it. Column labels come
 * from src_tokens where given (the words as typed, unknown ones included),
 * else from the vocabulary; a space token is drawn as a visible U+2423.
 * false with d set (an empty translation, I/O, memory). */
bool s2s_heatmap_write(const s2s_meta *m, const rt_toklist *src_tokens, const int32_t *src_ids,
                       int32_t src_len, const int32_t *out, int64_t out_len, int64_t max_len,
                       const float *attn, const char *path, ir_diag *d);

#endif
