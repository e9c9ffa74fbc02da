/* transformer: d2l's encoder-decoder Transformer (d2l 11.7) written with the
 * public DSL only. Attention keeps the heads as their own axis ([B, heads,
 * T, d/heads]), the layout d2l's transpose_qkv gives up to folding B and
 * heads into one axis, so the weights come out as [B, heads, Tq, Tk]. The
 * positional encoding is built from iota/pow/sin/cos rather than stored,
 * so constant folding can turn it into a table. */
#include <math.h>
#include <stdio.h>

#include "models/transformer.h"

#define TF_MAX_BLOCKS 32

typedef struct mha_params {
  kl_value w_q, w_k, w_v, w_o; /* [d, d] each, no biases (d2l's bias=False) */
} mha_params;

typedef struct ln_params {
  kl_value g, b;
} ln_params;

typedef struct ffn_params {
  kl_value w1, b1, w2, b2;
} ffn_params;

typedef struct enc_block {
  mha_params attn;
  ln_params an1, an2;
  ffn_params ffn;
} enc_block;

typedef struct dec_block {
  mha_params attn1, attn2; /* causal self-attention, cross-attention */
  ln_params an1, an2, an3;
  ffn_params ffn;
} dec_block;

typedef struct enc_params {
  kl_value emb;
  enc_block blk[TF_MAX_BLOCKS];
  ln_params ln; /* pre-LN only */
} enc_params;

typedef struct dec_params {
  kl_value emb;
  dec_block blk[TF_MAX_BLOCKS];
  ln_params ln; /* pre-LN only */
  kl_value dense_w, dense_b;
} dec_params;

const char *tf_config_check(const tf_config *c) {
  if (!c) return "transformer: no config";
  if (c->src_vocab < 4 || c->tgt_vocab < 4) return "transformer: vocabularies need >= 4 tokens";
  if (c->hidden < 2 || c->hidden % 2)
    return "transformer: hidden must be even and >= 2 (sin/cos pairs of the positional encoding)";
  if (c->heads < 1 || c->hidden % c->heads)
    return "transformer: heads must be >= 1 and divide hidden";
  if (c->ffn < 1) return "transformer: ffn must be >= 1";
  if (c->blocks < 1 || c->blocks > TF_MAX_BLOCKS) return "transformer: blocks must be 1..32";
  if (!(c->dropout >= 0 && c->dropout < 1)) return "transformer: dropout must be in [0, 1)";
  if (c->batch < 1 || c->src_steps < 1 || c->tgt_steps < 1)
    return "transformer: batch, src_steps and tgt_steps must be >= 1";
  /* Bounds that keep every tensor's element count far from overflow. */
  if (c->src_vocab > (1 << 24) || c->tgt_vocab > (1 << 24) || c->hidden > (1 << 16) ||
      c->ffn > (1 << 18) || c->batch > (1 << 20))
    return "transformer: vocabularies <= 2^24, hidden <= 65536, ffn <= 2^18, batch <= 2^20";
  if (c->src_steps > 4096 || c->tgt_steps > 4096)
    return "transformer: src_steps and tgt_steps must be <= 4096";
  if (c->dtype != KL_F32 && c->dtype != KL_F64) return "transformer: dtype must be f32 or f64";
  return NULL;
}

/* ---- parameters --------------------------------------------------------- */

/* PyTorch's nn.Linear default init (d2l v1.0 keeps it for the
 * Transformer): weight and bias U(-1/sqrt(in), 1/sqrt(in)). */
static kl_value linear_param(kl_graph *g, const tf_config *c, const char *name, kl_ints shape,
                             int64_t in) {
  return kl_param_init(g, name, c->dtype, shape, KL_INIT_UNIFORM, 1 / sqrt((double)in));
}

static void push_indexed(kl_graph *g, const char *prefix, int i) {
  char name[32];
  snprintf(name, sizeof name, "%s%d", prefix, i);
  kl_scope_push(g, name);
}

static void mha_make(kl_graph *g, const tf_config *c, const char *scope, mha_params *p) {
  const char *names[4] = {"W_q", "W_k", "W_v", "W_o"};
  kl_value *dst[4] = {&p->w_q, &p->w_k, &p->w_v, &p->w_o};
  kl_scope_push(g, scope);
  for (int i = 0; i < 4; i++) {
    kl_scope_push(g, names[i]);
    *dst[i] = linear_param(g, c, "weight", KL_SHAPE(c->hidden, c->hidden), c->hidden);
    kl_scope_pop(g);
  }
  kl_scope_pop(g);
}

/* nn.LayerNorm: weight ones, bias zeros. scope2 may be NULL. */
static void ln_make(kl_graph *g, const tf_config *c, const char *scope, const char *scope2,
                    ln_params *p) {
  kl_scope_push(g, scope);
  if (scope2) kl_scope_push(g, scope2);
  p->g = kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->hidden), KL_INIT_ONES, 0);
  p->b = kl_param_init(g, "bias", c->dtype, KL_SHAPE(c->hidden), KL_INIT_ZEROS, 0);
  if (scope2) kl_scope_pop(g);
  kl_scope_pop(g);
}

static void ffn_make(kl_graph *g, const tf_config *c, ffn_params *p) {
  kl_scope_push(g, "ffn");
  kl_scope_push(g, "dense1");
  p->w1 = linear_param(g, c, "weight", KL_SHAPE(c->ffn, c->hidden), c->hidden);
  p->b1 = linear_param(g, c, "bias", KL_SHAPE(c->ffn), c->hidden);
  kl_scope_pop(g);
  kl_scope_push(g, "dense2");
  p->w2 = linear_param(g, c, "weight", KL_SHAPE(c->hidden, c->ffn), c->ffn);
  p->b2 = linear_param(g, c, "bias", KL_SHAPE(c->hidden), c->ffn);
  kl_scope_pop(g);
  kl_scope_pop(g);
}

/* Created in the order of d2l's named_parameters(); nn.Embedding's
 * default N(0, 1). Blocks are nn.Sequential children named "block<i>". */
static void enc_make(kl_graph *g, const tf_config *c, enc_params *p) {
  kl_scope_push(g, "encoder");
  kl_scope_push(g, "embedding");
  p->emb =
      kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->src_vocab, c->hidden), KL_INIT_NORMAL, 1);
  kl_scope_pop(g);
  kl_scope_push(g, "blks");
  for (int i = 0; i < c->blocks; i++) {
    enc_block *b = &p->blk[i];
    push_indexed(g, "block", i);
    mha_make(g, c, "attention", &b->attn);
    ln_make(g, c, "addnorm1", "ln", &b->an1);
    ffn_make(g, c, &b->ffn);
    ln_make(g, c, "addnorm2", "ln", &b->an2);
    kl_scope_pop(g);
  }
  kl_scope_pop(g);
  if (c->pre_ln) ln_make(g, c, "ln", NULL, &p->ln);
  kl_scope_pop(g);
}

static void dec_make(kl_graph *g, const tf_config *c, dec_params *p) {
  kl_scope_push(g, "decoder");
  kl_scope_push(g, "embedding");
  p->emb =
      kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->tgt_vocab, c->hidden), KL_INIT_NORMAL, 1);
  kl_scope_pop(g);
  kl_scope_push(g, "blks");
  for (int i = 0; i < c->blocks; i++) {
    dec_block *b = &p->blk[i];
    push_indexed(g, "block", i);
    mha_make(g, c, "attention1", &b->attn1);
    ln_make(g, c, "addnorm1", "ln", &b->an1);
    mha_make(g, c, "attention2", &b->attn2);
    ln_make(g, c, "addnorm2", "ln", &b->an2);
    ffn_make(g, c, &b->ffn);
    ln_make(g, c, "addnorm3", "ln", &b->an3);
    kl_scope_pop(g);
  }
  kl_scope_pop(g);
  if (c->pre_ln) ln_make(g, c, "ln", NULL, &p->ln);
  kl_scope_push(g, "dense");
  p->dense_w = c->tie_output
                   ? p->emb
                   : linear_param(g, c, "weight", KL_SHAPE(c->tgt_vocab, c->hidden), c->hidden);
  p->dense_b = linear_param(g, c, "bias", KL_SHAPE(c->tgt_vocab), c->hidden);
  kl_scope_pop(g);
  kl_scope_pop(g);
}

/* ---- layers ------------------------------------------------------------- */

/* x @ w^T + b for a PyTorch-layout weight w [out, in] (b may be kl_none()). */
static kl_value linear(kl_value x, kl_value w, kl_value b) {
  kl_value y = kl_matmul_t(x, w, false, true);
  return kl_value_ok(b) ? kl_add(y, b) : y;
}

static kl_value layernorm(kl_value x, const ln_params *p) {
  return kl_layernorm(x, p->g, p->b, 1e-5); /* nn.LayerNorm's eps */
}

static kl_value dropout(const tf_config *c, kl_value x) {
  return c->dropout > 0 ? kl_dropout(x, c->dropout) : x;
}

/* d2l's PositionalEncoding P [T, d]: P[t, 2i] = sin(t / 10000^(2i/d)),
 * P[t, 2i+1] = cos(...), the pairs interleaved by stacking sin and cos on
 * a trailing axis of 2 and flattening it. */
static kl_value positional_encoding(kl_graph *g, const tf_config *c, int64_t t) {
  int64_t d = c->hidden, half = d / 2;
  kl_value pos = kl_iota(g, KL_SHAPE(t, half), 0, c->dtype);
  kl_value two_i = kl_mul_scalar(kl_iota(g, KL_SHAPE(t, half), 1, c->dtype), 2.0);
  kl_value expo = kl_div(two_i, kl_scalar(g, (double)d, c->dtype));
  kl_value x = kl_div(pos, kl_pow(kl_scalar(g, 10000.0, c->dtype), expo));
  kl_value sc[2] = {kl_reshape(kl_sin(x), KL_SHAPE(t, half, 1)),
                    kl_reshape(kl_cos(x), KL_SHAPE(t, half, 1))};
  return kl_reshape(kl_concat(2, sc, 2), KL_SHAPE(t, d));
}

/* pos_encoding(embedding(ids) * sqrt(d)): [B, T, d], then dropout. */
static kl_value embed(kl_graph *g, const tf_config *c, kl_value table, kl_value ids) {
  int64_t t = kl_dim(ids, 1);
  kl_value x = kl_mul_scalar(kl_gather(table, ids), sqrt((double)c->hidden));
  return dropout(c, kl_add(x, positional_encoding(g, c, t)));
}

/* [B, T, d] -> [B, heads, T, d / heads] (d2l's transpose_qkv without
 * folding B and heads together). */
static kl_value split_heads(const tf_config *c, kl_value x) {
  int64_t b = kl_dim(x, 0), t = kl_dim(x, 1);
  kl_value r = kl_reshape(x, KL_SHAPE(b, t, c->heads, c->hidden / c->heads));
  return kl_transpose(r, KL_INTS(0, 2, 1, 3));
}

/* d2l's MultiHeadAttention with DotProductAttention: scores q k^T /
 * sqrt(d / heads), masked to -1e6 at key positions >= len (len [B] or
 * [B, heads, Tq], a prefix of the scores' dims), softmax, dropout on the
 * weights, weighted values, heads concatenated back, W_o. *weights gets
 * the weights before dropout, [B, heads, Tq, Tk]. */
static kl_value mha(const tf_config *c, const mha_params *p, kl_value queries, kl_value kv,
                    kl_value len, kl_value *weights) {
  int64_t b = kl_dim(queries, 0), tq = kl_dim(queries, 1);
  kl_value q = split_heads(c, linear(queries, p->w_q, kl_none()));
  kl_value k = split_heads(c, linear(kv, p->w_k, kl_none()));
  kl_value v = split_heads(c, linear(kv, p->w_v, kl_none()));
  kl_value s = kl_matmul_t(q, k, false, true);
  s = kl_mul_scalar(s, 1 / sqrt((double)(c->hidden / c->heads)));
  kl_value a = kl_softmax(kl_sequence_mask(s, len, -1e6), -1);
  if (weights) *weights = a;
  kl_value o = kl_matmul(dropout(c, a), v); /* [B, heads, Tq, dh] */
  o = kl_reshape(kl_transpose(o, KL_INTS(0, 2, 1, 3)), KL_SHAPE(b, tq, c->hidden));
  return linear(o, p->w_o, kl_none());
}

static kl_value ffn(const ffn_params *p, kl_value x) {
  return linear(kl_relu(linear(x, p->w1, p->b1)), p->w2, p->b2);
}

/* Residual sublayer around f(x) = y: post-LN LayerNorm(dropout(y) + x)
 * (d2l's AddNorm) takes y computed on x; pre-LN x + dropout(y) takes y
 * computed on LayerNorm(x) — so callers ask sub_in() for f's input. */
static kl_value sub_in(const tf_config *c, const ln_params *ln, kl_value x) {
  return c->pre_ln ? layernorm(x, ln) : x;
}

static kl_value sub_out(const tf_config *c, const ln_params *ln, kl_value x, kl_value y) {
  kl_value r = kl_add(dropout(c, y), x);
  return c->pre_ln ? r : layernorm(r, ln);
}

static kl_value encode(kl_graph *g, const tf_config *c, const enc_params *p, kl_value src,
                       kl_value src_len) {
  kl_value x = embed(g, c, p->emb, src);
  for (int i = 0; i < c->blocks; i++) {
    const enc_block *b = &p->blk[i];
    kl_value h = sub_in(c, &b->an1, x);
    x = sub_out(c, &b->an1, x, mha(c, &b->attn, h, h, src_len, NULL));
    x = sub_out(c, &b->an2, x, ffn(&b->ffn, sub_in(c, &b->an2, x)));
  }
  return c->pre_ln ? layernorm(x, &p->ln) : x;
}

/* The decoder stack over dec_in [B, Tt]: logits [B, Tt, V]; *attn gets
 * the last block's cross-attention weights. */
static kl_value decode(kl_graph *g, const tf_config *c, const dec_params *p, kl_value dec_in,
                       kl_value enc, kl_value src_len, kl_value *attn) {
  int64_t b = c->batch, tt = kl_dim(dec_in, 1);
  /* Causal self-attention: query t sees keys 0..t, d2l's dec_valid_lens
   * 1..Tt repeated over the batch (and here over the heads). */
  kl_value causal = kl_add_scalar(kl_iota(g, KL_SHAPE(b, c->heads, tt), 2, KL_I32), 1);
  kl_value x = embed(g, c, p->emb, dec_in);
  for (int i = 0; i < c->blocks; i++) {
    const dec_block *blk = &p->blk[i];
    kl_value h = sub_in(c, &blk->an1, x);
    x = sub_out(c, &blk->an1, x, mha(c, &blk->attn1, h, h, causal, NULL));
    h = sub_in(c, &blk->an2, x);
    x = sub_out(c, &blk->an2, x, mha(c, &blk->attn2, h, enc, src_len, attn));
    x = sub_out(c, &blk->an3, x, ffn(&blk->ffn, sub_in(c, &blk->an3, x)));
  }
  if (c->pre_ln) x = layernorm(x, &p->ln);
  return linear(x, p->dense_w, p->dense_b);
}

/* ---- graphs ------------------------------------------------------------- */

tf_train tf_build_train(const tf_config *c) {
  tf_train r = {.loss = kl_none(), .attn = kl_none()};
  if (tf_config_check(c)) return r;
  kl_graph *g = kl_graph_create("transformer_train");
  if (!g) return r;
  r.g = g;
  int64_t b = c->batch, ts = c->src_steps, tt = c->tgt_steps;
  kl_value src = kl_input(g, "src", KL_I32, KL_SHAPE(b, ts));
  kl_value src_len = kl_input(g, "src_len", KL_I32, KL_SHAPE(b));
  kl_value dec_in = kl_input(g, "dec_in", KL_I32, KL_SHAPE(b, tt));
  kl_value tgt = kl_input(g, "tgt", KL_I32, KL_SHAPE(b, tt));
  kl_value tgt_len = kl_input(g, "tgt_len", KL_I32, KL_SHAPE(b));
  enc_params ep;
  dec_params dp;
  enc_make(g, c, &ep);
  dec_make(g, c, &dp);
  kl_value enc = encode(g, c, &ep, src, src_len), attn = kl_none();
  kl_value logits = decode(g, c, &dp, dec_in, enc, src_len, &attn);
  r.loss = kl_name(kl_sum_all(kl_masked_softmax_cross_entropy(logits, tgt, tgt_len)), "loss");
  r.attn = kl_name(attn, "attn");
  kl_output(r.loss);
  kl_output(r.attn);
  return r;
}

kl_graph *tf_build_encoder(const tf_config *c) {
  if (tf_config_check(c)) return NULL;
  kl_graph *g = kl_graph_create("transformer_encoder");
  if (!g) return NULL;
  kl_value src = kl_input(g, "src", KL_I32, KL_SHAPE(c->batch, c->src_steps));
  kl_value src_len = kl_input(g, "src_len", KL_I32, KL_SHAPE(c->batch));
  enc_params ep;
  enc_make(g, c, &ep);
  kl_output(kl_name(encode(g, c, &ep, src, src_len), "enc"));
  return g;
}

kl_graph *tf_build_decoder(const tf_config *c) {
  if (tf_config_check(c)) return NULL;
  kl_graph *g = kl_graph_create("transformer_decoder");
  if (!g) return NULL;
  int64_t b = c->batch;
  kl_value dec_in = kl_input(g, "dec_in", KL_I32, KL_SHAPE(b, c->tgt_steps));
  kl_value enc = kl_input(g, "enc", c->dtype, KL_SHAPE(b, c->src_steps, c->hidden));
  kl_value src_len = kl_input(g, "src_len", KL_I32, KL_SHAPE(b));
  dec_params dp;
  dec_make(g, c, &dp);
  kl_value attn = kl_none();
  kl_value logits = decode(g, c, &dp, dec_in, enc, src_len, &attn);
  kl_output(kl_name(kl_log_softmax(logits, -1), "logp"));
  kl_output(kl_name(attn, "attn"));
  return g;
}

kl_graph *tf_default_graph(int *loss_output) {
  if (loss_output) *loss_output = 0;
  tf_config c = TF_DATES_DEFAULTS;
  return tf_build_train(&c).g;
}
