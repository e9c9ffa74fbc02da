/* Additive (Bahdanau) attention fusion: the JIT's fused forward and
 * additive_attention_grad (backend/kern_additive.c) against the reference
 * (the region body; runtime/ref_additive.c) over masks, zero lengths,
 * dropout, odd sizes and both float dtypes; the reference gradient against
 * finite differences and against autodiff of the unfused body; and
 * pass_fuse_additive on the seq2seq-attn training graph: one region per
 * decoder step, the same loss and update as the unfused graph. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "frontend/kiln.h"
#include "models/seq2seq_attn.h"
#include "passes/autodiff.h"
#include "passes/fused_build_additive.h"
#include "passes/pipeline.h"
#include "tests/support/ir_check.h"

typedef struct acase {
  const char *name;
  ir_dtype dt;
  int nbatch; /* batch dims: 1 ([B]) or 2 ([B, 2]) */
  int64_t b, tq, tk, h, dv;
  int mask; /* 0 none, 1 lengths [batch...] i32, 2 lengths [batch..., Tq] i64 */
  bool zero_len;
  double p;
} acase;

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double uni(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static ir_type bt(const acase *c, int64_t a, int64_t b) {
  int64_t d[4] = {c->b, 2, a, b};
  if (c->nbatch == 1) d[1] = a, d[2] = b;
  return ir_type_make(c->dt, c->nbatch + 2, d);
}

/* qp, kp, wv, v [, len]; ids[4] = -1 without lengths. */
static void add_args(ir_graph *g, const acase *c, int *ids) {
  ir_diag d = {0};
  ir_type q = bt(c, c->tq, c->h), k = bt(c, c->tk, c->h), v = bt(c, c->tk, c->dv);
  ir_type w = ir_type_make(c->dt, 1, &c->h);
  ids[0] = ir_add_arg(g, "qp", &q, &d);
  ids[1] = ir_add_arg(g, "kp", &k, &d);
  ids[2] = ir_add_arg(g, "wv", &w, &d);
  ids[3] = ir_add_arg(g, "v", &v, &d);
  ids[4] = -1;
  if (c->mask) {
    ir_type l = q;
    l.rank = c->mask == 1 ? c->nbatch : c->nbatch + 1;
    l.dtype = c->mask == 1 ? IR_I32 : IR_I64;
    ids[4] = ir_add_arg(g, "len", &l, &d);
  }
  cr_assert(ids[0] >= 0 && ids[3] >= 0, "%s", d.msg);
}

static ir_attr *case_attrs(const acase *c, ir_attr *a) {
  a[0] = (ir_attr){.kind = IR_ATTR_FLOAT, .f = -1e6};
  a[1] = (ir_attr){.kind = IR_ATTR_FLOAT, .f = c->p};
  a[2] = (ir_attr){.kind = IR_ATTR_INT, .i = -1};
  return a;
}

/* args..., do -> additive_attention, additive_attention_grad. */
static ir_graph *kernel_graph(const acase *c) {
  ir_graph *g = ir_graph_create("add");
  ir_diag d = {0};
  int ids[5];
  add_args(g, c, ids);
  ir_type ot = bt(c, c->tq, c->dv);
  int dy = ir_add_arg(g, "dy", &ot, &d);
  ir_attr a[3];
  int o = pass_build_additive_attention(g, ids[0], ids[1], ids[2], ids[3], ids[4], case_attrs(c, a),
                                        NULL, &d);
  cr_assert(o >= 0, "%s: %s", c->name, d.msg);
  int in[6], nin = 0;
  for (int i = 0; i < 5; i++)
    if (ids[i] >= 0) in[nin++] = ids[i];
  in[nin++] = dy;
  int gr = ir_add_node(g, IR_OP_ADDITIVE_ATTENTION_GRAD, nin, in, g->nodes[o]->attrs, NULL, &d);
  cr_assert(gr >= 0, "%s: %s", c->name, d.msg);
  ir_set_returns(g, 2, (int[]){o, gr});
  cr_assert(ir_verify(g, &d), "%s: %s", c->name, d.msg);
  return g;
}

static kl_tensor *random_arg(const acase *c, const ir_node *n) {
  kl_tensor *t = kl_tensor_create((kl_tensor_dtype)n->type.dtype, n->type.rank, n->type.dims);
  cr_assert_not_null(t);
  void *p = kl_tensor_data(t);
  for (int64_t i = 0; i < kl_tensor_numel(t); i++) {
    double x = uni() * 1.5;
    if (n->type.dtype == IR_F32)
      ((float *)p)[i] = (float)x;
    else if (n->type.dtype == IR_F64)
      ((double *)p)[i] = x;
    else {
      int64_t len = (int64_t)((x / 1.5 + 1) / 2 * (double)(c->tk + 1));
      if (len > c->tk) len = c->tk;
      if (c->zero_len && i % 3 == 1) len = 0;
      if (!c->zero_len && len == 0) len = 1;
      if (n->type.dtype == IR_I32)
        ((int32_t *)p)[i] = (int32_t)len;
      else
        ((int64_t *)p)[i] = len;
    }
  }
  return t;
}

static kl_program *compile(const ir_graph *g, kl_backend be, bool training, int threads) {
  kl_compile_opts o = {.backend = be,
                       .seed = 99,
                       .training = training,
                       .threads = threads,
                       .no_cache = true,
                       .guard_bytes = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &o, &err);
  cr_assert_not_null(p, "compile: %s", err ? err : "?");
  return p;
}

static void run(const ir_graph *g, kl_backend be, bool training, int threads, kl_tensor **in,
                int nin, kl_tensor **outs) {
  kl_program *p = compile(g, be, training, threads);
  const char *msg = kl_run(p, in, nin, outs, g->nrets);
  cr_assert_null(msg, "run: %s", msg);
  kl_program_destroy(p);
}

static const acase cases[] = {
    {"plain", IR_F32, 1, 2, 3, 5, 8, 6, 0, false, 0},
    {"odd H (vector tail)", IR_F32, 1, 3, 4, 7, 9, 5, 0, false, 0},
    {"len[B]", IR_F32, 1, 4, 3, 6, 13, 7, 1, false, 0},
    {"len[B,Tq] i64", IR_F32, 1, 3, 5, 6, 5, 4, 2, false, 0},
    {"zero lengths", IR_F32, 1, 5, 2, 4, 6, 3, 2, true, 0},
    {"zero len[B]", IR_F32, 1, 6, 1, 5, 4, 3, 1, true, 0},
    {"batch [B,2], len[B,2]", IR_F32, 2, 3, 3, 4, 7, 5, 1, true, 0},
    {"Tq 1 (seq2seq's step)", IR_F32, 1, 17, 1, 11, 12, 12, 1, false, 0},
    {"dropout", IR_F32, 1, 3, 4, 9, 6, 5, 1, false, 0.3},
    {"dropout batch [B,2]", IR_F32, 2, 2, 3, 5, 5, 3, 2, true, 0.5},
};

static void check_kernels(const acase *c, int threads) {
  ir_graph *g = kernel_graph(c);
  int ids[8], nargs = ir_graph_args(g, ids);
  kl_tensor *in[8], *ref[2], *jit[2];
  for (int i = 0; i < nargs; i++)
    in[i] = random_arg(c, g->nodes[ids[i]]);
  bool training = c->p > 0;
  run(g, KL_BACKEND_REF, training, 1, in, nargs, ref);
  run(g, KL_BACKEND_JIT, training, threads, in, nargs, jit);
  double tol = c->dt == IR_F32 ? 3e-5 : 1e-11;
  double eo = tc_rel_err(jit[0], ref[0], c->dt), eg = tc_rel_err(jit[1], ref[1], c->dt);
  cr_expect(eo < tol, "%s %s: forward error %g", c->name, ir_dtype_name(c->dt), eo);
  cr_expect(eg < 10 * tol, "%s %s: gradient error %g", c->name, ir_dtype_name(c->dt), eg);
  for (int i = 0; i < nargs; i++)
    kl_tensor_destroy(in[i]);
  for (int i = 0; i < 2; i++)
    kl_tensor_destroy(ref[i]), kl_tensor_destroy(jit[i]);
  ir_graph_destroy(g);
}

Test(additive_attention, f32_jit_vs_reference) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_kernels(&cases[i], 2);
}

Test(additive_attention, f64_jit_vs_reference) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    acase c = cases[i];
    c.dt = IR_F64;
    check_kernels(&c, 2);
  }
}

/* dwv is summed over the batch in a fixed order: the same bits on 1 and 2
 * threads (and the rest of the gradient too: nothing else is shared). */
Test(additive_attention, gradient_independent_of_threads) {
  acase c = {"threads", IR_F32, 1, 37, 3, 7, 10, 6, 1, false, 0.2};
  ir_graph *g = kernel_graph(&c);
  int ids[8], nargs = ir_graph_args(g, ids);
  kl_tensor *in[8], *a[2], *b[2];
  for (int i = 0; i < nargs; i++)
    in[i] = random_arg(&c, g->nodes[ids[i]]);
  run(g, KL_BACKEND_JIT, true, 1, in, nargs, a);
  run(g, KL_BACKEND_JIT, true, 2, in, nargs, b);
  cr_expect(memcmp(kl_tensor_data(a[1]), kl_tensor_data(b[1]),
                   sizeof(float) * (size_t)kl_tensor_numel(a[1])) == 0,
            "the gradient depends on the thread count");
  for (int i = 0; i < nargs; i++)
    kl_tensor_destroy(in[i]);
  for (int i = 0; i < 2; i++)
    kl_tensor_destroy(a[i]), kl_tensor_destroy(b[i]);
  ir_graph_destroy(g);
}

/* sum(out * dy) of the region (the body, on the reference backend). */
static double objective(kl_program *p, kl_tensor **in, int nin, int64_t ny) {
  kl_program_set_step(p, 0); /* the same dropout mask every run */
  kl_tensor *out[2];
  const char *msg = kl_run(p, in, nin, out, 2);
  cr_assert_null(msg, "%s", msg);
  double s = 0;
  for (int64_t i = 0; i < ny; i++)
    s += ((double *)kl_tensor_data(out[0]))[i] * ((double *)kl_tensor_data(in[nin - 1]))[i];
  kl_tensor_destroy(out[0]), kl_tensor_destroy(out[1]);
  return s;
}

/* The reference gradient against central differences of the region. */
static void gradcheck(const acase *c) {
  ir_graph *g = kernel_graph(c);
  int ids[8], nargs = ir_graph_args(g, ids);
  kl_tensor *in[8], *out[2];
  for (int i = 0; i < nargs; i++)
    in[i] = random_arg(c, g->nodes[ids[i]]);
  kl_program *p = compile(g, KL_BACKEND_REF, c->p > 0, 1);
  kl_program_set_step(p, 0);
  cr_assert_null(kl_run(p, in, nargs, out, 2));
  const double *grad = kl_tensor_data(out[1]);
  int64_t off = 0, ny = kl_tensor_numel(in[nargs - 1]);
  for (int k = 0; k < 4; k++) {
    double *x = kl_tensor_data(in[k]);
    for (int64_t i = 0; i < kl_tensor_numel(in[k]); i++) {
      double x0 = x[i], eps = 1e-6;
      x[i] = x0 + eps;
      double fp = objective(p, in, nargs, ny);
      x[i] = x0 - eps;
      double fm = objective(p, in, nargs, ny);
      x[i] = x0;
      double fd = (fp - fm) / (2 * eps), an = grad[off + i];
      cr_expect(fabs(fd - an) < 1e-6 * (1 + fabs(fd)),
                "%s: operand %d element %lld: fd %g, rule %g", c->name, k, (long long)i, fd, an);
    }
    off += kl_tensor_numel(in[k]);
  }
  for (int i = 0; i < nargs; i++)
    kl_tensor_destroy(in[i]);
  kl_tensor_destroy(out[0]), kl_tensor_destroy(out[1]);
  kl_program_destroy(p);
  ir_graph_destroy(g);
}

Test(additive_attention, reference_gradient_vs_finite_differences) {
  const acase fd[] = {
      {"fd len[B]", IR_F64, 1, 2, 3, 4, 5, 3, 1, true, 0},
      {"fd len[B,Tq]", IR_F64, 1, 2, 2, 5, 3, 2, 2, false, 0},
      {"fd dropout", IR_F64, 2, 2, 2, 3, 3, 2, 0, false, 0.4},
  };
  for (size_t i = 0; i < sizeof fd / sizeof fd[0]; i++)
    gradcheck(&fd[i]);
}

/* The fused rule's gradients equal autodiff of the unfused body (which is
 * the region's own body: the canonical sub-graph). */
Test(additive_attention, fused_gradient_equals_unfused_body) {
  const acase cs[] = {
      {"body len[B]", IR_F64, 1, 3, 2, 5, 4, 3, 1, true, 0},
      {"body dropout len[B,Tq]", IR_F64, 2, 2, 3, 4, 5, 3, 2, false, 0.3},
  };
  for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
    const acase *c = &cs[ci];
    ir_graph *g = kernel_graph(c);
    ir_diag d = {0};
    int region = g->rets[0];
    ir_graph *u = ir_graph_clone(g->nodes[region]->body, &d);
    cr_assert_not_null(u, "%s", d.msg);
    /* u: qp, kp, wv, v [, len] -> out; add dy and the loss sum(out * dy) */
    ir_type ot = bt(c, c->tq, c->dv);
    int dy = ir_add_arg(u, "dy", &ot, &d);
    int prod = ir_add_node(u, IR_OP_MUL, 2, (int[]){u->rets[0], dy}, NULL, NULL, &d);
    int64_t axes[4] = {0, 1, 2, 3};
    ir_attr ra[2] = {{.kind = IR_ATTR_INTS, .ints = {ot.rank, axes}}, {.kind = IR_ATTR_BOOL}};
    int loss = ir_add_node(u, IR_OP_SUM, 1, &prod, ra, NULL, &d);
    cr_assert(loss >= 0, "%s", d.msg);
    int wrt[4] = {0, 1, 2, 3}, grads[4];
    cr_assert(pass_autodiff(u, loss, 4, wrt, grads, &d), "%s", d.msg);
    ir_set_returns(u, 4, grads);
    int ids[8], nargs = ir_graph_args(g, ids);
    kl_tensor *in[8], *fused[2], *ug[4];
    for (int i = 0; i < nargs; i++)
      in[i] = random_arg(c, g->nodes[ids[i]]);
    run(g, KL_BACKEND_REF, c->p > 0, 1, in, nargs, fused);
    run(u, KL_BACKEND_REF, c->p > 0, 1, in, nargs, ug);
    const double *f = kl_tensor_data(fused[1]);
    int64_t off = 0;
    for (int k = 0; k < 4; k++) {
      const double *x = kl_tensor_data(ug[k]);
      for (int64_t i = 0; i < kl_tensor_numel(ug[k]); i++)
        cr_expect(fabs(f[off + i] - x[i]) < 1e-12 * (1 + fabs(x[i])),
                  "%s: operand %d element %lld: fused %g, unfused %g", c->name, k, (long long)i,
                  f[off + i], x[i]);
      off += kl_tensor_numel(ug[k]);
      kl_tensor_destroy(ug[k]);
    }
    for (int i = 0; i < nargs; i++)
      kl_tensor_destroy(in[i]);
    kl_tensor_destroy(fused[0]), kl_tensor_destroy(fused[1]);
    ir_graph_destroy(u);
    ir_graph_destroy(g);
  }
}

/* The Bahdanau training graph at the date task's defaults: after the
 * fusion row, every decoder step's attention is one region, and no
 * softmax or rank-3 tanh (the [B, Ts, H] features) is left. */
Test(additive_attention, seq2seq_training_graph_one_region_per_step) {
  s2s_config c = S2S_DATES_DEFAULTS;
  s2s_train t = s2s_build_train(&c);
  cr_assert_not_null(t.g);
  pass_opts po = kl_default_pass_opts();
  po.stop_after = "fuse-additive-attention";
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 0.1};
  char *err = NULL;
  ir_graph *g = kl_train_graph_with(kl_graph_ir(t.g), t.loss.id, NULL, 0, &opt, &po, &err);
  cr_assert_not_null(g, "%s", err ? err : "?");
  cr_expect_eq(tc_count_op(g, IR_OP_ADDITIVE_ATTENTION), (int)c.tgt_steps);
  cr_expect_eq(tc_count_op(g, IR_OP_SOFTMAX), 0);
  int feats = 0;
  for (int i = 0; i < g->nnodes; i++)
    feats += g->nodes[i]->op == IR_OP_TANH && g->nodes[i]->type.rank == 3;
  cr_expect_eq(feats, 0, "%d [B, Ts, H] tanh nodes left", feats);
  ir_graph_destroy(g);
  kl_graph_destroy(t.g);
}

/* The decoding step exports its weights (the heatmap): the fusion must
 * leave it alone and say why. */
Test(additive_attention, exported_weights_block_the_fusion) {
  s2s_config c = S2S_DATES_DEFAULTS;
  kl_graph *kg = s2s_build_step(&c);
  cr_assert_not_null(kg);
  ir_diag d = {0};
  ir_graph *g = ir_graph_clone(kl_graph_ir(kg), &d);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  pass_opts po = {.explain = f};
  bool changed = true;
  cr_assert(pass_fuse_additive(&g, &po, &changed, &d), "%s", d.msg);
  fclose(f);
  cr_expect(!changed);
  cr_expect_eq(tc_count_op(g, IR_OP_ADDITIVE_ATTENTION), 0);
  cr_expect(strstr(text, "left unfused: the attention weights have other uses") != NULL, "%s",
            text);
  free(text);
  ir_graph_destroy(g);
  kl_graph_destroy(kg);
}

static kl_tensor *ids_tensor(int rank, const int64_t *dims, int64_t hi) {
  kl_tensor *t = kl_tensor_create(KL_TENSOR_I32, rank, dims);
  int32_t *p = kl_tensor_data(t);
  for (int64_t i = 0; i < kl_tensor_numel(t); i++)
    p[i] = (int32_t)((uni() + 1) / 2 * (double)hi) % (int32_t)hi;
  return t;
}

static kl_train_step *s2s_step(const ir_graph *g, int loss, bool fusion, kl_backend be) {
  pass_opts po = kl_default_pass_opts();
  po.no_fusion = !fusion;
  po.verify_each = true;
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 0.5};
  kl_compile_opts co = {.backend = be, .seed = 7, .threads = 2, .no_cache = true};
  char *err = NULL;
  kl_train_step *s = kl_compile_train_with(g, loss, NULL, 0, &opt, &po, &co, &err);
  cr_assert_not_null(s, "%s", err ? err : "?");
  return s;
}

/* A small f64 seq2seq-attn with dropout on the attention weights (one
 * layer: no other dropout, whose keys the fusion's renumbering would move):
 * one SGD step fused and unfused gives the same loss and parameters. */
Test(additive_attention, seq2seq_step_fused_equals_unfused) {
  s2s_config c = {.src_vocab = 11,
                  .tgt_vocab = 9,
                  .embed = 4,
                  .hidden = 5,
                  .layers = 1,
                  .dropout = 0.2,
                  .batch = 3,
                  .src_steps = 4,
                  .tgt_steps = 3,
                  .dtype = KL_F64};
  s2s_train t = s2s_build_train(&c);
  cr_assert_not_null(t.g);
  const ir_graph *g = kl_graph_ir(t.g);
  int64_t bs[2] = {c.batch, c.src_steps}, bt_[2] = {c.batch, c.tgt_steps}, b1 = c.batch;
  kl_tensor *in[5] = {ids_tensor(2, bs, c.src_vocab), kl_tensor_create(KL_TENSOR_I32, 1, &b1),
                      ids_tensor(2, bt_, c.tgt_vocab), ids_tensor(2, bt_, c.tgt_vocab),
                      kl_tensor_create(KL_TENSOR_I32, 1, &b1)};
  int32_t sl[3] = {4, 2, 0}, tl[3] = {3, 1, 2};
  memcpy(kl_tensor_data(in[1]), sl, sizeof sl);
  memcpy(kl_tensor_data(in[4]), tl, sizeof tl);
  kl_train_step *s[3] = {s2s_step(g, t.loss.id, false, KL_BACKEND_REF),
                         s2s_step(g, t.loss.id, true, KL_BACKEND_REF),
                         s2s_step(g, t.loss.id, true, KL_BACKEND_JIT)};
  cr_expect_eq(tc_count_op(kl_train_step_graph(s[1]), IR_OP_ADDITIVE_ATTENTION), 3);
  cr_expect_eq(tc_count_op(kl_train_step_graph(s[1]), IR_OP_ADDITIVE_ATTENTION_GRAD), 3);
  cr_expect_eq(tc_count_op(kl_train_step_graph(s[0]), IR_OP_ADDITIVE_ATTENTION), 0);
  double loss[3];
  for (int i = 0; i < 3; i++)
    cr_assert_null(kl_train_step_run(s[i], in, 5, &loss[i]));
  for (int i = 1; i < 3; i++)
    cr_expect(fabs(loss[i] - loss[0]) < 1e-10 * (1 + fabs(loss[0])), "loss %d: %.15g vs %.15g", i,
              loss[i], loss[0]);
  kl_program *p0 = kl_train_step_program(s[0]);
  int np = kl_program_num_params(p0);
  cr_assert(np > 0);
  for (int i = 0; i < np; i++) {
    const char *name = kl_program_param_name(p0, i);
    kl_tensor *a = NULL;
    cr_assert_null(kl_program_get_param(p0, name, &a));
    for (int k = 1; k < 3; k++) {
      kl_tensor *b = NULL;
      cr_assert_null(kl_program_get_param(kl_train_step_program(s[k]), name, &b), "%s", name);
      double e = tc_rel_err(b, a, IR_F64);
      cr_expect(e < 1e-10, "%s after one step (%s): error %g", name, k == 1 ? "ref" : "jit", e);
      kl_tensor_destroy(b);
    }
    kl_tensor_destroy(a);
  }
  for (int i = 0; i < 3; i++)
    kl_train_step_destroy(s[i]);
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(in[i]);
  kl_graph_destroy(t.g);
}
