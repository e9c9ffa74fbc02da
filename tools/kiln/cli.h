/* Shared pieces of the kiln CLI: option parsing, messages and exit codes
 * (DESIGN.md: errors exit 1, usage errors exit 2), reading files. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "ir/ir.h"

enum { CLI_OK = 0, CLI_ERROR = 1, CLI_USAGE = 2 };

/* A command's options: argv after the command name, scanned in order.
 * Supports "--opt value", "--opt=value" and bare flags. */
typedef struct cli_args {
  const char *cmd; /* for messages: "run" */
  int argc;
  char **argv;
  int i;
} cli_args;

/* Next argument: returns 1 for an option (*name set, without "--"), 2 for
 * a positional (*value set), 0 at the end. */
int cli_next(cli_args *a, const char **name, const char **value);
/* The value of the option just returned by cli_next; NULL (with a usage
 * message printed) when missing. */
const char *cli_value(cli_args *a, const char *name, const char *inline_value);

int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool cli_parse_u64(const char *s, unsigned long long *out);
/* Option --name's value v as an integer in [lo, hi] (0 <= lo): CLI_OK, or
 * CLI_USAGE with "--NAME wants an integer in [LO, HI], got 'V'" printed. */
int cli_parse_int(const char *cmd, const char *name, const char *v, int lo, int hi, int *out);
double cli_now_ms(void); /* monotonic clock */

/* Reads a whole file (malloc'd, NUL-terminated; caller frees). NULL with d
 * set ("PATH: cannot open: ...") on failure. */
char *cli_read_file(const char *path, size_t *len, ir_diag *d);
/* Parses a .kir file; NULL with the message printed (exit status 1). */
ir_graph *cli_load_graph(const char *cmd, const char *path);

int cmd_run(int argc, char **argv);
int cmd_dump_ir(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_passes(int argc, char **argv);
int cmd_not_yet(const char *cmd, int argc, char **argv);

#endif
