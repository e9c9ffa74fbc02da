/* Shared by the tests that drive the kiln binary or write files: a temp dir
 * per suite, running `kiln ARGS` through the shell with stdout and stderr
 * captured, and small file helpers relative to the temp dir. */
#ifndef KILN_TEST_CLI_RUN_H
#define KILN_TEST_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>

extern char test_dir[256];
extern char test_out[1 << 16], test_err[1 << 16]; /* the last cli_run's stdout, stderr */

/* Creates test_dir as /tmp/PREFIX_XXXXXX (asserting), for a suite's .init. */
void test_dir_make(const char *prefix);
/* Removes test_dir and all in it (asserting), for a suite's .fini. */
void test_dir_remove(void);

/* Reads up to cap - 1 bytes of path into buf, NUL-terminated ("" when it
 * cannot be opened). */
void test_slurp(const char *path, char *buf, size_t cap);

/* Runs `'CLI' ARGS` with the shell in cwd (NULL: test_dir), with $D set to
 * test_dir and the compiled-code cache inside it; returns the exit status
 * (-1 when it did not exit) and leaves stdout/stderr in test_out/test_err.
 * The tests pass KILN_CLI (defined for them, not for this library). */
int cli_run(const char *cli, const char *cwd, const char *args);

/* Writes text to test_dir/NAME (asserting). */
void test_write_text(const char *name, const char *text);
/* The size of test_dir/NAME, -1 when it does not exist. */
long long test_file_size(const char *name);
bool test_exists(const char *name);

/* The last line of the last cli_run's stdout parsed as a JSON object
 * (asserting it is one); the caller json_decref()s it. */
struct json_t;
struct json_t *test_last_json(void);
#endif
