/* seq2seq-attn's attention heatmap of one translation, shared by `kiln
 * train seq2seq-attn` (a held-out example) and `kiln translate` (the first
 * sentence): output tokens down, source tokens across (tools/kiln/s2s.h). */
#include <stdlib.h>
#include <string.h>

#include "runtime/svg.h"
#include "tools/kiln/s2s.h"

/* A token as a label: unknown ids as <?>, a space made visible. */
static const char *label(const char *tok) {
  return !tok ? "<?>" : strcmp(tok, " ") ? tok : "\u2423";
}

bool s2s_heatmap_write(const s2s_meta *m, const rt_toklist *src_tokens, const int32_t *src_ids,
                       int32_t src_len, const int32_t *out, int64_t out_len, int64_t max_len,
                       const float *attn, const char *path, ir_diag *d) {
  int64_t ts = m->cfg.src_steps, rows = out_len < max_len ? out_len + 1 : out_len;
  int64_t cols = src_len > 0 ? src_len : ts;
  if (rows == 0) {
    ir_diag_set(d, "%s: the translation is empty: no heatmap", path);
    return false;
  }
  double *v = malloc((size_t)(rows * cols) * sizeof *v);
  const char **rl = malloc((size_t)rows * sizeof *rl), **cl = malloc((size_t)cols * sizeof *cl);
  bool ok = v && rl && cl;
  if (!ok) ir_diag_set(d, "%s: out of memory", path);
  for (int64_t i = 0; ok && i < rows; i++) {
    rl[i] = i < out_len ? label(rt_vocab_token(m->tgt, out[i])) : "<eos>";
    for (int64_t j = 0; j < cols; j++)
      v[i * cols + j] = attn[i * ts + j];
  }
  for (int64_t j = 0; ok && j < cols; j++)
    cl[j] = label(src_tokens && j < src_tokens->n ? src_tokens->v[j]
                                                  : rt_vocab_token(m->src, src_ids[j]));
  rt_svg_heatmap h = {.title = "seq2seq-attn: attention of each output token",
                      .xlabel = "source tokens",
                      .ylabel = "output tokens",
                      .rows = rows,
                      .cols = cols,
                      .values = v,
                      .row_labels = rl,
                      .col_labels = cl};
  ok = ok && rt_svg_heatmap_write(&h, path, d);
  free(v);
  free(rl);
  free(cl);
  return ok;
}
