/* cli_check_output (tools/kiln/out_path.h): access(2) on the directory
 * rather than a trial write, which would leave a file behind if the
 * process died right after it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/kiln/cli.h"
#include "tools/kiln/out_path.h"

int cli_check_output(const char *cmd, const char *what, const char *path) {
  if (!path || !*path) return cli_error(cmd, "%s: no file name", what);
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return cli_error(cmd, "%s %s: is a directory", what, path);
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return cli_error(cmd, "out of memory");
  int rc = CLI_OK;
  if (stat(dir, &sb) != 0)
    rc = cli_error(cmd, "%s %s: cannot write into '%s': %s", what, path, dir, strerror(errno));
  else if (!S_ISDIR(sb.st_mode))
    rc = cli_error(cmd, "%s %s: '%s' is not a directory", what, path, dir);
  else if (access(dir, W_OK | X_OK) != 0)
    rc = cli_error(cmd, "%s %s: cannot write into '%s': %s", what, path, dir, strerror(errno));
  free(dir);
  return rc;
}
