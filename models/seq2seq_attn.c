/* seq2seq-attn: the GRU encoder-decoder with additive (Bahdanau) attention
 * of d2l 11.4, written with the public DSL only. The recurrences are
 * unrolled: one GRU cell per layer per step, each step's cell reading the
 * same parameter values, so autodiff sums their gradients as PyTorch's
 * backward through time does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/seq2seq_attn.h"

/* One GRU layer's parameters, PyTorch's nn.GRU layout (gates r, z, n). */
typedef struct gru_layer {
  kl_value w_ih, w_hh, b_ih, b_hh;
} gru_layer;

#define S2S_MAX_LAYERS 8

typedef struct s2s_params {
  kl_value enc_emb, dec_emb;
  gru_layer enc[S2S_MAX_LAYERS], dec[S2S_MAX_LAYERS];
  kl_value w_q, w_k, w_v; /* attention: [H, H], [H, H], [1, H], no biases */
  kl_value dense_w, dense_b;
} s2s_params;

const char *s2s_config_check(const s2s_config *c) {
  if (!c) return "seq2seq-attn: no config";
  if (c->src_vocab < 4 || c->tgt_vocab < 4) return "seq2seq-attn: vocabularies need >= 4 tokens";
  if (c->embed < 1 || c->hidden < 1) return "seq2seq-attn: embed and hidden must be >= 1";
  if (c->layers < 1 || c->layers > S2S_MAX_LAYERS) return "seq2seq-attn: layers must be 1..8";
  if (!(c->dropout >= 0 && c->dropout < 1)) return "seq2seq-attn: dropout must be in [0, 1)";
  if (c->batch < 1 || c->src_steps < 1 || c->tgt_steps < 1)
    return "seq2seq-attn: batch, src_steps and tgt_steps must be >= 1";
  /* Bounds that keep 3 * hidden, the unrolled step counts and every
   * tensor's element count far from overflow. */
  if (c->src_vocab > (1 << 24) || c->tgt_vocab > (1 << 24) || c->embed > (1 << 16) ||
      c->hidden > (1 << 16) || c->batch > (1 << 20))
    return "seq2seq-attn: vocabularies <= 2^24, embed and hidden <= 65536, batch <= 2^20";
  if (c->src_steps > 4096 || c->tgt_steps > 4096)
    return "seq2seq-attn: src_steps and tgt_steps must be <= 4096";
  if (c->dtype != KL_F32 && c->dtype != KL_F64) return "seq2seq-attn: dtype must be f32 or f64";
  return NULL;
}

/* d2l's xavier_init_weights gives every Linear and GRU weight Xavier's
 * uniform init; biases and embeddings keep PyTorch's defaults
 * (U(-1/sqrt(H), 1/sqrt(H)) for GRU biases, N(0, 1) for embeddings). */
static void gru_params(kl_graph *g, const s2s_config *c, const char *scope, int64_t in0,
                       gru_layer *out) {
  kl_scope_push(g, scope);
  kl_scope_push(g, "rnn");
  int64_t h = c->hidden;
  double bias_bound = 1.0 / sqrt((double)h);
  for (int l = 0; l < c->layers; l++) {
    char name[32];
    int64_t in = l == 0 ? in0 : h;
    snprintf(name, sizeof name, "weight_ih_l%d", l);
    out[l].w_ih = kl_param_init(g, name, c->dtype, KL_SHAPE(3 * h, in), KL_INIT_XAVIER_UNIFORM, 0);
    snprintf(name, sizeof name, "weight_hh_l%d", l);
    out[l].w_hh = kl_param_init(g, name, c->dtype, KL_SHAPE(3 * h, h), KL_INIT_XAVIER_UNIFORM, 0);
    snprintf(name, sizeof name, "bias_ih_l%d", l);
    out[l].b_ih = kl_param_init(g, name, c->dtype, KL_SHAPE(3 * h), KL_INIT_UNIFORM, bias_bound);
    snprintf(name, sizeof name, "bias_hh_l%d", l);
    out[l].b_hh = kl_param_init(g, name, c->dtype, KL_SHAPE(3 * h), KL_INIT_UNIFORM, bias_bound);
  }
  kl_scope_pop(g);
  kl_scope_pop(g);
}

static void make_params(kl_graph *g, const s2s_config *c, s2s_params *p) {
  int64_t e = c->embed, h = c->hidden;
  kl_scope_push(g, "encoder");
  kl_scope_push(g, "embedding");
  p->enc_emb = kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->src_vocab, e), KL_INIT_NORMAL, 1);
  kl_scope_pop(g);
  kl_scope_pop(g);
  gru_params(g, c, "encoder", e, p->enc);

  kl_scope_push(g, "decoder");
  kl_scope_push(g, "attention");
  const char *lin[3] = {"W_q", "W_k", "w_v"};
  kl_value *dst[3] = {&p->w_q, &p->w_k, &p->w_v};
  for (int i = 0; i < 3; i++) {
    kl_scope_push(g, lin[i]);
    *dst[i] = kl_param_init(g, "weight", c->dtype, i == 2 ? KL_SHAPE(1, h) : KL_SHAPE(h, h),
                            KL_INIT_XAVIER_UNIFORM, 0);
    kl_scope_pop(g);
  }
  kl_scope_pop(g);
  kl_scope_push(g, "embedding");
  p->dec_emb = kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->tgt_vocab, e), KL_INIT_NORMAL, 1);
  kl_scope_pop(g);
  kl_scope_push(g, "dense");
  p->dense_w =
      kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->tgt_vocab, h), KL_INIT_XAVIER_UNIFORM, 0);
  p->dense_b = kl_param_init(g, "bias", c->dtype, KL_SHAPE(c->tgt_vocab), KL_INIT_UNIFORM,
                             1 / sqrt((double)h));
  kl_scope_pop(g);
  kl_scope_pop(g);
  /* The decoder's GRU reads [context; embedding] at every step. */
  gru_params(g, c, "decoder", h + e, p->dec);
}

/* x @ w^T + b for a PyTorch-layout weight w [out, in] (b may be kl_none()). */
static kl_value linear(kl_value x, kl_value w, kl_value b) {
  kl_value y = kl_matmul_t(x, w, false, true);
  return kl_value_ok(b) ? kl_add(y, b) : y;
}

/* Columns [from, to) of a [B, N] value. */
static kl_value cols(kl_value x, int64_t from, int64_t to) {
  return kl_slice(x, KL_INTS(0, from), KL_INTS(kl_dim(x, 0), to));
}

/* PyTorch's GRU cell: r = s(gi_r + gh_r), z = s(gi_z + gh_z),
 * n = tanh(gi_n + r * gh_n), h' = (1 - z) n + z h = n + z (h - n),
 * with gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh. */
static kl_value gru_cell(const gru_layer *w, kl_value x, kl_value h) {
  int64_t n = kl_dim(h, 1);
  kl_value gi = linear(x, w->w_ih, w->b_ih), gh = linear(h, w->w_hh, w->b_hh);
  kl_value rz = kl_sigmoid(kl_add(cols(gi, 0, 2 * n), cols(gh, 0, 2 * n)));
  kl_value r = cols(rz, 0, n), z = cols(rz, n, 2 * n);
  kl_value nn = kl_tanh(kl_add(cols(gi, 2 * n, 3 * n), kl_mul(r, cols(gh, 2 * n, 3 * n))));
  return kl_add(nn, kl_mul(z, kl_sub(h, nn)));
}

/* Column t of integer ids [B, T] as [B]. */
static kl_value ids_at(kl_value ids, int64_t t) {
  int64_t b = kl_dim(ids, 0);
  return kl_reshape(kl_slice(ids, KL_INTS(0, t), KL_INTS(b, t + 1)), KL_SHAPE(b));
}

/* Stacks n values [B, H] along a new axis: [n, B, H] (axis 0) or
 * [B, n, H] (axis 1). xs[] is overwritten with the reshaped pieces. */
static kl_value stack(int n, kl_value *xs, int axis) {
  for (int i = 0; i < n; i++) {
    int64_t b = kl_dim(xs[i], 0), h = kl_dim(xs[i], 1);
    xs[i] = kl_reshape(xs[i], axis == 0 ? KL_SHAPE(1, b, h) : KL_SHAPE(b, 1, h));
  }
  return n == 1 ? xs[0] : kl_concat(n, xs, axis);
}

/* The encoder: embedding, then a stack of GRU layers over the source steps
 * from a zero state, dropout between layers (nn.GRU's dropout argument).
 * h[l] receives each layer's final state; outs[t] the top layer's output at
 * step t. */
static void encode(kl_graph *g, const s2s_config *c, const s2s_params *p, kl_value src, kl_value *h,
                   kl_value *outs) {
  int64_t b = c->batch, ts = c->src_steps;
  kl_value zero = kl_broadcast_to(kl_scalar(g, 0.0, c->dtype), KL_SHAPE(b, c->hidden));
  for (int64_t t = 0; t < ts; t++)
    outs[t] = kl_gather(p->enc_emb, ids_at(src, t));
  for (int l = 0; l < c->layers; l++) {
    kl_value state = zero;
    for (int64_t t = 0; t < ts; t++) {
      kl_value x = outs[t];
      if (l > 0 && c->dropout > 0) x = kl_dropout(x, c->dropout);
      state = gru_cell(&p->enc[l], x, state);
      outs[t] = state;
    }
    h[l] = state;
  }
}

/* Additive attention (d2l's AdditiveAttention) for one query per row:
 * scores = w_v tanh(W_q q + W_k k), masked past each row's valid length
 * with -1e6 as d2l's masked_softmax does, softmax over the keys, then the
 * weighted sum of the values. keys are already projected by W_k (the same
 * for every step, so computed once). weights receives [B, Ts]. */
static kl_value additive_attention(const s2s_config *c, const s2s_params *p, kl_value query,
                                   kl_value keys, kl_value values, kl_value len,
                                   kl_value *weights) {
  int64_t b = c->batch, ts = c->src_steps, h = c->hidden;
  kl_value q = kl_reshape(linear(query, p->w_q, kl_none()), KL_SHAPE(b, 1, h));
  kl_value feat = kl_tanh(kl_add(q, keys)); /* [B, Ts, H] */
  kl_value scores = kl_reshape(linear(feat, p->w_v, kl_none()), KL_SHAPE(b, ts));
  kl_value a = kl_softmax(kl_sequence_mask(scores, len, -1e6), 1);
  *weights = a;
  if (c->dropout > 0) a = kl_dropout(a, c->dropout);
  kl_value ctx = kl_matmul(kl_reshape(a, KL_SHAPE(b, 1, ts)), values); /* [B, 1, H] */
  return kl_reshape(ctx, KL_SHAPE(b, h));
}

/* One decoder step from the previous token's ids: attention with the top
 * layer's state as the query, then the GRU stack on [context; embedding].
 * Updates h[] in place and returns the top layer's output. */
static kl_value decode_step(const s2s_config *c, const s2s_params *p, kl_value token, kl_value *h,
                            kl_value enc, kl_value keys, kl_value len, kl_value *weights) {
  kl_value ctx = additive_attention(c, p, h[c->layers - 1], keys, enc, len, weights);
  kl_value in[2] = {ctx, kl_gather(p->dec_emb, token)};
  kl_value x = kl_concat(2, in, 1);
  for (int l = 0; l < c->layers; l++) {
    if (l > 0 && c->dropout > 0) x = kl_dropout(x, c->dropout);
    h[l] = gru_cell(&p->dec[l], x, h[l]);
    x = h[l];
  }
  return x;
}

s2s_train s2s_build_train(const s2s_config *c) {
  s2s_train r = {.loss = kl_none(), .attn = kl_none()};
  if (s2s_config_check(c)) return r;
  kl_graph *g = kl_graph_create("seq2seq_attn_train");
  if (!g) return r;
  r.g = g;
  int64_t b = c->batch, ts = c->src_steps, tt = c->tgt_steps;
  kl_value src = kl_input(g, "src", KL_I32, KL_SHAPE(b, ts));
  kl_value src_len = kl_input(g, "src_len", KL_I32, KL_SHAPE(b));
  kl_value dec_in = kl_input(g, "dec_in", KL_I32, KL_SHAPE(b, tt));
  kl_value tgt = kl_input(g, "tgt", KL_I32, KL_SHAPE(b, tt));
  kl_value tgt_len = kl_input(g, "tgt_len", KL_I32, KL_SHAPE(b));
  s2s_params p;
  make_params(g, c, &p);

  kl_value h[S2S_MAX_LAYERS], *steps = calloc((size_t)(ts > tt ? ts : tt), sizeof *steps);
  kl_value *attn = calloc((size_t)tt, sizeof *attn);
  if (!steps || !attn) {
    free(steps);
    free(attn);
    kl_graph_destroy(g);
    r.g = NULL;
    return r;
  }
  encode(g, c, &p, src, h, steps);
  kl_value enc = stack((int)ts, steps, 1);
  kl_value keys = linear(enc, p.w_k, kl_none());
  for (int64_t t = 0; t < tt; t++)
    steps[t] = decode_step(c, &p, ids_at(dec_in, t), h, enc, keys, src_len, &attn[t]);
  kl_value logits = linear(stack((int)tt, steps, 1), p.dense_w, p.dense_b); /* [B, Tt, V] */
  r.loss = kl_name(kl_sum_all(kl_masked_softmax_cross_entropy(logits, tgt, tgt_len)), "loss");
  r.attn = kl_name(stack((int)tt, attn, 1), "attn");
  kl_output(r.loss);
  kl_output(r.attn);
  free(steps);
  free(attn);
  return r;
}

kl_graph *s2s_build_encoder(const s2s_config *c) {
  if (s2s_config_check(c)) return NULL;
  kl_graph *g = kl_graph_create("seq2seq_attn_encoder");
  kl_value *steps = calloc((size_t)c->src_steps, sizeof *steps);
  if (!g || !steps) {
    free(steps);
    kl_graph_destroy(g);
    return NULL;
  }
  kl_value src = kl_input(g, "src", KL_I32, KL_SHAPE(c->batch, c->src_steps));
  (void)kl_input(g, "src_len", KL_I32, KL_SHAPE(c->batch));
  s2s_params p;
  make_params(g, c, &p);
  kl_value h[S2S_MAX_LAYERS];
  encode(g, c, &p, src, h, steps);
  kl_value enc = stack((int)c->src_steps, steps, 1);
  kl_output(kl_name(enc, "enc"));
  kl_output(kl_name(linear(enc, p.w_k, kl_none()), "keys"));
  kl_output(kl_name(stack(c->layers, h, 0), "state"));
  free(steps);
  return g;
}

kl_graph *s2s_build_step(const s2s_config *c) {
  if (s2s_config_check(c)) return NULL;
  kl_graph *g = kl_graph_create("seq2seq_attn_step");
  if (!g) return NULL;
  int64_t b = c->batch, ts = c->src_steps, hd = c->hidden;
  kl_value token = kl_input(g, "token", KL_I32, KL_SHAPE(b));
  kl_value state = kl_input(g, "state", c->dtype, KL_SHAPE(c->layers, b, hd));
  kl_value enc = kl_input(g, "enc", c->dtype, KL_SHAPE(b, ts, hd));
  kl_value keys = kl_input(g, "keys", c->dtype, KL_SHAPE(b, ts, hd));
  kl_value len = kl_input(g, "src_len", KL_I32, KL_SHAPE(b));
  s2s_params p;
  make_params(g, c, &p);
  kl_value h[S2S_MAX_LAYERS], w;
  for (int l = 0; l < c->layers; l++)
    h[l] = kl_reshape(kl_slice(state, KL_INTS(l, 0, 0), KL_INTS(l + 1, b, hd)), KL_SHAPE(b, hd));
  kl_value out = decode_step(c, &p, token, h, enc, keys, len, &w);
  kl_output(kl_name(kl_log_softmax(linear(out, p.dense_w, p.dense_b), 1), "logp"));
  kl_output(kl_name(stack(c->layers, h, 0), "state"));
  kl_output(kl_name(w, "attn"));
  return g;
}

kl_graph *s2s_default_graph(int *loss_output) {
  if (loss_output) *loss_output = 0;
  s2s_config c = S2S_DATES_DEFAULTS;
  return s2s_build_train(&c).g;
}
