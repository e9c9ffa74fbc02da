/* The optimizer pass (passes/optimizer.h) against PyTorch goldens
 * (tests/golden/optim, written by golden_optim.py): first alone, with the
 * gradients of the tiny model computed by hand and fed as graph arguments
 * to the reference interpreter, then through kl_compile_train on the
 * reference backend and the JIT. Also: the learning-rate schedules against
 * hand-computed values, the graph's structure and text round trip, and the
 * pass's error messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "frontend/kiln.h"
#include "passes/optimizer.h"
#include "runtime/ref.h"
#include "runtime/safetensors.h"
#include "tests/support/golden.h"

#define OPTIM_DIR KILN_SOURCE_DIR "/tests/golden/optim"

/* ---- golden files ---------------------------------------------------------- */

static rt_safetensors *load(const char *name) { return golden_st_read(OPTIM_DIR, name); }

static double hp(const rt_safetensors *st, const char *field) {
  char name[64];
  snprintf(name, sizeof name, "opt.%s", field);
  return rt_get_f(golden_st_get(st, name), 0);
}

/* Fields added after the first goldens were written (absent there: 0). */
static double hp_or0(const rt_safetensors *st, const char *field) {
  char name[64];
  snprintf(name, sizeof name, "opt.%s", field);
  const rt_tensor *t = rt_st_get(st, name);
  return t ? rt_get_f(t, 0) : 0;
}

static pass_optim case_opts(const rt_safetensors *st) {
  return (pass_optim){.kind = (pass_opt_kind)hp(st, "kind"),
                      .lr = hp(st, "lr"),
                      .momentum = hp(st, "momentum"),
                      .beta1 = hp(st, "beta1"),
                      .beta2 = hp(st, "beta2"),
                      .eps = hp(st, "eps"),
                      .weight_decay = hp(st, "weight_decay"),
                      .clip_norm = hp(st, "clip_norm"),
                      .schedule = (pass_lr_kind)hp(st, "schedule"),
                      .warmup = (int64_t)hp(st, "warmup"),
                      .total_steps = (int64_t)hp(st, "total_steps"),
                      .min_lr = hp(st, "min_lr"),
                      .decay_min_rank = (int)hp_or0(st, "decay_min_rank")};
}

static void expect_close(const char *what, int64_t i, double got, double exp, double rtol,
                         double atol) {
  cr_expect(fabs(got - exp) <= atol + rtol * fabs(exp), "%s[%lld]: got %.10g, expected %.10g", what,
            (long long)i, got, exp);
}

static double tol_r(ir_dtype dt) { return dt == IR_F32 ? 1e-5 : 1e-10; }
static double tol_a(ir_dtype dt) { return dt == IR_F32 ? 1e-6 : 1e-12; }

/* ---- the tiny model and its gradient by hand ------------------------------ */

/* pred = tanh(x w1 + b1) w2, loss = mean((pred - y)^2); x [4,3], w1 [3,5],
 * b1 [5], w2 [5,2], y [4,2]. Returns the loss, fills the gradients. */
static double mlp_grad(const double *x, const double *y, const double *w1, const double *b1,
                       const double *w2, double *gw1, double *gb1, double *gw2) {
  double h[4][5], dp[4][2], loss = 0;
  for (int n = 0; n < 4; n++) {
    for (int j = 0; j < 5; j++) {
      double z = b1[j];
      for (int i = 0; i < 3; i++)
        z += x[n * 3 + i] * w1[i * 5 + j];
      h[n][j] = tanh(z);
    }
    for (int k = 0; k < 2; k++) {
      double p = 0;
      for (int j = 0; j < 5; j++)
        p += h[n][j] * w2[j * 2 + k];
      double e = p - y[n * 2 + k];
      loss += e * e / 8;
      dp[n][k] = 2 * e / 8;
    }
  }
  memset(gw1, 0, 15 * sizeof *gw1);
  memset(gb1, 0, 5 * sizeof *gb1);
  memset(gw2, 0, 10 * sizeof *gw2);
  for (int n = 0; n < 4; n++) {
    for (int j = 0; j < 5; j++) {
      double dh = 0;
      for (int k = 0; k < 2; k++) {
        gw2[j * 2 + k] += h[n][j] * dp[n][k];
        dh += dp[n][k] * w2[j * 2 + k];
      }
      double dz = dh * (1 - h[n][j] * h[n][j]);
      gb1[j] += dz;
      for (int i = 0; i < 3; i++)
        gw1[i * 5 + j] += x[n * 3 + i] * dz;
    }
  }
  return loss;
}

/* ---- a parameter store for the reference interpreter ----------------------- */

typedef struct store {
  int n;
  char names[16][64];
  rt_tensor *t[16];
} store;

static rt_tensor *store_find(store *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0) return s->t[i];
  return NULL;
}

static rt_tensor *store_add(store *s, const char *name, const ir_type *t) {
  cr_assert_lt(s->n, 16);
  snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
  s->t[s->n] = rt_tensor_create(t);
  return s->t[s->n++];
}

/* Unknown parameters are optimizer state: they must say init "zeros". */
static const rt_tensor *store_lookup(void *ctx, const ir_node *p) {
  store *s = ctx;
  const char *name = ir_node_attr(p, "name")->s;
  rt_tensor *t = store_find(s, name);
  if (t) return t;
  cr_assert_str_eq(ir_node_attr(p, "init")->s, "zeros", "state param %s", name);
  cr_assert_not(ir_node_attr(p, "trainable")->b, "state param %s is trainable", name);
  return store_add(s, name, &p->type);
}

static bool store_assign(void *ctx, const ir_node *p, const rt_tensor *v, ir_diag *d) {
  (void)d;
  rt_tensor *t = store_find(ctx, ir_node_attr(p, "name")->s);
  cr_assert_not_null(t);
  memcpy(t->data, v->data, t->bytes);
  return true;
}

static void store_free(store *s) {
  for (int i = 0; i < s->n; i++)
    rt_tensor_destroy(s->t[i]);
}

static void to_doubles(const rt_tensor *t, double *out) {
  for (int64_t i = 0; i < rt_numel(t); i++)
    out[i] = rt_get_f(t, i);
}

static const char *const WNAMES[3] = {"w1", "b1", "w2"};
static const int64_t WDIMS[3][2] = {{3, 5}, {5, 0}, {5, 2}};

static ir_type wtype(int k, ir_dtype dt) { return ir_type_make(dt, k == 1 ? 1 : 2, WDIMS[k]); }

static int add_param(ir_graph *g, const char *name, const ir_type *t) {
  ir_attr a[4] = {{.kind = IR_ATTR_STR, .s = name},
                  {.kind = IR_ATTR_STR, .s = "normal"},
                  {.kind = IR_ATTR_FLOAT, .f = 0},
                  {.kind = IR_ATTR_BOOL, .b = true}};
  ir_diag d = {0};
  int id = ir_add_node(g, IR_OP_PARAM, 0, NULL, a, t, &d);
  cr_assert_geq(id, 0, "%s", d.msg);
  return id;
}

/* Args g_w1, g_b1, g_w2, params w1, b1, w2, then the optimizer's nodes. */
static ir_graph *update_graph(const pass_optim *o, ir_dtype dt) {
  ir_graph *g = ir_graph_create("update");
  ir_diag d = {0};
  int params[3], grads[3];
  for (int k = 0; k < 3; k++) {
    char name[16];
    snprintf(name, sizeof name, "g_%s", WNAMES[k]);
    ir_type t = wtype(k, dt);
    grads[k] = ir_add_arg(g, name, &t, &d);
  }
  for (int k = 0; k < 3; k++) {
    ir_type t = wtype(k, dt);
    params[k] = add_param(g, WNAMES[k], &t);
  }
  cr_assert(pass_optimizer(g, o, 3, params, grads, &d), "%s", d.msg);
  ir_set_returns(g, 1, &grads[0]);
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  return g;
}

/* Runs the update graph for the case's steps with hand gradients. */
static void run_pass_case(const char *name, ir_dtype dt) {
  rt_safetensors *st = load(name);
  pass_optim o = case_opts(st);
  ir_graph *g = update_graph(&o, dt);
  store s = {0};
  for (int k = 0; k < 3; k++) {
    ir_type t = wtype(k, dt);
    rt_tensor *w = store_add(&s, WNAMES[k], &t);
    const rt_tensor *init = golden_st_get(st, WNAMES[k]);
    for (int64_t i = 0; i < rt_numel(w); i++)
      rt_set_f(w, i, rt_get_f(init, i));
  }
  double x[12], y[8], w1[15], b1[5], w2[10], gw[3][15];
  to_doubles(golden_st_get(st, "x"), x);
  to_doubles(golden_st_get(st, "y"), y);
  const rt_tensor *losses = golden_st_get(st, "losses");
  rt_tensor *args[3];
  for (int k = 0; k < 3; k++) {
    ir_type t = wtype(k, dt);
    args[k] = rt_tensor_create(&t);
  }
  for (int64_t step = 0; step < rt_numel(losses); step++) {
    to_doubles(store_find(&s, "w1"), w1);
    to_doubles(store_find(&s, "b1"), b1);
    to_doubles(store_find(&s, "w2"), w2);
    double loss = mlp_grad(x, y, w1, b1, w2, gw[0], gw[1], gw[2]);
    expect_close("loss", step, loss, rt_get_f(losses, step), tol_r(dt), tol_a(dt));
    for (int k = 0; k < 3; k++)
      for (int64_t i = 0; i < rt_numel(args[k]); i++)
        rt_set_f(args[k], i, gw[k][i]);
    rt_ref_opts ro = {.step = (uint64_t)step, .assign = store_assign, .assign_ctx = &s};
    rt_tensor *out[1] = {NULL};
    ir_diag d = {0};
    cr_assert(rt_ref_run(g, (const rt_tensor *const *)args, store_lookup, &s, &ro, out, &d), "%s",
              d.msg);
    rt_tensor_destroy(out[0]);
  }
  for (int k = 0; k < 3; k++) {
    char fname[32];
    snprintf(fname, sizeof fname, "final.%s", WNAMES[k]);
    const rt_tensor *exp = golden_st_get(st, fname), *got = store_find(&s, WNAMES[k]);
    for (int64_t i = 0; i < rt_numel(exp); i++)
      expect_close(fname, i, rt_get_f(got, i), rt_get_f(exp, i), tol_r(dt), tol_a(dt));
    rt_tensor_destroy(args[k]);
  }
  store_free(&s);
  ir_graph_destroy(g);
  rt_st_destroy(st);
}

#define PASS_CASE(name)                                                                            \
  Test(optimizer_pass, name##_f32) { run_pass_case(#name, IR_F32); }                               \
  Test(optimizer_pass, name##_f64) { run_pass_case(#name, IR_F64); }

PASS_CASE(sgd_momentum)
PASS_CASE(sgd_plain)
PASS_CASE(adam)
PASS_CASE(adamw)
PASS_CASE(warmup_rsqrt)
PASS_CASE(cosine)
PASS_CASE(adamw_nanogpt)

/* ---- learning-rate schedules by hand -------------------------------------- */

/* Plain SGD on p (starting at 0) with gradient 1: each step moves p by -lr_t. */
static void lr_trajectory(const pass_optim *o, int steps, double *lr) {
  ir_graph *g = ir_graph_create("lr");
  ir_type t = ir_type_make(IR_F64, 0, NULL);
  ir_diag d = {0};
  int grad = ir_add_arg(g, "g", &t, &d);
  int p = add_param(g, "p", &t);
  cr_assert(pass_optimizer(g, o, 1, &p, &grad, &d), "%s", d.msg);
  ir_set_returns(g, 1, &grad);
  store s = {0};
  rt_tensor *pv = store_add(&s, "p", &t), *gv = rt_tensor_create(&t);
  rt_set_f(gv, 0, 1.0);
  for (int step = 0; step < steps; step++) {
    double before = rt_get_f(pv, 0);
    rt_ref_opts ro = {.step = (uint64_t)step, .assign = store_assign, .assign_ctx = &s};
    rt_tensor *out[1] = {NULL};
    const rt_tensor *args[1] = {gv};
    cr_assert(rt_ref_run(g, args, store_lookup, &s, &ro, out, &d), "%s", d.msg);
    rt_tensor_destroy(out[0]);
    lr[step] = before - rt_get_f(pv, 0);
  }
  rt_tensor_destroy(gv);
  store_free(&s);
  ir_graph_destroy(g);
}

Test(lr_schedule, constant) {
  pass_optim o = {.kind = PASS_OPT_SGD, .lr = 0.3};
  double lr[3];
  lr_trajectory(&o, 3, lr);
  for (int i = 0; i < 3; i++)
    expect_close("lr", i, lr[i], 0.3, 1e-12, 0);
}

Test(lr_schedule, warmup_rsqrt) {
  /* lr sqrt(4) min(t1^-1/2, t1 / 8): t1 = 1..4 ramp t1/4 * lr, then 2 lr / sqrt(t1) */
  pass_optim o = {.kind = PASS_OPT_SGD, .lr = 0.5, .schedule = PASS_LR_WARMUP_RSQRT, .warmup = 4};
  double lr[8],
      want[8] = {0.125, 0.25, 0.375, 0.5, 1 / sqrt(5), 1 / sqrt(6), 1 / sqrt(7), 1 / sqrt(8)};
  lr_trajectory(&o, 8, lr);
  for (int i = 0; i < 8; i++)
    expect_close("lr", i, lr[i], want[i], 1e-12, 1e-15);
}

Test(lr_schedule, cosine_warmup_then_decay_then_floor) {
  /* warmup 2, total 6 (S = 4), lr 1, min 0.2: t = 0, 1 ramp 0.5, 1; then
   * s = 0..4: 0.2 + 0.8 (1 + cos(pi s / 4)) / 2, and s stays 4 after. */
  pass_optim o = {.kind = PASS_OPT_SGD,
                  .lr = 1.0,
                  .schedule = PASS_LR_COSINE,
                  .warmup = 2,
                  .total_steps = 6,
                  .min_lr = 0.2};
  double lr[9], want[9] = {0.5, 1.0};
  for (int t = 2; t < 9; t++) {
    int s = t - 2 < 4 ? t - 2 : 4;
    want[t] = 0.2 + 0.4 * (1 + cos(3.14159265358979323846 * s / 4));
  }
  lr_trajectory(&o, 9, lr);
  for (int i = 0; i < 9; i++)
    expect_close("lr", i, lr[i], want[i], 1e-12, 1e-15);
  cr_expect(fabs(lr[8] - 0.2) < 1e-12);
}

Test(lr_schedule, cosine_without_warmup_starts_at_lr) {
  pass_optim o = {.kind = PASS_OPT_SGD, .lr = 0.1, .schedule = PASS_LR_COSINE, .total_steps = 2};
  double lr[3];
  lr_trajectory(&o, 3, lr);
  expect_close("lr", 0, lr[0], 0.1, 1e-12, 0);
  expect_close("lr", 1, lr[1], 0.05, 1e-12, 0);
  expect_close("lr", 2, lr[2], 0.0, 0, 1e-15);
}

Test(lr_schedule, nanogpt_get_lr) {
  /* nanoGPT's get_lr with warmup 3, lr_decay_iters 7, lr 1, min 0.1:
   * t = 0..2 ramp (t + 1) / 4; t = 3..7 cosine over 4 iterations; then
   * the floor. */
  pass_optim o = {.kind = PASS_OPT_SGD,
                  .lr = 1.0,
                  .schedule = PASS_LR_NANOGPT,
                  .warmup = 3,
                  .total_steps = 7,
                  .min_lr = 0.1};
  double lr[10], want[10] = {0.25, 0.5, 0.75};
  for (int t = 3; t < 10; t++)
    want[t] = t > 7 ? 0.1 : 0.1 + 0.45 * (1 + cos(3.14159265358979323846 * (t - 3) / 4));
  lr_trajectory(&o, 10, lr);
  for (int i = 0; i < 10; i++)
    expect_close("lr", i, lr[i], want[i], 1e-12, 1e-15);
  cr_expect(fabs(lr[3] - 1.0) < 1e-12, "the cosine starts at lr");
}

/* ---- structure, text, errors ---------------------------------------------- */

static int count_assigns(const ir_graph *g, const char *name, int *last_read, int *first_assign) {
  int n = 0;
  *last_read = -1;
  *first_assign = g->nnodes;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *m = g->nodes[i];
    if (m->op == IR_OP_ASSIGN && *first_assign == g->nnodes) *first_assign = i;
    for (int k = 0; k < m->nin; k++) {
      const ir_node *p = g->nodes[m->in[k]];
      if (p->op != IR_OP_PARAM || strcmp(ir_node_attr(p, "name")->s, name)) continue;
      if (m->op == IR_OP_ASSIGN && k == 0)
        n++;
      else
        *last_read = i;
    }
  }
  return n;
}

Test(optimizer_pass, one_assign_per_param_and_slot_after_every_read) {
  pass_optim kinds[3] = {
      {.kind = PASS_OPT_SGD, .lr = 0.1, .momentum = 0.9, .clip_norm = 1},
      {.kind = PASS_OPT_ADAM, .clip_norm = 1, .schedule = PASS_LR_COSINE, .total_steps = 10},
      {.kind = PASS_OPT_ADAMW, .weight_decay = 0.1}};
  const char *slots[3][2] = {{"momentum", NULL}, {"m", "v"}, {"m", "v"}};
  for (int k = 0; k < 3; k++) {
    ir_graph *g = update_graph(&kinds[k], IR_F32);
    int nassign = 0;
    for (int i = 0; i < g->nnodes; i++)
      nassign += g->nodes[i]->op == IR_OP_ASSIGN;
    cr_expect_eq(nassign, 3 * (slots[k][1] ? 3 : 2), "kind %d: %d assigns", k, nassign);
    for (int w = 0; w < 3; w++) {
      for (int s = -1; s < 2; s++) {
        char name[64];
        if (s >= 0 && !slots[k][s]) continue;
        snprintf(name, sizeof name, s < 0 ? "%s" : "%s@%s", WNAMES[w], s < 0 ? "" : slots[k][s]);
        int last_read, first_assign;
        cr_expect_eq(count_assigns(g, name, &last_read, &first_assign), 1, "%s", name);
        cr_expect_lt(last_read, first_assign, "%s is read after the first assign", name);
      }
    }
    ir_graph_destroy(g);
  }
}

Test(optimizer_pass, graph_prints_parses_and_verifies) {
  pass_optim o = {.kind = PASS_OPT_ADAMW,
                  .weight_decay = 0.1,
                  .clip_norm = 0.5,
                  .schedule = PASS_LR_WARMUP_RSQRT,
                  .warmup = 10};
  ir_graph *g = update_graph(&o, IR_F32);
  char *text = ir_print_str(g, NULL);
  ir_diag d = {0};
  ir_graph *back = ir_parse(text, strlen(text), "update.kir", &d);
  cr_assert_not_null(back, "%s\n%s", d.msg, text);
  cr_expect(ir_verify(back, &d), "%s", d.msg);
  char *again = ir_print_str(back, NULL);
  cr_expect_str_eq(again, text);
  cr_expect(strstr(text, "param(\"w1@m\")") != NULL, "%s", text);
  cr_expect(strstr(text, "step()") != NULL, "%s", text);
  free(again);
  free(text);
  ir_graph_destroy(back);
  ir_graph_destroy(g);
}

static void expect_error(const pass_optim *o, bool bad_param, bool bad_grad, const char *needle) {
  ir_graph *g = ir_graph_create("bad");
  ir_type t = ir_type_make(IR_F32, 1, (int64_t[]){4}), t2 = ir_type_make(IR_F32, 1, (int64_t[]){3});
  ir_diag d = {0};
  int arg = ir_add_arg(g, "g", bad_grad ? &t2 : &t, &d);
  int p = bad_param ? arg : add_param(g, "w", &t);
  cr_expect_not(pass_optimizer(g, o, 1, &p, &arg, &d));
  cr_expect(strstr(d.msg, needle) != NULL, "message '%s' lacks '%s'", d.msg, needle);
  ir_graph_destroy(g);
}

Test(optimizer_pass, errors_name_the_problem) {
  pass_optim sgd = {.kind = PASS_OPT_SGD, .lr = 0.1};
  expect_error(&sgd, true, false, "not a param");
  expect_error(&sgd, false, true, "the gradient of param \"w\" (f32[4]) is f32[3]");
  expect_error(&(pass_optim){.kind = PASS_OPT_SGD}, false, false, "lr must be > 0");
  expect_error(&(pass_optim){.kind = PASS_OPT_ADAM, .beta2 = 1.5}, false, false, "beta2");
  expect_error(&(pass_optim){.kind = PASS_OPT_SGD, .lr = 1, .schedule = PASS_LR_WARMUP_RSQRT},
               false, false, "warmup > 0");
  expect_error(
      &(pass_optim){
          .kind = PASS_OPT_SGD, .lr = 1, .schedule = PASS_LR_COSINE, .warmup = 5, .total_steps = 5},
      false, false, "warmup < total_steps");
  expect_error(&(pass_optim){.kind = (pass_opt_kind)7, .lr = 1}, false, false, "unknown");
}

Test(optimizer_pass, refuses_state_names_in_use_and_frozen_params) {
  ir_graph *g = ir_graph_create("clash");
  ir_type t = ir_type_make(IR_F32, 1, (int64_t[]){4});
  ir_diag d = {0};
  int arg = ir_add_arg(g, "g", &t, &d);
  int p = add_param(g, "w", &t);
  add_param(g, "w@m", &t);
  pass_optim adam = {.kind = PASS_OPT_ADAM};
  cr_expect_not(pass_optimizer(g, &adam, 1, &p, &arg, &d));
  cr_expect(strstr(d.msg, "\"w@m\", which already exists") != NULL, "%s", d.msg);
  ir_attr a[4] = {{.kind = IR_ATTR_STR, .s = "frozen"},
                  {.kind = IR_ATTR_STR, .s = "zeros"},
                  {.kind = IR_ATTR_FLOAT, .f = 0},
                  {.kind = IR_ATTR_BOOL, .b = false}};
  int f = ir_add_node(g, IR_OP_PARAM, 0, NULL, a, &t, &d);
  pass_optim sgd = {.kind = PASS_OPT_SGD, .lr = 1};
  cr_expect_not(pass_optimizer(g, &sgd, 1, &f, &arg, &d));
  cr_expect(strstr(d.msg, "\"frozen\"") && strstr(d.msg, "not a trainable"), "%s", d.msg);
  ir_graph_destroy(g);
}

/* ---- the whole train step: kl_compile_train on both backends --------------- */

static kl_tensor *tensor_as(const rt_tensor *src, ir_dtype dt) {
  kl_tensor *t = kl_tensor_create((kl_tensor_dtype)dt, src->type.rank, src->type.dims);
  cr_assert_not_null(t);
  for (int64_t i = 0; i < rt_numel(src); i++) {
    if (dt == IR_F32)
      ((float *)kl_tensor_data(t))[i] = (float)rt_get_f(src, i);
    else
      ((double *)kl_tensor_data(t))[i] = rt_get_f(src, i);
  }
  return t;
}

static double elem(kl_tensor *t, ir_dtype dt, int64_t i) {
  return dt == IR_F32 ? ((const float *)kl_tensor_data(t))[i]
                      : ((const double *)kl_tensor_data(t))[i];
}

/* The tiny model in the DSL; returns the loss's id. */
static kl_graph *tiny_model(ir_dtype dt, int *loss) {
  kl_dtype k = (kl_dtype)dt;
  kl_graph *g = kl_graph_create("tiny");
  kl_value x = kl_input(g, "x", k, KL_SHAPE(4, 3)), y = kl_input(g, "y", k, KL_SHAPE(4, 2));
  kl_value w1 = kl_param(g, "w1", k, KL_SHAPE(3, 5)), b1 = kl_param(g, "b1", k, KL_SHAPE(5));
  kl_value w2 = kl_param(g, "w2", k, KL_SHAPE(5, 2));
  kl_value l = kl_mse_loss(kl_matmul(kl_tanh(kl_add(kl_matmul(x, w1), b1)), w2), y);
  kl_output(l);
  cr_assert_null(kl_graph_error(g));
  *loss = l.id;
  return g;
}

static void run_train_case(const char *name, ir_dtype dt, kl_backend backend) {
  rt_safetensors *st = load(name);
  pass_optim po = case_opts(st);
  kl_optim_opts o = {.kind = (kl_optimizer)po.kind,
                     .lr = po.lr,
                     .momentum = po.momentum,
                     .beta1 = po.beta1,
                     .beta2 = po.beta2,
                     .eps = po.eps,
                     .weight_decay = po.weight_decay,
                     .clip_norm = po.clip_norm,
                     .schedule = (kl_lr_schedule)po.schedule,
                     .warmup = po.warmup,
                     .total_steps = po.total_steps,
                     .min_lr = po.min_lr,
                     .decay_min_rank = po.decay_min_rank};
  kl_compile_opts co = {.backend = backend, .no_cache = true, .threads = 1};
  int loss;
  kl_graph *g = tiny_model(dt, &loss);
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(kl_graph_ir(g), loss, NULL, 0, &o, NULL, &co, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(g);
  kl_program *p = kl_train_step_program(s);
  for (int k = 0; k < 3; k++) {
    kl_tensor *w = tensor_as(golden_st_get(st, WNAMES[k]), dt);
    const char *msg = kl_program_set_param(p, WNAMES[k], w);
    cr_assert_null(msg, "%s", msg);
    kl_tensor_destroy(w);
  }
  kl_tensor *in[2] = {tensor_as(golden_st_get(st, "x"), dt), tensor_as(golden_st_get(st, "y"), dt)};
  const rt_tensor *losses = golden_st_get(st, "losses");
  for (int64_t step = 0; step < rt_numel(losses); step++) {
    double l = NAN;
    const char *msg = kl_train_step_run(s, in, 2, &l);
    cr_assert_null(msg, "step %lld: %s", (long long)step, msg);
    expect_close("loss", step, l, rt_get_f(losses, step), tol_r(dt), tol_a(dt));
  }
  cr_expect_eq(kl_program_step(p), (uint64_t)rt_numel(losses));
  for (int k = 0; k < 3; k++) {
    char fname[32];
    snprintf(fname, sizeof fname, "final.%s", WNAMES[k]);
    kl_tensor *got = NULL;
    const char *msg = kl_program_get_param(p, WNAMES[k], &got);
    cr_assert_null(msg, "%s", msg);
    const rt_tensor *exp = golden_st_get(st, fname);
    for (int64_t i = 0; i < rt_numel(exp); i++)
      expect_close(fname, i, elem(got, dt, i), rt_get_f(exp, i), tol_r(dt), tol_a(dt));
    kl_tensor_destroy(got);
  }
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
  kl_train_step_destroy(s);
  rt_st_destroy(st);
}

#define TRAIN_CASE(name)                                                                           \
  Test(train_step, name##_ref_f32) { run_train_case(#name, IR_F32, KL_BACKEND_REF); }              \
  Test(train_step, name##_ref_f64) { run_train_case(#name, IR_F64, KL_BACKEND_REF); }              \
  Test(train_step, name##_jit_f32) { run_train_case(#name, IR_F32, KL_BACKEND_JIT); }              \
  Test(train_step, name##_jit_f64) { run_train_case(#name, IR_F64, KL_BACKEND_JIT); }

TRAIN_CASE(sgd_momentum)
TRAIN_CASE(sgd_plain)
TRAIN_CASE(adam)
TRAIN_CASE(adamw)
TRAIN_CASE(warmup_rsqrt)
TRAIN_CASE(cosine)
TRAIN_CASE(adamw_nanogpt)
