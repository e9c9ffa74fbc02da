/* The golden-case helpers of tests/support/golden.h. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/golden.h"

int golden_case_cmp(const void *a, const void *b) {
  return strcmp(((const golden_case *)a)->name, ((const golden_case *)b)->name);
}

int golden_list_dir(const char *path, golden_case **out) {
  *out = NULL;
  DIR *dir = opendir(path);
  if (!dir) return -1;
  int n = 0, cap = 0;
  golden_case *v = NULL;
  struct dirent *e;
  while ((e = readdir(dir))) {
    size_t len = strlen(e->d_name);
    if (len <= 4 || strcmp(e->d_name + len - 4, ".kir") != 0 || len - 4 >= 128) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 256;
      golden_case *grown = realloc(v, (size_t)cap * sizeof *v);
      if (!grown) break;
      v = grown;
    }
    memcpy(v[n].name, e->d_name, len - 4);
    v[n].name[len - 4] = 0;
    n++;
  }
  closedir(dir);
  if (n) qsort(v, (size_t)n, sizeof *v, golden_case_cmp);
  *out = v;
  return n;
}

int golden_list(golden_case **out) { return golden_list_dir(GOLDEN_OPS_DIR, out); }

static void free_params(struct criterion_test_params *p) { cr_free(p->params); }

struct criterion_test_params golden_params_dir(const char *dir) {
  golden_case *v;
  int n = golden_list_dir(dir, &v);
  if (n <= 0) {
    free(v);
    return cr_make_param_array(golden_case, NULL, 0);
  }
  golden_case *params = cr_malloc((size_t)n * sizeof *params);
  memcpy(params, v, (size_t)n * sizeof *params);
  free(v);
  return cr_make_param_array(golden_case, params, (size_t)n, free_params);
}

struct criterion_test_params golden_params(void) {
  return golden_params_dir(GOLDEN_OPS_DIR);
}

char *golden_read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[sz] = 0;
  *len = (size_t)sz;
  return buf;
}

rt_safetensors *golden_st_read(const char *dir, const char *name) {
  char path[512];
  ir_diag d = {0};
  snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
  rt_safetensors *st = rt_st_read(path, &d);
  cr_assert_not_null(st, "%s", d.msg);
  return st;
}

const rt_tensor *golden_st_get(const rt_safetensors *st, const char *name) {
  const rt_tensor *t = rt_st_get(st, name);
  cr_assert_not_null(t, "golden tensor '%s' missing", name);
  return t;
}

void golden_load_dir(const char *dir, const char *name, golden_loaded *L) {
  char path[512];
  size_t len;
  ir_diag d = {0};
  memset(L, 0, sizeof *L);
  snprintf(path, sizeof path, "%s/%s.kir", dir, name);
  char *text = golden_read_text(path, &len);
  cr_assert(text, "case %s: cannot read %s", name, path);
  L->g = ir_parse(text, len, path, &d);
  free(text);
  cr_assert(L->g, "case %s: parse failed: %s", name, d.msg);
  snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
  L->st = rt_st_read(path, &d);
  cr_assert(L->st, "case %s: %s", name, d.msg);
  L->nargs = ir_graph_args(L->g, NULL);
  int *ids = calloc((size_t)L->nargs + 1, sizeof *ids);
  L->args = calloc((size_t)L->nargs + 1, sizeof *L->args);
  ir_graph_args(L->g, ids);
  for (int i = 0; i < L->nargs; i++) {
    const char *arg = ir_node_at(L->g, ids[i])->name;
    L->args[i] = arg ? rt_st_get(L->st, arg) : NULL;
    cr_assert(L->args[i], "case %s: no input '%s' in the safetensors file", name, arg ? arg : "?");
  }
  free(ids);
}

void golden_load(const char *name, golden_loaded *L) {
  golden_load_dir(GOLDEN_OPS_DIR, name, L);
  char oname[32];
  snprintf(oname, sizeof oname, "out%d", L->g->nrets);
  cr_expect(rt_st_get(L->st, oname) == NULL, "case %s: file has %s but the graph returns %d values",
            name, oname, L->g->nrets);
}

void golden_unload(golden_loaded *L) {
  free(L->args);
  rt_st_destroy(L->st);
  ir_graph_destroy(L->g);
  memset(L, 0, sizeof *L);
}

const rt_tensor *golden_expected(const golden_loaded *L, const char *name, int k) {
  char oname[32];
  snprintf(oname, sizeof oname, "out%d", k);
  const rt_tensor *exp = rt_st_get(L->st, oname);
  cr_assert(exp, "case %s: no expected output %s", name, oname);
  return exp;
}

void golden_compare(const char *cname, const char *what, int k, const rt_tensor *got,
                    const rt_tensor *exp, const golden_tol *tol) {
  char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
  cr_assert(ir_type_eq(&got->type, &exp->type), "case %s (%s): out%d: got type %s, expected %s",
            cname, what, k, ir_type_str(&got->type, a, sizeof a),
            ir_type_str(&exp->type, b, sizeof b));
  bool f32 = exp->type.dtype == IR_F32, fl = ir_dtype_is_float(exp->type.dtype);
  double rtol = f32 ? tol->rtol32 : tol->rtol64, atol = f32 ? tol->atol32 : tol->atol64;
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
      if (!ok && bad++ < 5)
        cr_expect(ok, "case %s (%s): out%d[%lld]: got %.17g, expected %.17g", cname, what, k,
                  (long long)i, g, x);
    } else {
      int64_t g = rt_get_i(got, i), x = rt_get_i(exp, i);
      ok = g == x;
      if (!ok && bad++ < 5)
        cr_expect(ok, "case %s (%s): out%d[%lld]: got %lld, expected %lld", cname, what, k,
                  (long long)i, (long long)g, (long long)x);
    }
  }
  cr_expect(bad == 0, "case %s (%s): out%d: %d of %lld elements differ", cname, what, k, bad,
            (long long)rt_numel(exp));
}
