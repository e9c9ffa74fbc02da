/* Lowering of embed and embed_grad to the C kernels of backend/kern_embed.c:
 * one serial kernel per node passing a constant descriptor (shapes, pe's
 * broadcast strides, attributes) and the node's buffers; the kernels split
 * the work over kiln's pool. The descriptor depends only on op, types,
 * attributes and the training flag, so twins share the kernel; a key of
 * -1 comes from the tag (the node id), as rt_dropout_key's rule. */
#include <string.h>

#include "backend/cg.h"
#include "backend/kern_embed.h"

/* grad: operands (ids, dy [, pe]); forward: (table, ids, pe). */
static void make_desc(cg_ctx *c, const ir_node *n, bool grad, ke_desc *a) {
  const ir_graph *g = c->g;
  const ir_type *ids = &g->nodes[n->in[grad ? 0 : 1]]->type;
  const ir_node *pe = NULL;
  if (!grad || n->nin == 3) pe = g->nodes[n->in[2]];
  ir_type res = grad ? g->nodes[n->in[1]]->type : n->type;
  memset(a, 0, sizeof *a);
  a->d = res.dims[res.rank - 1];
  a->n = a->d > 0 ? ir_type_numel(&res) / a->d : ir_type_numel(ids);
  a->v = grad ? n->attrs[3].i : g->nodes[n->in[0]]->type.dims[0];
  a->f64 = res.dtype == IR_F64;
  a->ids64 = ids->dtype == IR_I64;
  a->scale = n->attrs[0].f;
  a->p = n->attrs[1].f;
  a->dropout = c->training && a->p > 0;
  a->key = n->attrs[2].i >= 0 ? n->attrs[2].i : -1;
  a->rank = res.rank;
  for (int i = 0; i < res.rank; i++)
    a->dims[i] = res.dims[i];
  if (pe) {
    a->has_pe = 1;
    a->npe = ir_type_numel(&pe->type);
    ir_broadcast_strides(&pe->type, &res, a->pe_str);
  }
}

static LLVMValueRef desc_global(cg_ctx *c, const ke_desc *a) {
  int64_t w[KE_DESC_WORDS];
  memcpy(w, a, sizeof w);
  LLVMValueRef v[KE_DESC_WORDS];
  for (int i = 0; i < KE_DESC_WORDS; i++)
    v[i] = cg_i64(c, w[i]);
  return cg_const_table(c, "kiln_embed_desc", c->t_i64, v, KE_DESC_WORDS);
}

static bool lower(cg_ctx *c, const ir_node *n, bool grad, ir_diag *d) {
  ir_dtype dt = n->type.dtype;
  if (dt != IR_F32 && dt != IR_F64) {
    ir_diag_set(d, "%s: needs f32 or f64", ir_op_get(n->op)->name);
    return false;
  }
  ke_desc a;
  make_desc(c, n, grad, &a);
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  k.serial = true;
  /* ids are checked even when rows are empty, as the reference does */
  k.extent = a.n > 0 || ir_type_numel(&n->type) > 0 ? 1 : 0;
  k.work = (a.n + (grad ? a.v : 0)) * (a.d > 0 ? a.d : 1);
  if (k.extent > 0) {
    LLVMValueRef desc = desc_global(c, &a), tag = cg_kernel_tag(c, &k);
    if (grad) {
      LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64};
      LLVMValueRef args[] = {desc, k.out, cg_operand(c, &k, 0), cg_operand(c, &k, 1), k.exec, tag};
      cg_call(c, "kiln_embed_bwd", c->t_void, pt, 6, args);
    } else {
      LLVMTypeRef pt[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64};
      LLVMValueRef args[] = {
          desc,   k.out, cg_operand(c, &k, 0), cg_operand(c, &k, 1), cg_operand(c, &k, 2),
          k.exec, tag};
      cg_call(c, "kiln_embed_fwd", c->t_void, pt, 7, args);
    }
  }
  cg_kernel_end(c, &k);
  return true;
}

CG_LOWER_FN(cg_lower_embed) { return lower(c, n, false, d); }

CG_LOWER_FN(cg_lower_embed_grad) { return lower(c, n, true, d); }
