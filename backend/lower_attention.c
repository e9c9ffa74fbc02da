/* Lowering of attention, attention_lse and attention_grad to the streaming
 * (flash-style) kernels of backend/kern_attention.c: one serial kernel per
 * node (the kernels split heads over the pool themselves) that passes a constant
 * descriptor of the shapes, mask and attributes plus the node's buffers.
 * The descriptor depends only on what node_signature keeps (op, types,
 * attributes), so twins share the kernel; a key of -1 comes from the tag. */
#include <limits.h>
#include <string.h>

#include "backend/cg.h"
#include "backend/kern_attention.h"

/* Fills the descriptor from n's types and attributes; false with d set
 * when a size exceeds BLAS's int range. */
static bool make_desc(cg_ctx *c, const ir_node *n, bool grad, ka_desc *a, ir_diag *d) {
  const ir_type *q = &c->g->nodes[n->in[0]]->type, *k = &c->g->nodes[n->in[1]]->type;
  const ir_type *v = &c->g->nodes[n->in[2]]->type;
  bool has_mask = n->nin == (grad ? 6 : 4);
  int r = q->rank;
  memset(a, 0, sizeof *a);
  a->tq = q->dims[r - 2], a->tk = k->dims[r - 2], a->dh = q->dims[r - 1], a->dv = v->dims[r - 1];
  a->batch = 1;
  a->nb = r - 2;
  for (int i = 0; i < r - 2; i++) {
    a->bdims[i] = q->dims[i];
    a->batch *= q->dims[i];
  }
  int64_t lim = INT_MAX;
  if (a->tq > lim || a->tk > lim || a->dh > lim || a->dv > lim) {
    ir_diag_set(d, "%s: a dimension exceeds BLAS's int range", ir_op_get(n->op)->name);
    return false;
  }
  a->scale = n->attrs[0].f;
  a->causal = n->attrs[1].b;
  a->mask_value = n->attrs[2].f;
  a->p = n->attrs[3].f;
  a->dropout = c->training && a->p > 0;
  a->key = n->attrs[4].i >= 0 ? n->attrs[4].i : -1;
  a->len_div = 1;
  if (has_mask) {
    const ir_type *m = &c->g->nodes[n->in[3]]->type;
    if (ir_dtype_is_int(m->dtype)) {
      a->mask_kind = m->dtype == IR_I32 ? KA_MASK_LEN32 : KA_MASK_LEN64;
      int64_t e = ir_type_numel(m);
      a->len_div = e > 0 ? a->batch * a->tq / e : 1;
      if (a->len_div < 1) a->len_div = 1;
    } else {
      a->mask_kind = KA_MASK_BIAS;
      ir_type s = *q;
      s.dims[r - 1] = a->tk;
      int64_t str[IR_MAX_RANK];
      ir_broadcast_strides(m, &s, str);
      for (int i = 0; i < r - 2; i++)
        a->bias_bstr[i] = str[i];
      a->bias_si = str[r - 2];
      a->bias_sj = str[r - 1];
    }
  }
  return true;
}

/* The descriptor as a private constant (doubles by their bits). */
static LLVMValueRef desc_global(cg_ctx *c, const ka_desc *a) {
  int64_t w[KA_DESC_WORDS];
  memcpy(w, a, sizeof w);
  LLVMValueRef v[KA_DESC_WORDS];
  for (int i = 0; i < KA_DESC_WORDS; i++)
    v[i] = cg_i64(c, w[i]);
  return cg_const_table(c, "kiln_attn_desc", c->t_i64, v, KA_DESC_WORDS);
}

static bool lower(cg_ctx *c, const ir_node *n, bool grad, ir_diag *d) {
  ir_dtype dt = n->type.dtype;
  if (dt != IR_F32 && dt != IR_F64) {
    ir_diag_set(d, "%s: needs f32 or f64", ir_op_get(n->op)->name);
    return false;
  }
  ka_desc a;
  if (!make_desc(c, n, grad, &a, d)) return false;
  bool has_mask = n->nin == (grad ? 6 : 4);
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  k.serial = true;
  k.extent = ir_type_numel(&n->type) > 0 ? 1 : 0;
  k.work = a.batch * a.tq * (a.tk > 0 ? a.tk : 1) * (a.dh + a.dv + 1);
  if (k.extent > 0) {
    LLVMValueRef desc = desc_global(c, &a);
    LLVMValueRef mask = has_mask ? cg_operand(c, &k, 3) : LLVMConstPointerNull(c->t_ptr);
    LLVMValueRef tag = cg_kernel_tag(c, &k);
    char name[64];
    snprintf(name, sizeof name, "kiln_attention%s_%s", grad ? "_grad" : "",
             dt == IR_F32 ? "f32" : "f64");
    if (grad) {
      /* o from attention_lse is [o, lse]: the row statistics follow o */
      const ir_node *o = c->g->nodes[n->in[n->nin - 2]];
      int64_t no = ir_type_numel(&c->g->nodes[n->in[n->nin - 1]]->type);
      LLVMValueRef op = cg_operand(c, &k, n->nin - 2);
      LLVMValueRef lse = ir_type_numel(&o->type) > no ? cg_elem_ptr(c, dt, op, cg_i64(c, no))
                                                      : LLVMConstPointerNull(c->t_ptr);
      LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr,
                          c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64};
      LLVMValueRef args[] = {desc,
                             k.out,
                             cg_operand(c, &k, 0),
                             cg_operand(c, &k, 1),
                             cg_operand(c, &k, 2),
                             mask,
                             op,
                             lse,
                             cg_operand(c, &k, n->nin - 1),
                             k.exec,
                             tag};
      cg_call(c, name, c->t_void, pt, 11, args);
    } else {
      /* attention_lse writes o, then lse right after it */
      LLVMValueRef lse = n->op == IR_OP_ATTENTION_LSE
                             ? cg_elem_ptr(c, dt, k.out, cg_i64(c, a.batch * a.tq * a.dv))
                             : LLVMConstPointerNull(c->t_ptr);
      LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr,
                          c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64};
      LLVMValueRef args[] = {
          desc, k.out,  lse, cg_operand(c, &k, 0), cg_operand(c, &k, 1), cg_operand(c, &k, 2),
          mask, k.exec, tag};
      cg_call(c, name, c->t_void, pt, 9, args);
    }
  }
  cg_kernel_end(c, &k);
  return true;
}

CG_LOWER_FN(cg_lower_attention) { return lower(c, n, false, d); }

CG_LOWER_FN(cg_lower_attention_grad) { return lower(c, n, true, d); }

CG_LOWER_FN(cg_lower_attention_lse) { return lower(c, n, false, d); }
