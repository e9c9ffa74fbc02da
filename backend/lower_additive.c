/* Lowering of additive_attention and its gradient: one serial kernel per
 * node calling the C driver of backend/kern_additive.c, which splits the
 * batch over the pool and never holds the [.., Tq, Tk, H] features. The
 * hot row loops (tanh of q + k with the w_v dot, the tanh gradient, axpy,
 * dot) are emitted here as LLVM IR with cg_math's vectorizable tanh, so
 * they are compiled for the host's vector width; the driver gets them as a
 * table of function pointers. The dropout key is the attribute or, when
 * -1, the node's tag (its id), as rt_dropout_key's rule. */
#include <stdio.h>

#include "backend/cg.h"
#include "backend/lower_rows.h"

/* An internal function with noalias pointer parameters, the builder in its
 * entry block; p receives the parameters. */
static LLVMValueRef helper_begin(cg_ctx *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *pt,
                                 int np, LLVMValueRef *p) {
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(ret, pt, (unsigned)np, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  for (int i = 0; i < np; i++) {
    p[i] = LLVMGetParam(fn, (unsigned)i);
    if (pt[i] == c->t_ptr)
      LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(c->ctx, noalias, 0));
  }
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  return fn;
}

/* scores(q, k, w, s, t, lim, h): for j < lim, t[j, :] = tanh(q + k[j, :])
 * and s[j] (double) = sum_e w[e] t[j, e]. */
static LLVMValueRef emit_scores(cg_ctx *c, ir_dtype dt, const char *name) {
  LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_i64};
  LLVMValueRef p[7];
  LLVMValueRef fn = helper_begin(c, name, c->t_void, pt, 7, p);
  LLVMTypeRef ty = cg_type(c, dt);
  LLVMValueRef acc = lr_alloca(c, ty, 1);
  cg_loop lj, le;
  LLVMValueRef j = cg_loop_begin(c, &lj, cg_i64(c, 0), p[5]);
  LLVMValueRef row = LLVMBuildMul(c->b, j, p[6], "");
  LLVMValueRef kr = cg_elem_ptr(c, dt, p[1], row), tr = cg_elem_ptr(c, dt, p[4], row);
  LLVMBuildStore(c->b, cg_const(c, dt, 0), acc);
  LLVMValueRef e = cg_loop_begin(c, &le, cg_i64(c, 0), p[6]);
  LLVMValueRef x = LLVMBuildFAdd(c->b, cg_load(c, dt, p[0], e), cg_load(c, dt, kr, e), "");
  LLVMValueRef t = cg_tanh(c, dt, x);
  cg_store(c, dt, tr, e, t);
  LLVMValueRef a = LLVMBuildLoad2(c->b, ty, acc, "");
  LLVMBuildStore(c->b, lr_fadd_reassoc(c, a, LLVMBuildFMul(c->b, cg_load(c, dt, p[2], e), t, "")),
                 acc);
  cg_loop_end(c, &le);
  cg_store(c, IR_F64, p[3], j, lr_to_f64(c, LLVMBuildLoad2(c->b, ty, acc, "")));
  cg_loop_end(c, &lj);
  LLVMBuildRetVoid(c->b);
  return fn;
}

/* grads(t, w, ds, dq, dk, dw, lim, h): for j < lim, with d = ds[j]:
 * dw += d t[j, :]; dq and dk[j, :] += d w (1 - t[j, :]^2). */
static LLVMValueRef emit_grads(cg_ctx *c, ir_dtype dt, const char *name) {
  LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr,
                      c->t_ptr, c->t_ptr, c->t_i64, c->t_i64};
  LLVMValueRef p[8];
  LLVMValueRef fn = helper_begin(c, name, c->t_void, pt, 8, p);
  cg_loop lj, le;
  LLVMValueRef j = cg_loop_begin(c, &lj, cg_i64(c, 0), p[6]);
  LLVMValueRef row = LLVMBuildMul(c->b, j, p[7], "");
  LLVMValueRef tr = cg_elem_ptr(c, dt, p[0], row), kr = cg_elem_ptr(c, dt, p[4], row);
  LLVMValueRef d = cg_load(c, IR_F64, p[2], j);
  if (dt == IR_F32) d = LLVMBuildFPTrunc(c->b, d, c->t_f32, "");
  LLVMValueRef e = cg_loop_begin(c, &le, cg_i64(c, 0), p[7]);
  LLVMValueRef t = cg_load(c, dt, tr, e);
  LLVMValueRef one = cg_const(c, dt, 1);
  LLVMValueRef g = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, d, cg_load(c, dt, p[1], e), ""),
                                 LLVMBuildFSub(c->b, one, LLVMBuildFMul(c->b, t, t, ""), ""), "");
  cg_store(c, dt, p[5], e,
           LLVMBuildFAdd(c->b, cg_load(c, dt, p[5], e), LLVMBuildFMul(c->b, d, t, ""), ""));
  cg_store(c, dt, p[3], e, LLVMBuildFAdd(c->b, cg_load(c, dt, p[3], e), g, ""));
  cg_store(c, dt, kr, e, LLVMBuildFAdd(c->b, cg_load(c, dt, kr, e), g, ""));
  cg_loop_end(c, &le);
  cg_loop_end(c, &lj);
  LLVMBuildRetVoid(c->b);
  return fn;
}

/* axpy(y, x, a, n): y += a x, a a double narrowed to dt. */
static LLVMValueRef emit_axpy(cg_ctx *c, ir_dtype dt, const char *name) {
  LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_f64, c->t_i64};
  LLVMValueRef p[4];
  LLVMValueRef fn = helper_begin(c, name, c->t_void, pt, 4, p);
  LLVMValueRef a = dt == IR_F32 ? LLVMBuildFPTrunc(c->b, p[2], c->t_f32, "") : p[2];
  cg_loop l;
  LLVMValueRef e = cg_loop_begin(c, &l, cg_i64(c, 0), p[3]);
  cg_store(c, dt, p[0], e,
           LLVMBuildFAdd(c->b, cg_load(c, dt, p[0], e),
                         LLVMBuildFMul(c->b, a, cg_load(c, dt, p[1], e), ""), ""));
  cg_loop_end(c, &l);
  LLVMBuildRetVoid(c->b);
  return fn;
}

/* dot(x, y, n) -> double: sum x[e] y[e] in dt, reassociable. */
static LLVMValueRef emit_dot(cg_ctx *c, ir_dtype dt, const char *name) {
  LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_i64};
  LLVMValueRef p[3];
  LLVMValueRef fn = helper_begin(c, name, c->t_f64, pt, 3, p);
  LLVMTypeRef ty = cg_type(c, dt);
  LLVMValueRef acc = lr_alloca(c, ty, 1);
  LLVMBuildStore(c->b, cg_const(c, dt, 0), acc);
  cg_loop l;
  LLVMValueRef e = cg_loop_begin(c, &l, cg_i64(c, 0), p[2]);
  LLVMValueRef a = LLVMBuildLoad2(c->b, ty, acc, "");
  LLVMBuildStore(
      c->b,
      lr_fadd_reassoc(c, a,
                      LLVMBuildFMul(c->b, cg_load(c, dt, p[0], e), cg_load(c, dt, p[1], e), "")),
      acc);
  cg_loop_end(c, &l);
  LLVMBuildRet(c->b, lr_to_f64(c, LLVMBuildLoad2(c->b, ty, acc, "")));
  return fn;
}

/* The table {scores, grads, axpy, dot} for dt, emitted once per module. */
static LLVMValueRef row_table(cg_ctx *c, ir_dtype dt) {
  const char *sfx = dt == IR_F32 ? "f32" : "f64";
  char name[64];
  snprintf(name, sizeof name, "kiln_additive_rows_%s", sfx);
  LLVMValueRef gv = LLVMGetNamedGlobal(c->mod, name);
  if (gv) return gv;
  LLVMValueRef f[4];
  char fn[64];
  snprintf(fn, sizeof fn, "kiln_additive_scores_%s", sfx);
  f[0] = emit_scores(c, dt, fn);
  snprintf(fn, sizeof fn, "kiln_additive_grads_%s", sfx);
  f[1] = emit_grads(c, dt, fn);
  snprintf(fn, sizeof fn, "kiln_additive_axpy_%s", sfx);
  f[2] = emit_axpy(c, dt, fn);
  snprintf(fn, sizeof fn, "kiln_additive_dot_%s", sfx);
  f[3] = emit_dot(c, dt, fn);
  return cg_const_table(c, name, c->t_ptr, f, 4);
}

static bool lower(cg_ctx *c, const ir_node *n, bool grad, ir_diag *d) {
  ir_dtype dt = n->type.dtype;
  if (dt != IR_F32 && dt != IR_F64) {
    ir_diag_set(d, "%s: needs f32 or f64", ir_op_get(n->op)->name);
    return false;
  }
  const ir_type *q = &c->g->nodes[n->in[0]]->type, *k = &c->g->nodes[n->in[1]]->type,
                *v = &c->g->nodes[n->in[3]]->type;
  bool has_len = n->nin == (grad ? 6 : 5);
  const ir_type *lt = has_len ? &c->g->nodes[n->in[4]]->type : NULL;
  if (lt && lt->dtype != IR_I32 && lt->dtype != IR_I64) {
    ir_diag_set(d, "%s: lengths must be i32 or i64", ir_op_get(n->op)->name);
    return false;
  }
  int r = q->rank;
  int64_t nb = 1, inner = 1;
  for (int i = 0; i < r - 2; i++)
    nb *= q->dims[i];
  if (lt)
    for (int i = lt->rank; i < r - 1; i++)
      inner *= q->dims[i];
  int64_t geom[9] = {nb,
                     q->dims[r - 2],
                     k->dims[r - 2],
                     q->dims[r - 1],
                     v->dims[r - 1],
                     inner,
                     !lt                   ? 0
                     : lt->dtype == IR_I32 ? 1
                                           : 2,
                     dt == IR_F64,
                     c->training};
  LLVMValueRef rows = row_table(c, dt); /* before the kernel: it moves the builder */
  cg_kernel kk;
  cg_kernel_begin(c, n, &kk);
  kk.serial = true;
  kk.extent = 1;
  kk.work = geom[0] * geom[1] * geom[2] * (geom[3] + geom[4] + 1);
  LLVMValueRef gv[9], fv[2];
  for (int i = 0; i < 9; i++)
    gv[i] = cg_i64(c, geom[i]);
  fv[0] = LLVMConstReal(c->t_f64, n->attrs[0].f);
  fv[1] = LLVMConstReal(c->t_f64, n->attrs[1].f);
  LLVMValueRef gtab = cg_const_table(c, "kiln_additive_desc", c->t_i64, gv, 9),
               ftab = cg_const_table(c, "kiln_additive_desc", c->t_f64, fv, 2);
  LLVMValueRef key = n->attrs[2].i >= 0 ? cg_i64(c, n->attrs[2].i) : cg_kernel_tag(c, &kk);
  LLVMValueRef len = has_len ? cg_operand(c, &kk, 4) : LLVMConstPointerNull(c->t_ptr);
  LLVMValueRef args[13] = {kk.exec,
                           kk.out,
                           cg_operand(c, &kk, 0),
                           cg_operand(c, &kk, 1),
                           cg_operand(c, &kk, 2),
                           cg_operand(c, &kk, 3),
                           len};
  int na = 7;
  if (grad) args[na++] = cg_operand(c, &kk, n->nin - 1);
  args[na++] = gtab, args[na++] = ftab, args[na++] = rows, args[na++] = key;
  LLVMTypeRef pt[13];
  for (int i = 0; i < na; i++)
    pt[i] = c->t_ptr;
  pt[na - 1] = c->t_i64;
  cg_call(c, grad ? "kiln_additive_bwd" : "kiln_additive_fwd", c->t_void, pt, na, args);
  cg_kernel_end(c, &kk);
  return true;
}

CG_LOWER_FN(cg_lower_additive_attention) { return lower(c, n, false, d); }

CG_LOWER_FN(cg_lower_additive_attention_grad) { return lower(c, n, true, d); }
