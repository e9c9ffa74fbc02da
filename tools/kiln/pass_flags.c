/* Parsing of the pipeline flags (pass_flags.h). Dumps go to stderr
 * (--print-after, --explain-fusion) or to a directory of numbered files
 * (--print-after-all DIR), so a command's own output stays clean. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/kiln/pass_flags.h"

const char cli_pass_flags_usage[] =
    "  --print-after P      print the IR after pass P to stderr (see 'kiln passes')\n"
    "  --print-after-all D  write the IR after every pass to D/NN-PASS.kir\n"
    "  --stop-after P       run the pipeline up to pass P only\n"
    "  --verify-each        verify the graph after every pass\n"
    "  --explain-fusion     say on stderr why each softmax was or was not fused\n"
    "  --no-fusion          skip the fusion passes (the unfused baseline)\n"
    "  --no-plan            skip memory planning (one buffer per value)\n"
    "  --fold-limit N       constant-fold values of at most N elements (default 4194304)\n";

static const char *pass_name(cli_args *a, const char *name, const char *val) {
  const char *p = cli_value(a, name, val);
  if (p && !pass_lookup(p)) {
    cli_usage_error(a->cmd, "--%s: no pass named '%s' (see 'kiln passes')", name, p);
    return NULL;
  }
  return p;
}

int cli_pass_flag(cli_args *a, const char *name, const char *val, pass_opts *po) {
  if (!strcmp(name, "print-after")) {
    if (!(po->print_after = pass_name(a, name, val))) return CLI_USAGE;
    po->print_to = stderr;
  } else if (!strcmp(name, "print-after-all")) {
    const char *dir = cli_value(a, name, val);
    if (!dir) return CLI_USAGE;
    struct stat st;
    if (mkdir(dir, 0777) != 0 && !(errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
      return cli_usage_error(a->cmd, "--print-after-all: cannot make directory '%s': %s", dir,
                             strerror(errno == EEXIST ? ENOTDIR : errno));
    po->print_dir = dir;
  } else if (!strcmp(name, "stop-after")) {
    if (!(po->stop_after = pass_name(a, name, val))) return CLI_USAGE;
  } else if (!strcmp(name, "verify-each")) {
    po->verify_each = true;
  } else if (!strcmp(name, "explain-fusion")) {
    po->explain = stderr;
  } else if (!strcmp(name, "no-fusion")) {
    po->no_fusion = true;
  } else if (!strcmp(name, "no-plan")) {
    po->no_plan = true;
  } else if (!strcmp(name, "fold-limit")) {
    const char *v = cli_value(a, name, val);
    unsigned long long n;
    if (!v) return CLI_USAGE;
    if (!cli_parse_u64(v, &n) || n < 1 || n > (1ull << 40))
      return cli_usage_error(a->cmd, "--fold-limit: '%s' is not a count of elements in [1, 2^40]",
                             v);
    po->fold_limit = (int64_t)n;
  } else {
    return CLI_PASS_OTHER;
  }
  return CLI_OK;
}
