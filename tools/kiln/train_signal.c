/* train_signal.h: one flag set by the SIGINT/SIGTERM handler and read by
 * the training loops between steps. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tools/kiln/train_signal.h"

/* Process-wide by nature: a signal handler can only reach static state.
 * Atomic rather than volatile sig_atomic_t: two signals can run their
 * handlers at once in different threads (kernel and BLAS workers take
 * process signals too), and the first one must win. Lock-free atomics are
 * async-signal-safe. */
static atomic_int pending;
static struct sigaction old_int, old_term;
static bool installed;

static void on_signal(int sig) {
  int none = 0;
  atomic_compare_exchange_strong(&pending, &none, sig);
}

void train_signal_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  /* SA_RESTART: a write or fsync of the checkpoint that the signal
   * interrupts carries on instead of failing with EINTR. */
  sa.sa_flags = SA_RESTART;
  atomic_store(&pending, 0);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  installed = true;
}

void train_signal_restore(void) {
  if (!installed) return;
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  installed = false;
}

int train_signal_pending(void) { return atomic_load(&pending); }

int train_signal_exit(int sig, int64_t step, const char *saved) {
  const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
  if (saved)
    fprintf(stderr, "kiln train: stopped by %s after step %lld; saved %s\n", name, (long long)step,
            saved);
  else
    fprintf(stderr, "kiln train: stopped by %s after step %lld (no --save: nothing saved)\n", name,
            (long long)step);
  return 128 + sig;
}
