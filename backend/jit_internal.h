/* Internal to the JIT driver (backend/jit.c, backend/jit_cache.c): the
 * on-disk object cache. A cache file DIR/<key>.o holds the object file
 * followed by a trailer (magic, key, SHA-256 of the object) so a truncated,
 * corrupted or misplaced file is refused before the linker ever sees it. */
#ifndef KILN_CG_JIT_INTERNAL_H
#define KILN_CG_JIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#define CG_JIT_CACHE_MAGIC "KILNOBJ1"
#define CG_JIT_CACHE_TRAILER (8 + 64 + 32)

/* The cache directory: `explicit_dir` if non-NULL, else
 * $XDG_CACHE_HOME/kiln (when set and absolute), else $HOME/.cache/kiln.
 * malloc'd; NULL when none can be determined (no cache is used then). */
char *cg_jit_cache_dir(const char *explicit_dir);

/* The object stored under key in dir, malloc'd with its length in *len; NULL
 * when the file is missing, unreadable, or fails the trailer check. */
void *cg_jit_cache_read(const char *dir, const char *key, size_t *len);

/* Stores obj under key: creates dir (mkdir -p), writes a temp file in it,
 * fsyncs and renames it into place. False on any failure, leaving no file
 * behind; a failed write never affects the compile. */
bool cg_jit_cache_write(const char *dir, const char *key, const void *obj, size_t len);

#endif
