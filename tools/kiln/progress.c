/* The progress line shared by the trainers (progress.h). It writes to
 * stderr only, so stdout keeps just the results. */
#include <stdio.h>
#include <unistd.h>

#include "tools/kiln/cli.h"
#include "tools/kiln/progress.h"

cli_progress cli_progress_start(int64_t first, int64_t end) {
  return (cli_progress){.tty = isatty(2), .t0 = cli_now_ms(), .first = first, .end = end};
}

void cli_progress_show(cli_progress *pg, int64_t step, double loss) {
  double now = cli_now_ms();
  if (now - pg->shown < (pg->tty ? 100 : 5000)) return;
  pg->shown = now;
  double el = (now - pg->t0) / 1000, tps = el > 0 ? (double)pg->tokens / el : 0;
  int64_t done = step - pg->first;
  double eta = done > 0 ? el / (double)done * (double)(pg->end - step) : 0;
  fprintf(stderr, "%sstep %lld/%lld  loss %.4f  %.0f tokens/s  ETA %.0fs%s",
          pg->tty ? "\r\033[K" : "", (long long)step, (long long)pg->end, loss, tps, eta,
          pg->tty ? "" : "\n");
}

void cli_progress_clear(const cli_progress *pg) {
  if (pg->tty) fputs("\r\033[K", stderr);
}
