/* The temp-file, fsync and rename sequence of runtime/atomic_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/atomic_file.h"

/* Makes the rename durable. Best effort: the data is already in place. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

bool rt_atomic_write(const char *path, rt_atomic_fill_fn fill, void *ctx, ir_diag *d) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
  if (!tmp) {
    ir_diag_set(d, "%s: out of memory", path);
    return false;
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
  int fd = mkstemp(tmp);
  if (fd < 0) {
    ir_diag_set(d, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    free(tmp);
    return false;
  }
  /* mkstemp makes the file 0600; the result should keep the mode of the
   * file it replaces, or get the usual 0644. */
  struct stat sb;
  mode_t mode = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (sb.st_mode & 07777) : 0644;
  (void)fchmod(fd, mode);
  int err = 0;
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    err = errno;
    close(fd);
  } else {
    errno = 0;
    if (!fill(f, ctx) || fflush(f) != 0 || fsync(fileno(f)) != 0) err = errno ? errno : EIO;
    if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
  }
  bool ok = !err;
  if (!ok) {
    ir_diag_set(d, "%s: write failed: %s", path, strerror(err));
  } else if (rename(tmp, path) != 0) {
    ok = false;
    ir_diag_set(d, "%s: cannot replace it with %s: %s", path, tmp, strerror(errno));
  }
  if (!ok)
    unlink(tmp);
  else
    sync_dir(path);
  free(tmp);
  return ok;
}
