/* seq2seq-attn's data in the CLI: tokenizing pairs, vocabularies, padded id
 * arrays and teacher-forcing batches (tools/kiln/s2s_data.h). */
#include <stdlib.h>
#include <string.h>

#include "tools/kiln/s2s_data.h"

void s2s_data_free(s2s_data *dt) {
  free(dt->src);
  free(dt->src_len);
  free(dt->tgt);
  free(dt->tgt_len);
  *dt = (s2s_data){0};
}

static void toks_free(rt_toklist *t, int64_t n) {
  for (int64_t i = 0; t && i < n; i++)
    rt_toklist_free(&t[i]);
  free(t);
}

bool s2s_data_build(s2s_meta *m, const rt_pairs *p, int64_t from, int64_t n, int64_t min_freq,
                    s2s_data *out, ir_diag *d) {
  *out = (s2s_data){.n = n, .src_steps = m->cfg.src_steps, .tgt_steps = m->cfg.tgt_steps};
  if (n < 1 || from < 0 || from + n > p->n) {
    ir_diag_set(d, "data: pairs %lld..%lld requested, %lld available", (long long)from,
                (long long)(from + n), (long long)p->n);
    return false;
  }
  rt_toklist *s = calloc((size_t)n, sizeof *s), *t = calloc((size_t)n, sizeof *t);
  bool ok = s && t;
  if (!ok) ir_diag_set(d, "data: out of memory");
  for (int64_t i = 0; ok && i < n; i++)
    ok = s2s_tokenize(m, p->src[from + i], &s[i], d) && s2s_tokenize(m, p->tgt[from + i], &t[i], d);
  if (ok && !m->src) {
    ok = (m->src = rt_vocab_build(s, n, min_freq, d)) &&
         (m->tgt = rt_vocab_build(t, n, min_freq, d));
    if (ok) {
      m->cfg.src_vocab = rt_vocab_size(m->src);
      m->cfg.tgt_vocab = rt_vocab_size(m->tgt);
    }
  }
  if (ok) {
    out->src = malloc((size_t)(n * out->src_steps) * sizeof *out->src);
    out->tgt = malloc((size_t)(n * out->tgt_steps) * sizeof *out->tgt);
    out->src_len = malloc((size_t)n * sizeof *out->src_len);
    out->tgt_len = malloc((size_t)n * sizeof *out->tgt_len);
    ok = out->src && out->tgt && out->src_len && out->tgt_len;
    if (!ok) ir_diag_set(d, "data: out of memory");
  }
  ok = ok && rt_vocab_build_array(m->src, s, n, out->src_steps, out->src, out->src_len, d) &&
       rt_vocab_build_array(m->tgt, t, n, out->tgt_steps, out->tgt, out->tgt_len, d);
  toks_free(s, n);
  toks_free(t, n);
  if (!ok) s2s_data_free(out);
  return ok;
}

int64_t s2s_batch_fill(const s2s_data *dt, const int64_t *idx, int64_t k, int64_t batch,
                       int32_t *src, int32_t *src_len, int32_t *dec_in, int32_t *tgt,
                       int32_t *tgt_len) {
  int64_t ts = dt->src_steps, tt = dt->tgt_steps, tokens = 0;
  for (int64_t r = 0; r < batch; r++) {
    int32_t *s = src + r * ts, *t = tgt + r * tt, *di = dec_in + r * tt;
    if (r < k) {
      int64_t e = idx[r];
      memcpy(s, dt->src + e * ts, (size_t)ts * sizeof *s);
      memcpy(t, dt->tgt + e * tt, (size_t)tt * sizeof *t);
      src_len[r] = dt->src_len[e];
      tgt_len[r] = dt->tgt_len[e];
    } else {
      for (int64_t j = 0; j < ts; j++)
        s[j] = RT_VOCAB_PAD;
      for (int64_t j = 0; j < tt; j++)
        t[j] = RT_VOCAB_PAD;
      src_len[r] = tgt_len[r] = 0;
    }
    di[0] = RT_VOCAB_BOS;
    memcpy(di + 1, t, (size_t)(tt - 1) * sizeof *t);
    tokens += tgt_len[r];
  }
  return tokens;
}

int32_t s2s_source_row(const s2s_meta *m, const char *sentence, int32_t *row, ir_diag *d) {
  rt_toklist t = {0};
  int32_t len = -1;
  bool ok = s2s_tokenize(m, sentence, &t, d) &&
            rt_vocab_build_array(m->src, &t, 1, m->cfg.src_steps, row, &len, d);
  rt_toklist_free(&t);
  return ok ? len : -1;
}

char *s2s_detokenize(const s2s_meta *m, const int32_t *ids, int64_t n) {
  size_t cap = 1;
  for (int64_t i = 0; i < n; i++) {
    const char *tok = rt_vocab_token(m->tgt, ids[i]);
    cap += strlen(tok ? tok : "<unk>") + 1;
  }
  char *s = malloc(cap), *p = s;
  if (!s) return NULL;
  for (int64_t i = 0; i < n; i++) {
    const char *tok = rt_vocab_token(m->tgt, ids[i]);
    if (!tok) tok = "<unk>";
    if (i > 0 && !m->char_tokens) *p++ = ' ';
    size_t l = strlen(tok);
    memcpy(p, tok, l);
    p += l;
  }
  *p = 0;
  return s;
}
