/* Parsing `--max-memory BYTES` (mem_flag.h). */
#include <ctype.h>
#include <string.h>

#include "tools/kiln/mem_flag.h"

const char cli_max_memory_usage[] =
    "  --max-memory B  refuse a graph whose run needs more than B bytes (suffixes\n"
    "                K, M, G, T: powers of 1024; 0 = the machine's physical memory,\n"
    "                the default; none = no limit)\n";

bool cli_parse_bytes(const char *s, int64_t *out) {
  if (!strcmp(s, "none")) return *out = -1, true;
  int64_t v = 0;
  const char *p = s;
  if (!isdigit((unsigned char)*p)) return false;
  for (; isdigit((unsigned char)*p); p++) {
    int digit = *p - '0';
    if (v > (INT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  int shift = 0;
  switch (toupper((unsigned char)*p)) {
  case 'K': shift = 10; break;
  case 'M': shift = 20; break;
  case 'G': shift = 30; break;
  case 'T': shift = 40; break;
  default: break;
  }
  if (shift) {
    p++;
    if (toupper((unsigned char)*p) == 'B') p++;
  }
  if (*p) return false;
  if (v > (INT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

int cli_max_memory_opt(cli_args *a, const char *name, const char *val, int64_t *out) {
  const char *s = cli_value(a, name, val);
  if (!s) return CLI_USAGE;
  if (!cli_parse_bytes(s, out))
    return cli_usage_error(a->cmd,
                           "--max-memory takes a byte count such as 512M or 2G (or 0, none), "
                           "not '%s'",
                           s);
  return CLI_OK;
}
