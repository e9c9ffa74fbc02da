/* Pass tests as IR text: every tests/passes/NAME.kir whose first line is
 * `# RUN-AFTER: <pass>` is dumped after that pass by the CLI and checked by
 * LLVM's FileCheck against the CHECK lines of the same file. One assertion
 * per file, naming it; FileCheck's own report goes to stderr. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KILN_FILECHECK
#define KILN_FILECHECK ""
#endif

#define PASS_DIR KILN_SOURCE_DIR "/tests/passes"

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The pass named on the first line, or false when the file has no
 * RUN-AFTER line (not a pass test). */
static bool run_after(const char *path, char *pass, size_t len) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  char line[256];
  bool ok = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  const char *tag = "# RUN-AFTER:";
  if (!ok || strncmp(line, tag, strlen(tag)) != 0) return false;
  const char *p = line + strlen(tag);
  while (*p == ' ' || *p == '\t')
    p++;
  size_t n = strcspn(p, " \t\r\n");
  if (n == 0 || n >= len) return false;
  memcpy(pass, p, n);
  pass[n] = 0;
  return true;
}

/* Pass names come from our own files but still go through a shell: allow
 * only the characters pass names use. */
static bool safe_word(const char *s) {
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '-' || *s == '_' || *s == '.'))
      return false;
  return true;
}

Test(filecheck, every_pass_test_file) {
  if (KILN_FILECHECK[0] == 0 || access(KILN_FILECHECK, X_OK) != 0) {
    cr_log_warn("FileCheck was not found at configure time (\"%s\"): skipping the "
                "tests/passes checks",
                KILN_FILECHECK);
    cr_skip_test("FileCheck not found");
  }
  DIR *dir = opendir(PASS_DIR);
  cr_assert_not_null(dir, "cannot open %s", PASS_DIR);
  char *names[512];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL && n < 512) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".kir") == 0) names[n++] = strdup(e->d_name);
  }
  closedir(dir);
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  int ran = 0;
  for (int i = 0; i < n; i++) {
    char path[1024], pass[128], cmd[4096];
    snprintf(path, sizeof path, "%s/%s", PASS_DIR, names[i]);
    if (!run_after(path, pass, sizeof pass)) {
      free(names[i]);
      continue;
    }
    cr_expect(safe_word(pass) && safe_word(names[i]), "%s: odd pass or file name '%s'", names[i],
              pass);
    if (!safe_word(pass) || !safe_word(names[i])) {
      free(names[i]);
      continue;
    }
    /* pipefail: a dump-ir failure must fail the check even when FileCheck
     * would accept its (empty) output against CHECK-NOT lines only. */
    snprintf(cmd, sizeof cmd,
             "bash -c 'set -o pipefail; \"%s\" dump-ir \"%s\" --after %s | \"%s\" \"%s\"' 1>&2",
             KILN_CLI, path, pass, KILN_FILECHECK, path);
    int rc = system(cmd);
    cr_expect(rc == 0, "%s: dump-ir --after %s | FileCheck failed (status %d)", names[i], pass, rc);
    ran++;
    free(names[i]);
  }
  cr_expect(ran > 0, "no tests/passes/ .kir file starts with '# RUN-AFTER: <pass>'");
}
