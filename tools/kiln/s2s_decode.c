/* Decoding for the translation models (tools/kiln/s2s.h, "decoding"):
 * greedy search over a batch of sentences and beam search (d2l 10.8) over
 * one, both driving the compiled encoder side once and the single-step graph
 * once per output position. The two models differ only in the tensors the
 * step carries (tm_decode_layout): seq2seq-attn a GRU state, the
 * Transformer its key/value caches and the position. Every tensor a step
 * reads or writes is allocated when the decoder is made, so the per-step
 * loop allocates nothing. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "frontend/graph_ir.h"
#include "tools/kiln/s2s.h"

struct s2s_decoder {
  tm_config cfg;
  tm_decode_layout lay;
  kl_program *prog[2]; /* encoder side, step */
  /* Encoder inputs (src_len is also the step's) and the memory it makes. */
  kl_tensor *src, *len, *mem[TM_MAX_DECODE_TENSORS];
  /* Two sets of state: the step reads set 0 and writes set 1. */
  kl_tensor *state[2][TM_MAX_DECODE_TENSORS];
  kl_tensor *token, *pos, *logp, *attn;
  char msg[256];
};

static int64_t numel3(const int64_t *d) { return d[0] * d[1] * d[2]; }

void s2s_decoder_destroy(s2s_decoder *dec) {
  if (!dec) return;
  for (int i = 0; i < 2; i++) {
    kl_program_destroy(dec->prog[i]);
    for (int j = 0; j < dec->lay.n_state; j++)
      kl_tensor_destroy(dec->state[i][j]);
  }
  for (int j = 0; j < dec->lay.n_mem; j++)
    kl_tensor_destroy(dec->mem[j]);
  kl_tensor *t[] = {dec->src, dec->len, dec->token, dec->pos, dec->logp, dec->attn};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    kl_tensor_destroy(t[i]);
  free(dec);
}

/* A malloc'd "MODEL WHAT graph: WHY" (NULL when out of memory). */
static char *graph_msg(const tm_config *c, const char *what, const char *why) {
  size_t n = strlen(what) + strlen(why) + 48;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s %s graph: %s", tm_arch_name(c->arch), what, why);
  return s;
}

static kl_program *compile(const tm_config *c, kl_graph *g, const char *what,
                           const kl_compile_opts *co, char **err) {
  if (!g) {
    *err = graph_msg(c, what, "out of memory");
    return NULL;
  }
  kl_program *p = NULL;
  if (kl_graph_error(g))
    *err = graph_msg(c, what, kl_graph_error(g));
  else
    p = kl_compile_unoptimized(kl_graph_ir(g), co, err);
  kl_graph_destroy(g);
  return p;
}

int64_t s2s_attn_heads(const tm_config *c) { return c->arch == TM_TRANSFORMER ? c->heads : 1; }

static bool alloc_tensors(s2s_decoder *dec) {
  const tm_config *c = &dec->cfg;
  const tm_decode_layout *l = &dec->lay;
  int64_t b = c->batch, ts = c->src_steps;
  kl_tensor_dtype ft = (kl_tensor_dtype)c->dtype;
  bool ok =
      (dec->src = kl_tensor_create(KL_TENSOR_I32, 2, (int64_t[]){b, ts})) &&
      (dec->len = kl_tensor_create(KL_TENSOR_I32, 1, &b)) &&
      (dec->token = kl_tensor_create(KL_TENSOR_I32, 1, &b)) &&
      (dec->pos = kl_tensor_create(KL_TENSOR_I32, 1, &b)) &&
      (dec->logp = kl_tensor_create(ft, 2, (int64_t[]){b, c->tgt_vocab})) &&
      /* seq2seq-attn's step writes [B, Ts], the Transformer's
       * [B, heads, Ts]; the same floats when heads is 1. */
      (dec->attn = c->arch == TM_TRANSFORMER ? kl_tensor_create(ft, 3, (int64_t[]){b, l->heads, ts})
                                             : kl_tensor_create(ft, 2, (int64_t[]){b, ts}));
  for (int j = 0; ok && j < l->n_mem; j++)
    ok = (dec->mem[j] = kl_tensor_create(ft, 3, l->mem_dims[j])) != NULL;
  for (int i = 0; ok && i < 2; i++)
    for (int j = 0; ok && j < l->n_state; j++)
      ok = (dec->state[i][j] = kl_tensor_create(ft, 3, l->state_dims[j])) != NULL;
  return ok;
}

s2s_decoder *s2s_decoder_create(const tm_config *cfg, const kl_compile_opts *co, char **err) {
  *err = NULL;
  tm_decode_layout lay;
  const char *bad = NULL;
  if (!tm_decode_layout_of(cfg, &lay, &bad)) {
    *err = strdup(bad);
    return NULL;
  }
  s2s_decoder *dec = calloc(1, sizeof *dec);
  if (!dec) {
    *err = strdup("decoder: out of memory");
    return NULL;
  }
  dec->cfg = *cfg;
  dec->lay = lay;
  /* Decoding is inference whatever the caller's options say: dropout off. */
  kl_compile_opts opts = co ? *co : (kl_compile_opts){0};
  opts.training = false;
  dec->prog[0] = compile(cfg, tm_build_decode_encoder(cfg), "encoder", &opts, err);
  if (dec->prog[0]) dec->prog[1] = compile(cfg, tm_build_decode_step(cfg), "step", &opts, err);
  if (!dec->prog[1]) {
    s2s_decoder_destroy(dec);
    return NULL;
  }
  if (!alloc_tensors(dec)) {
    s2s_decoder_destroy(dec);
    *err = strdup("decoder: out of memory");
    return NULL;
  }
  return dec;
}

kl_program *s2s_decoder_program(s2s_decoder *dec, int i) {
  return dec && (i == 0 || i == 1) ? dec->prog[i] : NULL;
}

void s2s_decoder_copy_weights(s2s_decoder *dec, const kl_program *weights) {
  for (int i = 0; i < 2; i++)
    kl_program_copy_params(dec->prog[i], weights);
}

/* ---- shared steps ------------------------------------------------------- */

static bool is_f64(const s2s_decoder *dec) { return dec->cfg.dtype == KL_F64; }
static size_t elem_size(const s2s_decoder *dec) {
  return is_f64(dec) ? sizeof(double) : sizeof(float);
}

/* Element i of a float tensor of the decoder's dtype. */
static double fget(const s2s_decoder *dec, kl_tensor *t, int64_t i) {
  const void *p = kl_tensor_data(t);
  return is_f64(dec) ? ((const double *)p)[i] : ((const float *)p)[i];
}

__attribute__((format(printf, 2, 3))) static const char *fail(s2s_decoder *dec, const char *fmt,
                                                              ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dec->msg, sizeof dec->msg, fmt, ap);
  va_end(ap);
  return dec->msg;
}

static const char *check_row(s2s_decoder *dec, int64_t r, const int32_t *src, int32_t len) {
  int64_t ts = dec->cfg.src_steps;
  const char *m = tm_arch_name(dec->cfg.arch);
  if (len < 0 || len > ts)
    return fail(dec, "%s decode: row %lld: source length %d is outside [0, %lld]", m, (long long)r,
                len, (long long)ts);
  for (int64_t t = 0; t < ts; t++)
    if (src[t] < 0 || src[t] >= dec->cfg.src_vocab)
      return fail(dec,
                  "%s decode: row %lld: source id %d at position %lld is outside the "
                  "vocabulary [0, %lld)",
                  m, (long long)r, src[t], (long long)t, (long long)dec->cfg.src_vocab);
  return NULL;
}

static const char *check_max_len(s2s_decoder *dec, int64_t max_len) {
  const char *m = tm_arch_name(dec->cfg.arch);
  if (max_len < 0) return fail(dec, "%s decode: max_len %lld < 0", m, (long long)max_len);
  if (dec->lay.max_len && max_len > dec->lay.max_len)
    return fail(dec, "%s decode: max_len %lld is over the model's tgt_steps %lld", m,
                (long long)max_len, (long long)dec->lay.max_len);
  return NULL;
}

/* Runs the encoder side on the batch's rows of src, or with rep on row 0
 * of src copied into every row (beam search), and starts the state: from
 * the encoder, or zero (a cache nothing has been written to). */
static const char *encode(s2s_decoder *dec, const int32_t *src, const int32_t *len, bool rep) {
  const tm_decode_layout *l = &dec->lay;
  int64_t b = dec->cfg.batch, ts = dec->cfg.src_steps;
  int32_t *s = kl_tensor_data(dec->src), *sl = kl_tensor_data(dec->len);
  for (int64_t r = 0; r < b; r++) {
    int64_t from = rep ? 0 : r;
    memcpy(s + r * ts, src + from * ts, (size_t)ts * sizeof *s);
    sl[r] = len[from];
  }
  kl_tensor *in[2] = {dec->src, dec->len}, *out[2 * TM_MAX_DECODE_TENSORS];
  int n = 0;
  for (int j = 0; j < l->n_mem; j++)
    out[n++] = dec->mem[j];
  for (int j = 0; l->state_from_encoder && j < l->n_state; j++)
    out[n++] = dec->state[0][j];
  for (int j = 0; !l->state_from_encoder && j < l->n_state; j++)
    memset(kl_tensor_data(dec->state[0][j]), 0, (size_t)numel3(l->state_dims[j]) * elem_size(dec));
  memset(kl_tensor_data(dec->pos), 0, (size_t)b * sizeof(int32_t));
  return kl_run_into(dec->prog[0], in, 2, out, n);
}

/* One decoder step from dec->token, dec->pos and state set 0; writes logp,
 * state set 1 and attn, then advances pos. */
static const char *step(s2s_decoder *dec) {
  const tm_decode_layout *l = &dec->lay;
  kl_tensor *in[3 + 2 * TM_MAX_DECODE_TENSORS], *out[2 + TM_MAX_DECODE_TENSORS];
  int ni = 0, no = 0;
  in[ni++] = dec->token;
  for (int j = 0; j < l->n_state; j++)
    in[ni++] = dec->state[0][j];
  for (int j = 0; j < l->n_mem; j++)
    in[ni++] = dec->mem[j];
  in[ni++] = dec->len;
  if (l->step_takes_pos) in[ni++] = dec->pos;
  out[no++] = dec->logp;
  for (int j = 0; j < l->n_state; j++)
    out[no++] = dec->state[1][j];
  out[no++] = dec->attn;
  const char *e = kl_run_into(dec->prog[1], in, ni, out, no);
  int32_t *pos = kl_tensor_data(dec->pos);
  for (int64_t r = 0; r < dec->cfg.batch; r++)
    pos[r]++;
  return e;
}

/* The state just written (set 1) becomes the next step's input (set 0). */
static void swap_state(s2s_decoder *dec) {
  for (int j = 0; j < dec->lay.n_state; j++) {
    kl_tensor *t = dec->state[0][j];
    dec->state[0][j] = dec->state[1][j];
    dec->state[1][j] = t;
  }
}

/* Floats of attention one step writes per row: heads x Ts. */
static int64_t attn_size(const s2s_decoder *dec) { return dec->lay.heads * dec->cfg.src_steps; }

/* Row r of the step's attention into dst[heads * Ts]. */
static void attn_row(s2s_decoder *dec, int64_t r, float *dst) {
  int64_t n = attn_size(dec);
  for (int64_t j = 0; j < n; j++)
    dst[j] = (float)fget(dec, dec->attn, r * n + j);
}

/* ---- greedy ------------------------------------------------------------- */

const char *s2s_greedy(s2s_decoder *dec, const int32_t *src, const int32_t *src_len,
                       int64_t max_len, int32_t *out, int64_t *out_len, float *attn) {
  int64_t b = dec->cfg.batch, ts = dec->cfg.src_steps, v = dec->cfg.tgt_vocab;
  int64_t as = attn_size(dec);
  const char *e = check_max_len(dec, max_len);
  if (e) return e;
  for (int64_t r = 0; r < b; r++) {
    if ((e = check_row(dec, r, src + r * ts, src_len[r]))) return e;
    out_len[r] = 0;
  }
  if (attn) memset(attn, 0, (size_t)(b * max_len * as) * sizeof *attn);
  if (max_len == 0) return NULL;
  if ((e = encode(dec, src, src_len, false))) return e;
  int32_t *tok = kl_tensor_data(dec->token);
  for (int64_t r = 0; r < b; r++)
    tok[r] = RT_VOCAB_BOS;
  /* A row is done once it emitted <eos> (out_len < t) or filled max_len. */
  int64_t live = b;
  for (int64_t t = 0; t < max_len && live > 0; t++) {
    if ((e = step(dec))) return e;
    for (int64_t r = 0; r < b; r++) {
      int64_t best = 0;
      double bv = fget(dec, dec->logp, r * v);
      for (int64_t k = 1; k < v; k++) {
        double x = fget(dec, dec->logp, r * v + k);
        if (x > bv) bv = x, best = k;
      }
      tok[r] = (int32_t)best;
      if (out_len[r] < t) continue; /* finished earlier: ignored */
      /* The <eos> step's attention is kept too (row out_len), as d2l
       * records it for its heatmaps. */
      if (attn) attn_row(dec, r, attn + (r * max_len + t) * as);
      if (best == RT_VOCAB_EOS) {
        live--;
        continue;
      }
      out[r * max_len + t] = (int32_t)best;
      if (++out_len[r] == max_len) live--;
    }
    swap_state(dec);
  }
  return NULL;
}

/* ---- beam search -------------------------------------------------------- */

/* A candidate extension: hypothesis `row` followed by `token`. */
typedef struct cand {
  double score, logp; /* total log P; the token's own log P (tie-break) */
  int64_t row, token;
} cand;

/* Higher total first; on equal totals the larger token log-probability,
 * then the lower row and token: with one row this is greedy's first
 * maximum, so beam 1 reproduces greedy exactly. */
static bool better(const cand *a, const cand *b) {
  if (a->score != b->score) return a->score > b->score;
  if (a->logp != b->logp) return a->logp > b->logp;
  if (a->row != b->row) return a->row < b->row;
  return a->token < b->token;
}

/* Keeps top[0..*n) sorted best first, at most k entries. */
static void offer(cand *top, int64_t *n, int64_t k, cand c) {
  if (*n == k && !better(&c, &top[k - 1])) return;
  int64_t i = *n < k ? (*n)++ : k - 1;
  while (i > 0 && better(&c, &top[i - 1])) {
    top[i] = top[i - 1];
    i--;
  }
  top[i] = c;
}

/* The buffers of one search, sized once per call. Hypothesis j lives in
 * decoder row j; its tokens and attention rows are kept in tok/att and
 * rebuilt into tok2/att2 when the rows are reordered. */
typedef struct beam_buf {
  cand *top;
  double *score;
  int32_t *tok, *tok2, *best_tok;
  float *att, *att2, *best_att;
} beam_buf;

static void beam_free(beam_buf *bb) {
  free(bb->top);
  free(bb->score);
  free(bb->tok);
  free(bb->tok2);
  free(bb->best_tok);
  free(bb->att);
  free(bb->att2);
  free(bb->best_att);
}

/* as: attention floats per step. */
static bool beam_alloc(beam_buf *bb, int64_t k, int64_t max_len, int64_t as) {
  size_t nt = (size_t)(k * max_len), na = nt * (size_t)as;
  bb->top = calloc((size_t)k, sizeof *bb->top);
  bb->score = calloc((size_t)k, sizeof *bb->score);
  bb->tok = calloc(nt, sizeof *bb->tok);
  bb->tok2 = calloc(nt, sizeof *bb->tok2);
  bb->best_tok = calloc((size_t)max_len, sizeof *bb->best_tok);
  bb->att = calloc(na, sizeof *bb->att);
  bb->att2 = calloc(na, sizeof *bb->att2);
  bb->best_att = calloc((size_t)(max_len * as), sizeof *bb->best_att);
  return bb->top && bb->score && bb->tok && bb->tok2 && bb->best_tok && bb->att && bb->att2 &&
         bb->best_att;
}

/* The finished sequence with the highest log P / L^0.75 so far. */
typedef struct beam_best {
  bool any;
  double norm;
  int64_t ntok; /* tokens written (without <eos>) */
} beam_best;

/* Offers the finished hypothesis "row `c.row` of the previous step, then
 * c.token" (ending at <eos> or at max_len) as the result. */
static void finish(s2s_decoder *dec, beam_buf *bb, beam_best *best, const cand *c, int64_t t,
                   int64_t max_len) {
  int64_t as = attn_size(dec);
  bool eos = c->token == RT_VOCAB_EOS;
  double norm = c->score / pow((double)(t + 1), 0.75);
  if (best->any && !(norm > best->norm)) return;
  best->any = true;
  best->norm = norm;
  best->ntok = eos ? t : t + 1;
  memcpy(bb->best_tok, bb->tok + c->row * max_len, (size_t)t * sizeof *bb->best_tok);
  if (!eos) bb->best_tok[t] = (int32_t)c->token;
  memset(bb->best_att, 0, (size_t)(max_len * as) * sizeof *bb->best_att);
  memcpy(bb->best_att, bb->att + c->row * max_len * as, (size_t)(t * as) * sizeof *bb->best_att);
  attn_row(dec, c->row, bb->best_att + t * as);
}

/* Copies row `from` of state set 1 into row `to` of set 0, for every
 * state tensor (a row is the slices at its index of the batch axis). */
static void copy_state_row(s2s_decoder *dec, int64_t to, int64_t from) {
  const tm_decode_layout *l = &dec->lay;
  size_t es = elem_size(dec);
  for (int j = 0; j < l->n_state; j++) {
    const int64_t *d = l->state_dims[j];
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < 3; a++) {
      if (a < l->state_axis) outer *= d[a];
      if (a > l->state_axis) inner *= d[a];
    }
    int64_t rows = d[l->state_axis];
    char *dst = kl_tensor_data(dec->state[0][j]);
    const char *src = kl_tensor_data(dec->state[1][j]);
    size_t row = (size_t)inner * es;
    for (int64_t o = 0; o < outer; o++)
      memcpy(dst + (size_t)(o * rows + to) * row, src + (size_t)(o * rows + from) * row, row);
  }
}

/* Makes row j hypothesis c (parent row c->row plus c->token): history into
 * tok2/att2, the parent's new state into set 0 row j. The encoder's memory
 * and src_len hold the same source in every row, so they need no
 * reordering, and every row is at the same position. */
static void adopt(s2s_decoder *dec, beam_buf *bb, int64_t j, const cand *c, int64_t t,
                  int64_t max_len) {
  int64_t as = attn_size(dec);
  memcpy(bb->tok2 + j * max_len, bb->tok + c->row * max_len, (size_t)t * sizeof *bb->tok);
  bb->tok2[j * max_len + t] = (int32_t)c->token;
  memcpy(bb->att2 + j * max_len * as, bb->att + c->row * max_len * as,
         (size_t)(t * as) * sizeof *bb->att);
  attn_row(dec, c->row, bb->att2 + (j * max_len + t) * as);
  copy_state_row(dec, j, c->row);
  bb->score[j] = c->score;
  ((int32_t *)kl_tensor_data(dec->token))[j] = (int32_t)c->token;
}

const char *s2s_beam(s2s_decoder *dec, const int32_t *src, int32_t src_len, int64_t max_len,
                     int32_t *out, int64_t *out_len, float *attn) {
  int64_t k = dec->cfg.batch, v = dec->cfg.tgt_vocab, as = attn_size(dec);
  const char *e = check_max_len(dec, max_len);
  if (!e) e = check_row(dec, 0, src, src_len);
  if (e) return e;
  *out_len = 0;
  if (attn) memset(attn, 0, (size_t)(max_len * as) * sizeof *attn);
  if (max_len == 0) return NULL;
  /* The source replicated over the beam's rows: one encoder run serves
   * every hypothesis. */
  if ((e = encode(dec, src, &src_len, true))) return e;
  beam_buf bb = {0};
  if (!beam_alloc(&bb, k, max_len, as)) {
    beam_free(&bb);
    return fail(dec, "%s beam search: out of memory", tm_arch_name(dec->cfg.arch));
  }
  int32_t *tok = kl_tensor_data(dec->token);
  for (int64_t r = 0; r < k; r++)
    tok[r] = RT_VOCAB_BOS;
  /* Only row 0 is a hypothesis at first: the other rows hold the same
   * state and would fill the beam with copies of its best extensions. */
  int64_t live = 1;
  beam_best best = {0};
  for (int64_t t = 0; t < max_len && live > 0 && !e; t++) {
    if ((e = step(dec))) break;
    int64_t n = 0;
    for (int64_t r = 0; r < live; r++)
      for (int64_t x = 0; x < v; x++) {
        double lp = fget(dec, dec->logp, r * v + x);
        offer(bb.top, &n, k, (cand){bb.score[r] + lp, lp, r, x});
      }
    int64_t next = 0;
    for (int64_t i = 0; i < n; i++) {
      if (bb.top[i].token == RT_VOCAB_EOS || t == max_len - 1)
        finish(dec, &bb, &best, &bb.top[i], t, max_len);
      else
        adopt(dec, &bb, next++, &bb.top[i], t, max_len);
    }
    /* Rows past the live ones still run; give them a valid token. */
    for (int64_t r = next; r < k; r++)
      tok[r] = RT_VOCAB_BOS;
    int32_t *ti = bb.tok;
    bb.tok = bb.tok2, bb.tok2 = ti;
    float *ai = bb.att;
    bb.att = bb.att2, bb.att2 = ai;
    live = next;
  }
  if (!e) {
    *out_len = best.ntok;
    memcpy(out, bb.best_tok, (size_t)best.ntok * sizeof *out);
    if (attn) memcpy(attn, bb.best_att, (size_t)(max_len * as) * sizeof *attn);
  }
  beam_free(&bb);
  return e;
}
