/* The plumbing under the SVG writers: the text buffer, XML escaping that
 * also repairs invalid UTF-8 (a token from a corrupt file must not make the
 * whole figure unreadable), 1-2-5 axis ticks, and the atomic file write. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/atomic_file.h"
#include "runtime/svg_internal.h"

static bool grow(svg_buf *b, size_t extra) {
  if (b->oom) return false;
  if (b->n + extra + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->n + extra + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

void svg_printf(svg_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0 || !grow(b, (size_t)k)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

static void put(svg_buf *b, const char *s, size_t n) {
  if (!grow(b, n)) return;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static int utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  int n;
  unsigned min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000;
  } else {
    return 0;
  }
  unsigned cp = c & (0x7Fu >> n);
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void svg_text(svg_buf *b, const char *s) {
  if (!s) return;
  const unsigned char *u = (const unsigned char *)s;
  while (*u) {
    unsigned c = *u;
    int n = utf8_len(u);
    if (c == '&') {
      put(b, "&amp;", 5);
    } else if (c == '<') {
      put(b, "&lt;", 4);
    } else if (c == '>') {
      put(b, "&gt;", 4);
    } else if (c == '"') {
      put(b, "&quot;", 6);
    } else if (c == '\'') {
      put(b, "&apos;", 6);
    } else if (c < 0x20 || c == 0x7F) {
      put(b, " ", 1); /* control characters are not allowed in XML 1.0 */
    } else if (n == 0) {
      put(b, "\xEF\xBF\xBD", 3);
      n = 1;
    } else {
      put(b, (const char *)u, (size_t)n);
    }
    u += n ? n : 1;
  }
}

void svg_open(svg_buf *b, double width, double height, const char *title) {
  svg_printf(b,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, "
             "sans-serif\" font-size=\"12\">\n"
             "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n",
             width, height, width, height, width, height);
  if (title && *title) {
    svg_printf(b, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", width / 2);
    svg_text(b, title);
    svg_printf(b, "</text>\n");
  }
}

char *svg_close(svg_buf *b, ir_diag *d) {
  svg_printf(b, "</svg>\n");
  if (b->oom) {
    free(b->p);
    ir_diag_set(d, "svg: out of memory");
    return NULL;
  }
  return b->p;
}

svg_axis svg_nice_axis(double lo, double hi, int target) {
  svg_axis a;
  if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) {
    double t = lo;
    lo = hi;
    hi = t;
  }
  if (hi - lo < 1e-12 * fmax(1.0, fabs(lo))) {
    double pad = lo == 0 ? 1.0 : fabs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  double raw = (hi - lo) / (target > 0 ? target : 5);
  double mag = pow(10.0, floor(log10(raw)));
  double f = raw / mag;
  double step = (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag; /* nearest */
  a.step = step;
  a.lo = floor(lo / step + 1e-9) * step;
  a.hi = ceil(hi / step - 1e-9) * step;
  int k = (int)floor(log10(step) + 1e-9);
  a.decimals = k < 0 ? -k : 0;
  return a;
}

void svg_tick_label(const svg_axis *a, double v, char *buf, size_t len) {
  if (fabs(v) < a->step * 1e-6) v = 0.0;
  snprintf(buf, len, "%.*f", a->decimals, v);
}

typedef struct text_span {
  const char *text;
  size_t len;
} text_span;

static bool fill_text(FILE *f, void *ctx) {
  const text_span *t = ctx;
  return fwrite(t->text, 1, t->len, f) == t->len;
}

bool rt_write_file_atomic(const char *path, const char *text, size_t len, ir_diag *d) {
  if (!path || !*path || !text) {
    ir_diag_set(d, "write: needs a path and a text");
    return false;
  }
  text_span t = {text, len};
  return rt_atomic_write(path, fill_text, &t, d);
}
