/* The pipeline's command-line flags, shared by `kiln dump-ir`, `kiln run`,
 * `kiln grad` and `kiln train` (DESIGN.md, "Compilation pipeline"). */
#ifndef KILN_CLI_PASS_FLAGS_H
#define KILN_CLI_PASS_FLAGS_H

#include "passes/pipeline.h"
#include "tools/kiln/cli.h"

/* Help text for the flags, one per line, for a command's usage. */
extern const char cli_pass_flags_usage[];

/* Takes option `name` (value inline in val or next) into po: returns
 * CLI_OK when taken, CLI_USAGE after printing a usage error (unknown pass,
 * missing value, a directory that cannot be made), CLI_PASS_OTHER when the
 * option is not a pipeline flag. */
enum { CLI_PASS_OTHER = 4 };
int cli_pass_flag(cli_args *a, const char *name, const char *val, pass_opts *po);

#endif
