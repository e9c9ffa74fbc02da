/* The date-normalisation generator: day counts and weekdays against dates
 * checked with Python's datetime, weekdays of generated data against an
 * independent Zeller's congruence, leap years, every format, and seeding. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "runtime/synth_dates.h"

static const struct {
  int y, m, d, wd; /* 0 = monday */
  long long days;  /* since 1970-01-01 */
} known[] = {
    {1998, 5, 9, 5, 10355}, {2000, 2, 29, 1, 11016},  {1970, 1, 1, 3, 0},
    {1950, 1, 1, 6, -7305}, {2050, 12, 31, 5, 29584}, {1900, 3, 1, 3, -25508},
};

Test(dates, days_and_weekdays_of_known_dates) {
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    int y, m, d;
    cr_expect_eq(rt_days_from_civil(known[i].y, known[i].m, known[i].d), known[i].days,
                 "days of %d-%d-%d", known[i].y, known[i].m, known[i].d);
    cr_expect_eq(rt_weekday(known[i].y, known[i].m, known[i].d), known[i].wd, "weekday of %d-%d-%d",
                 known[i].y, known[i].m, known[i].d);
    rt_civil_from_days(known[i].days, &y, &m, &d);
    cr_expect(y == known[i].y && m == known[i].m && d == known[i].d, "back: %d-%d-%d", y, m, d);
  }
}

Test(dates, leap_years) {
  cr_expect(rt_date_valid(2000, 2, 29));
  cr_expect(rt_date_valid(2024, 2, 29));
  cr_expect(rt_date_valid(1952, 2, 29));
  cr_expect(!rt_date_valid(1900, 2, 29));
  cr_expect(!rt_date_valid(2023, 2, 29));
  cr_expect(!rt_date_valid(2100, 2, 29));
  cr_expect(!rt_date_valid(1999, 4, 31));
  cr_expect(!rt_date_valid(1999, 13, 1));
  cr_expect(rt_date_valid(1999, 12, 31));
  cr_expect_eq(rt_days_from_civil(2000, 3, 1) - rt_days_from_civil(2000, 2, 28), 2);
  cr_expect_eq(rt_days_from_civil(2001, 3, 1) - rt_days_from_civil(2001, 2, 28), 1);
  cr_expect_eq(rt_days_from_civil(2001, 1, 1) - rt_days_from_civil(2000, 1, 1), 366);
}

Test(dates, formats_of_one_date) {
  const char *want[RT_DATE_NFORMATS] = {
      "saturday, 9 may 1998", "9 may 1998", "may 9, 1998", "1998 may 9",
      "the 9th of may 1998",  "9.5.1998",   "09/05/1998",  "sat 9 may 1998",
      "may 9th, 1998",        "09 may 1998"};
  char buf[64];
  for (int f = 0; f < RT_DATE_NFORMATS; f++) {
    cr_assert(rt_date_format(1998, 5, 9, f, buf, sizeof buf));
    cr_expect_str_eq(buf, want[f], "format %d: \"%s\", want \"%s\"", f, buf, want[f]);
  }
  cr_expect(!rt_date_format(1998, 5, 9, RT_DATE_NFORMATS, buf, sizeof buf));
  cr_expect(!rt_date_format(1998, 2, 30, 0, buf, sizeof buf));
  cr_expect(!rt_date_format(1998, 5, 9, 0, buf, 8)); /* too small */
  const struct {
    int d;
    const char *s;
  } ord[] = {{1, "the 1st of march 2021"},   {2, "the 2nd of march 2021"},
             {3, "the 3rd of march 2021"},   {4, "the 4th of march 2021"},
             {11, "the 11th of march 2021"}, {12, "the 12th of march 2021"},
             {13, "the 13th of march 2021"}, {21, "the 21st of march 2021"},
             {22, "the 22nd of march 2021"}, {23, "the 23rd of march 2021"},
             {31, "the 31st of march 2021"}};
  for (size_t i = 0; i < sizeof ord / sizeof ord[0]; i++) {
    cr_assert(rt_date_format(2021, 3, ord[i].d, 4, buf, sizeof buf));
    cr_expect_str_eq(buf, ord[i].s);
  }
  cr_assert(rt_date_format(2000, 2, 29, 0, buf, sizeof buf));
  cr_expect_str_eq(buf, "tuesday, 29 february 2000");
  char iso[11];
  rt_date_iso(1950, 1, 2, iso);
  cr_expect_str_eq(iso, "1950-01-02");
}

/* Zeller's congruence, 0 = monday. */
static int zeller(int y, int m, int d) {
  if (m < 3) m += 12, y -= 1;
  int h = (d + 13 * (m + 1) / 5 + y % 100 + y % 100 / 4 + y / 100 / 4 + 5 * (y / 100)) % 7;
  return (h + 5) % 7; /* h: 0 = saturday */
}

Test(dates, generated_pairs) {
  static const char *const wd[7] = {"monday", "tuesday",  "wednesday", "thursday",
                                    "friday", "saturday", "sunday"};
  enum { N = 3000 };
  ir_diag diag = {0};
  rt_pairs p, q, small, other;
  cr_assert(rt_dates_make(1234, N, &p, &diag), "%s", diag.msg);
  cr_assert(rt_dates_make(1234, N, &q, &diag));
  cr_assert(rt_dates_make(1234, 5, &small, &diag));
  cr_assert(rt_dates_make(1235, N, &other, &diag));
  cr_assert_eq(p.n, N);
  int seen[RT_DATE_NFORMATS] = {0}, differ = 0, weekday_named = 0;
  for (int i = 0; i < N; i++) {
    cr_expect_str_eq(p.src[i], q.src[i]);
    cr_expect_str_eq(p.tgt[i], q.tgt[i]);
    if (i < 5) cr_expect_str_eq(p.src[i], small.src[i], "pair %d depends on n", i);
    differ += strcmp(p.tgt[i], other.tgt[i]) != 0;
    int y, m, d, used = 0;
    cr_assert_eq(strlen(p.tgt[i]), 10, "\"%s\"", p.tgt[i]);
    cr_assert_eq(sscanf(p.tgt[i], "%4d-%2d-%2d", &y, &m, &d), 3, "\"%s\"", p.tgt[i]);
    cr_assert(rt_date_valid(y, m, d), "\"%s\"", p.tgt[i]);
    cr_expect(y >= 1950 && y <= 2050, "\"%s\"", p.tgt[i]);
    char iso[11];
    rt_date_iso(y, m, d, iso);
    cr_expect_str_eq(iso, p.tgt[i]);
    char buf[64];
    for (int f = 0; f < RT_DATE_NFORMATS; f++) {
      cr_assert(rt_date_format(y, m, d, f, buf, sizeof buf));
      if (strcmp(buf, p.src[i]) == 0) seen[f]++, used = 1;
    }
    cr_expect(used, "\"%s\" is not a format of %s", p.src[i], p.tgt[i]);
    int z = zeller(y, m, d), named = 0;
    cr_expect_eq(rt_weekday(y, m, d), z, "%s", p.tgt[i]);
    size_t w = strcspn(p.src[i], " ,");
    for (int k = 0; k < 7; k++)
      if ((w == 3 || w == strlen(wd[k])) && strncmp(p.src[i], wd[k], w) == 0) {
        named = 1;
        cr_expect_eq(k, z, "\"%s\" should name %s", p.src[i], wd[z]);
      }
    weekday_named += named;
  }
  for (int f = 0; f < RT_DATE_NFORMATS; f++)
    cr_expect_gt(seen[f], N / RT_DATE_NFORMATS / 2, "format %d seen %d times", f, seen[f]);
  cr_expect_gt(differ, N * 9 / 10, "seeds 1234 and 1235 agree on %d of %d", N - differ, N);
  cr_expect_gt(weekday_named, N / RT_DATE_NFORMATS, "only %d sources name a weekday",
               weekday_named);
  rt_pairs_free(&p);
  rt_pairs_free(&q);
  rt_pairs_free(&small);
  rt_pairs_free(&other);
  cr_expect(!rt_dates_make(1, 0, &p, &diag));
}
