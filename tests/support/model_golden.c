/* Loading and comparing the shipped models' PyTorch goldens
 * (tests/support/model_golden.h). */
#include "backend/kiln_backend.h"
#include "tests/support/model_golden.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/autodiff.h"
#include "tests/support/golden.h"

int64_t mg_int(const rt_safetensors *st, const char *name) {
  const rt_tensor *t = golden_st_get(st, name);
  cr_assert_eq(t->type.dtype, IR_I32, "%s", name);
  return ((const int32_t *)t->data)[0];
}

kl_tensor *mg_to_kl(const rt_tensor *t, kl_tensor_dtype dt) {
  kl_tensor *k = kl_tensor_create(dt, t->type.rank, t->type.dims);
  cr_assert_not_null(k);
  for (int64_t i = 0; i < rt_numel(t); i++) {
    if (dt == KL_TENSOR_F32)
      ((float *)kl_tensor_data(k))[i] = (float)rt_get_f(t, i);
    else if (dt == KL_TENSOR_F64)
      ((double *)kl_tensor_data(k))[i] = rt_get_f(t, i);
    else
      ((int32_t *)kl_tensor_data(k))[i] = ((const int32_t *)t->data)[i];
  }
  return k;
}

void mg_inputs(const rt_safetensors *st, kl_tensor *in[5]) {
  const char *names[5] = {"src", "src_len", "dec_in", "tgt", "tgt_len"};
  for (int i = 0; i < 5; i++)
    in[i] = mg_to_kl(golden_st_get(st, names[i]), KL_TENSOR_I32);
}

void mg_inputs_free(kl_tensor *in[5]) {
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
}

kl_program *mg_compile(const ir_graph *ir, kl_backend b) {
  kl_compile_opts o = {.backend = b, .threads = 1, .no_cache = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(ir, &o, &err);
  cr_assert_not_null(p, "compile %s: %s", ir->name, err);
  return p;
}

const char *mg_backend_name(kl_backend b) { return b == KL_BACKEND_JIT ? "jit" : "ref"; }

int mg_set_params(kl_program *p, const rt_safetensors *st) {
  return mg_set_params_as(p, st, KL_TENSOR_F32);
}

int mg_set_params_as(kl_program *p, const rt_safetensors *st, kl_tensor_dtype dt) {
  int n = 0;
  for (int i = 0; i < kl_program_num_params(p); i++) {
    const char *name = kl_program_param_name(p, i);
    if (strchr(name, '@')) continue;
    const rt_tensor *w = rt_st_get(st, name);
    cr_assert_not_null(w, "kiln parameter %s is not a torch parameter", name);
    kl_tensor *t = mg_to_kl(w, dt);
    const char *msg = kl_program_set_param(p, name, t);
    cr_assert_null(msg, "set %s: %s", name, msg);
    kl_tensor_destroy(t);
    n++;
  }
  return n;
}

double mg_expect_close(const char *what, const float *got, const rt_tensor *want, double rtol,
                       double atol) {
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < rt_numel(want); i++) {
    double w = rt_get_f(want, i), e = fabs(got[i] - w);
    worst = fmax(worst, e / (fabs(w) + atol));
    if (!(e <= atol + rtol * fabs(w)) && bad++ < 5)
      cr_expect_fail("%s[%lld]: kiln %.9g, torch %.9g", what, (long long)i, got[i], w);
  }
  cr_expect_eq(bad, 0, "%s: %d of %lld elements differ", what, bad, (long long)rt_numel(want));
  return worst;
}

int mg_expect_torch_names(kl_program *p, const rt_safetensors *st) {
  int n = 0;
  for (int i = 0; i < rt_st_count(st); i++) {
    const char *name = rt_st_name(st, i);
    if (strncmp(name, "grad.", 5)) continue;
    n++;
    const rt_tensor *w = golden_st_get(st, name + 5);
    kl_tensor *k = NULL;
    const char *msg = kl_program_get_param(p, name + 5, &k);
    cr_expect_null(msg, "torch parameter %s: %s", name + 5, msg);
    if (msg) continue;
    cr_expect_eq(kl_tensor_rank(k), w->type.rank, "%s", name + 5);
    for (int a = 0; a < w->type.rank && a < kl_tensor_rank(k); a++)
      cr_expect_eq(kl_tensor_dim(k, a), w->type.dims[a], "%s dim %d", name + 5, a);
    kl_tensor_destroy(k);
  }
  return n;
}

/* The gradients come from pass_autodiff on a clone of the graph, returned
 * as outputs: they are read exactly, where an SGD step with lr 1 would give
 * them as p - (p - g) and lose the low bits of every small gradient. */
void mg_expect_gradients_in(const ir_graph *g, int loss, int nparams, const rt_safetensors *st,
                            kl_tensor *const *in, int nin, kl_backend b, const char *label) {
  ir_diag d = {0};
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert_not_null(c, "%s", d.msg);
  int *wrt = calloc((size_t)nparams + 1, sizeof *wrt),
      *grads = calloc((size_t)nparams + 1, sizeof *grads);
  kl_tensor **out = calloc((size_t)nparams + 1, sizeof *out);
  cr_assert(wrt && grads && out);
  int n = 0;
  for (int id = 0; id < c->nnodes; id++) {
    if (c->nodes[id]->op != IR_OP_PARAM) continue;
    cr_assert_lt(n, nparams, "more parameters than torch's %d", nparams);
    wrt[n++] = id;
  }
  cr_assert_eq(n, nparams);
  cr_assert(pass_autodiff(c, loss, n, wrt, grads, &d), "pass_autodiff: %s", d.msg);
  ir_set_returns(c, n, grads);
  kl_program *p = mg_compile(c, b);
  mg_set_params(p, st);
  const char *msg = kl_run(p, in, nin, out, n);
  cr_assert_null(msg, "%s", msg);
  double worst = 0, sq = 0;
  for (int i = 0; i < n; i++) {
    char key[200];
    snprintf(key, sizeof key, "grad.%s", ir_node_attr(c->nodes[wrt[i]], "name")->s);
    const rt_tensor *want = golden_st_get(st, key);
    cr_assert_eq(kl_tensor_numel(out[i]), rt_numel(want), "%s", key);
    /* Elements that cancel to near zero have no relative accuracy in
     * float32: the absolute part is 1e-5 of the tensor's largest. */
    double amax = 0;
    for (int64_t k = 0; k < rt_numel(want); k++)
      amax = fmax(amax, fabs(rt_get_f(want, k)));
    cr_expect_gt(amax, 0, "%s is all zeros", key);
    const float *gv = kl_tensor_data(out[i]);
    mg_expect_close(key, gv, want, 1e-4, 1e-5 * amax + 1e-9);
    for (int64_t k = 0; k < rt_numel(want); k++) {
      if (amax > 0) worst = fmax(worst, fabs(gv[k] - rt_get_f(want, k)) / amax);
      sq += (double)gv[k] * gv[k];
    }
    kl_tensor_destroy(out[i]);
  }
  double norm = sqrt(sq), want_norm = rt_get_f(golden_st_get(st, "grad_norm"), 0);
  cr_expect(fabs(norm - want_norm) <= 1e-5 * want_norm, "gradient norm %.9g, torch %.9g", norm,
            want_norm);
  cr_log_info("gradients %s (%s): worst error / tensor max %.2g, norm rel %.2g", label,
              mg_backend_name(b), worst, fabs(norm - want_norm) / want_norm);
  kl_program_destroy(p);
  ir_graph_destroy(c);
  free(wrt);
  free(grads);
  free(out);
}

void mg_expect_gradients(const ir_graph *g, int loss, int nparams, const rt_safetensors *st,
                         kl_backend b, const char *label) {
  kl_tensor *in[5];
  mg_inputs(st, in);
  mg_expect_gradients_in(g, loss, nparams, st, in, 5, b, label);
  mg_inputs_free(in);
}
