/* transformer: d2l's encoder-decoder Transformer (d2l v1.0 11.7,
 * TransformerEncoder / TransformerDecoder) as three graphs that share
 * parameters by name: the teacher-forced training graph, the encoder, and
 * the decoder over a full padded prefix (greedy decoding reads position t).
 * Parameter names and layouts are those of d2l's PyTorch modules
 * (nn.Linear weight [out, in]), so a state_dict maps 1:1. */
#ifndef KILN_MODELS_TRANSFORMER_H
#define KILN_MODELS_TRANSFORMER_H

#include "frontend/kiln.h"

typedef struct tf_config {
  int64_t src_vocab, tgt_vocab;
  int64_t hidden;    /* d: embedding and model width; even (sin/cos pairs) */
  int64_t ffn;       /* hidden width of the position-wise FFN */
  int64_t heads;     /* divides hidden */
  int64_t blocks;    /* encoder blocks = decoder blocks */
  double dropout;    /* after the positional encoding, on attention weights,
                        on every sublayer output before its residual add */
  int64_t batch;     /* rows per graph run (static shapes) */
  int64_t src_steps; /* source length after truncation/padding */
  int64_t tgt_steps; /* target length */
  /* false: d2l's post-LN AddNorm, LayerNorm(X + dropout(f(X))).
   * true: pre-LN, X + dropout(f(LayerNorm(X))), with a final LayerNorm
   * after each stack ("encoder.ln", "decoder.ln"); not in d2l. */
  bool pre_ln;
  /* true: the output layer reuses decoder.embedding.weight as its weight
   * (logits = X E^T + decoder.dense.bias); there is no decoder.dense.weight. */
  bool tie_output;
  kl_dtype dtype; /* KL_F32 for training; KL_F64 for gradient checks */
} tf_config;

/* The date task's defaults (`kiln train transformer` with no flags); the
 * vocabulary sizes are those of the built-in date data. */
#define TF_DATES_DEFAULTS                                                                          \
  ((tf_config){.src_vocab = 40,                                                                    \
               .tgt_vocab = 15,                                                                    \
               .hidden = 32,                                                                       \
               .ffn = 64,                                                                          \
               .heads = 4,                                                                         \
               .blocks = 2,                                                                        \
               .dropout = 0.1,                                                                     \
               .batch = 64,                                                                        \
               .src_steps = 30,                                                                    \
               .tgt_steps = 11,                                                                    \
               .pre_ln = false,                                                                    \
               .tie_output = false,                                                                \
               .dtype = KL_F32})

/* NULL when every field is usable, else a static message naming the field. */
const char *tf_config_check(const tf_config *c);

/* Training graph. Arguments, in order:
 *   src     i32[B, Ts]  source ids, <eos> then <pad> after the sentence
 *   src_len i32[B]      valid source lengths (attention masks)
 *   dec_in  i32[B, Tt]  decoder inputs: <bos> then the target shifted right
 *   tgt     i32[B, Tt]  target ids
 *   tgt_len i32[B]      valid target lengths (loss mask)
 * Outputs, in order:
 *   0 loss  scalar: sum over the batch of d2l's MaskedSoftmaxCELoss (per
 *           sequence the mean over Tt of the masked per-token loss)
 *   1 attn  [B, heads, Tt, Ts]: the last decoder block's cross-attention
 *           weights (before dropout)
 * The decoder's self-attention is causal (d2l's training-mode
 * dec_valid_lens = 1..Tt). Rows with tgt_len 0 contribute nothing. The
 * graph is owned by the caller. Every builder returns a NULL graph when
 * tf_config_check(c) fails or memory runs out. */
typedef struct tf_train {
  kl_graph *g;
  kl_value loss, attn;
} tf_train;
tf_train tf_build_train(const tf_config *c);

/* Encoder graph. Arguments: src i32[B, Ts], src_len i32[B].
 * Output: 0 enc [B, Ts, hidden], the encoder stack's output. */
kl_graph *tf_build_encoder(const tf_config *c);

/* Decoder over a padded prefix, causally masked, so position t depends on
 * dec_in[:, 0..t] only. Arguments: dec_in i32[B, Tt], enc [B, Ts, hidden],
 * src_len i32[B]. Outputs: 0 logp [B, Tt, V] log-softmax of the logits,
 * 1 attn [B, heads, Tt, Ts] the last block's cross-attention weights. */
kl_graph *tf_build_decoder(const tf_config *c);

/* ---- incremental decoding with a key/value cache ------------------------
 * Greedy and beam search run the encoder side once per sentence and then
 * one graph per output position that computes the new position only: the
 * keys and values of earlier positions come from a cache the caller keeps,
 * so a step costs O(t) attention and O(1) projections, not a full prefix.
 * Both graphs use the decoding config: c->batch rows (sentences, or beam
 * hypotheses), c->tgt_steps the cache length (the longest output). */

/* Memory graph. Arguments: src i32[B, Ts], src_len i32[B].
 * Outputs, per decoder block i = 0..blocks-1 in order: the cross-attention
 * keys then values of that block, W_k(enc) and W_v(enc) [B, Ts, hidden]
 * (2 * blocks outputs), named "block<i>_k", "block<i>_v". */
kl_graph *tf_build_memory(const tf_config *c);

/* One decoder step at position pos. Arguments, in order:
 *   token   i32[B]                this position's input id (<bos> first)
 *   cache   2 * blocks tensors [B, Tt, hidden]: per block the self-attention
 *           keys then values of positions 0..pos-1 (later positions are
 *           ignored: never read, whatever they hold, NaN included)
 *   memory  2 * blocks tensors [B, Ts, hidden], tf_build_memory's outputs
 *   src_len i32[B]
 *   pos     i32[B]                this position, 0 <= pos < Tt (per row, so
 *                                 rows may be at different positions)
 * Outputs, in order:
 *   0                  logp [B, V]: log-softmax of this position's logits
 *   1 .. 2*blocks      the caches with position pos replaced by this step's
 *                      keys/values and every other position copied
 *   2*blocks + 1       attn [B, heads, Ts]: the last block's cross-attention
 *                      weights of this position
 * Feeding outputs 1..2*blocks back as the next step's cache reproduces
 * tf_build_decoder's position-t outputs (logp row t, attn[:, :, t, :]). */
kl_graph *tf_build_step(const tf_config *c);

/* The registry hook: the training graph at the date task's defaults. */
kl_graph *tf_default_graph(int *loss_output);

#endif
