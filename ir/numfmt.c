/* Shortest round-trip float formatting for the IR printer. Digits come from
 * printf's correctly rounded %.*e at increasing precision; the first one that
 * reads back exactly is the shortest and, being correctly rounded, the
 * closest of that length, which is what Python's repr produces. */
#include "ir/numfmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lays out `digits` (no point) with decimal exponent `e` (value is
 * d.ddd x 10^e) in repr style. */
static void layout(bool neg, const char *digits, int e, char *buf, size_t len) {
  char out[IR_NUMFMT_LEN + 32];
  size_t k = 0, nd = strlen(digits);
  if (neg) out[k++] = '-';
  if (e >= -4 && e < 16) {
    if (e < 0) {
      out[k++] = '0';
      out[k++] = '.';
      for (int i = 0; i < -e - 1; i++)
        out[k++] = '0';
      memcpy(out + k, digits, nd);
      k += nd;
    } else {
      size_t ip = (size_t)e + 1; /* digits before the point */
      for (size_t i = 0; i < ip; i++)
        out[k++] = i < nd ? digits[i] : '0';
      out[k++] = '.';
      if (nd > ip) {
        memcpy(out + k, digits + ip, nd - ip);
        k += nd - ip;
      } else {
        out[k++] = '0';
      }
    }
    out[k] = 0;
  } else {
    out[k++] = digits[0];
    if (nd > 1) {
      out[k++] = '.';
      memcpy(out + k, digits + 1, nd - 1);
      k += nd - 1;
    }
    snprintf(out + k, sizeof out - k, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  }
  snprintf(buf, len, "%s", out);
}

/* Splits "d.ddde+XX" (from %.*e of a positive finite value) into digits and
 * exponent, dropping trailing zeros of the digits. */
static void split_sci(const char *s, char *digits, int *e) {
  size_t k = 0;
  const char *p = s;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') digits[k++] = *p;
  while (k > 1 && digits[k - 1] == '0')
    k--;
  digits[k] = 0;
  *e = *p == 'e' ? atoi(p + 1) : 0;
}

static bool special(double v, char *buf, size_t len) {
  if (isnan(v)) {
    snprintf(buf, len, "nan");
    return true;
  }
  if (isinf(v)) {
    snprintf(buf, len, v < 0 ? "-inf" : "inf");
    return true;
  }
  if (v == 0) {
    snprintf(buf, len, signbit(v) ? "-0.0" : "0.0");
    return true;
  }
  return false;
}

char *ir_fmt_f64(double v, char *buf, size_t len) {
  if (special(v, buf, len)) return buf;
  double a = fabs(v);
  char tmp[64], digits[32];
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, a);
    if (strtod(tmp, NULL) == a || p == 17) break;
  }
  int e;
  split_sci(tmp, digits, &e);
  layout(v < 0, digits, e, buf, len);
  return buf;
}

char *ir_fmt_f32(float v, char *buf, size_t len) {
  if (special(v, buf, len)) return buf;
  float a = fabsf(v);
  char tmp[64], digits[32];
  for (int p = 1; p <= 9; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, (double)a);
    if (strtof(tmp, NULL) == a || p == 9) break;
  }
  int e;
  split_sci(tmp, digits, &e);
  layout(v < 0, digits, e, buf, len);
  return buf;
}
