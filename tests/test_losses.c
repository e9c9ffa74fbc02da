/* The loss compositions of kiln.h (kl_mse_loss, kl_masked_softmax_cross_
 * entropy) against PyTorch goldens (tests/golden/optim/loss_*.safetensors
 * from golden_optim.py): values on the reference backend and the JIT, in
 * f32 and f64, and gradients through pass_autodiff on the reference
 * interpreter. Also: they emit only primitives, and errors name them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "passes/autodiff.h"
#include "runtime/ref.h"
#include "runtime/safetensors.h"
#include "tests/support/golden.h"

#define OPTIM_DIR KILN_SOURCE_DIR "/tests/golden/optim"

static rt_safetensors *load(const char *name) { return golden_st_read(OPTIM_DIR, name); }

/* src converted to dtype dt (floats) or copied (integers). */
static rt_tensor *convert(const rt_tensor *src, ir_dtype dt) {
  ir_type t = src->type;
  if (ir_dtype_is_float(t.dtype)) t.dtype = dt;
  rt_tensor *r = rt_tensor_create(&t);
  for (int64_t i = 0; i < rt_numel(src); i++) {
    if (ir_dtype_is_float(t.dtype))
      rt_set_f(r, i, rt_get_f(src, i));
    else
      rt_set_i(r, i, rt_get_i(src, i));
  }
  return r;
}

static void compare(const char *what, const rt_tensor *got, const rt_tensor *exp, ir_dtype dt) {
  cr_assert_eq(rt_numel(got), rt_numel(exp), "%s: element count", what);
  double rtol = dt == IR_F32 ? 1e-5 : 1e-10, atol = dt == IR_F32 ? 1e-6 : 1e-12;
  for (int64_t i = 0; i < rt_numel(exp); i++) {
    double g = rt_get_f(got, i), e = rt_get_f(exp, i);
    cr_expect(fabs(g - e) <= atol + rtol * fabs(e), "%s[%lld]: got %.10g, expected %.10g", what,
              (long long)i, g, e);
  }
}

typedef struct loss_case {
  const char *file;
  const char *inputs[3];
  int ninputs;
  const char *grad; /* golden name of d sum(loss) / d input 0 */
} loss_case;

static const loss_case MSE = {"loss_mse", {"pred", "target"}, 2, "grad.pred"};
static const loss_case XENT = {
    "loss_masked_xent", {"logits", "labels", "valid_len"}, 3, "grad.logits"};

static kl_graph *build(const loss_case *c, const rt_safetensors *st, ir_dtype dt) {
  kl_graph *g = kl_graph_create(c->file);
  kl_value in[3];
  for (int i = 0; i < c->ninputs; i++) {
    const rt_tensor *t = golden_st_get(st, c->inputs[i]);
    kl_ints shape = {.n = t->type.rank};
    for (int k = 0; k < shape.n; k++)
      shape.v[k] = t->type.dims[k];
    kl_dtype k = ir_dtype_is_float(t->type.dtype) ? (kl_dtype)dt : (kl_dtype)t->type.dtype;
    in[i] = kl_input(g, c->inputs[i], k, shape);
  }
  kl_output(c->ninputs == 2 ? kl_mse_loss(in[0], in[1])
                            : kl_masked_softmax_cross_entropy(in[0], in[1], in[2]));
  cr_assert_null(kl_graph_error(g));
  return g;
}

static void check_value(const loss_case *c, ir_dtype dt, kl_backend backend) {
  rt_safetensors *st = load(c->file);
  kl_graph *g = build(c, st, dt);
  kl_compile_opts co = {.backend = backend, .no_cache = true, .threads = 1};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), &co, &err);
  cr_assert_not_null(p, "%s", err);
  kl_tensor *in[3], *out = NULL;
  for (int i = 0; i < c->ninputs; i++) {
    rt_tensor *t = convert(golden_st_get(st, c->inputs[i]), dt);
    in[i] = kl_tensor_from((kl_tensor_dtype)t->type.dtype, t->type.rank, t->type.dims, t->data);
    rt_tensor_destroy(t);
  }
  const char *msg = kl_run(p, in, c->ninputs, &out, 1);
  cr_assert_null(msg, "%s", msg);
  const rt_tensor *exp = golden_st_get(st, "loss");
  cr_assert_eq(kl_tensor_rank(out), exp->type.rank);
  rt_tensor got = {.type = exp->type, .data = kl_tensor_data(out)};
  got.type.dtype = dt;
  got.bytes = (size_t)rt_numel(exp) * ir_dtype_size(dt);
  compare("loss", &got, exp, dt);
  for (int i = 0; i < c->ninputs; i++)
    kl_tensor_destroy(in[i]);
  kl_tensor_destroy(out);
  kl_program_destroy(p);
  kl_graph_destroy(g);
  rt_st_destroy(st);
}

/* d sum(loss) / d input 0 through pass_autodiff, run by the interpreter. */
static void check_grad(const loss_case *c, ir_dtype dt) {
  rt_safetensors *st = load(c->file);
  kl_graph *kg = build(c, st, dt);
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(kl_graph_ir(kg), &d);
  cr_assert_not_null(g);
  int wrt = 0, grad = -1; /* input 0 is the first argument, node 0 */
  cr_assert_eq(g->nodes[0]->op, IR_OP_ARG);
  cr_assert(pass_autodiff(g, g->rets[0], 1, &wrt, &grad, &d), "%s", d.msg);
  ir_set_returns(g, 1, &grad);
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  rt_tensor *args[3], *out[1] = {NULL};
  for (int i = 0; i < c->ninputs; i++)
    args[i] = convert(golden_st_get(st, c->inputs[i]), dt);
  cr_assert(rt_ref_run(g, (const rt_tensor *const *)args, NULL, NULL, NULL, out, &d), "%s", d.msg);
  compare(c->grad, out[0], golden_st_get(st, c->grad), dt);
  rt_tensor_destroy(out[0]);
  for (int i = 0; i < c->ninputs; i++)
    rt_tensor_destroy(args[i]);
  ir_graph_destroy(g);
  kl_graph_destroy(kg);
  rt_st_destroy(st);
}

Test(losses, mse_value) {
  check_value(&MSE, IR_F64, KL_BACKEND_REF);
  check_value(&MSE, IR_F32, KL_BACKEND_REF);
  check_value(&MSE, IR_F32, KL_BACKEND_JIT);
  check_value(&MSE, IR_F64, KL_BACKEND_JIT);
}

Test(losses, masked_xent_value) {
  check_value(&XENT, IR_F64, KL_BACKEND_REF);
  check_value(&XENT, IR_F32, KL_BACKEND_REF);
  check_value(&XENT, IR_F32, KL_BACKEND_JIT);
  check_value(&XENT, IR_F64, KL_BACKEND_JIT);
}

Test(losses, mse_gradient) {
  check_grad(&MSE, IR_F64);
  check_grad(&MSE, IR_F32);
}

Test(losses, masked_xent_gradient) {
  check_grad(&XENT, IR_F64);
  check_grad(&XENT, IR_F32);
}

Test(losses, emit_only_primitives_and_name_themselves_in_errors) {
  kl_graph *g = kl_graph_create("l");
  kl_value a = kl_input(g, "a", KL_F32, KL_SHAPE(2, 3)), b = kl_input(g, "b", KL_F32, KL_SHAPE(3));
  kl_value l = kl_mse_loss(a, b); /* broadcasting, as the sub it is built from */
  cr_assert(kl_value_ok(l));
  cr_expect_eq(kl_rank(l), 0);
  const ir_graph *ir = kl_graph_ir(g);
  for (int i = 0; i < ir->nnodes; i++) {
    ir_op op = ir->nodes[i]->op;
    cr_expect(op == IR_OP_ARG || op == IR_OP_SUB || op == IR_OP_MUL || op == IR_OP_MEAN, "%s",
              ir_op_get(op)->name);
  }
  kl_value bad = kl_mse_loss(a, kl_input(g, "c", KL_F32, KL_SHAPE(4)));
  cr_expect_not(kl_value_ok(bad));
  const char *e = kl_graph_error(g);
  cr_assert_not_null(e);
  cr_expect(strstr(e, "test_losses.c:") && strstr(e, "mse_loss: sub"), "%s", e);
  kl_graph_destroy(g);

  g = kl_graph_create("x");
  kl_value logits = kl_input(g, "logits", KL_F32, KL_SHAPE(2, 3, 5));
  kl_value labels = kl_input(g, "labels", KL_I32, KL_SHAPE(2, 3));
  kl_value len = kl_input(g, "len", KL_I32, KL_SHAPE(3));
  cr_expect_not(kl_value_ok(kl_masked_softmax_cross_entropy(logits, labels, len)));
  e = kl_graph_error(g);
  cr_assert_not_null(e);
  cr_expect(strstr(e, "masked_softmax_cross_entropy: sequence_mask"), "%s", e);
  kl_graph_destroy(g);
}
