/* Standalone SVG figures for training reports: a line/scatter plot with
 * named series, axes, ticks and a legend, and a heatmap (attention weights)
 * with a colour bar and optional text labels on both axes. Files are
 * written atomically (temp file, fsync, rename): an error leaves no file
 * behind and never a partial one. Text is escaped for XML; invalid UTF-8
 * bytes become U+FFFD. */
#ifndef KILN_RT_SVG_H
#define KILN_RT_SVG_H

#include <stdint.h>

#include "ir/ir.h"

typedef enum { RT_SVG_LINE, RT_SVG_DASHED, RT_SVG_POINTS } rt_svg_style;

/* n points (x[i], y[i]); non-finite points are skipped (a line breaks
 * there). */
typedef struct rt_svg_series {
  const char *name; /* legend entry */
  const double *x, *y;
  int64_t n;
  rt_svg_style style;
} rt_svg_series;

typedef struct rt_svg_plot {
  const char *title, *xlabel, *ylabel; /* each may be NULL */
  int nseries;
  const rt_svg_series *series;
} rt_svg_plot;

/* values[r * cols + c] is cell (r, c), drawn at row r from the top. Labels
 * (NULL: numeric index ticks) are thinned when they would overlap. The
 * colour scale spans the finite values' range; non-finite cells are grey.
 * Every cell is one <rect class="cell" .../>. */
typedef struct rt_svg_heatmap {
  const char *title, *xlabel, *ylabel; /* xlabel under the columns */
  int64_t rows, cols;
  const double *values;
  const char *const *row_labels; /* rows entries, or NULL */
  const char *const *col_labels; /* cols entries, or NULL */
  /* 0 or 1: one heatmap. n > 1: n panels side by side (e.g. one per
   * attention head), values [n, rows, cols], sharing the labels and one
   * colour scale; panel_titles (n entries, or NULL) head each panel. */
  int64_t panels;
  const char *const *panel_titles;
} rt_svg_heatmap;

/* The document as a malloc'd string (caller frees); NULL with d set on bad
 * input (no series, NULL arrays, a heatmap over 10^6 cells) or no memory. */
char *rt_svg_plot_text(const rt_svg_plot *p, ir_diag *d);
char *rt_svg_heatmap_text(const rt_svg_heatmap *h, ir_diag *d);

/* Builds the document and writes it to path atomically. */
bool rt_svg_plot_write(const rt_svg_plot *p, const char *path, ir_diag *d);
bool rt_svg_heatmap_write(const rt_svg_heatmap *h, const char *path, ir_diag *d);

/* Writes text to path atomically: PATH.tmp.PID.XXXXXX in the same directory,
 * fsync, rename. On failure path is neither created nor changed. */
bool rt_write_file_atomic(const char *path, const char *text, size_t len, ir_diag *d);

#endif
