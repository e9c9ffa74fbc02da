/* The temp-file, fsync and rename sequence of runtime/atomic_file.h, and
 * the removal of the temp files of writers that died mid-write. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
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

/* BASE.tmp.PID.XXXXXX with PID all digits and six name characters after
 * it (what rt_atomic_write makes for BASE): the writer's pid, else 0. */
static long temp_owner(const char *name, const char *base, size_t blen) {
  if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp.", 5)) return 0;
  const char *p = name + blen + 5, *digits = p;
  long pid = 0;
  for (; *p >= '0' && *p <= '9' && pid < 1L << 40; p++)
    pid = pid * 10 + (*p - '0');
  if (p == digits || *p != '.' || strlen(p + 1) != 6) return 0;
  return pid;
}

/* Removes the temp files of earlier writes of path whose writer is dead
 * (killed mid-save). A live writer's file is never touched: its pid is
 * in the name and kill(pid, 0) finds it (EPERM also means alive). Only
 * names of this exact path's pattern are considered, so another file's
 * temp files are safe. A reused pid only delays the removal. */
static void remove_stale_temps(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  DIR *dh = dir ? opendir(dir) : NULL;
  size_t blen = strlen(base);
  long self = (long)getpid();
  for (struct dirent *e; dh && (e = readdir(dh));) {
    long pid = temp_owner(e->d_name, base, blen);
    if (pid <= 0 || pid == self || pid > (long)(~0u >> 1)) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    size_t n = strlen(dir) + strlen(e->d_name) + 2;
    char *full = malloc(n);
    if (full) {
      snprintf(full, n, "%s/%s", dir, e->d_name);
      (void)unlink(full);
      free(full);
    }
  }
  if (dh) closedir(dh);
  free(dir);
}

bool rt_atomic_write(const char *path, rt_atomic_fill_fn fill, void *ctx, ir_diag *d) {
  remove_stale_temps(path);
  size_t n = strlen(path) + 48;
  char *tmp = malloc(n);
  if (!tmp) {
    ir_diag_set(d, "%s: out of memory", path);
    return false;
  }
  /* The pid tells a later write whether this file's writer still lives. */
  snprintf(tmp, n, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
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
