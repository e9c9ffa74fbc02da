/* The attention kernels: the JIT's streaming forward and attention_grad
 * (backend/kern_attention.c) against the reference interpreter (the region
 * body for the forward, runtime/ref_attention.c for the gradient) over
 * masks, causal, dropout, odd sizes and both float dtypes; the gradient
 * rule (passes/grad_attention.c) against finite differences and against
 * autodiff of the unfused body; and a long sequence that runs without any
 * value of Tq * Tk elements. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "backend/kiln_run.h"
#include "passes/autodiff.h"
#include "passes/fused_build.h"
#include "runtime/ref.h"
#include "runtime/tensor.h"
#include "tests/support/ir_check.h"

enum { M_NONE, M_LEN_B, M_LEN_Q, M_BIAS, M_BIAS4 };

typedef struct acase {
  const char *name;
  ir_dtype dt;
  int64_t b, h, tq, tk, dh, dv;
  int mask;
  bool zero_len, causal;
  double p;
} acase;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uni(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static ir_type t4(ir_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d) {
  return ir_type_make(dt, 4, (int64_t[]){a, b, c, d});
}

static ir_type mask_type(const acase *c) {
  switch (c->mask) {
  case M_LEN_B: return ir_type_make(IR_I32, 1, &c->b);
  case M_LEN_Q: return ir_type_make(IR_I64, 3, (int64_t[]){c->b, c->h, c->tq});
  case M_BIAS: return ir_type_make(c->dt, 2, (int64_t[]){c->tq, c->tk});
  default: return t4(c->dt, c->b, 1, c->tq, c->tk);
  }
}

static ir_attr *case_attrs(ir_graph *g, const acase *c, ir_attr *a) {
  ir_attrs_default(g, IR_OP_ATTENTION, a);
  a[0].f = 1.0 / sqrt((double)c->dh);
  a[1].b = c->causal;
  a[3].f = c->p;
  return a;
}

/* Arguments q, k, v [, mask]; ids in ids[0..3] (mask -1 when none). */
static void add_qkv(ir_graph *g, const acase *c, int *ids) {
  ir_diag d = {0};
  ir_type q = t4(c->dt, c->b, c->h, c->tq, c->dh), k = t4(c->dt, c->b, c->h, c->tk, c->dh);
  ir_type v = t4(c->dt, c->b, c->h, c->tk, c->dv), m = mask_type(c);
  ids[0] = ir_add_arg(g, "q", &q, &d);
  ids[1] = ir_add_arg(g, "k", &k, &d);
  ids[2] = ir_add_arg(g, "v", &v, &d);
  ids[3] = c->mask != M_NONE ? ir_add_arg(g, "mask", &m, &d) : -1;
  cr_assert(ids[0] >= 0 && ids[1] >= 0 && ids[2] >= 0, "%s", d.msg);
}

/* q, k, v, [mask,] dy -> attention, attention_grad, attention_lse and
 * attention_grad reading the saved row statistics. */
static ir_graph *kernel_graph(const acase *c) {
  ir_graph *g = ir_graph_create("attn");
  ir_diag d = {0};
  int ids[4];
  add_qkv(g, c, ids);
  ir_type ot = t4(c->dt, c->b, c->h, c->tq, c->dv);
  int dy = ir_add_arg(g, "dy", &ot, &d);
  ir_attr a[IR_MAX_ATTRS];
  int o = pass_build_attention(g, ids[0], ids[1], ids[2], ids[3], case_attrs(g, c, a), NULL, &d);
  cr_assert(o >= 0, "%s: %s", c->name, d.msg);
  int in[6], nin = 0;
  for (int i = 0; i < 4; i++)
    if (ids[i] >= 0) in[nin++] = ids[i];
  in[nin++] = o;
  in[nin++] = dy;
  int gr = ir_add_node(g, IR_OP_ATTENTION_GRAD, nin, in, g->nodes[o]->attrs, NULL, &d);
  cr_assert(gr >= 0, "%s: %s", c->name, d.msg);
  int lse = ir_add_node(g, IR_OP_ATTENTION_LSE, nin - 2, in, g->nodes[o]->attrs, NULL, &d);
  cr_assert(lse >= 0, "%s: %s", c->name, d.msg);
  in[nin - 2] = lse;
  int gs = ir_add_node(g, IR_OP_ATTENTION_GRAD, nin, in, g->nodes[o]->attrs, NULL, &d);
  cr_assert(gs >= 0, "%s: %s", c->name, d.msg);
  ir_set_returns(g, 4, (int[]){o, gr, lse, gs});
  cr_assert(ir_verify(g, &d), "%s: %s", c->name, d.msg);
  return g;
}

static kl_tensor *random_arg(const acase *c, const ir_node *n) {
  kl_tensor *t = kl_tensor_create((kl_tensor_dtype)n->type.dtype, n->type.rank, n->type.dims);
  cr_assert_not_null(t);
  int64_t e = kl_tensor_numel(t);
  void *p = kl_tensor_data(t);
  bool q = n->name && strcmp(n->name, "q") == 0;
  for (int64_t i = 0; i < e; i++) {
    double x = uni() * (q ? 3.0 : 1.0);
    switch (n->type.dtype) {
    case IR_F32: ((float *)p)[i] = (float)x; break;
    case IR_F64: ((double *)p)[i] = x; break;
    default: {
      /* lengths: anywhere in [0, tk], with zeros when the case asks */
      int64_t len = (int64_t)((x + 1) / 2 * (double)(c->tk + 1));
      if (len > c->tk) len = c->tk;
      if (c->zero_len && i % 3 == 1) len = 0;
      if (!c->zero_len && len == 0) len = 1;
      if (n->type.dtype == IR_I32)
        ((int32_t *)p)[i] = (int32_t)len;
      else
        ((int64_t *)p)[i] = len;
    }
    }
  }
  return t;
}

/* Runs g on the given backend; outputs receive g->nrets tensors. */
static void run(const ir_graph *g, kl_backend be, bool training, kl_tensor **inputs, int nin,
                kl_tensor **outs) {
  kl_compile_opts o = {.backend = be,
                       .seed = 1234,
                       .training = training,
                       .threads = 2,
                       .no_cache = true,
                       .guard_bytes = true};
  char *err = NULL;
  kl_program *p = kl_compile_unoptimized(g, &o, &err);
  cr_assert_not_null(p, "compile: %s", err ? err : "?");
  const char *msg = kl_run(p, inputs, nin, outs, g->nrets);
  cr_assert_null(msg, "run: %s", msg);
  kl_program_destroy(p);
}

static void check_kernels(const acase *c) {
  ir_graph *g = kernel_graph(c);
  int nargs = ir_graph_args(g, NULL);
  int ids[8];
  ir_graph_args(g, ids);
  kl_tensor *in[8], *ref[4], *jit[4];
  for (int i = 0; i < nargs; i++)
    in[i] = random_arg(c, g->nodes[ids[i]]);
  bool training = c->p > 0;
  run(g, KL_BACKEND_REF, training, in, nargs, ref);
  run(g, KL_BACKEND_JIT, training, in, nargs, jit);
  double tol = c->dt == IR_F32 ? 2e-5 : 1e-11;
  double eo = tc_rel_err(jit[0], ref[0], c->dt), eg = tc_rel_err(jit[1], ref[1], c->dt);
  cr_expect(eo < tol, "%s %s: forward error %g", c->name, ir_dtype_name(c->dt), eo);
  cr_expect(eg < 10 * tol, "%s %s: attention_grad error %g", c->name, ir_dtype_name(c->dt), eg);
  double el = tc_rel_err(jit[2], ref[2], c->dt), es = tc_rel_err(jit[3], ref[3], c->dt);
  cr_expect(el < tol, "%s %s: attention_lse error %g", c->name, ir_dtype_name(c->dt), el);
  cr_expect(es < 10 * tol, "%s %s: attention_grad from saved statistics: error %g", c->name,
            ir_dtype_name(c->dt), es);
  /* attention_lse's output part is the region's (two reference codes) */
  int64_t no = kl_tensor_numel(ref[0]);
  for (int64_t e = 0; e < no; e++) {
    double x = tc_elem(ref[0], c->dt, e), y = tc_elem(ref[2], c->dt, e);
    cr_assert(fabs(x - y) <= 1e-5 * (1 + fabs(x)), "%s: o[%lld] %g vs %g", c->name, (long long)e, x,
              y);
  }
  for (int i = 0; i < nargs; i++)
    kl_tensor_destroy(in[i]);
  for (int i = 0; i < 4; i++)
    kl_tensor_destroy(ref[i]), kl_tensor_destroy(jit[i]);
  ir_graph_destroy(g);
}

static const acase kcases[] = {
    {"plain", IR_F32, 2, 3, 7, 150, 5, 6, M_NONE, false, false, 0},
    {"len[B]", IR_F32, 2, 2, 9, 131, 4, 3, M_LEN_B, false, false, 0},
    {"len[B,H,Tq]", IR_F32, 2, 2, 9, 140, 4, 5, M_LEN_Q, false, false, 0},
    {"zero lengths", IR_F32, 3, 2, 6, 20, 4, 5, M_LEN_Q, true, false, 0},
    {"zero len[B]", IR_F32, 3, 1, 5, 7, 4, 5, M_LEN_B, true, false, 0},
    {"bias", IR_F32, 2, 2, 6, 133, 4, 5, M_BIAS, false, false, 0},
    {"bias[B,1]", IR_F32, 2, 3, 5, 9, 4, 2, M_BIAS4, false, false, 0},
    {"causal", IR_F32, 2, 2, 150, 140, 8, 5, M_NONE, false, true, 0},
    {"causal Tq<Tk", IR_F32, 1, 2, 5, 12, 3, 4, M_NONE, false, true, 0},
    {"causal+len", IR_F32, 2, 2, 140, 140, 4, 5, M_LEN_B, true, true, 0},
    {"causal+bias", IR_F32, 1, 2, 10, 11, 4, 5, M_BIAS, false, true, 0},
    {"dropout", IR_F32, 2, 2, 9, 133, 4, 5, M_NONE, false, false, 0.3},
    {"dropout+causal+len", IR_F32, 2, 2, 130, 135, 4, 5, M_LEN_Q, true, true, 0.3},
    /* fewer heads than threads: BLAS threads itself, row phases on the pool */
    {"one head", IR_F32, 1, 1, 200, 260, 8, 5, M_LEN_Q, false, true, 0.3},
};

Test(attention_kernels, f32_vs_reference) {
  for (size_t i = 0; i < sizeof kcases / sizeof kcases[0]; i++)
    check_kernels(&kcases[i]);
}

Test(attention_kernels, f64_vs_reference) {
  for (size_t i = 0; i < sizeof kcases / sizeof kcases[0]; i++) {
    acase c = kcases[i];
    c.dt = IR_F64;
    check_kernels(&c);
  }
}

/* ---- the gradient rule ---------------------------------------------------- */

/* loss = sum(attention(q, k, v [, mask]) * w) with its gradients wrt q, k,
 * v appended; returns [loss, dq, dk, dv]. unfused: the body's ops inline
 * instead of the region. */
static ir_graph *loss_graph(const acase *c, bool unfused) {
  ir_graph *g = ir_graph_create("attn_loss");
  ir_diag d = {0};
  int ids[4];
  add_qkv(g, c, ids);
  ir_attr a[IR_MAX_ATTRS];
  int o = pass_build_attention(g, ids[0], ids[1], ids[2], ids[3], case_attrs(g, c, a), NULL, &d);
  cr_assert(o >= 0, "%s", d.msg);
  if (unfused) {
    /* The body is the unfused graph: take it and add w and the loss. */
    ir_graph *body = ir_graph_clone(g->nodes[o]->body, &d);
    cr_assert_not_null(body, "%s", d.msg);
    ir_graph_destroy(g);
    g = body;
    o = g->rets[0];
  }
  ir_type ot = t4(c->dt, c->b, c->h, c->tq, c->dv);
  int w = ir_add_arg(g, "w", &ot, &d);
  int ow = ir_add_node(g, IR_OP_MUL, 2, (int[]){o, w}, NULL, NULL, &d);
  ir_attr sa[2] = {{.kind = IR_ATTR_INTS, .ints = {4, (int64_t[]){0, 1, 2, 3}}},
                   {.kind = IR_ATTR_BOOL, .b = false}};
  int loss = ir_add_node(g, IR_OP_SUM, 1, &ow, sa, NULL, &d);
  cr_assert(loss >= 0, "%s", d.msg);
  int wrt[8], grads[3];
  cr_assert(ir_graph_args(g, NULL) <= 8);
  ir_graph_args(g, wrt); /* q, k, v come first */
  cr_assert(pass_autodiff(g, loss, 3, wrt, grads, &d), "autodiff: %s", d.msg);
  ir_set_returns(g, 4, (int[]){loss, grads[0], grads[1], grads[2]});
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  return g;
}

static void make_inputs(const acase *c, const ir_graph *g, kl_tensor **in, int *nin) {
  int ids[8];
  *nin = ir_graph_args(g, ids);
  for (int i = 0; i < *nin; i++)
    in[i] = random_arg(c, g->nodes[ids[i]]);
}

static void free_all(kl_tensor **t, int n) {
  for (int i = 0; i < n; i++)
    kl_tensor_destroy(t[i]);
}

static const acase gcases[] = {
    {"plain", IR_F64, 1, 2, 3, 4, 3, 2, M_NONE, false, false, 0},
    {"len", IR_F64, 2, 1, 3, 5, 2, 3, M_LEN_Q, true, false, 0},
    {"bias", IR_F64, 1, 2, 3, 4, 2, 2, M_BIAS, false, false, 0},
    {"causal+len", IR_F64, 2, 1, 4, 4, 3, 2, M_LEN_B, false, true, 0},
    {"dropout", IR_F64, 1, 2, 3, 5, 2, 3, M_NONE, false, true, 0.3},
};

/* Central differences of the fused graph's loss on the reference backend
 * against its autodiff gradient (attention_grad's reference). */
Test(attention_grad_rule, finite_differences) {
  for (size_t ci = 0; ci < sizeof gcases / sizeof gcases[0]; ci++) {
    const acase *c = &gcases[ci];
    ir_graph *g = loss_graph(c, false);
    kl_tensor *in[8], *out[4];
    int nin;
    make_inputs(c, g, in, &nin);
    bool tr = c->p > 0;
    run(g, KL_BACKEND_REF, tr, in, nin, out);
    for (int a = 0; a < 3; a++) {
      double *x = kl_tensor_data(in[a]);
      for (int64_t e = 0; e < kl_tensor_numel(in[a]); e++) {
        double h = 1e-6, x0 = x[e], lp, lm;
        kl_tensor *o2[4];
        x[e] = x0 + h;
        run(g, KL_BACKEND_REF, tr, in, nin, o2);
        lp = tc_elem(o2[0], IR_F64, 0);
        free_all(o2, 4);
        x[e] = x0 - h;
        run(g, KL_BACKEND_REF, tr, in, nin, o2);
        lm = tc_elem(o2[0], IR_F64, 0);
        free_all(o2, 4);
        x[e] = x0;
        double fd = (lp - lm) / (2 * h), an = tc_elem(out[1 + a], IR_F64, e);
        cr_expect(fabs(fd - an) < 1e-6 * (1 + fabs(fd)),
                  "%s: operand %d element %lld: fd %.9g vs %.9g", c->name, a, (long long)e, fd, an);
      }
    }
    free_all(out, 4);
    free_all(in, nin);
    ir_graph_destroy(g);
  }
}

/* The fused gradient (reference and JIT) equals autodiff of the unfused
 * body on the reference backend, dropout masks included (a bias argument
 * is not differentiated: only q, k, v are asked for). */
static void fused_vs_unfused(const acase *c) {
  ir_graph *gf = loss_graph(c, false), *gu = loss_graph(c, true);
  kl_tensor *in[8], *of[4], *ou[4], *oj[4];
  int nin;
  make_inputs(c, gf, in, &nin);
  bool tr = c->p > 0;
  run(gf, KL_BACKEND_REF, tr, in, nin, of);
  run(gu, KL_BACKEND_REF, tr, in, nin, ou);
  run(gf, KL_BACKEND_JIT, tr, in, nin, oj);
  double tol = c->dt == IR_F32 ? 1e-4 : 1e-10;
  for (int i = 0; i < 4; i++) {
    double e1 = tc_rel_err(of[i], ou[i], c->dt), e2 = tc_rel_err(oj[i], ou[i], c->dt);
    cr_expect(e1 < tol, "%s %s output %d: fused reference vs unfused %g", c->name,
              ir_dtype_name(c->dt), i, e1);
    cr_expect(e2 < tol, "%s %s output %d: fused JIT vs unfused %g", c->name, ir_dtype_name(c->dt),
              i, e2);
  }
  free_all(of, 4), free_all(ou, 4), free_all(oj, 4), free_all(in, nin);
  ir_graph_destroy(gf), ir_graph_destroy(gu);
}

Test(attention_grad_rule, fused_equals_unfused) {
  for (size_t i = 0; i < sizeof kcases / sizeof kcases[0]; i++) {
    acase c = kcases[i];
    fused_vs_unfused(&c);
    c.dt = IR_F64;
    fused_vs_unfused(&c);
  }
}

/* A float bias that needs a gradient is refused by name, not ignored. */
Test(attention_grad_rule, bias_gradient_refused) {
  acase c = {"bias", IR_F64, 1, 1, 2, 3, 2, 2, M_BIAS, false, false, 0};
  ir_graph *g = ir_graph_create("b");
  ir_diag d = {0};
  int ids[4];
  add_qkv(g, &c, ids);
  ir_attr a[IR_MAX_ATTRS];
  int o = pass_build_attention(g, ids[0], ids[1], ids[2], ids[3], case_attrs(g, &c, a), NULL, &d);
  ir_attr sa[2] = {{.kind = IR_ATTR_INTS, .ints = {4, (int64_t[]){0, 1, 2, 3}}},
                   {.kind = IR_ATTR_BOOL, .b = false}};
  int loss = ir_add_node(g, IR_OP_SUM, 1, &o, sa, NULL, &d);
  int grads[1];
  cr_assert_not(pass_autodiff(g, loss, 1, &ids[3], grads, &d));
  cr_expect(strstr(d.msg, "bias") != NULL, "%s", d.msg);
  ir_graph_destroy(g);
}

/* The dropout key is pinned on the forward node so both passes agree. */
Test(attention_grad_rule, dropout_key_pinned) {
  acase c = {"d", IR_F32, 1, 1, 3, 3, 2, 2, M_NONE, false, false, 0.5};
  ir_graph *g = loss_graph(&c, false);
  bool found = false;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_ATTENTION && n->op != IR_OP_ATTENTION_GRAD) continue;
    cr_expect(n->attrs[4].i >= 0, "%s has key %lld", ir_op_get(n->op)->name,
              (long long)n->attrs[4].i);
    found |= n->op == IR_OP_ATTENTION_GRAD;
  }
  cr_expect(found);
  ir_graph_destroy(g);
}

/* ---- long sequences ------------------------------------------------------- */

/* T = 1024, causal: no value of the compiled graph holds Tq * Tk elements
 * (the scores exist only as tiles inside the kernels), and the result is
 * right where it is known exactly: query 0 sees key 0 only. */
Test(attention_kernels, long_sequence_streams) {
  acase c = {"long", IR_F32, 1, 2, 1024, 1024, 16, 16, M_NONE, false, true, 0};
  ir_graph *g = loss_graph(&c, false);
  for (int i = 0; i < g->nnodes; i++)
    cr_expect(ir_type_numel(&g->nodes[i]->type) < c.tq * c.tk, "node %d (%s) has %lld elements", i,
              ir_op_get(g->nodes[i]->op)->name, (long long)ir_type_numel(&g->nodes[i]->type));
  /* return the forward too */
  int att = -1;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_ATTENTION) att = i;
  int rets[5] = {g->rets[0], g->rets[1], g->rets[2], g->rets[3], att};
  ir_set_returns(g, 5, rets);
  kl_tensor *in[8], *out[5];
  int nin;
  make_inputs(&c, g, in, &nin);
  run(g, KL_BACKEND_JIT, false, in, nin, out);
  const float *v = kl_tensor_data(in[2]), *o = kl_tensor_data(out[4]);
  for (int h = 0; h < 2; h++)
    for (int t = 0; t < 16; t++)
      cr_expect_float_eq(o[h * 1024 * 16 + t], v[h * 1024 * 16 + t], 1e-6);
  for (int i = 1; i < 4; i++)
    for (int64_t e = 0; e < kl_tensor_numel(out[i]); e++)
      cr_assert(isfinite(((float *)kl_tensor_data(out[i]))[e]));
  free_all(out, 5), free_all(in, nin);
  ir_graph_destroy(g);
}

/* Dropout is live in training (so the comparisons above test the mask) and
 * the identity in eval, on both backends. */
Test(attention_kernels, dropout_active_in_training) {
  acase c = {"drop", IR_F32, 1, 2, 5, 9, 4, 3, M_NONE, false, false, 0.3};
  ir_graph *g = kernel_graph(&c);
  kl_tensor *in[8], *tr[4], *ev[4], *jt[4]; /* kernel_graph returns four values */
  int nin;
  make_inputs(&c, g, in, &nin);
  run(g, KL_BACKEND_REF, true, in, nin, tr);
  run(g, KL_BACKEND_REF, false, in, nin, ev);
  run(g, KL_BACKEND_JIT, true, in, nin, jt);
  cr_expect(tc_rel_err(tr[0], ev[0], IR_F32) > 1e-2, "dropout changed nothing");
  cr_expect(tc_rel_err(jt[0], tr[0], IR_F32) < 1e-5);
  free_all(tr, 4), free_all(ev, 4), free_all(jt, 4), free_all(in, nin);
  ir_graph_destroy(g);
}

/* pass_build_attention's node prints, parses back to the same text and
 * verifies (the body is the canonical sub-graph, key pinned). */
Test(attention_build, text_round_trip) {
  acase c = {"rt", IR_F32, 2, 1, 4, 6, 8, 8, M_LEN_B, false, true, 0.1};
  ir_graph *g = kernel_graph(&c);
  ir_print_opts po = {.locs = true};
  char *a = ir_print_str(g, &po);
  ir_diag d = {0};
  ir_graph *h = ir_parse(a, strlen(a), "rt.kir", &d);
  cr_assert_not_null(h, "%s\n%s", d.msg, a);
  char *b = ir_print_str(h, &po);
  cr_expect_str_eq(a, b);
  cr_expect(strstr(a, "dropout(") && strstr(a, "sequence_mask(") && strstr(a, "select("), "%s", a);
  free(a), free(b);
  ir_graph_destroy(h), ir_graph_destroy(g);
}
