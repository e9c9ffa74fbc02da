/* PyTorch gradient goldens (tests/golden/grads, written by
 * golden_grads.py): each forward graph is differentiated by pass_autodiff
 * with respect to every float argument; the gradient graph runs on the
 * reference interpreter and on the JIT, and out0 plus every grad.NAME must
 * match torch.autograd's gradient of sum(out0). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "backend/tensor_bridge.h"
#include "passes/autodiff.h"
#include "runtime/ref.h"
#include "tests/support/golden.h"

#define GRADS_DIR KILN_SOURCE_DIR "/tests/golden/grads"

/* The expected gradients are exact at the inputs, rounded once. The
 * interpreter rounds every node to f32 and gradient graphs are a few dozen
 * nodes deep, so f32 gets ~100 ulps; f64 only sees reassociation. The JIT
 * computes f32 in f32 (no double intermediates), hence its 1e-4. */
static const golden_tol ref_tol = {
    .rtol32 = 1e-5, .atol32 = 1e-6, .rtol64 = 1e-10, .atol64 = 1e-12};
static const golden_tol jit_tol = {.rtol32 = 1e-4, .atol32 = 1e-5, .rtol64 = 1e-9, .atol64 = 1e-11};

static void free_params(struct criterion_test_params *p) { cr_free(p->params); }

static int list_cases(golden_case **out) {
  *out = NULL;
  DIR *dir = opendir(GRADS_DIR);
  if (!dir) return 0;
  int n = 0, cap = 0;
  golden_case *v = NULL;
  struct dirent *e;
  while ((e = readdir(dir))) {
    size_t len = strlen(e->d_name);
    if (len <= 4 || strcmp(e->d_name + len - 4, ".kir") != 0 || len - 4 >= 128) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 128;
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

ParameterizedTestParameters(grad_golden, case) {
  golden_case *v;
  int n = list_cases(&v);
  golden_case *params = n > 0 ? cr_malloc((size_t)n * sizeof *params) : NULL;
  if (params) memcpy(params, v, (size_t)n * sizeof *params);
  free(v);
  return cr_make_param_array(golden_case, params, params ? (size_t)n : 0, free_params);
}

typedef struct loaded {
  ir_graph *g; /* forward graph plus gradients; returns out0, grads */
  rt_safetensors *st;
  const rt_tensor *args[16];
  int nargs, nwrt;
  const char *wrt_names[16];
} loaded;

static void load(const char *name, loaded *L) {
  char path[512];
  size_t len;
  ir_diag d = {0};
  memset(L, 0, sizeof *L);
  snprintf(path, sizeof path, GRADS_DIR "/%s.kir", name);
  char *text = golden_read_text(path, &len);
  cr_assert(text, "cannot read %s", path);
  L->g = ir_parse(text, len, path, &d);
  free(text);
  cr_assert(L->g, "%s: %s", name, d.msg);
  snprintf(path, sizeof path, GRADS_DIR "/%s.safetensors", name);
  L->st = rt_st_read(path, &d);
  cr_assert(L->st, "%s: %s", name, d.msg);
  int ids[16], wrt[16], grads[16];
  L->nargs = ir_graph_args(L->g, NULL);
  cr_assert(L->nargs <= 16);
  ir_graph_args(L->g, ids);
  for (int i = 0; i < L->nargs; i++) {
    const ir_node *a = L->g->nodes[ids[i]];
    L->args[i] = rt_st_get(L->st, a->name);
    cr_assert(L->args[i], "%s: no input '%s'", name, a->name);
    char gname[160];
    snprintf(gname, sizeof gname, "grad.%s", a->name);
    bool has = rt_st_get(L->st, gname) != NULL;
    cr_assert_eq(has, ir_dtype_is_float(a->type.dtype), "%s: %s %s", name,
                 has ? "unexpected" : "missing", gname);
    if (has) {
      wrt[L->nwrt] = ids[i];
      L->wrt_names[L->nwrt++] = a->name;
    }
  }
  cr_assert(pass_autodiff(L->g, L->g->rets[0], L->nwrt, wrt, grads, &d), "%s: %s", name, d.msg);
  int rets[17] = {L->g->rets[0]};
  memcpy(rets + 1, grads, (size_t)L->nwrt * sizeof *grads);
  ir_set_returns(L->g, L->nwrt + 1, rets);
  cr_assert(ir_verify(L->g, &d), "%s: gradient graph: %s", name, d.msg);
}

static void compare(const loaded *L, const char *cname, const char *backend, rt_tensor *const *got,
                    const golden_tol *tol) {
  for (int k = 0; k <= L->nwrt; k++) {
    char what[200], ename[160];
    if (k == 0)
      snprintf(ename, sizeof ename, "out0");
    else
      snprintf(ename, sizeof ename, "grad.%s", L->wrt_names[k - 1]);
    snprintf(what, sizeof what, "%s, %s vs PyTorch", ename, backend);
    const rt_tensor *exp = rt_st_get(L->st, ename);
    cr_assert(exp, "%s: no %s", cname, ename);
    golden_compare(cname, what, k, got[k], exp, tol);
  }
}

ParameterizedTest(golden_case *c, grad_golden, case) {
  loaded L;
  load(c->name, &L);
  int nouts = L.nwrt + 1;
  rt_tensor *ref[17] = {0};
  ir_diag d = {0};
  cr_assert(rt_ref_run(L.g, L.args, NULL, NULL, NULL, ref, &d), "%s: %s", c->name, d.msg);
  compare(&L, c->name, "ref", ref, &ref_tol);
  for (int k = 0; k < nouts; k++)
    rt_tensor_destroy(ref[k]);

  kl_compile_opts o = {
      .backend = KL_BACKEND_JIT, .no_cache = true, .guard_bytes = true, .threads = 2};
  char *err = NULL;
  kl_program *p = kl_compile(L.g, &o, &err);
  if (!p && err && strstr(err, "no JIT lowering yet")) {
    /* scatter_add / gelu_deriv lowerings land separately; the reference
     * backend above already checked this case */
    cr_log_warn("%s: JIT skipped: %s", c->name, err);
    free(err);
  } else {
    cr_assert(p, "%s: JIT compile failed: %s", c->name, err);
    kl_tensor *in[16] = {0}, *out[17] = {0};
    for (int i = 0; i < L.nargs; i++)
      in[i] = cg_tensor_adopt(rt_tensor_clone(L.args[i]));
    const char *msg = kl_run(p, in, L.nargs, out, nouts);
    cr_assert_null(msg, "%s: JIT run failed: %s", c->name, msg);
    rt_tensor *got[17] = {0};
    for (int k = 0; k < nouts; k++)
      got[k] = (rt_tensor *)cg_tensor_rt(out[k]);
    compare(&L, c->name, "jit", got, &jit_tol);
    for (int k = 0; k < nouts; k++)
      kl_tensor_destroy(out[k]);
    for (int i = 0; i < L.nargs; i++)
      kl_tensor_destroy(in[i]);
    kl_program_destroy(p);
  }
  rt_st_destroy(L.st);
  ir_graph_destroy(L.g);
}

/* Every case cases.txt names has its files (a half-regenerated directory
 * fails here rather than silently testing less). */
Test(grad_golden, cases_listed_exist) {
  size_t len;
  char *text = golden_read_text(GRADS_DIR "/cases.txt", &len);
  cr_assert(text, "missing " GRADS_DIR "/cases.txt");
  golden_case *v;
  int n = list_cases(&v), listed = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#' || !line[0]) continue;
    listed++;
    bool found = false;
    for (int i = 0; i < n && !found; i++)
      found = !strcmp(v[i].name, line);
    cr_expect(found, "case %s is listed but has no .kir", line);
  }
  cr_expect_eq(listed, n, "cases.txt lists %d cases, the directory has %d", listed, n);
  cr_expect_gt(n, 50);
  free(v);
  free(text);
}
