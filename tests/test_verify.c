/* The IR verifier: a well-formed graph passes; graphs corrupted by hand in
 * one way each fail with a message that names the node (%name (op), and
 * its location when known) and the problem. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

/* Node ids of the graph built by good_graph(). */
typedef struct ids {
  int q, k, v, len, kt, s, c, sc, m, w, o, p, p2, po;
} ids;

static ir_type ty(ir_dtype dt, int rank, int64_t d0, int64_t d1, int64_t d2) {
  int64_t dims[3] = {d0, d1, d2};
  return ir_type_make(dt, rank, dims);
}

static int add(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs,
               const ir_type *decl, const char *name) {
  ir_diag d = {0};
  int id = ir_add_node(g, op, nin, in, attrs, decl, &d);
  cr_assert(id >= 0, "building the good graph: %s", d.msg);
  if (name) ir_node_set_name(g, id, name);
  return id;
}

/* The attention example of DESIGN.md plus two uses of one parameter. */
static ir_graph *good_graph(ids *x) {
  ir_graph *g = ir_graph_create("attention");
  ir_diag d = {0};
  ir_type tq = ty(IR_F32, 3, 2, 4, 8), tk = ty(IR_F32, 3, 2, 6, 8), tl = ty(IR_I32, 1, 2, 0, 0);
  x->q = ir_add_arg(g, "q", &tq, &d);
  x->k = ir_add_arg(g, "k", &tk, &d);
  x->v = ir_add_arg(g, "v", &tk, &d);
  x->len = ir_add_arg(g, "len", &tl, &d);
  cr_assert(x->len == 3, "%s", d.msg);
  int64_t perm[3] = {0, 2, 1};
  ir_attr pa = {.kind = IR_ATTR_INTS, .ints = {3, perm}};
  x->kt = add(g, IR_OP_TRANSPOSE, 1, &x->k, &pa, NULL, "kt");
  x->s = add(g, IR_OP_MATMUL, 2, (int[]){x->q, x->kt}, NULL, NULL, "s");
  float scale = 0.35355339f;
  ir_type scalar = ty(IR_F32, 0, 0, 0, 0);
  x->c = ir_add_const(g, &scalar, &scale, &d); /* unnamed: %6 */
  cr_assert(x->c == 6, "%s", d.msg);
  x->sc = add(g, IR_OP_MUL, 2, (int[]){x->s, x->c}, NULL, NULL, "sc");
  x->m = add(g, IR_OP_SEQUENCE_MASK, 2, (int[]){x->sc, x->len}, NULL, NULL, "m");
  x->w = add(g, IR_OP_SOFTMAX, 1, &x->m, NULL, NULL, "w");
  x->o = add(g, IR_OP_MATMUL, 2, (int[]){x->w, x->v}, NULL, NULL, "o");
  ir_attr pn[4] = {{.kind = IR_ATTR_STR, .s = "enc.w"},
                   {.kind = IR_ATTR_STR, .s = "normal"},
                   {.kind = IR_ATTR_FLOAT, .f = 0.0},
                   {.kind = IR_ATTR_BOOL, .b = true}};
  ir_type tp = ty(IR_F32, 2, 8, 8, 0);
  x->p = add(g, IR_OP_PARAM, 0, NULL, pn, &tp, "p");
  x->p2 = add(g, IR_OP_PARAM, 0, NULL, pn, &tp, "p2"); /* same name, same type: fine */
  x->po = add(g, IR_OP_MATMUL, 2, (int[]){x->o, x->p2}, NULL, NULL, "po");
  ir_set_returns(g, 1, &x->po);
  return g;
}

/* Verifies g, expects failure, and checks every fragment is in the message. */
static void expect_bad(ir_graph *g, const char *const *frags) {
  ir_diag d = {0};
  cr_assert_not(ir_verify(g, &d), "corrupted graph verified");
  for (int i = 0; frags[i]; i++)
    cr_assert(strstr(d.msg, frags[i]), "message '%s' should contain '%s'", d.msg, frags[i]);
  ir_graph_destroy(g);
}
#define EXPECT_BAD(g, ...) expect_bad(g, (const char *const[]){__VA_ARGS__, NULL})

Test(verify, good_graph_passes) {
  ids x;
  ir_graph *g = good_graph(&x);
  ir_node_set_loc(g, x.s, "attn.c", 42);
  ir_diag d = {0};
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  ir_graph_destroy(g);
}

Test(verify, wrong_declared_type) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.s]->type.dims[2] = 7;
  /* matmul of [2,4,8] and [2,8,6] is [2,4,6] */
  EXPECT_BAD(g, "%s (matmul): ", "declared type f32[2,4,7]", "inferred type f32[2,4,6]");
}

Test(verify, message_has_location) {
  ids x;
  ir_graph *g = good_graph(&x);
  ir_node_set_loc(g, x.s, "attn.c", 42);
  g->nodes[x.s]->type.dims[2] = 7;
  EXPECT_BAD(g, "%s (matmul) at attn.c:42: declared type");
}

Test(verify, operand_from_the_future) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.sc]->in[1] = x.o;
  EXPECT_BAD(g, "%sc (mul): ", "operand 1", "%10", "after");
}

Test(verify, operand_is_itself) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.sc]->in[0] = x.sc;
  EXPECT_BAD(g, "%sc (mul): ", "operand 0", "%7", "after");
}

Test(verify, operand_that_does_not_exist) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.sc]->in[0] = -3;
  EXPECT_BAD(g, "%sc (mul): ", "operand 0", "does not exist");
}

Test(verify, duplicate_name) {
  ids x;
  ir_graph *g = good_graph(&x);
  ir_node_set_name(g, x.w, "s");
  EXPECT_BAD(g, "(softmax): ", "duplicate name %s");
}

Test(verify, no_returns) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nrets = 0;
  EXPECT_BAD(g, "@attention", "no return");
}

Test(verify, return_out_of_range) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->rets[0] = 99;
  EXPECT_BAD(g, "@attention", "return 0", "%99");
}

Test(verify, param_type_conflict) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.p2]->type.dims[1] = 4;
  /* then po's inferred type would also change; the param check comes first */
  EXPECT_BAD(g, "%p2 (param): ", "\"enc.w\"", "f32[8,4]", "f32[8,8]", "%p");
}

Test(verify, param_empty_name) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.p]->attrs[0].s = "";
  EXPECT_BAD(g, "%p (param): ", "empty name");
}

Test(verify, bad_attr_kind) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.w]->attrs[0].kind = IR_ATTR_FLOAT;
  EXPECT_BAD(g, "%w (softmax): ", "attribute 'axis'", "float", "int");
}

Test(verify, ints_list_missing) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.kt]->attrs[0].ints.v = NULL;
  EXPECT_BAD(g, "%kt (transpose): ", "attribute 'perm'", "3 entries but no list");
}

Test(verify, shape_rule_rejects) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.kt]->attrs[0].ints.v[1] = 0; /* perm [0, 0, 1] */
  EXPECT_BAD(g, "%kt (transpose): ", "transpose(f32[2,6,8])", "not a permutation");
}

Test(verify, const_without_data) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.c]->data = NULL;
  EXPECT_BAD(g, "%6 (const): ", "no data");
}

Test(verify, bad_rank) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.len]->type.rank = 7;
  EXPECT_BAD(g, "%len (arg): ", "rank 7");
}

Test(verify, negative_dim) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.q]->type.dims[1] = -4;
  EXPECT_BAD(g, "%q (arg): ", "negative dimension -4");
}

Test(verify, id_not_index) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.m]->id = 2;
  EXPECT_BAD(g, "%m (sequence_mask): ", "id 2", "index 8");
}

Test(verify, wrong_arity) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.w]->nin = 2;
  EXPECT_BAD(g, "%w (softmax): ", "takes 1 operand", "has 2");
}

Test(verify, arg_without_name) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.v]->name = NULL;
  EXPECT_BAD(g, "%2 (arg): ", "no name");
}

/* A body for an attention node over q [2,4,8], k, v [2,6,8]: softmax(q
 * k^T) v, returning `ret` (NULL: no return at all). */
static ir_graph *attention_body(bool with_return) {
  ir_graph *b = ir_graph_create("body");
  ir_diag d = {0};
  ir_type tq = ty(IR_F32, 3, 2, 4, 8), tk = ty(IR_F32, 3, 2, 6, 8);
  int q = ir_add_arg(b, "q", &tq, &d), k = ir_add_arg(b, "k", &tk, &d);
  int v = ir_add_arg(b, "v", &tk, &d);
  ir_attr tb[2] = {{.kind = IR_ATTR_BOOL, .b = false}, {.kind = IR_ATTR_BOOL, .b = true}};
  int s = ir_add_node(b, IR_OP_MATMUL, 2, (int[]){q, k}, tb, NULL, &d);
  int w = ir_add_node(b, IR_OP_SOFTMAX, 1, &s, NULL, NULL, &d);
  int o = ir_add_node(b, IR_OP_MATMUL, 2, (int[]){w, v}, NULL, NULL, &d);
  cr_assert(o >= 0, "%s", d.msg);
  if (with_return) ir_set_returns(b, 1, &o);
  return b;
}

Test(verify, bad_region_body) {
  ids x;
  ir_graph *g = good_graph(&x);
  ir_diag d = {0};
  int in[3] = {x.q, x.k, x.v};
  int a = ir_add_node(g, IR_OP_ATTENTION, 3, in, NULL, NULL, &d);
  cr_assert(a >= 0, "%s", d.msg);
  ir_node_set_name(g, a, "att");
  cr_assert_not(ir_verify(g, &d));
  cr_assert(strstr(d.msg, "%att (attention)") && strstr(d.msg, "needs a body"), "%s", d.msg);
  g->nodes[a]->body = attention_body(false);
  EXPECT_BAD(g, "%att (attention): ", "region body", "@body", "no return");
}

Test(verify, region_body_must_match_the_node) {
  ids x;
  ir_graph *g = good_graph(&x);
  ir_diag d = {0};
  /* operands q, v, k: same types here, so swap in len for a type clash */
  int a =
      ir_add_region(g, IR_OP_ATTENTION, 3, (int[]){x.q, x.k, x.v}, NULL, attention_body(true), &d);
  cr_assert(a >= 0, "%s", d.msg);
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  ir_graph *body = g->nodes[a]->body;
  body->nodes[0]->type.dims[1] = 5; /* q's argument no longer matches %q */
  cr_assert_not(ir_verify(g, &d));
  cr_assert(strstr(d.msg, "body argument 0 is f32[2,5,8], operand 0 is f32[2,4,8]") ||
                strstr(d.msg, "region body"),
            "%s", d.msg);
  ir_graph_destroy(g);
}

Test(verify, only_region_ops_have_bodies) {
  ids x;
  ir_graph *g = good_graph(&x);
  g->nodes[x.o]->body = attention_body(true);
  EXPECT_BAD(g, "%o (matmul): ", "only region ops have a body");
}

Test(verify, good_region_body) {
  ids x;
  ir_graph *g = good_graph(&x);
  ir_diag d = {0};
  int a =
      ir_add_region(g, IR_OP_ATTENTION, 3, (int[]){x.q, x.k, x.v}, NULL, attention_body(true), &d);
  cr_assert(a >= 0, "%s", d.msg);
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  ir_graph *c = ir_graph_clone(g, &d);
  cr_assert(c && c->nodes[a]->body && c->nodes[a]->body != g->nodes[a]->body, "%s", d.msg);
  cr_assert(ir_verify(c, &d), "%s", d.msg);
  ir_graph_destroy(c);
  ir_graph_destroy(g);
}

Test(verify, empty_and_null_graphs) {
  ir_diag d = {0};
  cr_assert_not(ir_verify(NULL, &d));
  ir_graph *g = ir_graph_create("empty");
  cr_assert_not(ir_verify(g, &d));
  cr_assert(strstr(d.msg, "@empty") && strstr(d.msg, "no return"), "%s", d.msg);
  ir_graph_destroy(g);
}
