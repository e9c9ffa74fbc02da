/* Shared by the SVG writers (runtime/svg*.c): a growing text buffer that
 * remembers running out of memory, XML-escaped text, and axis ticks. */
#ifndef KILN_RT_SVG_INTERNAL_H
#define KILN_RT_SVG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/svg.h"

typedef struct svg_buf {
  char *p;
  size_t n, cap;
  bool oom; /* sticky: later appends do nothing */
} svg_buf;

void svg_printf(svg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s escaped for XML text and attribute values. */
void svg_text(svg_buf *b, const char *s);
/* Opens the document (XML declaration, <svg> with size, white background,
 * the title centred at the top when given). */
void svg_open(svg_buf *b, double width, double height, const char *title);
/* Closes it and hands the string over (NULL with d set when out of memory). */
char *svg_close(svg_buf *b, ir_diag *d);

/* Ticks: an axis [lo, hi] widened to multiples of a 1-2-5 step giving about
 * `target` intervals. */
typedef struct svg_axis {
  double lo, hi, step;
  int decimals; /* for labels */
} svg_axis;

svg_axis svg_nice_axis(double lo, double hi, int target);
/* Tick label of v on axis a ("-0" printed as "0"). */
void svg_tick_label(const svg_axis *a, double v, char *buf, size_t len);

#endif
