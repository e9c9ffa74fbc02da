/* The C DSL (frontend/kiln.h) on valid programs: result types of every
 * builder (expected shapes worked out by hand from PyTorch/numpy semantics),
 * parameter scopes and sharing, -1 in reshape, negative slice bounds, the
 * exact primitive sequence kl_attention emits, and source locations. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "frontend/graph_ir.h"
#include "frontend/kiln.h"
#include "ir/ir.h"

/* Builds `var` and remembers the line it was built on. */
#define B(var, expr)                                                                               \
  kl_value var = (expr);                                                                           \
  const int var##_ln = __LINE__

static const ir_node *node_of(kl_value v) { return kl_graph_ir(v.g)->nodes[v.id]; }

static void expect_type_(kl_value v, kl_dtype dt, kl_ints shape, const char *what) {
  cr_assert(kl_value_ok(v), "%s: invalid value (graph error: %s)", what,
            v.g && kl_graph_error(v.g) ? kl_graph_error(v.g) : "none");
  cr_expect_eq(kl_dtype_of(v), dt, "%s: dtype %d, want %d", what, (int)kl_dtype_of(v), (int)dt);
  cr_assert_eq(kl_rank(v), shape.n, "%s: rank %d, want %d", what, kl_rank(v), shape.n);
  for (int i = 0; i < shape.n; i++)
    cr_expect_eq(kl_dim(v, i), shape.v[i], "%s: dim %d is %lld, want %lld", what, i,
                 (long long)kl_dim(v, i), (long long)shape.v[i]);
}
#define EXPECT_TYPE(v, dt, ...) expect_type_(v, dt, KL_SHAPE(__VA_ARGS__), #v)
#define EXPECT_SCALAR(v, dt) expect_type_(v, dt, KL_SCALAR, #v)

/* The node of v and every node created since `first` carry test_dsl.c:line. */
static void expect_loc_from(kl_value v, int first, int line, const char *what) {
  const ir_graph *ir = kl_graph_ir(v.g);
  for (int i = first; i <= v.id; i++) {
    const ir_node *n = ir->nodes[i];
    cr_assert(n->loc.file, "%s: node %d has no location", what, i);
    cr_expect_str_eq(n->loc.file, "test_dsl.c", "%s: node %d file", what, i);
    cr_expect_eq(n->loc.line, line, "%s: node %d line %d, want %d", what, i, n->loc.line, line);
  }
}
#define EXPECT_LOC(v) expect_loc_from(v, (v).id, v##_ln, #v)

static int nnodes(kl_graph *g) { return kl_graph_ir(g)->nnodes; }

static const ir_attr *attr(kl_value v, const char *name) {
  const ir_attr *a = ir_node_attr(node_of(v), name);
  cr_assert(a, "no attribute %s", name);
  return a;
}

static void expect_ints(const ir_attr *a, kl_ints want) {
  cr_assert_eq(a->kind, IR_ATTR_INTS);
  cr_assert_eq(a->ints.n, want.n, "list length %d, want %d", a->ints.n, want.n);
  for (int i = 0; i < want.n; i++)
    cr_expect_eq(a->ints.v[i], want.v[i], "entry %d: %lld, want %lld", i, (long long)a->ints.v[i],
                 (long long)want.v[i]);
}

Test(dsl, design_attention_graph) {
  kl_graph *g = kl_graph_create("attention");
  B(q, kl_input(g, "q", KL_F32, KL_SHAPE(2, 4, 8)));
  B(k, kl_input(g, "k", KL_F32, KL_SHAPE(2, 6, 8)));
  B(v, kl_input(g, "v", KL_F32, KL_SHAPE(2, 6, 8)));
  B(len, kl_input(g, "len", KL_I32, KL_SHAPE(2)));
  B(kt, kl_name(kl_transpose(k, KL_INTS(0, 2, 1)), "kt"));
  B(s, kl_name(kl_matmul(q, kt), "s"));
  B(c, kl_name(kl_scalar(g, 0.35355339, KL_F32), "c"));
  B(sc, kl_name(kl_mul(s, c), "sc"));
  B(m, kl_name(kl_sequence_mask(sc, len, -1e6), "m"));
  B(w, kl_name(kl_softmax(m, -1), "w"));
  B(o, kl_name(kl_matmul(w, v), "o"));
  kl_output(o);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));

  EXPECT_TYPE(q, KL_F32, 2, 4, 8);
  EXPECT_TYPE(len, KL_I32, 2);
  EXPECT_TYPE(kt, KL_F32, 2, 8, 6);
  EXPECT_TYPE(s, KL_F32, 2, 4, 6);
  EXPECT_SCALAR(c, KL_F32);
  EXPECT_TYPE(sc, KL_F32, 2, 4, 6);
  EXPECT_TYPE(m, KL_F32, 2, 4, 6);
  EXPECT_TYPE(w, KL_F32, 2, 4, 6);
  EXPECT_TYPE(o, KL_F32, 2, 4, 8);
  EXPECT_LOC(q);
  EXPECT_LOC(k);
  EXPECT_LOC(v);
  EXPECT_LOC(len);
  EXPECT_LOC(kt);
  EXPECT_LOC(s);
  EXPECT_LOC(c);
  EXPECT_LOC(sc);
  EXPECT_LOC(m);
  EXPECT_LOC(w);
  EXPECT_LOC(o);

  const ir_graph *ir = kl_graph_ir(g);
  cr_expect_eq(ir->nnodes, 11);
  cr_assert_eq(ir->nrets, 1);
  cr_expect_eq(ir->rets[0], o.id);
  cr_expect_eq(ir_graph_args(ir, NULL), 4);
  cr_expect_str_eq(node_of(q)->name, "q");
  cr_expect_str_eq(node_of(s)->name, "s");
  cr_expect_eq(node_of(q)->op, IR_OP_ARG);
  cr_expect_eq(node_of(c)->op, IR_OP_CONST);
  cr_expect_float_eq(*(const float *)node_of(c)->data, 0.35355339f, 1e-7);
  cr_expect_float_eq(attr(m, "value")->f, -1e6, 1e-3);
  cr_expect_eq(attr(w, "axis")->i, -1);
  expect_ints(attr(kt, "perm"), KL_INTS(0, 2, 1));
  ir_diag d;
  cr_expect(ir_verify(ir, &d), "%s", d.msg);

  char *text = kl_graph_to_string(g);
  cr_assert_not_null(text);
  cr_expect(strstr(text, "graph @attention(%q: f32[2,4,8], %k: f32[2,6,8]"), "%s", text);
  cr_expect(strstr(text, "%o = matmul(%w, %v) : f32[2,4,8]"), "%s", text);
  cr_expect(strstr(text, "# test_dsl.c:"), "%s", text);
  cr_expect(strstr(text, "return %o"), "%s", text);
  free(text);
  kl_graph_destroy(g);
}

/* A 2-layer MLP with scoped parameters and a cross-entropy loss. */
Test(dsl, mlp_with_scoped_params) {
  kl_graph *g = kl_graph_create("mlp");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(4, 3));
  kl_value labels = kl_input(g, "labels", KL_I32, KL_SHAPE(4));
  kl_scope_push(g, "mlp");
  kl_scope_push(g, "layer0");
  kl_value w0 = kl_param(g, "w", KL_F32, KL_SHAPE(3, 5));
  kl_value b0 = kl_param(g, "b", KL_F32, KL_SHAPE(5));
  kl_value h = kl_relu(kl_add(kl_matmul(x, w0), b0));
  kl_scope_pop(g);
  kl_scope_push(g, "layer1");
  kl_value w1 = kl_param(g, "w", KL_F32, KL_SHAPE(5, 2));
  kl_value b1 = kl_param(g, "b", KL_F32, KL_SHAPE(2));
  kl_value y = kl_add(kl_matmul(h, w1), b1);
  kl_scope_pop(g);
  kl_scope_pop(g);
  kl_value loss = kl_mean(kl_softmax_cross_entropy(y, labels, -1), KL_INTS(0), false);
  kl_output(loss);
  kl_output(y);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));

  EXPECT_TYPE(h, KL_F32, 4, 5);
  EXPECT_TYPE(y, KL_F32, 4, 2);
  EXPECT_SCALAR(loss, KL_F32);
  cr_expect_str_eq(attr(w0, "name")->s, "mlp.layer0.w");
  cr_expect_str_eq(attr(b0, "name")->s, "mlp.layer0.b");
  cr_expect_str_eq(attr(w1, "name")->s, "mlp.layer1.w");
  cr_expect_str_eq(attr(b1, "name")->s, "mlp.layer1.b");
  cr_expect_str_eq(node_of(w0)->name, "w");
  /* ir_verify wants unique SSA names: the second "w" becomes w_1. */
  cr_expect_str_eq(node_of(w1)->name, "w_1");
  cr_expect_str_eq(node_of(b1)->name, "b_1");
  cr_expect_eq(node_of(w1)->op, IR_OP_PARAM);
  EXPECT_TYPE(w1, KL_F32, 5, 2);
  const ir_graph *ir = kl_graph_ir(g);
  cr_assert_eq(ir->nrets, 2);
  cr_expect_eq(ir->rets[0], loss.id);
  cr_expect_eq(ir->rets[1], y.id);
  for (int i = 0; i < ir->nnodes; i++)
    cr_expect_str_eq(ir->nodes[i]->loc.file, "test_dsl.c", "node %d", i);
  ir_diag d;
  cr_expect(ir_verify(ir, &d), "%s", d.msg);
  char *text = kl_graph_to_string(g);
  cr_assert_not_null(text);
  cr_expect(strstr(text, "param(\"mlp.layer1.w\") : f32[5,2]"), "%s", text);
  free(text);
  kl_graph_destroy(g);
}

Test(dsl, scopes_name_params) {
  kl_graph *g = kl_graph_create(NULL);
  kl_scope_push(g, "encoder");
  kl_scope_push(g, "layer0");
  kl_scope_push(g, "attn");
  kl_value wq = kl_param(g, "wq", KL_F32, KL_SHAPE(8, 8));
  kl_scope_pop(g);
  kl_value ln = kl_param(g, "ln.gamma", KL_F32, KL_SHAPE(8));
  kl_scope_pop(g);
  kl_scope_pop(g);
  kl_value top = kl_param(g, "top", KL_F64, KL_SCALAR);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));
  cr_expect_str_eq(attr(wq, "name")->s, "encoder.layer0.attn.wq");
  cr_expect_str_eq(node_of(wq)->name, "wq");
  cr_expect_str_eq(attr(ln, "name")->s, "encoder.layer0.ln.gamma");
  cr_expect_str_eq(node_of(ln)->name, "gamma");
  cr_expect_str_eq(attr(top, "name")->s, "top");
  EXPECT_SCALAR(top, KL_F64);
  kl_graph_destroy(g);
}

Test(dsl, param_sharing) {
  kl_graph *g = kl_graph_create("tied");
  kl_scope_push(g, "embed");
  kl_value e1 = kl_param(g, "weight", KL_F32, KL_SHAPE(10, 4));
  kl_scope_pop(g);
  int before = nnodes(g);
  kl_scope_push(g, "embed");
  kl_value e2 = kl_param(g, "weight", KL_F32, KL_SHAPE(10, 4));
  kl_scope_pop(g);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));
  cr_expect_eq(e1.id, e2.id);
  cr_expect_eq(nnodes(g), before, "sharing must not add a node");
  /* Same leaf name in another scope is a different parameter. */
  kl_value other = kl_param(g, "weight", KL_F32, KL_SHAPE(10, 4));
  cr_expect_neq(other.id, e1.id);
  kl_graph_destroy(g);
}

Test(dsl, leaves_and_elementwise) {
  kl_graph *g = kl_graph_create("ew");
  B(a, kl_input(g, "a", KL_F32, KL_SHAPE(2, 3)));
  B(b, kl_input(g, "b", KL_F32, KL_SHAPE(3)));
  B(col, kl_input(g, "col", KL_F32, KL_SHAPE(2, 1)));
  B(ia, kl_input(g, "ia", KL_I32, KL_SHAPE(2, 3)));
  B(sc, kl_scalar(g, 2.5, KL_F64));
  int32_t cdata[4] = {1, 2, 3, 4};
  B(cst, kl_constant(g, KL_I32, KL_SHAPE(2, 2), cdata));
  B(io, kl_iota(g, KL_SHAPE(3, 4), 1, KL_I64));
  B(add, kl_add(a, b));
  B(sub, kl_sub(col, b));
  B(mul, kl_mul(a, col));
  B(dv, kl_div(a, b));
  B(pw, kl_pow(a, b));
  B(mx, kl_max(col, a));
  B(mn, kl_min(a, a));
  B(lt, kl_lt(a, b));
  B(le, kl_le(col, b));
  B(gt, kl_gt(a, b));
  B(ge, kl_ge(ia, ia));
  B(eq, kl_eq(a, a));
  int first_as = nnodes(g);
  B(as, kl_add_scalar(a, 1.0));
  int first_ms = nnodes(g);
  B(ms, kl_mul_scalar(ia, 3.0));
  B(ng, kl_neg(a));
  B(ex, kl_exp(a));
  B(lg, kl_log(a));
  B(th, kl_tanh(a));
  B(sg, kl_sigmoid(a));
  B(rl, kl_relu(ia));
  B(sq, kl_sqrt(b));
  B(rs, kl_rsqrt(b));
  B(sn, kl_sin(col));
  B(cs, kl_cos(col));
  B(ab, kl_abs(ia));
  B(ge0, kl_gelu(a, false));
  B(ge1, kl_gelu(a, true));
  B(sel, kl_select(lt, a, kl_scalar(g, 0.0, KL_F32)));
  B(ca, kl_cast(ia, KL_F64));
  B(dr, kl_dropout(a, 0.25));
  kl_output(dr);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));

  EXPECT_SCALAR(sc, KL_F64);
  cr_expect_eq(*(const double *)node_of(sc)->data, 2.5);
  EXPECT_TYPE(cst, KL_I32, 2, 2);
  cr_expect_eq(memcmp(node_of(cst)->data, cdata, sizeof cdata), 0);
  EXPECT_TYPE(io, KL_I64, 3, 4);
  cr_expect_eq(attr(io, "axis")->i, 1);
  expect_ints(attr(io, "shape"), KL_INTS(3, 4));
  EXPECT_TYPE(add, KL_F32, 2, 3);
  EXPECT_TYPE(sub, KL_F32, 2, 3);
  EXPECT_TYPE(mul, KL_F32, 2, 3);
  EXPECT_TYPE(dv, KL_F32, 2, 3);
  EXPECT_TYPE(pw, KL_F32, 2, 3);
  EXPECT_TYPE(mx, KL_F32, 2, 3);
  EXPECT_TYPE(mn, KL_F32, 2, 3);
  EXPECT_TYPE(lt, KL_BOOL, 2, 3);
  EXPECT_TYPE(le, KL_BOOL, 2, 3);
  EXPECT_TYPE(gt, KL_BOOL, 2, 3);
  EXPECT_TYPE(ge, KL_BOOL, 2, 3);
  EXPECT_TYPE(eq, KL_BOOL, 2, 3);
  cr_expect_eq(node_of(lt)->op, IR_OP_CMP_LT);
  cr_expect_eq(node_of(le)->op, IR_OP_CMP_LE);
  cr_expect_eq(node_of(gt)->op, IR_OP_CMP_GT);
  cr_expect_eq(node_of(ge)->op, IR_OP_CMP_GE);
  cr_expect_eq(node_of(eq)->op, IR_OP_CMP_EQ);
  cr_expect_eq(node_of(pw)->op, IR_OP_POW);
  cr_expect_eq(node_of(mx)->op, IR_OP_MAX);

  /* add_scalar: a rank-0 const of x's dtype, then add(x, const). */
  EXPECT_TYPE(as, KL_F32, 2, 3);
  cr_assert_eq(as.id, first_as + 1);
  const ir_node *c1 = kl_graph_ir(g)->nodes[first_as];
  cr_expect_eq(c1->op, IR_OP_CONST);
  cr_expect_eq(c1->type.dtype, IR_F32);
  cr_expect_eq(c1->type.rank, 0);
  cr_expect_eq(*(const float *)c1->data, 1.0f);
  cr_expect_eq(node_of(as)->op, IR_OP_ADD);
  cr_expect_eq(node_of(as)->in[0], a.id);
  cr_expect_eq(node_of(as)->in[1], first_as);
  expect_loc_from(as, first_as, as_ln, "as");
  EXPECT_TYPE(ms, KL_I32, 2, 3);
  const ir_node *c2 = kl_graph_ir(g)->nodes[first_ms];
  cr_expect_eq(c2->type.dtype, IR_I32);
  cr_expect_eq(*(const int32_t *)c2->data, 3);
  cr_expect_eq(node_of(ms)->op, IR_OP_MUL);
  expect_loc_from(ms, first_ms, ms_ln, "ms");

  kl_value unaries[] = {ng, ex, lg, th, sg, ge0, ge1, dr};
  for (size_t i = 0; i < sizeof unaries / sizeof unaries[0]; i++)
    EXPECT_TYPE(unaries[i], KL_F32, 2, 3);
  EXPECT_TYPE(rl, KL_I32, 2, 3);
  EXPECT_TYPE(ab, KL_I32, 2, 3);
  EXPECT_TYPE(sq, KL_F32, 3);
  EXPECT_TYPE(rs, KL_F32, 3);
  EXPECT_TYPE(sn, KL_F32, 2, 1);
  EXPECT_TYPE(cs, KL_F32, 2, 1);
  cr_expect_eq(node_of(rs)->op, IR_OP_RSQRT);
  cr_expect_str_eq(attr(ge0, "approximate")->s, "none");
  cr_expect_str_eq(attr(ge1, "approximate")->s, "tanh");
  EXPECT_TYPE(sel, KL_F32, 2, 3);
  EXPECT_TYPE(ca, KL_F64, 2, 3);
  cr_expect_eq(attr(ca, "to")->dt, IR_F64);
  cr_expect_float_eq(attr(dr, "p")->f, 0.25, 1e-12);

  EXPECT_LOC(a);
  EXPECT_LOC(b);
  EXPECT_LOC(col);
  EXPECT_LOC(ia);
  EXPECT_LOC(sc);
  EXPECT_LOC(cst);
  EXPECT_LOC(io);
  EXPECT_LOC(add);
  EXPECT_LOC(sub);
  EXPECT_LOC(mul);
  EXPECT_LOC(dv);
  EXPECT_LOC(pw);
  EXPECT_LOC(mx);
  EXPECT_LOC(mn);
  EXPECT_LOC(lt);
  EXPECT_LOC(le);
  EXPECT_LOC(gt);
  EXPECT_LOC(ge);
  EXPECT_LOC(eq);
  EXPECT_LOC(ng);
  EXPECT_LOC(ex);
  EXPECT_LOC(lg);
  EXPECT_LOC(th);
  EXPECT_LOC(sg);
  EXPECT_LOC(rl);
  EXPECT_LOC(sq);
  EXPECT_LOC(rs);
  EXPECT_LOC(sn);
  EXPECT_LOC(cs);
  EXPECT_LOC(ab);
  EXPECT_LOC(ge0);
  EXPECT_LOC(ge1);
  expect_loc_from(sel, sel.id - 1, sel_ln, "sel"); /* the scalar operand too */
  EXPECT_LOC(ca);
  EXPECT_LOC(dr);
  ir_diag d;
  cr_expect(ir_verify(kl_graph_ir(g), &d), "%s", d.msg);
  kl_graph_destroy(g);
}

Test(dsl, reductions_layout_contractions) {
  kl_graph *g = kl_graph_create("st");
  B(x, kl_input(g, "x", KL_F32, KL_SHAPE(2, 3, 4)));
  B(gm, kl_param(g, "gamma", KL_F32, KL_SHAPE(4)));
  B(bt, kl_param(g, "beta", KL_F32, KL_SHAPE(4)));
  B(s1, kl_sum(x, KL_INTS(1), false));
  B(s2, kl_sum(x, KL_INTS(1), true));
  B(mean, kl_mean(x, KL_INTS(0, 2), false));
  B(rmax, kl_reduce_max(x, KL_INTS(-1), false));
  B(all, kl_sum_all(x));
  B(sm, kl_softmax(x, -1));
  B(lsm, kl_log_softmax(x, 1));
  B(ln, kl_layernorm(x, gm, bt, 1e-5));
  B(r1, kl_reshape(x, KL_SHAPE(6, -1)));
  B(r2, kl_reshape(x, KL_SHAPE(-1)));
  B(r3, kl_reshape(x, KL_SHAPE(4, -1, 3)));
  B(tp, kl_transpose(x, KL_INTS(0, 2, 1)));
  B(c31, kl_input(g, "c31", KL_F32, KL_SHAPE(3, 1)));
  B(bc, kl_broadcast_to(c31, KL_SHAPE(2, 3, 4)));
  /* x[0:2, -2:3, 1:-1] in Python: shape (2, 2, 2). */
  B(sl, kl_slice(x, KL_INTS(0, -2, 1), KL_INTS(2, 3, -1)));
  B(p, kl_input(g, "p", KL_F32, KL_SHAPE(2, 3)));
  B(q, kl_input(g, "q", KL_F32, KL_SHAPE(2, 5)));
  kl_value pq[2] = {p, q};
  B(cat, kl_concat(2, pq, 1));
  kl_value ppp[3] = {p, p, p};
  B(cat0, kl_concat(3, ppp, 0));
  B(table, kl_param(g, "table", KL_F32, KL_SHAPE(10, 4)));
  B(idx, kl_input(g, "idx", KL_I32, KL_SHAPE(2, 3)));
  B(ga, kl_gather(table, idx));
  B(m35, kl_input(g, "m35", KL_F32, KL_SHAPE(3, 5)));
  B(mm, kl_matmul(p, m35));
  B(bx, kl_input(g, "bx", KL_F32, KL_SHAPE(7, 1, 2, 3)));
  B(by, kl_input(g, "by", KL_F32, KL_SHAPE(4, 3, 5)));
  B(bmm, kl_matmul(bx, by));
  B(ta, kl_input(g, "ta", KL_F32, KL_SHAPE(3, 2)));
  B(tb, kl_input(g, "tb", KL_F32, KL_SHAPE(5, 3)));
  B(mmt, kl_matmul_t(ta, tb, true, true));
  B(sc, kl_input(g, "scores", KL_F32, KL_SHAPE(2, 4, 6)));
  B(len, kl_input(g, "len", KL_I32, KL_SHAPE(2)));
  B(len2, kl_input(g, "len2", KL_I64, KL_SHAPE(2, 4)));
  B(mk, kl_sequence_mask(sc, len, -5.0));
  B(mk2, kl_sequence_mask(sc, len2, -1e6));
  B(logits, kl_input(g, "logits", KL_F32, KL_SHAPE(2, 5, 10)));
  B(lab, kl_input(g, "lab", KL_I32, KL_SHAPE(2, 5)));
  B(xe, kl_softmax_cross_entropy(logits, lab, 0));
  kl_output(xe);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));

  EXPECT_TYPE(s1, KL_F32, 2, 4);
  EXPECT_TYPE(s2, KL_F32, 2, 1, 4);
  cr_expect(attr(s2, "keepdims")->b);
  EXPECT_TYPE(mean, KL_F32, 3);
  EXPECT_TYPE(rmax, KL_F32, 2, 3);
  EXPECT_SCALAR(all, KL_F32);
  expect_ints(attr(all, "axes"), KL_INTS(0, 1, 2));
  EXPECT_TYPE(sm, KL_F32, 2, 3, 4);
  EXPECT_TYPE(lsm, KL_F32, 2, 3, 4);
  cr_expect_eq(attr(lsm, "axis")->i, 1);
  EXPECT_TYPE(ln, KL_F32, 2, 3, 4);
  cr_expect_float_eq(attr(ln, "eps")->f, 1e-5, 1e-12);
  EXPECT_TYPE(r1, KL_F32, 6, 4);
  expect_ints(attr(r1, "shape"), KL_INTS(6, 4));
  EXPECT_TYPE(r2, KL_F32, 24);
  expect_ints(attr(r2, "shape"), KL_INTS(24));
  EXPECT_TYPE(r3, KL_F32, 4, 2, 3);
  EXPECT_TYPE(tp, KL_F32, 2, 4, 3);
  EXPECT_TYPE(bc, KL_F32, 2, 3, 4);
  EXPECT_TYPE(sl, KL_F32, 2, 2, 2);
  expect_ints(attr(sl, "starts"), KL_INTS(0, 1, 1));
  expect_ints(attr(sl, "ends"), KL_INTS(2, 3, 3));
  EXPECT_TYPE(cat, KL_F32, 2, 8);
  EXPECT_TYPE(cat0, KL_F32, 6, 3);
  cr_expect_eq(node_of(cat0)->nin, 3);
  EXPECT_TYPE(ga, KL_F32, 2, 3, 4);
  EXPECT_TYPE(mm, KL_F32, 2, 5);
  EXPECT_TYPE(bmm, KL_F32, 7, 4, 2, 5);
  EXPECT_TYPE(mmt, KL_F32, 2, 5);
  cr_expect(attr(mmt, "transpose_a")->b && attr(mmt, "transpose_b")->b);
  cr_expect(!attr(mm, "transpose_a")->b && !attr(mm, "transpose_b")->b);
  EXPECT_TYPE(mk, KL_F32, 2, 4, 6);
  cr_expect_float_eq(attr(mk, "value")->f, -5.0, 1e-12);
  EXPECT_TYPE(mk2, KL_F32, 2, 4, 6);
  EXPECT_TYPE(xe, KL_F32, 2, 5);
  cr_expect_eq(attr(xe, "ignore_index")->i, 0);

  kl_value all_vals[] = {x,  gm,  bt, s1, s2,  mean, rmax, all,  sm,    lsm, ln,     r1,  r2, r3,
                         tp, c31, bc, sl, p,   q,    cat,  cat0, table, idx, ga,     m35, mm, bx,
                         by, bmm, ta, tb, mmt, sc,   len,  len2, mk,    mk2, logits, lab, xe};
  int lines[] = {x_ln,   gm_ln,  bt_ln,     s1_ln,   s2_ln,    mean_ln, rmax_ln, all_ln, sm_ln,
                 lsm_ln, ln_ln,  r1_ln,     r2_ln,   r3_ln,    tp_ln,   c31_ln,  bc_ln,  sl_ln,
                 p_ln,   q_ln,   cat_ln,    cat0_ln, table_ln, idx_ln,  ga_ln,   m35_ln, mm_ln,
                 bx_ln,  by_ln,  bmm_ln,    ta_ln,   tb_ln,    mmt_ln,  sc_ln,   len_ln, len2_ln,
                 mk_ln,  mk2_ln, logits_ln, lab_ln,  xe_ln};
  cr_assert_eq(sizeof all_vals / sizeof all_vals[0], sizeof lines / sizeof lines[0]);
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    expect_loc_from(all_vals[i], all_vals[i].id, lines[i], "structural");
  ir_diag d;
  cr_expect(ir_verify(kl_graph_ir(g), &d), "%s", d.msg);
  kl_graph_destroy(g);
}

/* kl_attention emits exactly matmul(q, k, transpose_b), mul by a rank-0
 * 1/sqrt(d) const, sequence_mask(-1e6), softmax(-1), matmul(., v). */
static void check_attention(kl_dtype dt, bool masked) {
  kl_graph *g = kl_graph_create("attn");
  kl_value q = kl_input(g, "q", dt, KL_SHAPE(2, 4, 8));
  kl_value k = kl_input(g, "k", dt, KL_SHAPE(2, 6, 8));
  kl_value v = kl_input(g, "v", dt, KL_SHAPE(2, 6, 5));
  kl_value len = kl_input(g, "len", KL_I32, KL_SHAPE(2));
  int first = nnodes(g);
  B(o, kl_attention(q, k, v, masked ? len : kl_none()));
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));
  EXPECT_TYPE(o, dt, 2, 4, 5);
  expect_loc_from(o, first, o_ln, "attention");
  const ir_graph *ir = kl_graph_ir(g);
  cr_assert_eq(o.id, ir->nnodes - 1);

  ir_op want[] = {IR_OP_MATMUL, IR_OP_MUL, IR_OP_SEQUENCE_MASK, IR_OP_SOFTMAX, IR_OP_MATMUL};
  int nwant = 0, consts = 0, ids[5] = {0}, const_id = -1;
  for (int i = first; i < ir->nnodes; i++) {
    const ir_node *n = ir->nodes[i];
    if (n->op == IR_OP_CONST) {
      consts++;
      const_id = i;
      continue;
    }
    if (!masked && nwant == 2) nwant++; /* no mask expected */
    cr_assert_lt(nwant, 5, "too many nodes");
    cr_expect_eq(n->op, want[nwant], "node %d: op %s, want %s", i, ir_op_get(n->op)->name,
                 ir_op_get(want[nwant])->name);
    ids[nwant++] = i;
  }
  cr_assert_eq(nwant, 5);
  cr_assert_eq(consts, 1);
  const ir_node *mm1 = ir->nodes[ids[0]], *mul = ir->nodes[ids[1]], *sm = ir->nodes[ids[3]],
                *mm2 = ir->nodes[ids[4]];
  cr_expect(mm1->in[0] == q.id && mm1->in[1] == k.id);
  cr_expect(!ir_node_attr(mm1, "transpose_a")->b && ir_node_attr(mm1, "transpose_b")->b);
  cr_expect(mul->in[0] == ids[0] && mul->in[1] == const_id);
  const ir_node *c = ir->nodes[const_id];
  cr_expect_eq(c->type.rank, 0);
  cr_expect_eq(c->type.dtype, (ir_dtype)dt);
  double want_scale = 0.35355339059327373; /* 1/sqrt(8) */
  if (dt == KL_F32)
    cr_expect_float_eq(*(const float *)c->data, (float)want_scale, 1e-7);
  else
    cr_expect_float_eq(*(const double *)c->data, want_scale, 1e-15);
  int prev = ids[1];
  if (masked) {
    const ir_node *mk = ir->nodes[ids[2]];
    cr_expect(mk->in[0] == ids[1] && mk->in[1] == len.id);
    cr_expect_float_eq(ir_node_attr(mk, "value")->f, -1e6, 1e-3);
    prev = ids[2];
  }
  cr_expect_eq(sm->in[0], prev);
  cr_expect_eq(ir_node_attr(sm, "axis")->i, -1);
  cr_expect(mm2->in[0] == ids[3] && mm2->in[1] == v.id);
  cr_expect(!ir_node_attr(mm2, "transpose_a")->b && !ir_node_attr(mm2, "transpose_b")->b);
  kl_graph_destroy(g);
}

Test(dsl, attention_composition_masked) { check_attention(KL_F32, true); }
Test(dsl, attention_composition_unmasked) { check_attention(KL_F32, false); }
Test(dsl, attention_composition_f64) { check_attention(KL_F64, true); }

Test(dsl, queries_and_names) {
  kl_graph *g = kl_graph_create("q");
  kl_value x = kl_input(g, "x", KL_I64, KL_SHAPE(2, 3, 5));
  cr_expect_eq(kl_rank(x), 3);
  cr_expect_eq(kl_dim(x, 0), 2);
  cr_expect_eq(kl_dim(x, -1), 5);
  cr_expect_eq(kl_dim(x, -3), 2);
  cr_expect_eq(kl_dim(x, 3), -1);
  cr_expect_eq(kl_dim(x, -4), -1);
  cr_expect_eq(kl_dtype_of(x), KL_I64);
  cr_expect(kl_value_ok(x));
  cr_expect(!kl_value_ok(kl_none()));
  cr_expect_eq(kl_rank(kl_none()), -1);
  cr_expect_eq(kl_dim(kl_none(), 0), -1);
  cr_expect_eq((int)kl_dtype_of(kl_none()), -1);
  kl_value n = kl_name(kl_neg(x), "negated");
  cr_expect_str_eq(node_of(n)->name, "negated");
  cr_expect_null(kl_graph_error(g));
  /* Unnamed values stay unnamed (printed numbered). */
  cr_expect_null(node_of(kl_abs(x))->name);
  kl_graph_destroy(g);
}

Test(dsl, names_stay_unique) {
  kl_graph *g = kl_graph_create("names");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2));
  kl_value a = kl_name(kl_neg(x), "h");
  kl_value b = kl_name(kl_exp(x), "h");
  kl_value c = kl_name(kl_abs(x), "h");
  kl_value d = kl_name(kl_abs(x), "h_7");
  kl_value e = kl_name(kl_abs(x), "h");
  cr_expect_str_eq(node_of(a)->name, "h");
  cr_expect_str_eq(node_of(b)->name, "h_1");
  cr_expect_str_eq(node_of(c)->name, "h_2");
  cr_expect_str_eq(node_of(d)->name, "h_7");
  cr_expect_str_eq(node_of(e)->name, "h_8");
  /* Renaming a value to its own name keeps it. */
  kl_name(a, "h");
  cr_expect_str_eq(node_of(a)->name, "h");
  /* An input keeps its exact name (it is the interface); the value that
   * had the name moves aside. */
  kl_value in = kl_input(g, "h", KL_F32, KL_SHAPE(2));
  cr_assert(kl_value_ok(in), "%s", kl_graph_error(g));
  cr_expect_str_eq(node_of(in)->name, "h");
  cr_expect_str_eq(node_of(a)->name, "h_9");
  kl_output(kl_add(in, e));
  cr_expect_null(kl_graph_error(g));
  ir_diag dg;
  cr_expect(ir_verify(kl_graph_ir(g), &dg), "%s", dg.msg);
  kl_graph_destroy(g);
}

Test(dsl, print_to_file) {
  kl_graph *g = kl_graph_create("p");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(2));
  kl_output(kl_name(kl_exp(x), "y"));
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_not_null(f);
  kl_graph_print(g, f);
  fclose(f);
  char *s = kl_graph_to_string(g);
  cr_assert_not_null(s);
  cr_expect_str_eq(buf, s);
  cr_expect(strstr(s, "%y = exp(%x) : f32[2]"), "%s", s);
  free(s);
  free(buf);
  kl_graph_destroy(g);
}
