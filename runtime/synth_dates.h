/* The translation models' built-in dataset: a seeded date-normalisation
 * task, human-written dates between 1950-01-01 and 2050-12-31 in many
 * formats -> ISO "YYYY-MM-DD". The pairs are plain strings; the model picks
 * the tokenizer (characters suit both sides). */
#ifndef KILN_RT_SYNTH_DATES_H
#define KILN_RT_SYNTH_DATES_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "runtime/text.h"

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t rt_days_from_civil(int y, int m, int d);
void rt_civil_from_days(int64_t days, int *y, int *m, int *d);
/* 0 = monday ... 6 = sunday. */
int rt_weekday(int y, int m, int d);
bool rt_date_valid(int y, int m, int d);

/* The source formats, shown for 1998-05-09 (all lower case; numeric forms
 * are always day first with a four-digit year, so none is ambiguous):
 *   0 "saturday, 9 may 1998"   5 "9.5.1998"
 *   1 "9 may 1998"             6 "09/05/1998"
 *   2 "may 9, 1998"            7 "sat 9 may 1998"
 *   3 "1998 may 9"             8 "may 9th, 1998"
 *   4 "the 9th of may 1998"    9 "09 may 1998"  */
enum { RT_DATE_NFORMATS = 10 };

/* Writes date (y, m, d) in format fmt into buf[cap]; false if fmt or the
 * date is invalid or cap is too small (64 always suffices). */
bool rt_date_format(int y, int m, int d, int fmt, char *buf, size_t cap);
/* "YYYY-MM-DD" into buf[11]. */
void rt_date_iso(int y, int m, int d, char buf[11]);

/* n pairs (src = human date, tgt = ISO date), the same for the same
 * (seed, n) on every machine: pair i uses Philox keyed by seed with counter
 * {i lo, i hi, 0xda7e, 0}; word 0 picks the day uniformly in the range,
 * word 1 the format. Pair i does not depend on n. false with d set when n < 1
 * or out of memory. */
bool rt_dates_make(uint64_t seed, int64_t n, rt_pairs *out, ir_diag *d);

#endif
