/* PyTorch gradient goldens (tests/golden/grads, written by
 * golden_grads.py): each forward graph is differentiated by pass_autodiff
 * with respect to every float argument; the gradient graph runs on the
 * reference interpreter and on the JIT, and out0 plus every grad.NAME must
 * match torch.autograd's gradient of sum(out0). */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
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

ParameterizedTestParameters(grad_golden, case) { return golden_params_dir(GRADS_DIR); }

typedef struct loaded {
  golden_loaded c; /* c.g: the forward graph plus gradients; returns out0, grads */
  int nwrt;
  const char *wrt_names[16];
} loaded;

static void load(const char *name, loaded *L) {
  ir_diag d = {0};
  memset(L, 0, sizeof *L);
  golden_load_dir(GRADS_DIR, name, &L->c);
  ir_graph *g = L->c.g;
  int ids[16], wrt[16], grads[16];
  cr_assert(L->c.nargs <= 16);
  ir_graph_args(g, ids);
  for (int i = 0; i < L->c.nargs; i++) {
    const ir_node *a = g->nodes[ids[i]];
    char gname[160];
    snprintf(gname, sizeof gname, "grad.%s", a->name);
    bool has = rt_st_get(L->c.st, gname) != NULL;
    cr_assert_eq(has, ir_dtype_is_float(a->type.dtype), "%s: %s %s", name,
                 has ? "unexpected" : "missing", gname);
    if (has) {
      wrt[L->nwrt] = ids[i];
      L->wrt_names[L->nwrt++] = a->name;
    }
  }
  cr_assert(pass_autodiff(g, g->rets[0], L->nwrt, wrt, grads, &d), "%s: %s", name, d.msg);
  int rets[17] = {g->rets[0]};
  memcpy(rets + 1, grads, (size_t)L->nwrt * sizeof *grads);
  ir_set_returns(g, L->nwrt + 1, rets);
  cr_assert(ir_verify(g, &d), "%s: gradient graph: %s", name, d.msg);
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
    const rt_tensor *exp = rt_st_get(L->c.st, ename);
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
  cr_assert(rt_ref_run(L.c.g, L.c.args, NULL, NULL, NULL, ref, &d), "%s: %s", c->name, d.msg);
  compare(&L, c->name, "ref", ref, &ref_tol);
  for (int k = 0; k < nouts; k++)
    rt_tensor_destroy(ref[k]);

  kl_compile_opts o = {
      .backend = KL_BACKEND_JIT, .no_cache = true, .guard_bytes = true, .threads = 2};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(L.c.g, &o, &err);
  if (!p && err && strstr(err, "no JIT lowering yet")) {
    /* scatter_add / gelu_deriv lowerings land separately; the reference
     * backend above already checked this case */
    cr_log_warn("%s: JIT skipped: %s", c->name, err);
    free(err);
  } else {
    cr_assert(p, "%s: JIT compile failed: %s", c->name, err);
    kl_tensor *in[16] = {0}, *out[17] = {0};
    for (int i = 0; i < L.c.nargs; i++)
      in[i] = cg_tensor_adopt(rt_tensor_clone(L.c.args[i]));
    const char *msg = kl_run(p, in, L.c.nargs, out, nouts);
    cr_assert_null(msg, "%s: JIT run failed: %s", c->name, msg);
    rt_tensor *got[17] = {0};
    for (int k = 0; k < nouts; k++)
      got[k] = (rt_tensor *)cg_tensor_rt(out[k]);
    compare(&L, c->name, "jit", got, &jit_tol);
    for (int k = 0; k < nouts; k++)
      kl_tensor_destroy(out[k]);
    for (int i = 0; i < L.c.nargs; i++)
      kl_tensor_destroy(in[i]);
    kl_program_destroy(p);
  }
  golden_unload(&L.c);
}

/* Every case cases.txt names has its files (a half-regenerated directory
 * fails here rather than silently testing less). */
Test(grad_golden, cases_listed_exist) {
  size_t len;
  char *text = golden_read_text(GRADS_DIR "/cases.txt", &len);
  cr_assert(text, "missing " GRADS_DIR "/cases.txt");
  golden_case *v;
  int n = golden_list_dir(GRADS_DIR, &v), listed = 0;
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
