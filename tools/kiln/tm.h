/* The translation models as the CLI sees them: one config for both shipped
 * encoder-decoders (seq2seq-attn, d2l's GRU with Bahdanau attention, and
 * transformer, d2l's Transformer), and what differs between them behind a
 * switch on tm_arch: the model's own config, its training graph, its
 * decoding graphs and their tensor layout, and the config's JSON form in
 * checkpoints. Everything else in the CLI's s2s_* layer is shared. */
#ifndef KILN_CLI_TM_H
#define KILN_CLI_TM_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "models/seq2seq_attn.h"
#include "models/transformer.h"

typedef enum tm_arch { TM_SEQ2SEQ_ATTN, TM_TRANSFORMER } tm_arch;

/* Both models' settings: the shared fields, then each architecture's own
 * (ignored by the other). */
typedef struct tm_config {
  tm_arch arch;
  int64_t src_vocab, tgt_vocab;
  int64_t batch, src_steps, tgt_steps;
  double dropout;
  kl_dtype dtype;
  int64_t hidden;          /* GRU state / model width */
  int64_t layers;          /* GRU layers / Transformer blocks */
  int64_t embed;           /* seq2seq-attn only */
  int64_t heads, ffn;      /* transformer only */
  bool pre_ln, tie_output; /* transformer only */
} tm_config;

/* "seq2seq-attn" or "transformer" (the registry's and checkpoints' name). */
const char *tm_arch_name(tm_arch a);
/* false when name is neither. */
bool tm_arch_from_name(const char *name, tm_arch *a);

tm_config tm_from_s2s(const s2s_config *c);
tm_config tm_from_tf(const tf_config *c);
s2s_config tm_to_s2s(const tm_config *c);
tf_config tm_to_tf(const tm_config *c);

/* NULL when c is usable, else a static message naming the field. */
const char *tm_check(const tm_config *c);
/* The first model setting (by its --set name) in which a and b differ,
 * NULL when they describe the same model; the vocabularies, which come
 * from the data, and the dtype are not compared. */
const char *tm_config_differs(const tm_config *a, const tm_config *b);

/* The training graph (both models share its arguments: src, src_len,
 * dec_in, tgt, tgt_len; outputs: loss then attn). NULL g when out of
 * memory or c is not usable. */
typedef struct tm_train {
  kl_graph *g;
  kl_value loss;
} tm_train;
tm_train tm_build_train(const tm_config *c);

/* The decoding graphs of c (c->batch rows) and how their tensors fit:
 *   encoder: (src, src_len) -> mem[0..n_mem) then, when state_from_encoder,
 *            the initial state[0..n_state); otherwise the state starts zero
 *   step:    (token, state..., mem..., src_len[, pos]) -> (logp, state'...,
 *            attn [B, heads, Ts])
 * Row r of state tensor i is the slices at index r of axis state_axis. */
#define TM_MAX_DECODE_TENSORS 64 /* 2 per Transformer block, 32 blocks */
typedef struct tm_decode_layout {
  int n_mem, n_state;
  bool state_from_encoder;
  bool step_takes_pos; /* the position as i32[B] after src_len */
  int state_axis;
  int64_t heads;                                /* attention maps per step */
  int64_t mem_dims[TM_MAX_DECODE_TENSORS][3];   /* each mem tensor's shape */
  int64_t state_dims[TM_MAX_DECODE_TENSORS][3]; /* each state tensor's shape */
  int64_t max_len; /* the longest output the step graph can make; 0: any */
} tm_decode_layout;

/* false with *why (static) when c is unusable or has too many blocks. */
bool tm_decode_layout_of(const tm_config *c, tm_decode_layout *l, const char **why);
kl_graph *tm_build_decode_encoder(const tm_config *c);
kl_graph *tm_build_decode_step(const tm_config *c);

/* The config as compact JSON (malloc'd; NULL when out of memory) without
 * the tokenizer, which the caller adds as "tokens". */
char *tm_config_json(const tm_config *c, const char *tokens);
/* Parses tm_config_json's text for architecture a into *c and the tokens
 * field into *char_tokens. false with d set naming path. */
bool tm_config_parse(tm_arch a, const char *text, const char *path, tm_config *c, bool *char_tokens,
                     ir_diag *d);

#endif
