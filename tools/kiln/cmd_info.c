/* `kiln models`, `kiln passes`, and the commands whose layers have not
 * landed yet (they say so and exit 1 rather than pretend). */
#include <string.h>

#include "models/models.h"
#include "passes/pipeline.h"
#include "tools/kiln/cli.h"

static bool wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
  return false;
}

static int describe(const char *name) {
  const kl_model_info *m = kl_model_find(name);
  if (!m) return cli_error("models", "unknown model '%s' ('kiln models' lists them)", name);
  if (!m->shipped)
    return cli_error("models", "model '%s' is planned but not built yet: %s", name, m->summary);
  printf("%s: %s\n\n%s\n\n", m->name, m->summary, m->detail);
  printf("kiln train defaults: --epochs %d --lr %g%s\n\n", m->epochs, m->lr,
         m->full_batch ? " (full batch: one step per epoch)" : "");
  printf("--set keys:\n");
  for (int i = 0; i < m->nkeys; i++)
    printf("  %-10s default %-24s %s\n", m->keys[i].name, m->keys[i].dflt, m->keys[i].help);
  return CLI_OK;
}

int cmd_models(int argc, char **argv) {
  if (wants_help(argc, argv)) {
    puts("usage: kiln models [--describe MODEL]\n\nLists the shipped models, or one model's "
         "--set keys and defaults.");
    return CLI_OK;
  }
  cli_args a = {.cmd = "models", .argc = argc, .argv = argv};
  const char *name, *val;
  int k;
  while ((k = cli_next(&a, &name, &val))) {
    if (k == 1 && !strcmp(name, "describe")) {
      const char *m = cli_value(&a, name, val);
      if (!m) return CLI_USAGE;
      if (a.i < a.argc) return cli_usage_error("models", "unexpected argument '%s'", argv[a.i]);
      return describe(m);
    }
    return k == 1 ? cli_usage_error("models", "unknown option '--%s'", name)
                  : cli_usage_error("models", "unexpected argument '%s'", val);
  }
  int n;
  const kl_model_info *ms = kl_models(&n);
  for (int i = 0; i < n; i++)
    if (ms[i].shipped) printf("%-14s %s\n", ms[i].name, ms[i].summary);
  bool planned = false;
  for (int i = 0; i < n; i++)
    if (!ms[i].shipped) {
      printf(planned ? ", %s" : "\nplanned, not built yet: %s", ms[i].name);
      planned = true;
    }
  if (planned) putchar('\n');
  return CLI_OK;
}

int cmd_passes(int argc, char **argv) {
  if (wants_help(argc, argv)) {
    puts("usage: kiln passes\n\nLists the compilation pipeline's passes in order.");
    return CLI_OK;
  }
  if (argc > 0) return cli_usage_error("passes", "unexpected argument '%s'", argv[0]);
  int n;
  const pass_info *p = pass_pipeline(&n);
  for (int i = 0; i < n; i++)
    printf("%2d. %-16s %s%s\n", i + 1, p[i].name, p[i].why, p[i].fixpoint ? " (to fixpoint)" : "");
  return CLI_OK;
}

int cmd_not_yet(const char *cmd, int argc, char **argv) {
  static const struct {
    const char *cmd, *needs;
  } missing[] = {
      {"bench", "a benchmark driver for the shipped models"},
  };
  (void)argc;
  (void)argv;
  for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
    if (!strcmp(cmd, missing[i].cmd))
      return cli_error(cmd, "not available yet: needs %s, which are not built", missing[i].needs);
  return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
