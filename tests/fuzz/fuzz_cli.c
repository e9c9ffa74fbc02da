/* Fuzz harness for the CLI's parsers: the input is an argv (NUL-separated
 * arguments) scanned as a command's options are (cli_next, cli_value), with
 * each value given to the numeric parsers (cli_parse_u64, cli_parse_int),
 * the pipeline flags (cli_pass_flag) and `kiln train --set`'s KEY=VALUE
 * list parser (train_parse_set). Their usage errors go to stderr (run the
 * fuzzer with -close_fd_mask=2). At most MAX_ARGS arguments, so that one
 * execution stays cheap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/kiln/cli.h"
#include "tools/kiln/pass_flags.h"
#include "tools/kiln/train.h"

#define MAX_ARGS 16

static void fail(const char *what, const char *arg) {
  fprintf(stderr, "fuzz_cli: %s: '%s'\n", what, arg);
  abort();
}

static void numbers(const char *v) {
  unsigned long long u;
  bool ok = cli_parse_u64(v, &u);
  int k = -1;
  int rc = cli_parse_int("fuzz", "n", v, 1, 256, &k);
  if (rc == CLI_OK && (!ok || k < 1 || k > 256 || (unsigned long long)k != u))
    fail("cli_parse_int accepted what cli_parse_u64 does not give in range", v);
  if (rc != CLI_OK && rc != CLI_USAGE) fail("cli_parse_int returned an unknown status", v);
}

static void set_list(const char *v) {
  train_opts *o = calloc(1, sizeof *o);
  if (!o) return;
  int rc = train_parse_set(o, v);
  for (int i = 0; i < o->nset; i++) {
    if (rc == CLI_OK && (!o->set[i].key[0] || strchr(o->set[i].key, ',') ||
                         strchr(o->set[i].key, '=') || strchr(o->set[i].value, ',')))
      fail("--set produced a bad key or value", v);
    free(o->set[i].key);
    free(o->set[i].value);
  }
  free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = 0;
  char *argv[MAX_ARGS];
  int argc = 0;
  for (char *p = buf; argc < MAX_ARGS && p <= buf + size; p += strlen(p) + 1)
    argv[argc++] = p;

  cli_args a = {.cmd = "fuzz", .argc = argc, .argv = argv};
  pass_opts po = {0};
  const char *name, *val;
  int k;
  while ((k = cli_next(&a, &name, &val))) {
    if (k == 2) {
      numbers(val);
      set_list(val);
      continue;
    }
    /* The one flag that writes (it makes a directory) is not for a fuzzer. */
    if (!strcmp(name, "print-after-all")) continue;
    if (cli_pass_flag(&a, name, val, &po) != CLI_PASS_OTHER) continue;
    const char *v = cli_value(&a, name, val);
    if (!v) continue;
    numbers(v);
    set_list(v);
  }
  free(buf);
  return 0;
}
