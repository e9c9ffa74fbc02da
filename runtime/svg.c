/* Line/scatter plots as standalone SVG: named series on shared axes with
 * 1-2-5 ticks, light grid lines, and a legend to the right of the plot
 * area so it never hides data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/svg_internal.h"

/* matplotlib's default cycle: what d2l's figures look like. */
static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

enum { PLOT_LEFT = 70, PLOT_TOP = 40, PLOT_W = 500, PLOT_H = 340 };

static bool check_plot(const rt_svg_plot *p, ir_diag *d) {
  if (!p || p->nseries < 1 || !p->series) {
    ir_diag_set(d, "svg plot: needs at least one series");
    return false;
  }
  for (int i = 0; i < p->nseries; i++) {
    const rt_svg_series *s = &p->series[i];
    if (s->n < 0 || (s->n > 0 && (!s->x || !s->y))) {
      ir_diag_set(d, "svg plot: series %d ('%s') has %lld points but no data", i,
                  s->name ? s->name : "", (long long)s->n);
      return false;
    }
  }
  return true;
}

/* The finite data's range over every series (lo > hi when there is none). */
static void data_range(const rt_svg_plot *p, double *xlo, double *xhi, double *ylo, double *yhi) {
  *xlo = *ylo = INFINITY;
  *xhi = *yhi = -INFINITY;
  for (int i = 0; i < p->nseries; i++)
    for (int64_t j = 0; j < p->series[i].n; j++) {
      double x = p->series[i].x[j], y = p->series[i].y[j];
      if (!isfinite(x) || !isfinite(y)) continue;
      *xlo = fmin(*xlo, x), *xhi = fmax(*xhi, x);
      *ylo = fmin(*ylo, y), *yhi = fmax(*yhi, y);
    }
  if (*xlo > *xhi) *xlo = 0, *xhi = 1;
  if (*ylo > *yhi) *ylo = 0, *yhi = 1;
}

typedef struct frame {
  svg_axis ax, ay;
} frame;

static double px(const frame *f, double x) {
  return PLOT_LEFT + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * PLOT_W;
}
static double py(const frame *f, double y) {
  return PLOT_TOP + PLOT_H - (y - f->ay.lo) / (f->ay.hi - f->ay.lo) * PLOT_H;
}

static void axes(svg_buf *b, const frame *f, const rt_svg_plot *p, double height) {
  char lab[64];
  svg_printf(b, "<g class=\"axes\" stroke=\"#dddddd\" stroke-width=\"1\">\n");
  for (double v = f->ax.lo; v <= f->ax.hi + f->ax.step * 1e-6; v += f->ax.step)
    svg_printf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>\n", px(f, v), PLOT_TOP,
               px(f, v), PLOT_TOP + PLOT_H);
  for (double v = f->ay.lo; v <= f->ay.hi + f->ay.step * 1e-6; v += f->ay.step)
    svg_printf(b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>\n", PLOT_LEFT, py(f, v),
               PLOT_LEFT + PLOT_W, py(f, v));
  svg_printf(b,
             "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
             "stroke=\"black\"/>\n",
             PLOT_LEFT, PLOT_TOP, PLOT_W, PLOT_H);
  svg_printf(b, "<g class=\"ticks\" fill=\"black\">\n");
  for (double v = f->ax.lo; v <= f->ax.hi + f->ax.step * 1e-6; v += f->ax.step) {
    svg_tick_label(&f->ax, v, lab, sizeof lab);
    svg_printf(b, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px(f, v),
               PLOT_TOP + PLOT_H + 16, lab);
  }
  for (double v = f->ay.lo; v <= f->ay.hi + f->ay.step * 1e-6; v += f->ay.step) {
    svg_tick_label(&f->ay, v, lab, sizeof lab);
    svg_printf(b, "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", PLOT_LEFT - 6,
               py(f, v) + 4, lab);
  }
  svg_printf(b, "</g>\n");
  if (p->xlabel && *p->xlabel) {
    svg_printf(b, "<text x=\"%d\" y=\"%.0f\" text-anchor=\"middle\">", PLOT_LEFT + PLOT_W / 2,
               height - 12);
    svg_text(b, p->xlabel);
    svg_printf(b, "</text>\n");
  }
  if (p->ylabel && *p->ylabel) {
    svg_printf(b, "<text x=\"18\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">",
               PLOT_TOP + PLOT_H / 2, PLOT_TOP + PLOT_H / 2);
    svg_text(b, p->ylabel);
    svg_printf(b, "</text>\n");
  }
}

static void series(svg_buf *b, const frame *f, const rt_svg_series *s, const char *colour) {
  svg_printf(b, "<g class=\"series\" clip-path=\"url(#plotarea)\">\n");
  if (s->style == RT_SVG_POINTS) {
    for (int64_t j = 0; j < s->n; j++)
      if (isfinite(s->x[j]) && isfinite(s->y[j]))
        svg_printf(b,
                   "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\" fill-opacity=\"0.7\"/>\n",
                   px(f, s->x[j]), py(f, s->y[j]), colour);
  } else {
    /* One polyline per run of finite points. */
    bool open = false;
    for (int64_t j = 0; j <= s->n; j++) {
      bool ok = j < s->n && isfinite(s->x[j]) && isfinite(s->y[j]);
      if (ok && !open) {
        svg_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                   colour, s->style == RT_SVG_DASHED ? " stroke-dasharray=\"6 4\"" : "");
        open = true;
      } else if (!ok && open) {
        svg_printf(b, "\"/>\n");
        open = false;
      }
      if (ok) svg_printf(b, "%.2f,%.2f ", px(f, s->x[j]), py(f, s->y[j]));
    }
  }
  svg_printf(b, "</g>\n");
}

static void legend(svg_buf *b, const rt_svg_plot *p) {
  double x = PLOT_LEFT + PLOT_W + 16, y = PLOT_TOP + 8;
  svg_printf(b, "<g class=\"legend\">\n");
  for (int i = 0; i < p->nseries; i++, y += 20) {
    const rt_svg_series *s = &p->series[i];
    const char *c = palette[i % 8];
    if (s->style == RT_SVG_POINTS)
      svg_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x + 12, y, c);
    else
      svg_printf(b,
                 "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                 "stroke-width=\"2\"%s/>\n",
                 x, y, x + 24, y, c, s->style == RT_SVG_DASHED ? " stroke-dasharray=\"6 4\"" : "");
    svg_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 32, y + 4);
    svg_text(b, s->name ? s->name : "");
    svg_printf(b, "</text>\n");
  }
  svg_printf(b, "</g>\n");
}

char *rt_svg_plot_text(const rt_svg_plot *p, ir_diag *d) {
  if (!check_plot(p, d)) return NULL;
  size_t longest = 0;
  for (int i = 0; i < p->nseries; i++)
    if (p->series[i].name && strlen(p->series[i].name) > longest)
      longest = strlen(p->series[i].name);
  double width = PLOT_LEFT + PLOT_W + 16 + 40 + 7.5 * (double)(longest < 40 ? longest : 40) + 10;
  double height = PLOT_TOP + PLOT_H + 50;
  double xlo, xhi, ylo, yhi;
  data_range(p, &xlo, &xhi, &ylo, &yhi);
  frame f = {svg_nice_axis(xlo, xhi, 6), svg_nice_axis(ylo, yhi, 6)};

  svg_buf b = {0};
  svg_open(&b, width, height, p->title);
  svg_printf(&b,
             "<defs><clipPath id=\"plotarea\"><rect x=\"%d\" y=\"%d\" width=\"%d\" "
             "height=\"%d\"/></clipPath></defs>\n",
             PLOT_LEFT, PLOT_TOP, PLOT_W, PLOT_H);
  axes(&b, &f, p, height);
  for (int i = 0; i < p->nseries; i++)
    series(&b, &f, &p->series[i], palette[i % 8]);
  legend(&b, p);
  return svg_close(&b, d);
}

bool rt_svg_plot_write(const rt_svg_plot *p, const char *path, ir_diag *d) {
  char *s = rt_svg_plot_text(p, d);
  if (!s) return false;
  bool ok = rt_write_file_atomic(path, s, strlen(s), d);
  free(s);
  return ok;
}
