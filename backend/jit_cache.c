/* The JIT's on-disk object cache: where it lives, reading a cached object
 * back with an integrity check, and writing one atomically (temp file in
 * the same directory, fsync, rename) so readers never see a partial file. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/jit_internal.h"
#include "ir/sha256.h"

/* Far above any object kiln emits; guards the allocation against a file
 * that is not ours. */
#define CACHE_MAX_BYTES ((size_t)1 << 30)

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 2);
  if (!s) return NULL;
  memcpy(s, a, la);
  s[la] = '/';
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

char *cg_jit_cache_dir(const char *explicit_dir) {
  if (explicit_dir && explicit_dir[0]) return strdup(explicit_dir);
  /* The XDG spec says relative values are invalid and must be ignored. */
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && xdg[0] == '/') return join(xdg, "kiln");
  const char *home = getenv("HOME");
  if (home && home[0]) return join(home, ".cache/kiln");
  return NULL;
}

/* mkdir -p: every missing component, tolerating ones that already exist. */
static bool mkdirs(const char *path) {
  char *p = strdup(path);
  if (!p) return false;
  bool ok = true;
  for (char *s = p + 1; ok; s++) {
    if (*s != '/' && *s != 0) continue;
    char c = *s;
    *s = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) ok = false;
    *s = c;
    if (!c) break;
  }
  if (ok) {
    struct stat st;
    ok = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  }
  free(p);
  return ok;
}

static char *object_path(const char *dir, const char *key) {
  char name[80];
  snprintf(name, sizeof name, "%s.o", key);
  return join(dir, name);
}

static bool read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len) {
    ssize_t r = read(fd, p, len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    len -= (size_t)r;
  }
  return true;
}

static bool write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t r = write(fd, p, len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    len -= (size_t)r;
  }
  return true;
}

static void make_trailer(const char *key, const void *obj, size_t len,
                         uint8_t out[CG_JIT_CACHE_TRAILER]) {
  memcpy(out, CG_JIT_CACHE_MAGIC, 8);
  memcpy(out + 8, key, 64);
  ir_sha256(obj, len, out + 72);
}

void *cg_jit_cache_read(const char *dir, const char *key, size_t *len) {
  char *path = object_path(dir, key);
  if (!path) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  free(path);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *buf = NULL;
  size_t n = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > CG_JIT_CACHE_TRAILER &&
      (uint64_t)st.st_size <= CACHE_MAX_BYTES) {
    n = (size_t)st.st_size;
    buf = malloc(n);
    if (buf && !read_all(fd, buf, n)) {
      free(buf);
      buf = NULL;
    }
  }
  close(fd);
  if (!buf) return NULL;
  size_t objlen = n - CG_JIT_CACHE_TRAILER;
  uint8_t want[CG_JIT_CACHE_TRAILER];
  make_trailer(key, buf, objlen, want);
  if (memcmp(buf + objlen, want, sizeof want) != 0) {
    free(buf);
    return NULL;
  }
  *len = objlen;
  return buf;
}

bool cg_jit_cache_write(const char *dir, const char *key, const void *obj, size_t len) {
  if (!mkdirs(dir)) return false;
  char *path = object_path(dir, key);
  char tmpname[96];
  snprintf(tmpname, sizeof tmpname, ".%s.o.XXXXXX", key);
  char *tmp = join(dir, tmpname);
  bool ok = false;
  if (path && tmp) {
    int fd = mkstemp(tmp);
    if (fd >= 0) {
      uint8_t trailer[CG_JIT_CACHE_TRAILER];
      make_trailer(key, obj, len, trailer);
      ok = write_all(fd, obj, len) && write_all(fd, trailer, sizeof trailer) && fsync(fd) == 0;
      ok = close(fd) == 0 && ok;
      ok = ok && rename(tmp, path) == 0;
      if (!ok) unlink(tmp);
    }
  }
  if (ok) {
    /* Make the rename itself durable; failing here loses only a cache entry. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
  }
  free(path);
  free(tmp);
  return ok;
}
