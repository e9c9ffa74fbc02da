/* The live progress line of `kiln train` (DESIGN.md): on a terminal one
 * line redrawn at most every 100 ms with step, loss, tokens/s and ETA; on
 * anything else a plain line every 5 s, so logs stay readable. Steps count
 * from the program's step counter, so a resumed run shows its place in the
 * whole run. */
#ifndef KILN_CLI_PROGRESS_H
#define KILN_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cli_progress {
  bool tty;
  double t0, shown;   /* ms */
  int64_t first, end; /* the step this process started at, the step to stop at */
  int64_t tokens;     /* trained on by this process */
} cli_progress;

/* Starts the clock; tty is taken from stderr. */
cli_progress cli_progress_start(int64_t first, int64_t end);
/* Shows step and loss when the last line is old enough. */
void cli_progress_show(cli_progress *pg, int64_t step, double loss);
/* Erases the live line (on a terminal) before other output. */
void cli_progress_clear(const cli_progress *pg);

#endif
