/* seq2seq-attn: d2l's RNN encoder-decoder with Bahdanau attention (d2l
 * 11.4, Seq2SeqAttentionDecoder), as three graphs that share parameters by
 * name: the teacher-forced training graph unrolled over the target steps,
 * and, for decoding, the encoder and a single decoder step. Parameter names
 * and layouts are PyTorch's for the same d2l modules (nn.GRU weight_ih_l0
 * [3H, in], nn.Linear weight [out, in]), so a checkpoint loads into the
 * d2l model with load_state_dict and back. */
#ifndef KILN_MODELS_SEQ2SEQ_ATTN_H
#define KILN_MODELS_SEQ2SEQ_ATTN_H

#include "frontend/kiln.h"

typedef struct s2s_config {
  int64_t src_vocab, tgt_vocab;
  int64_t embed, hidden, layers;
  double dropout;    /* between GRU layers and on the attention weights */
  int64_t batch;     /* rows per graph run (static shapes) */
  int64_t src_steps; /* source length after truncation/padding */
  int64_t tgt_steps; /* target length (teacher forcing unrolls this many) */
  kl_dtype dtype;    /* KL_F32 for training; KL_F64 for gradient checks */
} s2s_config;

/* The date task's defaults (`kiln train seq2seq-attn` with no flags); the
 * vocabulary sizes are those of the built-in date data (character tokens). */
#define S2S_DATES_DEFAULTS                                                                         \
  ((s2s_config){.src_vocab = 40,                                                                   \
                .tgt_vocab = 15,                                                                   \
                .embed = 32,                                                                       \
                .hidden = 64,                                                                      \
                .layers = 2,                                                                       \
                .dropout = 0.1,                                                                    \
                .batch = 64,                                                                       \
                .src_steps = 30,                                                                   \
                .tgt_steps = 11,                                                                   \
                .dtype = KL_F32})

/* NULL when every field is usable, else a static message naming the field. */
const char *s2s_config_check(const s2s_config *c);

/* Training graph. Arguments, in order:
 *   src     i32[B, Ts]  source ids, <eos> then <pad> after the sentence
 *   src_len i32[B]      valid source lengths (attention mask)
 *   dec_in  i32[B, Tt]  decoder inputs: <bos> then the target shifted right
 *   tgt     i32[B, Tt]  target ids
 *   tgt_len i32[B]      valid target lengths (loss mask)
 * Outputs, in order:
 *   0 loss  scalar: sum over the batch of d2l's MaskedSoftmaxCELoss (per
 *           sequence the mean over Tt of the masked per-token loss), what
 *           d2l's train_seq2seq differentiates (l.sum().backward())
 *   1 attn  [B, Tt, Ts]: each decoder step's attention weights (before
 *           dropout)
 * Rows with tgt_len 0 contribute nothing to the loss or the gradients, so
 * a short last batch can be padded with them. The graph is owned by the
 * caller. Every builder returns a NULL graph when s2s_config_check(c)
 * fails or memory runs out. */
typedef struct s2s_train {
  kl_graph *g;
  kl_value loss, attn;
} s2s_train;
s2s_train s2s_build_train(const s2s_config *c);

/* Encoder graph. Arguments: src i32[B, Ts], src_len i32[B] (unused by the
 * encoder itself but kept so both decoding graphs take the same lengths).
 * Outputs: 0 enc  [B, Ts, H]  top-layer outputs (attention values)
 *          1 keys [B, Ts, H]  W_k enc, the projected attention keys
 *          2 state [L, B, H]  final hidden state of every layer */
kl_graph *s2s_build_encoder(const s2s_config *c);

/* One decoder step. Arguments: token i32[B], state f32[L, B, H],
 * enc f32[B, Ts, H], keys f32[B, Ts, H], src_len i32[B].
 * Outputs: 0 logp  [B, V]  log-softmax of the next token's logits
 *          1 state [L, B, H]
 *          2 attn  [B, Ts]  the step's attention weights */
kl_graph *s2s_build_step(const s2s_config *c);

/* The registry hook: the training graph at the date task's defaults. */
kl_graph *s2s_default_graph(int *loss_output);

#endif
