/* transformer: d2l's encoder-decoder Transformer (d2l 11.7) written with the
 * public DSL only. Attention keeps the heads as their own axis ([B, heads,
 * T, d/heads]), the layout d2l's transpose_qkv gives up to folding B and
 * heads into one axis, so the weights come out as [B, heads, Tq, Tk]. The
 * positional encoding is built from iota/pow/sin/cos rather than stored,
 * so constant folding can turn it into a table. The decoding graphs (memory
 * and one step over a key/value cache) reuse the same layers, so a step
 * computes the full decoder's row pos. */
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

/* Which weights of an attention a graph makes (the decoding graphs split a
 * cross-attention: the memory graph projects keys and values once, the step
 * graph projects queries); the others stay kl_none(). */
enum { MHA_Q = 1, MHA_K = 2, MHA_V = 4, MHA_O = 8, MHA_ALL = 15 };

static void mha_make(kl_graph *g, const tf_config *c, const char *scope, unsigned which,
                     mha_params *p) {
  const char *names[4] = {"W_q", "W_k", "W_v", "W_o"};
  kl_value *dst[4] = {&p->w_q, &p->w_k, &p->w_v, &p->w_o};
  kl_scope_push(g, scope);
  for (int i = 0; i < 4; i++) {
    *dst[i] = kl_none();
    if (!(which & (1u << i))) continue;
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
    mha_make(g, c, "attention", MHA_ALL, &b->attn);
    ln_make(g, c, "addnorm1", "ln", &b->an1);
    ffn_make(g, c, &b->ffn);
    ln_make(g, c, "addnorm2", "ln", &b->an2);
    kl_scope_pop(g);
  }
  kl_scope_pop(g);
  if (c->pre_ln) ln_make(g, c, "ln", NULL, &p->ln);
  kl_scope_pop(g);
}

/* The decoder's parameters a graph uses: all of them, all but the
 * cross-attention keys/values (the step graph), or only those (the memory
 * graph). A graph holds only parameters it reads. */
typedef enum { DEC_FULL, DEC_STEP, DEC_MEMORY } dec_part;

static void dec_make(kl_graph *g, const tf_config *c, dec_part part, dec_params *p) {
  bool main = part != DEC_MEMORY;
  unsigned cross = part == DEC_FULL ? MHA_ALL : part == DEC_STEP ? MHA_Q | MHA_O : MHA_K | MHA_V;
  kl_scope_push(g, "decoder");
  if (main) {
    kl_scope_push(g, "embedding");
    p->emb =
        kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->tgt_vocab, c->hidden), KL_INIT_NORMAL, 1);
    kl_scope_pop(g);
  }
  kl_scope_push(g, "blks");
  for (int i = 0; i < c->blocks; i++) {
    dec_block *b = &p->blk[i];
    push_indexed(g, "block", i);
    if (main) {
      mha_make(g, c, "attention1", MHA_ALL, &b->attn1);
      ln_make(g, c, "addnorm1", "ln", &b->an1);
    }
    mha_make(g, c, "attention2", cross, &b->attn2);
    if (main) {
      ln_make(g, c, "addnorm2", "ln", &b->an2);
      ffn_make(g, c, &b->ffn);
      ln_make(g, c, "addnorm3", "ln", &b->an3);
    }
    kl_scope_pop(g);
  }
  kl_scope_pop(g);
  if (!main) {
    kl_scope_pop(g);
    return;
  }
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

/* embedding(ids) * sqrt(d), before the positional encoding. */
static kl_value embed_tokens(const tf_config *c, kl_value table, kl_value ids) {
  return kl_mul_scalar(kl_gather(table, ids), sqrt((double)c->hidden));
}

/* pos_encoding(embedding(ids) * sqrt(d)): [B, T, d], then dropout. */
static kl_value embed(kl_graph *g, const tf_config *c, kl_value table, kl_value ids) {
  int64_t t = kl_dim(ids, 1);
  return dropout(c, kl_add(embed_tokens(c, table, ids), positional_encoding(g, c, t)));
}

/* [B, T, d] -> [B, heads, T, d / heads] (d2l's transpose_qkv without
 * folding B and heads together). */
static kl_value split_heads(const tf_config *c, kl_value x) {
  int64_t b = kl_dim(x, 0), t = kl_dim(x, 1);
  kl_value r = kl_reshape(x, KL_SHAPE(b, t, c->heads, c->hidden / c->heads));
  return kl_transpose(r, KL_INTS(0, 2, 1, 3));
}

/* One of an attention's input projections, heads split. */
static kl_value project(const tf_config *c, kl_value x, kl_value w) {
  return split_heads(c, linear(x, w, kl_none()));
}

/* d2l's DotProductAttention over projected q [B, heads, Tq, dh] and k, v
 * [B, heads, Tk, dh]: scores q k^T / sqrt(dh), masked to -1e6 at key
 * positions >= len (len [B] or [B, heads, Tq], a prefix of the scores'
 * dims), softmax, dropout on the weights, weighted values, heads
 * concatenated back, W_o. *weights gets the weights before dropout,
 * [B, heads, Tq, Tk]. */
static kl_value attend(const tf_config *c, const mha_params *p, kl_value q, kl_value k, kl_value v,
                       kl_value len, kl_value *weights) {
  int64_t b = kl_dim(q, 0), tq = kl_dim(q, 2);
  kl_value s = kl_matmul_t(q, k, false, true);
  s = kl_mul_scalar(s, 1 / sqrt((double)(c->hidden / c->heads)));
  kl_value a = kl_softmax(kl_sequence_mask(s, len, -1e6), -1);
  if (weights) *weights = a;
  kl_value o = kl_matmul(dropout(c, a), v); /* [B, heads, Tq, dh] */
  o = kl_reshape(kl_transpose(o, KL_INTS(0, 2, 1, 3)), KL_SHAPE(b, tq, c->hidden));
  return linear(o, p->w_o, kl_none());
}

/* d2l's MultiHeadAttention: queries attend over kv. */
static kl_value mha(const tf_config *c, const mha_params *p, kl_value queries, kl_value kv,
                    kl_value len, kl_value *weights) {
  kl_value q = project(c, queries, p->w_q);
  kl_value k = project(c, kv, p->w_k);
  kl_value v = project(c, kv, p->w_v);
  return attend(c, p, q, k, v, len, weights);
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

/* A decoder block after its self-attention sublayer: cross-attention over
 * the projected memory k, v [B, heads, Ts, dh], then the FFN. */
static kl_value dec_cross_ffn(const tf_config *c, const dec_block *blk, kl_value x, kl_value k,
                              kl_value v, kl_value src_len, kl_value *attn) {
  kl_value h = sub_in(c, &blk->an2, x);
  kl_value q = project(c, h, blk->attn2.w_q);
  x = sub_out(c, &blk->an2, x, attend(c, &blk->attn2, q, k, v, src_len, attn));
  return sub_out(c, &blk->an3, x, ffn(&blk->ffn, sub_in(c, &blk->an3, x)));
}

/* The decoder stack's output layer: logits [..., V]. */
static kl_value dec_head(const tf_config *c, const dec_params *p, kl_value x) {
  if (c->pre_ln) x = layernorm(x, &p->ln);
  return linear(x, p->dense_w, p->dense_b);
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
    kl_value k = project(c, enc, blk->attn2.w_k);
    kl_value v = project(c, enc, blk->attn2.w_v);
    x = dec_cross_ffn(c, blk, x, k, v, src_len, attn);
  }
  return dec_head(c, p, x);
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
  dec_make(g, c, DEC_FULL, &dp);
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
  dec_make(g, c, DEC_FULL, &dp);
  kl_value attn = kl_none();
  kl_value logits = decode(g, c, &dp, dec_in, enc, src_len, &attn);
  kl_output(kl_name(kl_log_softmax(logits, -1), "logp"));
  kl_output(kl_name(attn, "attn"));
  return g;
}

/* ---- incremental decoding ------------------------------------------------- */

/* One decoder step's self-attention sublayer at per-row positions pos: this
 * step's key and value replace position pos of the caches (*k_next,
 * *v_next; every other position copied). The query attends over the
 * updated caches with positions after pos zeroed first: they are masked out
 * of the softmax, but the caller may leave anything there, and a masked
 * weight of 0 times a NaN value would still be NaN. at_pos and upto are
 * t == pos and t <= pos over the cache positions t, [B, Tt, 1]. */
static kl_value step_self_attention(const tf_config *c, const dec_block *blk, kl_value x,
                                    const kl_value cache[2], kl_value at_pos, kl_value upto,
                                    kl_value zero, kl_value len, kl_value next[2]) {
  kl_value h = sub_in(c, &blk->an1, x); /* [B, 1, d] */
  kl_value q = project(c, h, blk->attn1.w_q);
  kl_value kv[2];
  kl_value w[2] = {blk->attn1.w_k, blk->attn1.w_v};
  for (int j = 0; j < 2; j++) {
    next[j] = kl_select(at_pos, linear(h, w[j], kl_none()), cache[j]);
    kv[j] = split_heads(c, kl_select(upto, next[j], zero));
  }
  return sub_out(c, &blk->an1, x, attend(c, &blk->attn1, q, kv[0], kv[1], len, NULL));
}

/* Names a graph argument or output "<prefix><block>_<k or v>". */
static const char *kv_name(char buf[32], const char *prefix, int i) {
  snprintf(buf, 32, "%s%d_%c", prefix, i / 2, i % 2 ? 'v' : 'k');
  return buf;
}

kl_graph *tf_build_memory(const tf_config *c) {
  if (tf_config_check(c)) return NULL;
  kl_graph *g = kl_graph_create("transformer_memory");
  if (!g) return NULL;
  kl_value src = kl_input(g, "src", KL_I32, KL_SHAPE(c->batch, c->src_steps));
  kl_value src_len = kl_input(g, "src_len", KL_I32, KL_SHAPE(c->batch));
  enc_params ep;
  dec_params dp;
  enc_make(g, c, &ep);
  dec_make(g, c, DEC_MEMORY, &dp);
  kl_value enc = encode(g, c, &ep, src, src_len);
  char name[32];
  for (int i = 0; i < 2 * c->blocks; i++) {
    const mha_params *a = &dp.blk[i / 2].attn2;
    kl_output(kl_name(linear(enc, i % 2 ? a->w_v : a->w_k, kl_none()), kv_name(name, "block", i)));
  }
  return g;
}

kl_graph *tf_build_step(const tf_config *c) {
  if (tf_config_check(c)) return NULL;
  kl_graph *g = kl_graph_create("transformer_step");
  if (!g) return NULL;
  int64_t b = c->batch, tt = c->tgt_steps, d = c->hidden, nkv = 2 * c->blocks;
  kl_value cache[2 * TF_MAX_BLOCKS], mem[2 * TF_MAX_BLOCKS], next[2 * TF_MAX_BLOCKS];
  char name[32];
  kl_value token = kl_input(g, "token", KL_I32, KL_SHAPE(b));
  for (int i = 0; i < nkv; i++)
    cache[i] = kl_input(g, kv_name(name, "cache", i), c->dtype, KL_SHAPE(b, tt, d));
  for (int i = 0; i < nkv; i++)
    mem[i] = kl_input(g, kv_name(name, "memory", i), c->dtype, KL_SHAPE(b, c->src_steps, d));
  kl_value src_len = kl_input(g, "src_len", KL_I32, KL_SHAPE(b));
  kl_value pos = kl_input(g, "pos", KL_I32, KL_SHAPE(b));
  dec_params dp;
  dec_make(g, c, DEC_STEP, &dp);

  /* embed()'s sum at row pos of the full decoder's positional encoding. */
  kl_value pe = kl_gather(positional_encoding(g, c, tt), pos);
  kl_value x = dropout(c, kl_add(embed_tokens(c, dp.emb, token), pe));
  x = kl_reshape(x, KL_SHAPE(b, 1, d));
  kl_value t = kl_iota(g, KL_SHAPE(1, tt, 1), 1, KL_I32);
  kl_value pos3 = kl_reshape(pos, KL_SHAPE(b, 1, 1));
  kl_value at_pos = kl_eq(t, pos3), upto = kl_le(t, pos3);
  kl_value zero = kl_scalar(g, 0, c->dtype), len = kl_add_scalar(pos, 1), attn = kl_none();
  for (int i = 0; i < c->blocks; i++) {
    const dec_block *blk = &dp.blk[i];
    x = step_self_attention(c, blk, x, &cache[2 * i], at_pos, upto, zero, len, &next[2 * i]);
    kl_value k = split_heads(c, mem[2 * i]), v = split_heads(c, mem[2 * i + 1]);
    x = dec_cross_ffn(c, blk, x, k, v, src_len, &attn);
  }
  kl_value logits = kl_reshape(dec_head(c, &dp, x), KL_SHAPE(b, c->tgt_vocab));
  kl_output(kl_name(kl_log_softmax(logits, -1), "logp"));
  for (int i = 0; i < nkv; i++)
    kl_output(kl_name(next[i], kv_name(name, "next", i)));
  kl_output(kl_name(kl_reshape(attn, KL_SHAPE(b, c->heads, c->src_steps)), "attn"));
  return g;
}

kl_graph *tf_default_graph(int *loss_output) {
  if (loss_output) *loss_output = 0;
  tf_config c = TF_DATES_DEFAULTS;
  return tf_build_train(&c).g;
}
