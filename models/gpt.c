/* gpt: nanoGPT's decoder-only language model (Karpathy's model.py, GPT with
 * bias=True, or bias=False with no_bias) written with the public DSL only. Each block's parameters
 * are created just before the block is applied, which is also nanoGPT's named_parameters() order,
 * so no per-block tables are needed. Attention keeps the heads as their own axis ([B, heads, T, C /
 * heads]), as nanoGPT's view + transpose does. */
#include <math.h>
#include <stdio.h>

#include "models/gpt.h"

#define GPT_MAX_LAYERS 64

typedef struct ln_params {
  kl_value w, b;
} ln_params;

typedef struct block_params {
  ln_params ln_1, ln_2;
  kl_value attn_w, attn_b, attn_proj_w, attn_proj_b; /* c_attn, c_proj */
  kl_value fc_w, fc_b, mlp_proj_w, mlp_proj_b;       /* mlp.c_fc, mlp.c_proj */
} block_params;

const char *gpt_config_check(const gpt_config *c) {
  if (!c) return "gpt: no config";
  if (c->vocab < 2) return "gpt: vocab needs >= 2 tokens";
  if (c->block < 1) return "gpt: block (context length) must be >= 1";
  if (c->embed < 1) return "gpt: embed must be >= 1";
  if (c->heads < 1 || c->embed % c->heads) return "gpt: heads must be >= 1 and divide embed";
  if (c->layers < 1 || c->layers > GPT_MAX_LAYERS) return "gpt: layers must be 1..64";
  if (!(c->dropout >= 0 && c->dropout < 1)) return "gpt: dropout must be in [0, 1)";
  if (c->batch < 1) return "gpt: batch must be >= 1";
  /* Bounds that keep every tensor's element count (B * heads * T * T for
   * the attention scores, B * T * V for the logits) far from overflow. */
  if (c->vocab > (1 << 24) || c->embed > (1 << 16) || c->batch > (1 << 20))
    return "gpt: vocab <= 2^24, embed <= 65536, batch <= 2^20";
  if (c->block > 4096) return "gpt: block must be <= 4096";
  if (c->dtype != KL_F32 && c->dtype != KL_F64) return "gpt: dtype must be f32 or f64";
  return NULL;
}

/* ---- parameters --------------------------------------------------------- */

/* nanoGPT's _init_weights: Linear and Embedding weights N(0, 0.02), Linear
 * biases zeros; c_proj weights then re-drawn with std 0.02 / sqrt(2 L). */
static void linear_make(kl_graph *g, const gpt_config *c, const char *scope, int64_t out,
                        int64_t in, double std, kl_value *w, kl_value *b) {
  kl_scope_push(g, scope);
  *w = kl_param_init(g, "weight", c->dtype, KL_SHAPE(out, in), KL_INIT_NORMAL, std);
  *b = c->no_bias ? kl_none() : kl_param_init(g, "bias", c->dtype, KL_SHAPE(out), KL_INIT_ZEROS, 0);
  kl_scope_pop(g);
}

static void ln_make(kl_graph *g, const gpt_config *c, const char *scope, ln_params *p) {
  kl_scope_push(g, scope);
  p->w = kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->embed), KL_INIT_ONES, 0);
  /* nanoGPT's LayerNorm(bias=False) is F.layer_norm without a bias, i.e.
   * a shift of zeros: a constant, so nothing trains or checkpoints it. */
  p->b = c->no_bias ? kl_broadcast_to(kl_scalar(g, 0.0, c->dtype), KL_SHAPE(c->embed))
                    : kl_param_init(g, "bias", c->dtype, KL_SHAPE(c->embed), KL_INIT_ZEROS, 0);
  kl_scope_pop(g);
}

/* transformer.h.<i>: ln_1, attn.{c_attn, c_proj}, ln_2, mlp.{c_fc, c_proj}. */
static void block_make(kl_graph *g, const gpt_config *c, int i, block_params *p) {
  int64_t d = c->embed;
  double proj_std = 0.02 / sqrt(2.0 * (double)c->layers);
  char idx[24];
  snprintf(idx, sizeof idx, "%d", i);
  kl_scope_push(g, idx);
  ln_make(g, c, "ln_1", &p->ln_1);
  kl_scope_push(g, "attn");
  linear_make(g, c, "c_attn", 3 * d, d, 0.02, &p->attn_w, &p->attn_b);
  linear_make(g, c, "c_proj", d, d, proj_std, &p->attn_proj_w, &p->attn_proj_b);
  kl_scope_pop(g);
  ln_make(g, c, "ln_2", &p->ln_2);
  kl_scope_push(g, "mlp");
  linear_make(g, c, "c_fc", 4 * d, d, 0.02, &p->fc_w, &p->fc_b);
  linear_make(g, c, "c_proj", d, 4 * d, proj_std, &p->mlp_proj_w, &p->mlp_proj_b);
  kl_scope_pop(g);
  kl_scope_pop(g);
}

/* ---- layers ------------------------------------------------------------- */

/* x @ w^T + b for a PyTorch-layout weight w [out, in]; b may be kl_none(). */
static kl_value linear(kl_value x, kl_value w, kl_value b) {
  kl_value y = kl_matmul_t(x, w, false, true);
  return b.g == NULL && b.id < 0 ? y : kl_add(y, b); /* kl_none(): no bias */
}

static kl_value layernorm(kl_value x, const ln_params *p) {
  return kl_layernorm(x, p->w, p->b, 1e-5); /* nn.LayerNorm's eps */
}

static kl_value dropout(const gpt_config *c, kl_value x) {
  return c->dropout > 0 ? kl_dropout(x, c->dropout) : x;
}

/* Columns [k C, (k + 1) C) of qkv [B, T, 3C] as [B, heads, T, C / heads]:
 * nanoGPT's split(n_embd, dim=2), view and transpose(1, 2). */
static kl_value head_split(const gpt_config *c, kl_value qkv, int k) {
  int64_t b = c->batch, t = c->block, d = c->embed;
  kl_value x = kl_slice(qkv, KL_INTS(0, 0, k * d), KL_INTS(b, t, (k + 1) * d));
  x = kl_reshape(x, KL_SHAPE(b, t, c->heads, d / c->heads));
  return kl_transpose(x, KL_INTS(0, 2, 1, 3));
}

/* CausalSelfAttention: query t sees keys 0..t (lengths t + 1 per query row,
 * masked scores -1e6 rather than -inf: both give weight exactly 0). */
static kl_value attention(const gpt_config *c, const block_params *p, kl_value x, kl_value causal) {
  int64_t b = c->batch, t = c->block, d = c->embed;
  kl_value qkv = linear(x, p->attn_w, p->attn_b);
  kl_value q = head_split(c, qkv, 0), k = head_split(c, qkv, 1), v = head_split(c, qkv, 2);
  kl_value s = kl_mul_scalar(kl_matmul_t(q, k, false, true), 1 / sqrt((double)(d / c->heads)));
  kl_value a = kl_softmax(kl_sequence_mask(s, causal, -1e6), -1);
  kl_value y = kl_matmul(dropout(c, a), v); /* [B, heads, T, C / heads] */
  y = kl_reshape(kl_transpose(y, KL_INTS(0, 2, 1, 3)), KL_SHAPE(b, t, d));
  return dropout(c, linear(y, p->attn_proj_w, p->attn_proj_b));
}

static kl_value mlp(const gpt_config *c, const block_params *p, kl_value x) {
  kl_value h = kl_gelu(linear(x, p->fc_w, p->fc_b), false); /* nn.GELU(): erf form */
  return dropout(c, linear(h, p->mlp_proj_w, p->mlp_proj_b));
}

/* GPT.forward up to the logits [B, T, V] for tokens i32[B, T], creating
 * the parameters on the way. */
static kl_value forward(kl_graph *g, const gpt_config *c, kl_value tokens) {
  int64_t b = c->batch, t = c->block, d = c->embed;
  kl_scope_push(g, "transformer");
  kl_scope_push(g, "wte");
  kl_value wte = kl_param_init(g, "weight", c->dtype, KL_SHAPE(c->vocab, d), KL_INIT_NORMAL, 0.02);
  kl_scope_pop(g);
  kl_scope_push(g, "wpe");
  kl_value wpe = kl_param_init(g, "weight", c->dtype, KL_SHAPE(t, d), KL_INIT_NORMAL, 0.02);
  kl_scope_pop(g);
  /* Positions are 0..T-1 for every row: wpe itself, broadcast over B. */
  kl_value x = dropout(c, kl_add(kl_gather(wte, tokens), wpe));
  kl_value causal = kl_add_scalar(kl_iota(g, KL_SHAPE(b, c->heads, t), 2, KL_I32), 1);
  kl_scope_push(g, "h");
  for (int i = 0; i < c->layers; i++) {
    block_params p;
    block_make(g, c, i, &p);
    x = kl_add(x, attention(c, &p, layernorm(x, &p.ln_1), causal));
    x = kl_add(x, mlp(c, &p, layernorm(x, &p.ln_2)));
  }
  kl_scope_pop(g);
  ln_params ln_f;
  ln_make(g, c, "ln_f", &ln_f);
  kl_scope_pop(g);
  /* lm_head shares wte (weight tying): logits = x wte^T, no bias. */
  return kl_matmul_t(layernorm(x, &ln_f), wte, false, true);
}

/* ---- graphs ------------------------------------------------------------- */

gpt_train gpt_build_train(const gpt_config *c) {
  gpt_train r = {.loss = kl_none()};
  if (gpt_config_check(c)) return r;
  kl_graph *g = kl_graph_create("gpt_train");
  if (!g) return r;
  r.g = g;
  kl_value tokens = kl_input(g, "tokens", KL_I32, KL_SHAPE(c->batch, c->block));
  kl_value targets = kl_input(g, "targets", KL_I32, KL_SHAPE(c->batch, c->block));
  kl_value logits = forward(g, c, tokens);
  /* F.cross_entropy's mean; ignore_index -1 as nanoGPT, though the
   * header's mean is over all B * T positions (targets are never -1). */
  kl_value per_token = kl_softmax_cross_entropy(logits, targets, -1);
  r.loss = kl_name(kl_mean(per_token, KL_INTS(0, 1), false), "loss");
  kl_output(r.loss);
  return r;
}

kl_graph *gpt_build_logits(const gpt_config *c) {
  if (gpt_config_check(c)) return NULL;
  kl_graph *g = kl_graph_create("gpt_logits");
  if (!g) return NULL;
  kl_value tokens = kl_input(g, "tokens", KL_I32, KL_SHAPE(c->batch, c->block));
  kl_output(kl_name(forward(g, c, tokens), "logits"));
  return g;
}

kl_graph *gpt_default_graph(int *loss_output) {
  if (loss_output) *loss_output = 0;
  gpt_config c = GPT_DATES_DEFAULTS;
  return gpt_build_train(&c).g;
}
