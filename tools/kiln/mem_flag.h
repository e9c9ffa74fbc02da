/* `--max-memory BYTES`, shared by run, grad, train and dump-ir: the CLI's
 * side of kl_compile_opts.max_memory (the memory guard). */
#ifndef KILN_CLI_MEM_FLAG_H
#define KILN_CLI_MEM_FLAG_H

#include <stdbool.h>
#include <stdint.h>

#include "tools/kiln/cli.h"

/* The flag's help line for a command's usage text. */
extern const char cli_max_memory_usage[];

/* A byte count: digits with an optional K, M, G or T suffix (powers of
 * 1024, either case, optionally followed by B: "512M", "2gb"), "0" for the
 * physical memory, or "none" (stored as -1) for no limit. False for
 * anything else and for counts that overflow. */
bool cli_parse_bytes(const char *s, int64_t *out);

/* Takes --max-memory's value (inline in val or next) into *out: CLI_OK, or
 * CLI_USAGE with a message naming the flag. */
int cli_max_memory_opt(cli_args *a, const char *name, const char *val, int64_t *out);

#endif
