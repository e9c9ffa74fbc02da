/* Every PyTorch golden case (tests/golden/ops) through the public API on the
 * JIT backend, with guard bytes around every buffer: outputs must match
 * PyTorch and the reference interpreter. The JIT computes f32 in f32
 * (the goldens round once from double), hence the looser f32 tolerance. */
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "backend/tensor_bridge.h"
#include "runtime/ref.h"
#include "tests/support/golden.h"

static const golden_tol jit_tol = {.rtol32 = 1e-4, .atol32 = 1e-5, .rtol64 = 1e-9, .atol64 = 1e-12};

ParameterizedTestParameters(jit_golden, op) { return golden_params(); }

ParameterizedTest(golden_case *c, jit_golden, op) {
  golden_loaded L;
  golden_load(c->name, &L);
  int nrets = L.g->nrets;
  kl_compile_opts o = {
      .backend = KL_BACKEND_JIT, .no_cache = true, .guard_bytes = true, .threads = 2};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(L.g, &o, &err);
  cr_assert(p, "case %s: compile failed: %s", c->name, err);
  kl_tensor **in = calloc((size_t)L.nargs + 1, sizeof *in);
  kl_tensor **out = calloc((size_t)nrets + 1, sizeof *out);
  for (int i = 0; i < L.nargs; i++)
    in[i] = cg_tensor_adopt(rt_tensor_clone(L.args[i]));
  const char *msg = kl_run(p, in, L.nargs, out, nrets);
  cr_assert_null(msg, "case %s: run failed: %s", c->name, msg);

  ir_diag d = {0};
  rt_tensor **ref = calloc((size_t)nrets + 1, sizeof *ref);
  cr_assert(rt_ref_run(L.g, L.args, NULL, NULL, NULL, ref, &d), "%s", d.msg);
  for (int k = 0; k < nrets; k++) {
    const rt_tensor *got = cg_tensor_rt(out[k]);
    golden_compare(c->name, "jit vs PyTorch", k, got, golden_expected(&L, c->name, k), &jit_tol);
    golden_compare(c->name, "jit vs ref", k, got, ref[k], &jit_tol);
    rt_tensor_destroy(ref[k]);
    kl_tensor_destroy(out[k]);
  }
  for (int i = 0; i < L.nargs; i++)
    kl_tensor_destroy(in[i]);
  free(ref);
  free(in);
  free(out);
  kl_program_destroy(p);
  golden_unload(&L);
}
