/* The op table expanded from ops.def, and the attribute schemas it names.
 * A schema lists each attribute's name, kind and default; nodes always
 * carry every attribute of their op's schema, in this order. */
#include <string.h>

#include "ir/ir.h"
#include "ir/shape.h"

#define END                                                                                        \
  { .name = NULL }
#define REQ(N, K)                                                                                  \
  { .name = N, .kind = K, .required = true }
#define DEF_INT(N, V, P)                                                                           \
  { .name = N, .kind = IR_ATTR_INT, .dflt = {.kind = IR_ATTR_INT, .i = V}, .print_always = P }
#define DEF_FLOAT(N, V, P)                                                                         \
  { .name = N, .kind = IR_ATTR_FLOAT, .dflt = {.kind = IR_ATTR_FLOAT, .f = V}, .print_always = P }
#define DEF_BOOL(N, V, P)                                                                          \
  { .name = N, .kind = IR_ATTR_BOOL, .dflt = {.kind = IR_ATTR_BOOL, .b = V}, .print_always = P }
#define DEF_STR(N, V, P)                                                                           \
  { .name = N, .kind = IR_ATTR_STR, .dflt = {.kind = IR_ATTR_STR, .s = V}, .print_always = P }
#define DEF_DTYPE(N, V, P)                                                                         \
  { .name = N, .kind = IR_ATTR_DTYPE, .dflt = {.kind = IR_ATTR_DTYPE, .dt = V}, .print_always = P }

static const ir_attr_spec attrs_none[] = {END};
/* param's name prints inside the parentheses: param("enc.w") */
/* init: "normal" (std = scale, 0 meaning 0.1), "uniform" (U(-scale, scale),
 * 0 meaning 0.1), "zeros", "ones", "xavier_uniform", "xavier_normal",
 * "kaiming_uniform", "kaiming_normal" (gain = scale; 0 meaning 1 for
 * xavier, sqrt(2) for kaiming). trainable = false marks state (optimizer
 * moments) that autodiff and the optimizer leave alone. */
static const ir_attr_spec attrs_param[] = {
    REQ("name", IR_ATTR_STR), DEF_STR("init", "normal", false), DEF_FLOAT("scale", 0.0, false),
    DEF_BOOL("trainable", true, false), END};
static const ir_attr_spec attrs_iota[] = {REQ("shape", IR_ATTR_INTS), DEF_INT("axis", 0, true),
                                          DEF_DTYPE("dtype", IR_I32, true), END};
static const ir_attr_spec attrs_gelu[] = {DEF_STR("approximate", "none", false), END};
static const ir_attr_spec attrs_cast[] = {REQ("to", IR_ATTR_DTYPE), END};
/* key: the Philox stream of the mask; -1 = the node's own id. Autodiff pins
 * it so the backward dropout draws the forward's mask. */
static const ir_attr_spec attrs_dropout[] = {DEF_FLOAT("p", 0.1, true), DEF_INT("key", -1, false),
                                             END};
static const ir_attr_spec attrs_scatter[] = {REQ("rows", IR_ATTR_INT), END};
static const ir_attr_spec attrs_reduce[] = {REQ("axes", IR_ATTR_INTS),
                                            DEF_BOOL("keepdims", false, false), END};
static const ir_attr_spec attrs_axis[] = {DEF_INT("axis", -1, true), END};
static const ir_attr_spec attrs_layernorm[] = {DEF_FLOAT("eps", 1e-5, true), END};
static const ir_attr_spec attrs_shape[] = {REQ("shape", IR_ATTR_INTS), END};
static const ir_attr_spec attrs_perm[] = {REQ("perm", IR_ATTR_INTS), END};
static const ir_attr_spec attrs_slice[] = {REQ("starts", IR_ATTR_INTS), REQ("ends", IR_ATTR_INTS),
                                           END};
static const ir_attr_spec attrs_concat[] = {DEF_INT("axis", 0, true), END};
static const ir_attr_spec attrs_matmul[] = {DEF_BOOL("transpose_a", false, false),
                                            DEF_BOOL("transpose_b", false, false), END};
/* gemm's transposes are matmul's (same positions); semantics in ir.h */
static const ir_attr_spec attrs_gemm[] = {
    DEF_BOOL("transpose_a", false, false), DEF_BOOL("transpose_b", false, false),
    DEF_FLOAT("alpha", 1.0, false), DEF_FLOAT("beta", 0.0, false), END};
static const ir_attr_spec attrs_seqmask[] = {DEF_FLOAT("value", -1e6, true), END};
static const ir_attr_spec attrs_xent[] = {DEF_INT("ignore_index", -1, true), END};
/* The fused ops' semantics are in ir.h ("fused ops"). */
static const ir_attr_spec attrs_attention[] = {DEF_FLOAT("scale", 1.0, true),
                                               DEF_BOOL("causal", false, false),
                                               DEF_FLOAT("mask_value", -1e6, false),
                                               DEF_FLOAT("p", 0.0, false),
                                               DEF_INT("key", -1, false),
                                               END};
static const ir_attr_spec attrs_additive[] = {DEF_FLOAT("mask_value", -1e6, false),
                                              DEF_FLOAT("p", 0.0, false), DEF_INT("key", -1, false),
                                              END};
static const ir_attr_spec attrs_sms[] = {DEF_FLOAT("scale", 1.0, true),
                                         DEF_BOOL("causal", false, false),
                                         DEF_FLOAT("mask_value", -1e6, false), END};
static const ir_attr_spec attrs_embed[] = {
    DEF_FLOAT("scale", 1.0, true), DEF_FLOAT("p", 0.0, false), DEF_INT("key", -1, false), END};
/* rows: the table's first dim (the gradient's operands do not hold it) */
static const ir_attr_spec attrs_embed_grad[] = {
    DEF_FLOAT("scale", 1.0, true), DEF_FLOAT("p", 0.0, false), DEF_INT("key", -1, false),
    REQ("rows", IR_ATTR_INT), END};
/* loop: the result type (the iteration space), which a shape rule cannot
 * read off the operands (a compare's bool, an iota's shape). */
static const ir_attr_spec attrs_loop[] = {REQ("shape", IR_ATTR_INTS), REQ("dtype", IR_ATTR_DTYPE),
                                          END};

#define COUNT(A) ((int)(sizeof(A) / sizeof(A[0])) - 1)

static const ir_op_info op_table[IR_NUM_OPS] = {
/* ir_op_info's fields in order: name, arity, attrs, nattrs, fusion, shape */
#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER_, GRAD_)                                            \
  [IR_OP_##E] = {T, AR, AT, COUNT(AT), FU, SH},
#include "ir/ops.def"
#undef IR_OP
};

const ir_op_info *ir_op_get(ir_op op) { return &op_table[op]; }

bool ir_op_lookup(const char *name, size_t len, ir_op *out) {
  for (int i = 0; i < IR_NUM_OPS; i++) {
    if (strlen(op_table[i].name) == len && memcmp(op_table[i].name, name, len) == 0) {
      *out = (ir_op)i;
      return true;
    }
  }
  return false;
}

int ir_attr_index(ir_op op, const char *name) {
  const ir_op_info *info = &op_table[op];
  for (int i = 0; i < info->nattrs; i++)
    if (strcmp(info->attrs[i].name, name) == 0) return i;
  return -1;
}
