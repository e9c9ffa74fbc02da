/* Checking an output path before the long work that ends in writing it
 * (a checkpoint after training, a figure after translating), so a typo in
 * a directory name costs nothing. */
#ifndef KILN_CLI_OUT_PATH_H
#define KILN_CLI_OUT_PATH_H

/* CLI_OK when path can be written later the way runtime/atomic_file.h
 * writes it (a temp file in its directory, renamed over it): the directory
 * exists and is writable and path is not a directory. Otherwise an error
 * (exit 1) "CMD: WHAT PATH: why". Creates nothing. */
int cli_check_output(const char *cmd, const char *what, const char *path);

#endif
