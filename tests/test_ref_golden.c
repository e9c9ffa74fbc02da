/* Runs every PyTorch golden case (tests/golden/ops/<case>.kir with its
 * .safetensors of inputs and expected outputs, written by
 * tests/golden/gen.py) through the reference interpreter and compares each
 * output element: floats within atol + rtol*|expected|, ints/bools exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/ref.h"
#include "tests/support/golden.h"

/* The reference computes in double and rounds once, as gen.py's PyTorch
 * does, so the f32 tolerance can be tight. */
static const golden_tol ref_tol = {
    .rtol32 = 1e-5, .atol32 = 1e-6, .rtol64 = 1e-10, .atol64 = 1e-12};

ParameterizedTestParameters(golden, op) { return golden_params(); }

ParameterizedTest(golden_case *c, golden, op) {
  golden_loaded L;
  golden_load(c->name, &L);
  ir_diag d = {0};
  rt_tensor **outs = calloc((size_t)L.g->nrets + 1, sizeof *outs);
  cr_assert(rt_ref_run(L.g, L.args, NULL, NULL, NULL, outs, &d), "case %s: run failed: %s", c->name,
            d.msg);
  for (int k = 0; k < L.g->nrets; k++) {
    golden_compare(c->name, "ref", k, outs[k], golden_expected(&L, c->name, k), &ref_tol);
    rt_tensor_destroy(outs[k]);
  }
  free(outs);
  golden_unload(&L);
}

/* Every case gen.py lists is present, so an empty or partial directory
 * fails instead of passing vacuously. */
Test(golden, all_cases_present) {
  size_t len;
  char *manifest = golden_read_text(GOLDEN_OPS_DIR "/cases.txt", &len);
  cr_assert(manifest, "cannot read " GOLDEN_OPS_DIR "/cases.txt (run tests/golden/gen.py)");
  golden_case *v;
  int found = golden_list(&v);
  int listed = 0;
  for (char *line = strtok(manifest, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#' || line[0] == 0) continue;
    listed++;
    golden_case key = {{0}};
    snprintf(key.name, sizeof key.name, "%s", line);
    bool present = found > 0 && bsearch(&key, v, (size_t)found, sizeof *v, golden_case_cmp);
    cr_expect(present, "case %s is listed in cases.txt but %s.kir is missing", line, line);
  }
  cr_expect(listed >= 150, "cases.txt lists only %d cases", listed);
  cr_expect(found >= listed, "found %d .kir cases, gen.py writes %d", found, listed);
  free(v);
  free(manifest);
}
