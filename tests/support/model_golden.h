/* Shared by the shipped models' PyTorch tests (test_s2s_model.c,
 * test_transformer_model.c): a golden file of d2l's model in torch holds
 * the config (cfg.*), the five training inputs, the weights under torch's
 * names, loss, attn, grad.NAME, grad_norm and adam.NAME. These helpers load
 * it, set a program's weights from it, and compare parameter names,
 * outputs and gradients against it. */
#ifndef KILN_TEST_MODEL_GOLDEN_H
#define KILN_TEST_MODEL_GOLDEN_H

#include "backend/kiln_run.h"
#include "ir/ir.h"
#include "runtime/safetensors.h"

/* The int32 scalar tensor NAME (a cfg.* entry), asserting it exists. */
int64_t mg_int(const rt_safetensors *st, const char *name);
/* A kiln tensor of dtype dt (F32, F64 or I32) with t's values. */
kl_tensor *mg_to_kl(const rt_tensor *t, kl_tensor_dtype dt);
/* in[0..4] = src, src_len, dec_in, tgt, tgt_len as int32 tensors. */
void mg_inputs(const rt_safetensors *st, kl_tensor *in[5]);
void mg_inputs_free(kl_tensor *in[5]);
/* Single-threaded, uncached compile (asserting it succeeds). */
kl_program *mg_compile(const ir_graph *ir, kl_backend b);
const char *mg_backend_name(kl_backend b);
/* Sets every parameter of p except optimizer state ("<name>@slot") from
 * st's tensor of the same name (asserting each exists) as f32 (or dt for
 * an f64 program); returns how many. */
int mg_set_params(kl_program *p, const rt_safetensors *st);
int mg_set_params_as(kl_program *p, const rt_safetensors *st, kl_tensor_dtype dt);
/* Expects got (numel(want) floats) within atol + rtol |want|; returns the
 * largest |got - want| / (|want| + atol). */
double mg_expect_close(const char *what, const float *got, const rt_tensor *want, double rtol,
                       double atol);
/* Every torch parameter (a grad.NAME in st) is a parameter of p with the
 * same shape; returns how many torch parameters there are. */
int mg_expect_torch_names(kl_program *p, const rt_safetensors *st);
/* Differentiates output `loss` of g with pass_autodiff with respect to
 * every parameter (nparams of them), runs the gradients on backend b with
 * st's weights and inputs, and expects each within 1e-4 relative plus
 * 1e-5 of its tensor's largest element of grad.NAME, and their global norm
 * within 1e-5 of grad_norm. `label` names the run in the log. */
void mg_expect_gradients(const ir_graph *g, int loss, int nparams, const rt_safetensors *st,
                         kl_backend b, const char *label);
/* The same with the graph's inputs given (in[0..nin)), for models whose
 * arguments are not the translation models' five. */
void mg_expect_gradients_in(const ir_graph *g, int loss, int nparams, const rt_safetensors *st,
                            kl_tensor *const *in, int nin, kl_backend b, const char *label);

#endif
