/* Heatmaps as standalone SVG (attention weights): one rect per cell on the
 * viridis scale (perceptually uniform, readable in grey), a colour bar, and
 * row/column labels — tokens or indices — thinned so they never overlap.
 * Several panels (attention heads) sit side by side on one shared scale. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/svg_internal.h"

/* viridis at t = 0, 1/9, ..., 1 (matplotlib's table, sampled). */
static const unsigned char viridis[10][3] = {
    {68, 1, 84},    {72, 40, 120},  {62, 73, 137},  {49, 104, 142}, {38, 130, 142},
    {31, 158, 137}, {53, 183, 121}, {110, 206, 88}, {181, 222, 43}, {253, 231, 37}};

static void colour(double t, char out[8]) {
  if (!isfinite(t)) {
    memcpy(out, "#bbbbbb", 8);
    return;
  }
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  double u = t * 9;
  int i = (int)u;
  if (i > 8) i = 8;
  double f = u - i;
  int rgb[3];
  for (int k = 0; k < 3; k++)
    rgb[k] = (int)lround(viridis[i][k] + f * (viridis[i + 1][k] - viridis[i][k]));
  snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

enum { FONT = 11, MAX_GRID = 560, TOP = 40 };

/* Approximate rendered width of a label (no font metrics in a writer). */
static double text_width(const char *s) {
  size_t n = 0;
  for (const unsigned char *u = (const unsigned char *)s; *u; u++)
    n += (*u & 0xC0) != 0x80; /* count code points, not bytes */
  if (n > 30) n = 30;
  return (double)n * FONT * 0.62;
}

static double labels_width(const char *const *labels, int64_t n) {
  double w = 0;
  for (int64_t i = 0; i < n; i++) {
    double t = labels ? text_width(labels[i] ? labels[i] : "") : 0;
    if (!labels) {
      char buf[24];
      snprintf(buf, sizeof buf, "%lld", (long long)i);
      t = text_width(buf);
    }
    if (t > w) w = t;
  }
  return w;
}

/* Label every k-th row/column: text labels need a line height each; index
 * labels go at round multiples. */
static int64_t label_stride(const char *const *labels, int64_t n, double cell) {
  int64_t k = (int64_t)ceil((FONT + 2) / cell);
  if (k < 1) k = 1;
  if (!labels) {
    svg_axis a = svg_nice_axis(0, (double)(n > 1 ? n - 1 : 1), 8);
    int64_t s = (int64_t)llround(a.step);
    if (s < 1) s = 1;
    while (s < k)
      s *= 2;
    k = s;
  }
  return k;
}

static void label_text(svg_buf *b, const char *const *labels, int64_t i) {
  if (labels) {
    svg_text(b, labels[i] ? labels[i] : "");
  } else {
    svg_printf(b, "%lld", (long long)i);
  }
}

static void colour_bar(svg_buf *b, double x, double y, double h, double vmin, double vmax) {
  svg_printf(b, "<defs><linearGradient id=\"cbar\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n");
  for (int i = 0; i < 10; i++)
    svg_printf(b, "<stop offset=\"%.4f\" stop-color=\"#%02x%02x%02x\"/>\n", i / 9.0, viridis[i][0],
               viridis[i][1], viridis[i][2]);
  svg_printf(b, "</linearGradient></defs>\n");
  svg_printf(b,
             "<rect class=\"colorbar\" x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.1f\" "
             "fill=\"url(#cbar)\" stroke=\"black\" stroke-width=\"0.5\"/>\n",
             x, y, h);
  svg_axis a = svg_nice_axis(vmin, vmax, 5);
  char lab[64];
  svg_printf(b, "<g class=\"colorbar-ticks\" font-size=\"%d\">\n", FONT);
  for (double v = a.lo; v <= a.hi + a.step * 1e-6; v += a.step) {
    if (v < vmin - a.step * 1e-6 || v > vmax + a.step * 1e-6) continue;
    double ty = y + h - (v - vmin) / (vmax - vmin) * h;
    svg_tick_label(&a, v, lab, sizeof lab);
    svg_printf(b,
               "<line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"black\"/>"
               "<text x=\"%.1f\" y=\"%.2f\">%s</text>\n",
               x + 16, ty, x + 20, ty, x + 23, ty + 4, lab);
  }
  svg_printf(b, "</g>\n");
}

/* Panels share the row/column labels and one colour scale, so heads can be
 * compared by colour; a wide figure gets a wider grid budget than one panel. */
enum { PANEL_GAP = 18, MAX_WIDE = 1120, PANEL_TITLE = 16 };

char *rt_svg_heatmap_text(const rt_svg_heatmap *h, ir_diag *d) {
  if (!h || h->rows < 1 || h->cols < 1 || !h->values) {
    ir_diag_set(d, "svg heatmap: needs at least one row and column of values");
    return NULL;
  }
  if (h->panels < 0) {
    ir_diag_set(d, "svg heatmap: panels is %lld; it must be 0 or 1 (one heatmap) or n > 1",
                (long long)h->panels);
    return NULL;
  }
  int64_t P = h->panels > 1 ? h->panels : 1;
  if (h->rows > 1000000 / h->cols || P > 1000000 / (h->rows * h->cols)) {
    if (P > 1)
      ir_diag_set(d,
                  "svg heatmap: %lld panels of %lld x %lld cells is too many for a figure "
                  "(limit 10^6)",
                  (long long)P, (long long)h->rows, (long long)h->cols);
    else
      ir_diag_set(d, "svg heatmap: %lld x %lld cells is too many for a figure (limit 10^6)",
                  (long long)h->rows, (long long)h->cols);
    return NULL;
  }
  int64_t R = h->rows, C = h->cols, n = R * C;
  /* A single heatmap ignores panel_titles: callers pass them for one head too. */
  const char *const *ptitles = P > 1 ? h->panel_titles : NULL;
  double vmin = INFINITY, vmax = -INFINITY;
  for (int64_t i = 0; i < P * n; i++)
    if (isfinite(h->values[i])) vmin = fmin(vmin, h->values[i]), vmax = fmax(vmax, h->values[i]);
  if (vmin > vmax) vmin = 0, vmax = 1;
  if (vmax - vmin < 1e-12 * fmax(1.0, fabs(vmin))) vmax = vmin + 1;

  double budget = P > 1 ? (MAX_WIDE - PANEL_GAP * (double)(P - 1)) / (double)P : MAX_GRID;
  double cell = floor(fmin(budget / (double)C, MAX_GRID / (double)R));
  cell = cell < 2 ? 2 : cell > 36 ? 36 : cell;
  double gw = cell * (double)C, gh = cell * (double)R;
  double pitch = gw + PANEL_GAP, allw = pitch * (double)P - PANEL_GAP;
  int top = TOP + (ptitles ? PANEL_TITLE : 0);
  double left = 34 + labels_width(h->row_labels, R) + 8;
  double below = 8 + labels_width(h->col_labels, C);
  if (!h->col_labels) below = 18; /* index labels stay horizontal */
  double width = left + allw + 20 + 16 + 60, height = top + gh + below + 34;

  svg_buf b = {0};
  svg_open(&b, width, height, h->title);
  for (int64_t p = 0; p < P; p++) {
    const double *v = h->values + p * n;
    double x0 = left + pitch * (double)p;
    svg_printf(&b, "<g class=\"cells\" shape-rendering=\"crispEdges\">\n");
    for (int64_t r = 0; r < R; r++)
      for (int64_t c = 0; c < C; c++) {
        char col[8];
        colour((v[r * C + c] - vmin) / (vmax - vmin), col);
        svg_printf(&b,
                   "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                   "fill=\"%s\"/>\n",
                   x0 + cell * (double)c, top + cell * (double)r, cell, cell, col);
      }
    svg_printf(&b,
               "</g>\n<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"black\" stroke-width=\"0.5\"/>\n",
               x0, top, gw, gh);
  }
  if (ptitles) {
    svg_printf(&b, "<g class=\"panel-titles\" font-size=\"%d\" text-anchor=\"middle\">\n", FONT);
    for (int64_t p = 0; p < P; p++) {
      svg_printf(&b, "<text x=\"%.1f\" y=\"%d\">", left + pitch * (double)p + gw / 2, top - 6);
      svg_text(&b, ptitles[p]);
      svg_printf(&b, "</text>\n");
    }
    svg_printf(&b, "</g>\n");
  }

  /* Rows line up across panels, so the first panel's labels serve all. */
  svg_printf(&b, "<g class=\"row-labels\" font-size=\"%d\" text-anchor=\"end\">\n", FONT);
  for (int64_t r = 0, k = label_stride(h->row_labels, R, cell); r < R; r += k) {
    svg_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">", left - 4, top + cell * ((double)r + 0.5) + 4);
    label_text(&b, h->row_labels, r);
    svg_printf(&b, "</text>\n");
  }
  svg_printf(&b, "</g>\n<g class=\"col-labels\" font-size=\"%d\">\n", FONT);
  int64_t kc = label_stride(h->col_labels, C, cell);
  for (int64_t p = 0; p < P; p++)
    for (int64_t c = 0; c < C; c += kc) {
      double x = left + pitch * (double)p + cell * ((double)c + 0.5), y = top + gh + 6;
      if (h->col_labels)
        svg_printf(&b,
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                   "transform=\"rotate(-90 %.1f %.1f)\" dy=\"4\">",
                   x, y, x, y);
      else
        svg_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x, y + 10);
      label_text(&b, h->col_labels, c);
      svg_printf(&b, "</text>\n");
    }
  svg_printf(&b, "</g>\n");
  if (h->xlabel && *h->xlabel) {
    svg_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + allw / 2,
               height - 10);
    svg_text(&b, h->xlabel);
    svg_printf(&b, "</text>\n");
  }
  if (h->ylabel && *h->ylabel) {
    double y = top + gh / 2;
    svg_printf(&b,
               "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 "
               "%.1f)\">",
               y, y);
    svg_text(&b, h->ylabel);
    svg_printf(&b, "</text>\n");
  }
  colour_bar(&b, left + allw + 20, top, gh, vmin, vmax);
  return svg_close(&b, d);
}

bool rt_svg_heatmap_write(const rt_svg_heatmap *h, const char *path, ir_diag *d) {
  char *s = rt_svg_heatmap_text(h, d);
  if (!s) return false;
  bool ok = rt_write_file_atomic(path, s, strlen(s), d);
  free(s);
  return ok;
}
