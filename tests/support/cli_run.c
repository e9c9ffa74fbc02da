/* The temp-dir and CLI-running helpers of tests/support/cli_run.h. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/support/cli_run.h"

char test_dir[256];
char test_out[1 << 16], test_err[1 << 16];

void test_dir_make(const char *prefix) {
  snprintf(test_dir, sizeof test_dir, "/tmp/%s_XXXXXX", prefix);
  cr_assert_not_null(mkdtemp(test_dir));
}

void test_dir_remove(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_dir);
  cr_assert_eq(system(cmd), 0);
}

void test_slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = 0;
  if (f) fclose(f);
}

int cli_run(const char *cli, const char *cwd, const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && D='%s' && XDG_CACHE_HOME=\"$D/cache\" '%s' %s >\"$D/.stdout\" "
           "2>\"$D/.stderr\"",
           cwd ? cwd : test_dir, test_dir, cli, args);
  int st = system(cmd);
  char p[512];
  snprintf(p, sizeof p, "%s/.stdout", test_dir);
  test_slurp(p, test_out, sizeof test_out);
  snprintf(p, sizeof p, "%s/.stderr", test_dir);
  test_slurp(p, test_err, sizeof test_err);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void test_write_text(const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", test_dir, name);
  FILE *f = fopen(p, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

long long test_file_size(const char *name) {
  char p[512];
  struct stat sb;
  snprintf(p, sizeof p, "%s/%s", test_dir, name);
  return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

bool test_exists(const char *name) { return test_file_size(name) >= 0; }

json_t *test_last_json(void) {
  size_t n = strlen(test_out);
  cr_assert(n > 0 && test_out[n - 1] == '\n', "stdout: %s", test_out);
  test_out[n - 1] = 0;
  char *last = strrchr(test_out, '\n');
  last = last ? last + 1 : test_out;
  json_error_t e;
  json_t *j = json_loads(last, 0, &e);
  cr_assert_not_null(j, "last line is not JSON (%s): %s", e.text, last);
  cr_assert(json_is_object(j), "last line is not a JSON object: %s", last);
  test_out[n - 1] = '\n';
  return j;
}
