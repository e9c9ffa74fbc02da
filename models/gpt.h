/* gpt: a decoder-only character language model in the shape of nanoGPT
 * (Karpathy's model.py): learned token and position embeddings, pre-LN
 * blocks of causal multi-head self-attention and a GELU MLP, a final
 * LayerNorm and an output head tied to the token embedding. Parameter
 * names and layouts are nanoGPT's state_dict's, so weights map 1:1. */
#ifndef KILN_MODELS_GPT_H
#define KILN_MODELS_GPT_H

#include "frontend/kiln.h"

typedef struct gpt_config {
  int64_t vocab;  /* characters */
  int64_t block;  /* context length T: positions 0..T-1 */
  int64_t embed;  /* model width C */
  int64_t heads;  /* divides embed */
  int64_t layers; /* transformer blocks */
  double dropout; /* after the embeddings, on attention weights, after
                     each block's attention and MLP projections */
  int64_t batch;  /* rows per graph run (static shapes) */
  kl_dtype dtype; /* KL_F32 for training; KL_F64 for gradient checks */
  bool no_bias;   /* nanoGPT's bias=False (its train.py default): no Linear
                     biases and LayerNorms with a gain only */
} gpt_config;

/* `kiln train gpt` with no flags: a small model that trains in about a
 * minute on 2 cores on the built-in text; vocab is set from the data. */
#define GPT_DATES_DEFAULTS                                                                         \
  ((gpt_config){.vocab = 64,                                                                       \
                .block = 64,                                                                       \
                .embed = 64,                                                                       \
                .heads = 4,                                                                        \
                .layers = 2,                                                                       \
                .dropout = 0.1,                                                                    \
                .batch = 32,                                                                       \
                .dtype = KL_F32})

/* NULL when every field is usable, else a static message naming the field. */
const char *gpt_config_check(const gpt_config *c);

/* Parameters, created in nanoGPT's named_parameters() order:
 *   transformer.wte.weight [V, C]     N(0, 0.02); also the output head
 *   transformer.wpe.weight [T, C]     N(0, 0.02)
 *   per block i: transformer.h.<i>.
 *     ln_1.weight, ln_1.bias [C]      ones, zeros
 *     attn.c_attn.weight [3C, C], attn.c_attn.bias [3C]   (q, k, v stacked)
 *     attn.c_proj.weight [C, C], attn.c_proj.bias [C]
 *     ln_2.weight, ln_2.bias [C]
 *     mlp.c_fc.weight [4C, C], mlp.c_fc.bias [4C]
 *     mlp.c_proj.weight [C, 4C], mlp.c_proj.bias [C]
 *   transformer.ln_f.weight, transformer.ln_f.bias [C]
 * Linear weights N(0, 0.02), c_proj weights N(0, 0.02 / sqrt(2 * layers)),
 * biases zeros; LayerNorm eps 1e-5; GELU exact (erf); attention scaled by
 * 1 / sqrt(C / heads) and causally masked. There is no lm_head.weight: the
 * head is wte (logits = x wte^T, no bias), as nanoGPT ties them.
 * With no_bias there is no parameter named *.bias: nanoGPT's bias=False. */

/* Training graph. Arguments: tokens i32[B, T], targets i32[B, T].
 * Outputs: 0 loss, scalar: the mean over all B * T positions of the
 * cross-entropy of the logits against targets (F.cross_entropy's mean).
 * The graph is owned by the caller; NULL graph when gpt_config_check(c)
 * fails or memory runs out. */
typedef struct gpt_train {
  kl_graph *g;
  kl_value loss;
} gpt_train;
gpt_train gpt_build_train(const gpt_config *c);

/* Sampling graph (no dropout is applied unless compiled for training).
 * Arguments: tokens i32[B, T]. Outputs: 0 logits [B, T, V]. Position t
 * depends on tokens[:, 0..t] only, so a prompt of length n < T, padded
 * with anything, gives the next character's logits at row n - 1. */
kl_graph *gpt_build_logits(const gpt_config *c);

/* The registry hook: the training graph at GPT_DATES_DEFAULTS. */
kl_graph *gpt_default_graph(int *loss_output);

#endif
