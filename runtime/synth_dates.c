/* The date-normalisation generator (see runtime/synth_dates.h). Dates are
 * handled as day counts (Howard Hinnant's civil-from-days algorithm), which
 * gives weekdays and leap years without tables. */
#include <stdio.h>

#include "runtime/philox.h"
#include "runtime/synth_dates.h"

static const char *const month_name[12] = {"january",   "february", "march",    "april",
                                           "may",       "june",     "july",     "august",
                                           "september", "october",  "november", "december"};
static const char *const month_abbr[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_name[7] = {"monday", "tuesday",  "wednesday", "thursday",
                                        "friday", "saturday", "sunday"};

int64_t rt_days_from_civil(int y, int m, int d) {
  int64_t yy = (int64_t)y - (m <= 2);
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400;                                  /* [0, 399] */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
  return era * 146097 + doe - 719468;
}

void rt_civil_from_days(int64_t days, int *y, int *m, int *d) {
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

int rt_weekday(int y, int m, int d) {
  /* 1970-01-01 was a thursday (3). */
  int64_t w = (rt_days_from_civil(y, m, d) + 3) % 7;
  return (int)(w < 0 ? w + 7 : w);
}

bool rt_date_valid(int y, int m, int d) {
  if (m < 1 || m > 12 || d < 1 || d > 31) return false;
  int yy, mm, dd;
  rt_civil_from_days(rt_days_from_civil(y, m, d), &yy, &mm, &dd);
  return yy == y && mm == m && dd == d;
}

static const char *ordinal(int d) {
  if (d >= 11 && d <= 13) return "th";
  return d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : d % 10 == 3 ? "rd" : "th";
}

bool rt_date_format(int y, int m, int d, int fmt, char *buf, size_t cap) {
  if (!rt_date_valid(y, m, d) || fmt < 0 || fmt >= RT_DATE_NFORMATS) return false;
  const char *mon = month_name[m - 1], *wd = day_name[rt_weekday(y, m, d)];
  int n = -1;
  switch (fmt) {
  case 0: n = snprintf(buf, cap, "%s, %d %s %d", wd, d, mon, y); break;
  case 1: n = snprintf(buf, cap, "%d %s %d", d, mon, y); break;
  case 2: n = snprintf(buf, cap, "%s %d, %d", mon, d, y); break;
  case 3: n = snprintf(buf, cap, "%d %s %d", y, mon, d); break;
  case 4: n = snprintf(buf, cap, "the %d%s of %s %d", d, ordinal(d), mon, y); break;
  case 5: n = snprintf(buf, cap, "%d.%d.%d", d, m, y); break;
  case 6: n = snprintf(buf, cap, "%02d/%02d/%04d", d, m, y); break;
  case 7: n = snprintf(buf, cap, "%.3s %d %s %d", wd, d, mon, y); break;
  case 8: n = snprintf(buf, cap, "%s %d%s, %d", mon, d, ordinal(d), y); break;
  case 9: n = snprintf(buf, cap, "%02d %s %d", d, month_abbr[m - 1], y); break;
  }
  return n >= 0 && (size_t)n < cap;
}

void rt_date_iso(int y, int m, int d, char buf[11]) {
  /* Digit by digit: snprintf's truncation warning cannot see the ranges. */
  const int v[3] = {y, m, d}, width[3] = {4, 2, 2};
  int o = 0;
  for (int f = 0; f < 3; f++) {
    if (f) buf[o++] = '-';
    unsigned x = (unsigned)(v[f] < 0 ? 0 : v[f]);
    for (int k = width[f] - 1; k >= 0; k--, x /= 10)
      buf[o + k] = (char)('0' + x % 10);
    o += width[f];
  }
  buf[o] = '\0';
}

bool rt_dates_make(uint64_t seed, int64_t n, rt_pairs *out, ir_diag *d) {
  *out = (rt_pairs){0};
  if (n < 1) {
    ir_diag_set(d, "date data: need at least one example, got %lld", (long long)n);
    return false;
  }
  const int64_t lo = rt_days_from_civil(1950, 1, 1),
                span = rt_days_from_civil(2050, 12, 31) - lo + 1;
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (int64_t i = 0; i < n; i++) {
    const uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), 0xda7e, 0};
    uint32_t w[4];
    rt_philox4x32(ctr, key, w);
    int y, m, dd;
    rt_civil_from_days(lo + (int64_t)(w[0] % (uint32_t)span), &y, &m, &dd);
    char src[64], iso[11];
    if (!rt_date_format(y, m, dd, (int)(w[1] % RT_DATE_NFORMATS), src, sizeof src)) {
      ir_diag_set(d, "date data: internal error formatting %04d-%02d-%02d", y, m, dd);
      rt_pairs_free(out);
      return false;
    }
    rt_date_iso(y, m, dd, iso);
    if (!rt_pairs_push(out, src, iso)) {
      ir_diag_set(d, "date data: out of memory at example %lld", (long long)i);
      rt_pairs_free(out);
      return false;
    }
  }
  return true;
}
