/* Number formatting for the IR text: the shortest decimal that reads back to
 * the same value, written Python-repr style (positional for decimal exponents
 * in [-4, 16), else 1e-05 style), always recognisable as a float. */
#ifndef KILN_IR_NUMFMT_H
#define KILN_IR_NUMFMT_H

#include <stddef.h>

/* Buffer size that fits any output of the functions below. */
#define IR_NUMFMT_LEN 40

/* Shortest digits that round-trip through strtod (at most 17). */
char *ir_fmt_f64(double v, char *buf, size_t len);
/* Shortest digits that round-trip through strtof (at most 9). */
char *ir_fmt_f32(float v, char *buf, size_t len);

#endif
