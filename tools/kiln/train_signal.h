/* SIGINT and SIGTERM during `kiln train`: the handler only records the
 * signal, and every training loop polls it after each step, so the step
 * in flight finishes, the checkpoint (with --save) is written whole, and
 * the run exits with 128 + the signal (130, 143). */
#ifndef KILN_CLI_TRAIN_SIGNAL_H
#define KILN_CLI_TRAIN_SIGNAL_H

#include <stdbool.h>
#include <stdint.h>

/* Installs the handlers (the previous ones are kept for restore). A signal
 * that arrives while a checkpoint is being written, a second one
 * included, only sets the flag again, so it cannot cut a save short. */
void train_signal_install(void);
/* Puts the handlers that were there before install back. */
void train_signal_restore(void);
/* The signal received since install (SIGINT or SIGTERM), else 0. */
int train_signal_pending(void);
/* After the loop stopped for sig at `step` (and saved to `saved` unless
 * NULL): one line on stderr saying so; returns the exit status 128 + sig. */
int train_signal_exit(int sig, int64_t step, const char *saved);

#endif
