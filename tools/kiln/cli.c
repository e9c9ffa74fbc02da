/* Option scanning, messages and file reading shared by the CLI commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/kiln/cli.h"

int cli_next(cli_args *a, const char **name, const char **value) {
  if (a->i >= a->argc) return 0;
  char *s = a->argv[a->i++];
  *value = NULL;
  if (strncmp(s, "--", 2) == 0 && s[2]) {
    char *eq = strchr(s, '=');
    static char buf[128];
    if (eq) {
      size_t n = (size_t)(eq - s - 2);
      if (n >= sizeof buf) n = sizeof buf - 1;
      memcpy(buf, s + 2, n);
      buf[n] = 0;
      *name = buf;
      *value = eq + 1;
    } else {
      *name = s + 2;
    }
    return 1;
  }
  if (strcmp(s, "-h") == 0) {
    *name = "help";
    return 1;
  }
  *value = s;
  return 2;
}

const char *cli_value(cli_args *a, const char *name, const char *inline_value) {
  if (inline_value) return inline_value;
  if (a->i < a->argc) return a->argv[a->i++];
  cli_usage_error(a->cmd, "option --%s needs a value", name);
  return NULL;
}

static void vmessage(const char *cmd, const char *fmt, va_list ap) {
  fprintf(stderr, "kiln%s%s: ", cmd ? " " : "", cmd ? cmd : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage(cmd, fmt, ap);
  va_end(ap);
  if (cmd)
    fprintf(stderr, "(see 'kiln %s --help')\n", cmd);
  else
    fprintf(stderr, "(see 'kiln --help')\n");
  return CLI_USAGE;
}

int cli_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage(cmd, fmt, ap);
  va_end(ap);
  return CLI_ERROR;
}

bool cli_parse_u64(const char *s, unsigned long long *out) {
  char *end;
  errno = 0;
  if (!*s || *s == '-') return false;
  *out = strtoull(s, &end, 10);
  return errno == 0 && *end == 0;
}

int cli_parse_int(const char *cmd, const char *name, const char *v, int lo, int hi, int *out) {
  unsigned long long u;
  if (!cli_parse_u64(v, &u) || u < (unsigned long long)lo || u > (unsigned long long)hi)
    return cli_usage_error(cmd, "--%s wants an integer in [%d, %d], got '%s'", name, lo, hi, v);
  *out = (int)u;
  return CLI_OK;
}

char *cli_read_file(const char *path, size_t *len, ir_diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    ir_diag_set(d, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (ferror(f)) {
      ir_diag_set(d, "%s: read error: %s", path, strerror(errno));
      free(buf);
      buf = NULL;
      break;
    }
    if (feof(f)) break;
    char *grown = realloc(buf, cap *= 2);
    if (!grown) free(buf);
    buf = grown;
  }
  fclose(f);
  if (!buf) {
    if (!d->msg[0]) ir_diag_set(d, "%s: out of memory", path);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

ir_graph *cli_load_graph(const char *cmd, const char *path) {
  ir_diag d = {0};
  size_t len;
  char *text = cli_read_file(path, &len, &d);
  if (!text) {
    cli_error(cmd, "%s", d.msg);
    return NULL;
  }
  ir_graph *g = ir_parse(text, len, path, &d);
  free(text);
  if (!g) cli_error(cmd, "%s", d.msg);
  return g;
}

double cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
