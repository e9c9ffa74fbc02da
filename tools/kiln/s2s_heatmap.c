/* A translation model's attention heatmap of one translation, shared by
 * `kiln train` (a held-out example) and `kiln translate` (the first
 * sentence): output tokens down, source tokens across, one panel per head
 * for the Transformer (tools/kiln/s2s.h). */
#include <stdio.h>
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
  int64_t cols = src_len > 0 ? src_len : ts, heads = s2s_attn_heads(&m->cfg);
  if (rows == 0) {
    ir_diag_set(d, "%s: the translation is empty: no heatmap", path);
    return false;
  }
  double *v = malloc((size_t)(heads * rows * cols) * sizeof *v);
  const char **rl = malloc((size_t)rows * sizeof *rl), **cl = malloc((size_t)cols * sizeof *cl);
  char(*titles)[32] = malloc((size_t)heads * sizeof *titles);
  const char **tp = malloc((size_t)heads * sizeof *tp);
  bool ok = v && rl && cl && titles && tp;
  if (!ok) ir_diag_set(d, "%s: out of memory", path);
  for (int64_t i = 0; ok && i < rows; i++) {
    rl[i] = i < out_len ? label(rt_vocab_token(m->tgt, out[i])) : "<eos>";
    for (int64_t h = 0; h < heads; h++)
      for (int64_t j = 0; j < cols; j++)
        v[(h * rows + i) * cols + j] = attn[(i * heads + h) * ts + j];
  }
  for (int64_t h = 0; ok && h < heads; h++) {
    snprintf(titles[h], sizeof titles[h], "head %lld", (long long)h);
    tp[h] = titles[h];
  }
  for (int64_t j = 0; ok && j < cols; j++)
    cl[j] = label(src_tokens && j < src_tokens->n ? src_tokens->v[j]
                                                  : rt_vocab_token(m->src, src_ids[j]));
  char title[96];
  snprintf(title, sizeof title, "%s: %sattention of each output token", tm_arch_name(m->cfg.arch),
           heads > 1 ? "last decoder block's cross-" : "");
  rt_svg_heatmap h = {.title = title,
                      .xlabel = "source tokens",
                      .ylabel = "output tokens",
                      .rows = rows,
                      .cols = cols,
                      .values = v,
                      .row_labels = rl,
                      .col_labels = cl,
                      .panels = heads > 1 ? heads : 0,
                      .panel_titles = tp};
  ok = ok && rt_svg_heatmap_write(&h, path, d);
  free(v);
  free(rl);
  free(cl);
  free(titles);
  free(tp);
  return ok;
}
