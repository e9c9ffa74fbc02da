/* Replacing a file atomically, for the runtime's writers (SVG figures,
 * safetensors checkpoints): the content goes to PATH.tmp.PID.XXXXXX in the
 * same directory, is fsync'ed and renamed over PATH, so a crash or a full
 * disk never leaves a torn file. A process killed mid-write leaves its temp
 * file; the next write of PATH removes it (and any other of PATH's temp
 * files whose writer pid is dead). */
#ifndef KILN_RUNTIME_ATOMIC_FILE_H
#define KILN_RUNTIME_ATOMIC_FILE_H

#include <stdbool.h>
#include <stdio.h>

#include "ir/ir.h"

/* Writes the content to f; false on failure, with errno set when known. */
typedef bool (*rt_atomic_fill_fn)(FILE *f, void *ctx);

/* Has fill write the temp file (given the mode of the file it replaces, or
 * 0644), then flushes, fsyncs and renames it over path and syncs the
 * directory. On failure the temp file is removed, path is neither created
 * nor changed, and d says why ("PATH: write failed: ..."). */
bool rt_atomic_write(const char *path, rt_atomic_fill_fn fill, void *ctx, ir_diag *d);

#endif
