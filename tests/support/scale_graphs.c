/* Large IR texts built with a growing buffer (tests/support/scale_graphs.h). */
#include "tests/support/scale_graphs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap <= b->len + (size_t)n)
      cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->failed = 1;
      return;
    }
    b->p = q, b->cap = cap;
  }
}

static char *done(sbuf *b) {
  if (!b->failed) return b->p;
  free(b->p);
  return NULL;
}

char *sg_chain(int n, int width) {
  static const char *const ops[4] = {"add", "mul", "neg", "tanh"};
  sbuf b = {0};
  put(&b, "graph @chain(%%x: f32[%d]) {\n  %%c = const(0.75) : f32[]\n", width);
  for (int i = 1; i <= n; i++) {
    int op = (i - 1) % 4;
    char prev[24] = "x";
    if (i > 1) snprintf(prev, sizeof prev, "v%d", i - 1);
    if (op < 2)
      put(&b, "  %%v%d = %s(%%%s, %%c) : f32[%d]\n", i, ops[op], prev, width);
    else
      put(&b, "  %%v%d = %s(%%%s) : f32[%d]\n", i, ops[op], prev, width);
  }
  if (n)
    put(&b, "  return %%v%d\n}\n", n);
  else
    put(&b, "  return %%x\n}\n");
  return done(&b);
}

char *sg_returns(int k, int width) {
  sbuf b = {0};
  put(&b, "graph @rets(%%x: f32[%d]) {\n  %%y = tanh(%%x) : f32[%d]\n  return ", width, width);
  for (int i = 0; i < k; i++)
    put(&b, i ? ", %%y" : "%%y");
  put(&b, "\n}\n");
  return done(&b);
}

char *sg_fanout(int n, int width) {
  sbuf b = {0};
  put(&b, "graph @fan(%%x: f32[%d]) {\n  %%s0 = tanh(%%x) : f32[%d]\n", width, width);
  for (int i = 1; i <= n; i++) {
    put(&b, "  %%c%d = const(%d.0) : f32[]\n", i, i);
    put(&b, "  %%t%d = mul(%%x, %%c%d) : f32[%d]\n", i, i, width);
    put(&b, "  %%s%d = add(%%s%d, %%t%d) : f32[%d]\n", i, i - 1, i, width);
  }
  put(&b, "  return %%s%d\n}\n", n);
  return done(&b);
}

char *sg_params(int n, int width) {
  sbuf b = {0};
  put(&b, "graph @params(%%x: f32[%d]) {\n", width);
  for (int i = 1; i <= n; i++) {
    put(&b, "  %%w%d = param(\"w%d\") : f32[%d]\n", i, i, width);
    char prev[24] = "x";
    if (i > 1) snprintf(prev, sizeof prev, "s%d", i - 1);
    put(&b, "  %%s%d = add(%%%s, %%w%d) : f32[%d]\n", i, prev, i, width);
  }
  put(&b, "  return %%s%d\n}\n", n);
  return done(&b);
}

int sg_write(const char *path, const char *text) {
  FILE *f = text ? fopen(path, "w") : NULL;
  if (!f) return 0;
  int ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok;
}
