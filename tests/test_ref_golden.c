/* Runs every PyTorch golden case (tests/golden/ops/<case>.kir with its
 * .safetensors of inputs and expected outputs, written by
 * tests/golden/gen.py) through the reference interpreter and compares each
 * output element: floats within atol + rtol*|expected|, ints/bools exact. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "runtime/ref.h"
#include "runtime/safetensors.h"

#define OPS_DIR KILN_SOURCE_DIR "/tests/golden/ops"
#define MAX_REPORT 5 /* mismatches reported per output */

typedef struct golden_case {
  char name[128];
} golden_case;

static int cmp_case(const void *a, const void *b) {
  return strcmp(((const golden_case *)a)->name, ((const golden_case *)b)->name);
}

/* The *.kir files present, sorted; returns the count (-1: no directory). */
static int list_cases(golden_case **out) {
  *out = NULL;
  DIR *dir = opendir(OPS_DIR);
  if (!dir) return -1;
  int n = 0, cap = 0;
  golden_case *v = NULL;
  struct dirent *e;
  while ((e = readdir(dir))) {
    size_t len = strlen(e->d_name);
    if (len <= 4 || strcmp(e->d_name + len - 4, ".kir") != 0 || len - 4 >= 128) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 256;
      v = realloc(v, (size_t)cap * sizeof *v);
    }
    memcpy(v[n].name, e->d_name, len - 4);
    v[n].name[len - 4] = 0;
    n++;
  }
  closedir(dir);
  if (n) qsort(v, (size_t)n, sizeof *v, cmp_case);
  *out = v;
  return n;
}

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)sz + 1);
  if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[sz] = 0;
  *len = (size_t)sz;
  return buf;
}

static void free_params(struct criterion_test_params *p) { cr_free(p->params); }

ParameterizedTestParameters(golden, op) {
  golden_case *v;
  int n = list_cases(&v);
  if (n <= 0) {
    free(v);
    return cr_make_param_array(golden_case, NULL, 0);
  }
  golden_case *params = cr_malloc((size_t)n * sizeof *params);
  memcpy(params, v, (size_t)n * sizeof *params);
  free(v);
  return cr_make_param_array(golden_case, params, (size_t)n, free_params);
}

/* Compares one output; reports up to MAX_REPORT mismatching elements. */
static void compare_output(const char *cname, int k, const rt_tensor *got, const rt_tensor *exp) {
  char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
  cr_assert(ir_type_eq(&got->type, &exp->type), "case %s: out%d: got type %s, expected %s", cname,
            k, ir_type_str(&got->type, a, sizeof a), ir_type_str(&exp->type, b, sizeof b));
  bool f32 = exp->type.dtype == IR_F32, fl = ir_dtype_is_float(exp->type.dtype);
  double rtol = f32 ? 1e-5 : 1e-10, atol = f32 ? 1e-6 : 1e-12;
  int bad = 0;
  for (int64_t i = 0, e = rt_numel(exp); i < e; i++) {
    bool ok;
    if (fl) {
      double g = rt_get_f(got, i), x = rt_get_f(exp, i);
      if (isnan(x) || isnan(g))
        ok = isnan(x) && isnan(g);
      else if (isinf(x) || isinf(g))
        ok = g == x;
      else
        ok = fabs(g - x) <= atol + rtol * fabs(x);
      if (!ok && bad++ < MAX_REPORT)
        cr_expect(ok, "case %s: out%d[%lld]: got %.17g, expected %.17g", cname, k, (long long)i, g,
                  x);
    } else {
      int64_t g = rt_get_i(got, i), x = rt_get_i(exp, i);
      ok = g == x;
      if (!ok && bad++ < MAX_REPORT)
        cr_expect(ok, "case %s: out%d[%lld]: got %lld, expected %lld", cname, k, (long long)i,
                  (long long)g, (long long)x);
    }
  }
  cr_expect(bad == 0, "case %s: out%d: %d of %lld elements differ", cname, k, bad,
            (long long)rt_numel(exp));
}

ParameterizedTest(golden_case *c, golden, op) {
  char path[512];
  size_t len;
  snprintf(path, sizeof path, OPS_DIR "/%s.kir", c->name);
  char *text = read_text(path, &len);
  cr_assert(text, "case %s: cannot read %s", c->name, path);
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, len, path, &d);
  free(text);
  cr_assert(g, "case %s: parse failed: %s", c->name, d.msg);

  snprintf(path, sizeof path, OPS_DIR "/%s.safetensors", c->name);
  rt_safetensors *st = rt_st_read(path, &d);
  cr_assert(st, "case %s: %s", c->name, d.msg);

  int nargs = ir_graph_args(g, NULL);
  int *ids = calloc((size_t)nargs + 1, sizeof *ids);
  const rt_tensor **args = calloc((size_t)nargs + 1, sizeof *args);
  ir_graph_args(g, ids);
  for (int i = 0; i < nargs; i++) {
    const char *name = ir_node_at(g, ids[i])->name;
    args[i] = name ? rt_st_get(st, name) : NULL;
    cr_assert(args[i], "case %s: no input '%s' in the safetensors file", c->name,
              name ? name : "?");
  }
  rt_tensor **outs = calloc((size_t)g->nrets + 1, sizeof *outs);
  bool ok = rt_ref_run(g, args, NULL, NULL, NULL, outs, &d);
  cr_assert(ok, "case %s: run failed: %s", c->name, d.msg);

  char oname[32];
  snprintf(oname, sizeof oname, "out%d", g->nrets);
  cr_expect(rt_st_get(st, oname) == NULL, "case %s: file has %s but the graph returns %d values",
            c->name, oname, g->nrets);
  for (int k = 0; k < g->nrets; k++) {
    snprintf(oname, sizeof oname, "out%d", k);
    const rt_tensor *exp = rt_st_get(st, oname);
    cr_assert(exp, "case %s: no expected output %s", c->name, oname);
    compare_output(c->name, k, outs[k], exp);
  }
  for (int k = 0; k < g->nrets; k++)
    rt_tensor_destroy(outs[k]);
  free(outs);
  free(args);
  free(ids);
  rt_st_destroy(st);
  ir_graph_destroy(g);
}

/* Every case gen.py lists is present, so an empty or partial directory
 * fails instead of passing vacuously. */
Test(golden, all_cases_present) {
  size_t len;
  char *manifest = read_text(OPS_DIR "/cases.txt", &len);
  cr_assert(manifest, "cannot read " OPS_DIR "/cases.txt (run tests/golden/gen.py)");
  golden_case *v;
  int found = list_cases(&v);
  int listed = 0;
  for (char *line = strtok(manifest, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#' || line[0] == 0) continue;
    listed++;
    golden_case key = {{0}};
    snprintf(key.name, sizeof key.name, "%s", line);
    bool present = found > 0 && bsearch(&key, v, (size_t)found, sizeof *v, cmp_case);
    cr_expect(present, "case %s is listed in cases.txt but %s.kir is missing", line, line);
  }
  cr_expect(listed >= 150, "cases.txt lists only %d cases", listed);
  cr_expect(found >= listed, "found %d .kir cases, gen.py writes %d", found, listed);
  free(v);
  free(manifest);
}
