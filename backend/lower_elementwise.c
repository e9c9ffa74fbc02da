/* Lowerings of the elementwise ops (iota, binary, compare, select, unary,
 * cast, dropout, sequence_mask) onto the strided-map emitter, and the
 * per-element value of each (cg_ew_value, also used by loop regions). Each
 * matches runtime/ref_elementwise.c bit for bit where the dtype allows
 * (integers, f64) and never emits an instruction that can trap or be
 * poison: integer division is guarded, float->int conversion saturates. */
#include <stdio.h>
#include <string.h>

#include "backend/lower_elementwise.h"
#include "backend/lower_map.h"
#include "runtime/ref.h"

typedef cg_ew ew;

static bool unsupported(const ir_node *n, ir_dtype dt, ir_diag *d) {
  ir_diag_set(d, "%s: not defined for %s", ir_op_get(n->op)->name, ir_dtype_name(dt));
  return false;
}

static LLVMValueRef fconst(cg_ctx *c, ir_dtype dt, double v) {
  return LLVMConstReal(cg_type(c, dt), v);
}

static LLVMValueRef intrin1(cg_ctx *c, const char *name, LLVMValueRef x) {
  return cg_intrinsic(c, name, LLVMTypeOf(x), &x, 1);
}

static LLVMValueRef intrin2(cg_ctx *c, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef a[2] = {x, y};
  return cg_intrinsic(c, name, LLVMTypeOf(x), a, 2);
}

/* ---- binary --------------------------------------------------------- */

static LLVMValueRef float_binary(cg_ctx *c, ir_op op, ir_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  switch (op) {
  case IR_OP_ADD: return LLVMBuildFAdd(c->b, a, b, "");
  case IR_OP_SUB: return LLVMBuildFSub(c->b, a, b, "");
  case IR_OP_MUL: return LLVMBuildFMul(c->b, a, b, "");
  case IR_OP_DIV: return LLVMBuildFDiv(c->b, a, b, "");
  case IR_OP_POW: return intrin2(c, "llvm.pow", a, b);
  default: {
    /* a > b ? a : b with NaN if either is NaN: exactly the reference,
     * including which zero max(+0, -0) returns (llvm.maximum orders zeros). */
    LLVMRealPredicate pr = op == IR_OP_MAX ? LLVMRealOGT : LLVMRealOLT;
    LLVMValueRef pick = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, pr, a, b, ""), a, b, "");
    LLVMValueRef nan = LLVMBuildFCmp(c->b, LLVMRealUNO, a, b, "");
    return LLVMBuildSelect(c->b, nan, fconst(c, dt, __builtin_nan("")), pick, "");
  }
  }
}

static LLVMValueRef int_binary(cg_ctx *c, ir_op op, ir_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  switch (op) {
  case IR_OP_ADD: return LLVMBuildAdd(c->b, a, b, "");
  case IR_OP_SUB: return LLVMBuildSub(c->b, a, b, "");
  case IR_OP_MUL: return LLVMBuildMul(c->b, a, b, "");
  case IR_OP_MAX: return intrin2(c, "llvm.smax", a, b);
  case IR_OP_MIN: return intrin2(c, "llvm.smin", a, b);
  default: {
    /* x/0 = 0 and MIN/-1 = MIN (wrapping negation); the divisor is made 1
     * in both cases so the sdiv itself can never trap. */
    LLVMValueRef zero = cg_const(c, dt, 0), one = cg_const(c, dt, 1);
    LLVMValueRef b0 = LLVMBuildICmp(c->b, LLVMIntEQ, b, zero, "");
    LLVMValueRef bm1 = LLVMBuildICmp(c->b, LLVMIntEQ, b, cg_const(c, dt, -1), "");
    LLVMValueRef safe = LLVMBuildSelect(c->b, LLVMBuildOr(c->b, b0, bm1, ""), one, b, "");
    LLVMValueRef q = LLVMBuildSDiv(c->b, a, safe, "");
    q = LLVMBuildSelect(c->b, b0, zero, q, "");
    return LLVMBuildSelect(c->b, bm1, LLVMBuildSub(c->b, zero, a, ""), q, "");
  }
  }
}

/* ---- unary ---------------------------------------------------------- */

static LLVMValueRef gelu(cg_ctx *c, ir_dtype dt, bool tanh_form, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef half_x = LLVMBuildFMul(b, fconst(c, dt, 0.5), x, "");
  LLVMValueRef t;
  if (tanh_form) { /* 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), the reference's order */
    LLVMValueRef x3 = LLVMBuildFMul(b, fconst(c, dt, 0.044715), x, "");
    x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x3, x, ""), x, "");
    LLVMValueRef in =
        LLVMBuildFMul(b, fconst(c, dt, 0.79788456080286535588), LLVMBuildFAdd(b, x, x3, ""), "");
    t = cg_tanh(c, dt, in);
  } else {
    t = cg_erf(c, dt, LLVMBuildFDiv(b, x, fconst(c, dt, 1.41421356237309504880), ""));
  }
  return LLVMBuildFMul(b, half_x, LLVMBuildFAdd(b, fconst(c, dt, 1.0), t, ""), "");
}

/* d gelu / dx in the reference's form (runtime/ref_elementwise.c): exactly
 * Phi(x) + x phi(x); the tanh form by the chain rule through
 * t = tanh(sqrt(2/pi)(x + 0.044715x^3)). */
static LLVMValueRef gelu_deriv(cg_ctx *c, ir_dtype dt, bool tanh_form, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef one = fconst(c, dt, 1.0), half = fconst(c, dt, 0.5);
  LLVMValueRef xx = LLVMBuildFMul(b, x, x, "");
  if (tanh_form) {
    LLVMValueRef k = fconst(c, dt, 0.79788456080286535588);
    LLVMValueRef x3 = LLVMBuildFMul(b, fconst(c, dt, 0.044715), x, "");
    x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x3, x, ""), x, "");
    LLVMValueRef t = cg_tanh(c, dt, LLVMBuildFMul(b, k, LLVMBuildFAdd(b, x, x3, ""), ""));
    LLVMValueRef left = LLVMBuildFMul(b, half, LLVMBuildFAdd(b, one, t, ""), "");
    LLVMValueRef sech2 = LLVMBuildFSub(b, one, LLVMBuildFMul(b, t, t, ""), "");
    LLVMValueRef inner =
        LLVMBuildFAdd(b, one, LLVMBuildFMul(b, fconst(c, dt, 3.0 * 0.044715), xx, ""), "");
    LLVMValueRef right = LLVMBuildFMul(b, LLVMBuildFMul(b, half, x, ""), sech2, "");
    right = LLVMBuildFMul(b, LLVMBuildFMul(b, right, k, ""), inner, "");
    return LLVMBuildFAdd(b, left, right, "");
  }
  LLVMValueRef e = cg_erf(c, dt, LLVMBuildFDiv(b, x, fconst(c, dt, 1.41421356237309504880), ""));
  LLVMValueRef cdf = LLVMBuildFMul(b, half, LLVMBuildFAdd(b, one, e, ""), "");
  LLVMValueRef pdf = cg_exp(c, dt, LLVMBuildFMul(b, fconst(c, dt, -0.5), xx, ""));
  pdf = LLVMBuildFDiv(b, LLVMBuildFMul(b, x, pdf, ""), fconst(c, dt, 2.50662827463100050242), "");
  return LLVMBuildFAdd(b, cdf, pdf, "");
}

static LLVMValueRef float_unary(cg_ctx *c, const ew *e, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  ir_dtype dt = e->dt;
  switch (e->n->op) {
  case IR_OP_NEG: return LLVMBuildFNeg(b, x, "");
  case IR_OP_ABS: return intrin1(c, "llvm.fabs", x);
  case IR_OP_RELU: /* unordered-greater keeps NaN; -0 becomes +0 as in the reference */
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUGT, x, fconst(c, dt, 0), ""), x,
                           fconst(c, dt, 0), "");
  case IR_OP_EXP: return cg_exp(c, dt, x);
  case IR_OP_LOG: return intrin1(c, "llvm.log", x);
  case IR_OP_TANH: return cg_tanh(c, dt, x);
  case IR_OP_SIGMOID: return cg_sigmoid(c, dt, x);
  case IR_OP_SQRT: return intrin1(c, "llvm.sqrt", x);
  case IR_OP_RSQRT: return LLVMBuildFDiv(b, fconst(c, dt, 1), intrin1(c, "llvm.sqrt", x), "");
  case IR_OP_SIN: return intrin1(c, "llvm.sin", x);
  case IR_OP_COS: return intrin1(c, "llvm.cos", x);
  case IR_OP_ERF: return cg_erf(c, dt, x);
  case IR_OP_GELU_DERIV: return gelu_deriv(c, dt, e->tanh_form, x);
  default: return gelu(c, dt, e->tanh_form, x);
  }
}

/* ---- cast ----------------------------------------------------------- */

static LLVMValueRef cast_value(cg_ctx *c, const ew *e, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  ir_dtype from = e->dt, to = e->n->type.dtype;
  if (from == to) return x;
  LLVMTypeRef tt = cg_ctype(c, to);
  if (ir_dtype_is_float(from)) {
    if (ir_dtype_is_float(to))
      return from == IR_F32 ? LLVMBuildFPExt(b, x, tt, "") : LLVMBuildFPTrunc(b, x, tt, "");
    if (to == IR_BOOL) /* NaN != 0 is true, as in C */
      return LLVMBuildFCmp(b, LLVMRealUNE, x, fconst(c, from, 0), "");
    /* NaN -> 0, saturating, truncating: exactly rt_f2i */
    LLVMTypeRef ts[2] = {tt, cg_type(c, from)};
    unsigned id = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, ts, 2);
    return LLVMBuildCall2(b, LLVMIntrinsicGetType(c->ctx, id, ts, 2), fn, &x, 1, "");
  }
  if (from == IR_BOOL) {
    if (ir_dtype_is_float(to)) return LLVMBuildUIToFP(b, x, tt, "");
    return LLVMBuildZExt(b, x, tt, "");
  }
  if (ir_dtype_is_float(to)) return LLVMBuildSIToFP(b, x, tt, ""); /* one rounding */
  if (to == IR_BOOL) return LLVMBuildICmp(b, LLVMIntNE, x, cg_const(c, from, 0), "");
  return from == IR_I32 ? LLVMBuildSExt(b, x, tt, "") : LLVMBuildTrunc(b, x, tt, "");
}

static LLVMValueRef unary_value(cg_ctx *c, const ew *e, LLVMValueRef x) {
  if (ir_dtype_is_float(e->dt)) return float_unary(c, e, x);
  LLVMValueRef zero = cg_const(c, e->dt, 0);
  switch (e->n->op) {
  case IR_OP_NEG: return LLVMBuildSub(c->b, zero, x, ""); /* wraps: -MIN = MIN */
  case IR_OP_ABS: return intrin2(c, "llvm.abs", x, LLVMConstInt(c->t_i1, 0, 0));
  default: return intrin2(c, "llvm.smax", x, zero);
  }
}

/* ---- compare, iota, dropout, sequence_mask ---------------------------- */

static LLVMValueRef compare_value(cg_ctx *c, const ew *e, LLVMValueRef a, LLVMValueRef b) {
  static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE,
                                         LLVMRealOEQ};
  static const LLVMIntPredicate sp[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE, LLVMIntEQ};
  /* bool is i1, where signed order would put true (-1) below false. */
  static const LLVMIntPredicate up[] = {LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE, LLVMIntEQ};
  int k = (int)(e->n->op - IR_OP_CMP_LT);
  if (ir_dtype_is_float(e->dt)) return LLVMBuildFCmp(c->b, fp[k], a, b, "");
  return LLVMBuildICmp(c->b, e->dt == IR_BOOL ? up[k] : sp[k], a, b, "");
}

static LLVMValueRef iota_value(cg_ctx *c, const ew *e, LLVMValueRef idx) {
  ir_dtype to = e->n->type.dtype;
  if (ir_dtype_is_float(to)) return LLVMBuildSIToFP(c->b, idx, cg_type(c, to), "");
  return to == IR_I64 ? idx : LLVMBuildTrunc(c->b, idx, cg_ctype(c, to), "");
}

void cg_ew_dropout_setup(cg_ctx *c, cg_kernel *k, cg_ew *e, LLVMValueRef key) {
  LLVMValueRef eight = cg_i64(c, 8);
  e->seed = LLVMBuildLoad2(c->b, c->t_i64, k->exec, "seed");
  LLVMValueRef sp = LLVMBuildGEP2(c->b, c->t_i8, k->exec, &eight, 1, "");
  e->step = LLVMBuildLoad2(c->b, c->t_i64, sp, "step");
  e->key = key;
}

/* keep when u >= p, scaled by 1/(1-p): computed in double and rounded once,
 * like the reference, so masks and values match it exactly. p >= 1 is
 * refused by the shape rule; the reference drops everything. */
static LLVMValueRef dropout_value(cg_ctx *c, const ew *e, LLVMValueRef x, LLVMValueRef flat) {
  if (!e->drop) return x;
  if (!(e->p < 1)) return fconst(c, e->dt, 0);
  LLVMBuilderRef b = c->b;
  LLVMTypeRef params[] = {c->t_i64, c->t_i64, c->t_i32, c->t_i64};
  LLVMValueRef args[] = {e->seed, e->step, e->key, flat};
  LLVMValueRef u = cg_call(c, "rt_dropout_uniform", c->t_f32, params, 4, args);
  u = LLVMBuildFPExt(b, u, c->t_f64, "");
  LLVMValueRef keep = LLVMBuildFCmp(b, LLVMRealOGE, u, LLVMConstReal(c->t_f64, e->p), "");
  if (e->dt == IR_F32) x = LLVMBuildFPExt(b, x, c->t_f64, "");
  LLVMValueRef y = LLVMBuildFMul(b, x, LLVMConstReal(c->t_f64, 1.0 / (1.0 - e->p)), "");
  y = LLVMBuildSelect(b, keep, y, LLVMConstReal(c->t_f64, 0), "");
  return e->dt == IR_F32 ? LLVMBuildFPTrunc(b, y, c->t_f32, "") : y;
}

/* x, len (broadcast over x's trailing dims), k (last-axis index) */
static LLVMValueRef seqmask_value(cg_ctx *c, const ew *e, LLVMValueRef *v) {
  LLVMValueRef len = v[1];
  if (LLVMTypeOf(len) != c->t_i64) len = LLVMBuildSExt(c->b, len, c->t_i64, "");
  LLVMValueRef out = LLVMBuildICmp(c->b, LLVMIntSGE, v[2], len, "");
  return LLVMBuildSelect(c->b, out, cg_const(c, e->dt, e->n->attrs[0].f), v[0], "");
}

/* ---- the shared entry points ------------------------------------------ */

bool cg_ew_prepare(const ir_graph *g, const ir_node *n, bool training, cg_ew *e, ir_diag *d) {
  ir_dtype dt = n->type.dtype;
  memset(e, 0, sizeof *e);
  e->n = n;
  e->dt = dt;
  switch (n->op) {
  case IR_OP_IOTA:
    if (dt == IR_BOOL) return unsupported(n, dt, d);
    return true;
  case IR_OP_ADD:
  case IR_OP_SUB:
  case IR_OP_MUL:
  case IR_OP_DIV:
  case IR_OP_POW:
  case IR_OP_MAX:
  case IR_OP_MIN:
    if (dt == IR_BOOL || (n->op == IR_OP_POW && !ir_dtype_is_float(dt)))
      return unsupported(n, dt, d);
    return true;
  case IR_OP_CMP_LT:
  case IR_OP_CMP_LE:
  case IR_OP_CMP_GT:
  case IR_OP_CMP_GE:
  case IR_OP_CMP_EQ:
  case IR_OP_CAST: e->dt = g->nodes[n->in[0]]->type.dtype; return true;
  case IR_OP_SELECT:
    if (g->nodes[n->in[0]]->type.dtype != IR_BOOL) return unsupported(n, dt, d);
    return true;
  case IR_OP_BROADCAST_TO: return true;
  case IR_OP_DROPOUT:
    if (!ir_dtype_is_float(dt)) return unsupported(n, dt, d);
    e->p = n->attrs[0].f;
    e->drop = training && e->p > 0; /* eval mode (or p = 0, NaN): identity */
    return true;
  case IR_OP_SEQUENCE_MASK: {
    const ir_type *lt = &g->nodes[n->in[1]]->type;
    bool ok = ir_dtype_is_float(dt) && ir_dtype_is_int(lt->dtype) && n->type.rank >= 1 &&
              lt->rank < n->type.rank;
    for (int i = 0; ok && i < lt->rank; i++)
      ok = lt->dims[i] == n->type.dims[i];
    if (!ok) {
      ir_diag_set(d, "sequence_mask: lengths must be an integer prefix of a float x's dims");
      return false;
    }
    return true;
  }
  default: break;
  }
  if (n->op < IR_OP_NEG || n->op > IR_OP_GELU_DERIV || dt == IR_BOOL) return unsupported(n, dt, d);
  bool int_ok = n->op == IR_OP_NEG || n->op == IR_OP_ABS || n->op == IR_OP_RELU;
  if (!ir_dtype_is_float(dt) && !int_ok) return unsupported(n, dt, d);
  if (n->op == IR_OP_GELU || n->op == IR_OP_GELU_DERIV) {
    const char *a = n->attrs[0].s ? n->attrs[0].s : "none";
    e->tanh_form = strcmp(a, "tanh") == 0;
    if (!e->tanh_form && strcmp(a, "none") != 0) {
      ir_diag_set(d, "%s: approximate must be \"none\" or \"tanh\", got \"%.64s\"",
                  ir_op_get(n->op)->name, a);
      return false;
    }
  }
  return true;
}

LLVMValueRef cg_ew_value(cg_ctx *c, const cg_ew *e, LLVMValueRef *v, LLVMValueRef flat) {
  switch (e->n->op) {
  case IR_OP_IOTA: return iota_value(c, e, v[0]);
  case IR_OP_ADD:
  case IR_OP_SUB:
  case IR_OP_MUL:
  case IR_OP_DIV:
  case IR_OP_POW:
  case IR_OP_MAX:
  case IR_OP_MIN:
    if (ir_dtype_is_float(e->dt)) return float_binary(c, e->n->op, e->dt, v[0], v[1]);
    return int_binary(c, e->n->op, e->dt, v[0], v[1]);
  case IR_OP_CMP_LT:
  case IR_OP_CMP_LE:
  case IR_OP_CMP_GT:
  case IR_OP_CMP_GE:
  case IR_OP_CMP_EQ: return compare_value(c, e, v[0], v[1]);
  case IR_OP_SELECT: return LLVMBuildSelect(c->b, v[0], v[1], v[2], "");
  case IR_OP_BROADCAST_TO: return v[0];
  case IR_OP_CAST: return cast_value(c, e, v[0]);
  case IR_OP_DROPOUT: return dropout_value(c, e, v[0], flat);
  case IR_OP_SEQUENCE_MASK: return seqmask_value(c, e, v);
  default: return unary_value(c, e, v[0]);
  }
}

/* ---- the ops' own kernels --------------------------------------------- */

static LLVMValueRef ew_map_value(cg_ctx *c, void *ud, LLVMValueRef *v, LLVMValueRef flat) {
  return cg_ew_value(c, ud, v, flat);
}

/* The plain case: every operand broadcast to the result (raw[i]: load
 * operand i as stored), one value function. */
static bool map_operands(cg_ctx *c, const ir_node *n, ew *e, const bool *raw) {
  cg_map m;
  cg_map_init(&m, n, ew_map_value, e);
  for (int i = 0; i < n->nin; i++)
    cg_map_add_bcast(&m, i, &c->g->nodes[n->in[i]]->type, raw && raw[i]);
  cg_map_emit(c, n, &m);
  return true;
}

CG_LOWER_FN(cg_lower_binary) {
  ew e;
  return cg_ew_prepare(c->g, n, c->training, &e, d) && map_operands(c, n, &e, NULL);
}

CG_LOWER_FN(cg_lower_compare) {
  if (n->op < IR_OP_CMP_LT || n->op > IR_OP_CMP_EQ) return unsupported(n, n->type.dtype, d);
  ew e;
  return cg_ew_prepare(c->g, n, c->training, &e, d) && map_operands(c, n, &e, NULL);
}

CG_LOWER_FN(cg_lower_unary) {
  if (n->op < IR_OP_NEG || n->op > IR_OP_GELU_DERIV) return unsupported(n, n->type.dtype, d);
  ew e;
  return cg_ew_prepare(c->g, n, c->training, &e, d) && map_operands(c, n, &e, NULL);
}

CG_LOWER_FN(cg_lower_select) {
  ew e;
  if (!cg_ew_prepare(c->g, n, c->training, &e, d)) return false;
  cg_map m;
  cg_map_init(&m, n, ew_map_value, &e);
  m.raw_out = true; /* values move as stored */
  for (int i = 0; i < 3; i++)
    cg_map_add_bcast(&m, i, &c->g->nodes[n->in[i]]->type, i > 0);
  cg_map_emit(c, n, &m);
  return true;
}

CG_LOWER_FN(cg_lower_cast) {
  if (c->g->nodes[n->in[0]]->type.dtype == n->type.dtype) {
    cg_map_copy(c, n, 0, NULL);
    return true;
  }
  ew e;
  return cg_ew_prepare(c->g, n, c->training, &e, d) && map_operands(c, n, &e, NULL);
}

CG_LOWER_FN(cg_lower_iota) {
  const ir_type *t = &n->type;
  int64_t axis = n->attrs[1].i;
  if (axis < 0) axis += t->rank;
  if (axis < 0 || axis >= t->rank || t->dtype == IR_BOOL) {
    ir_diag_set(d, "iota: axis %lld or dtype %s not supported for rank %d",
                (long long)n->attrs[1].i, ir_dtype_name(t->dtype), t->rank);
    return false;
  }
  ew e;
  if (!cg_ew_prepare(c->g, n, c->training, &e, d)) return false;
  cg_map m;
  cg_map_init(&m, n, ew_map_value, &e);
  int64_t s[IR_MAX_RANK] = {0};
  s[axis] = 1; /* the index along axis is an affine function of the index */
  cg_map_add(&m, CG_MAP_INDEX, IR_I64, false, 0, s);
  cg_map_emit(c, n, &m);
  return true;
}

static void dropout_setup(cg_ctx *c, cg_kernel *k, void *ud) {
  /* the key comes from the tag so that twins share the kernel */
  cg_ew_dropout_setup(c, k, ud, LLVMBuildTrunc(c->b, cg_kernel_tag(c, k), c->t_i32, "key"));
}

CG_LOWER_FN(cg_lower_dropout) {
  ew e;
  if (!cg_ew_prepare(c->g, n, c->training, &e, d)) return false;
  if (!e.drop) {
    cg_map_copy(c, n, 0, NULL);
    return true;
  }
  cg_map m;
  cg_map_init(&m, n, ew_map_value, &e);
  m.setup = dropout_setup;
  cg_map_add_bcast(&m, 0, &c->g->nodes[n->in[0]]->type, false);
  cg_map_emit(c, n, &m);
  return true;
}

CG_LOWER_FN(cg_lower_sequence_mask) {
  ew e;
  if (!cg_ew_prepare(c->g, n, c->training, &e, d)) return false;
  const ir_type *xt = &n->type, *lt = &c->g->nodes[n->in[1]]->type;
  cg_map m;
  cg_map_init(&m, n, ew_map_value, &e);
  cg_map_add_bcast(&m, 0, &c->g->nodes[n->in[0]]->type, false);
  int64_t ls[IR_MAX_RANK] = {0}, ks[IR_MAX_RANK] = {0};
  ir_strides(lt, ls); /* a prefix: trailing dims of x keep stride 0 */
  cg_map_add(&m, 1, lt->dtype, false, 0, ls);
  ks[xt->rank - 1] = 1;
  cg_map_add(&m, CG_MAP_INDEX, IR_I64, false, 0, ks);
  cg_map_emit(c, n, &m);
  return true;
}
