/* Lowering of loop regions (passes/fuse_loops.c): one strided-map kernel
 * over the result whose value callback evaluates the whole body at each
 * element through cg_ew_value, the same per-element math the ops' own
 * kernels use. A loop ending in a reduction is the reduction's kernel
 * (lower_reduce.h) over the iteration space, its input element being the
 * body evaluated there instead of a load. Region operands are map
 * arguments broadcast to the iteration space (the result, or the final
 * reduction's input; sequence_mask's lengths by their prefix rule);
 * index-dependent ops (iota, sequence_mask, dropout) take their index from
 * the flat one, so they must span the whole iteration space. The kernel
 * depends on the body, which cg_loop_signature adds to the node's kernel
 * signature. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/lower_elementwise.h"
#include "backend/lower_map.h"
#include "backend/lower_reduce.h"
#include "runtime/ref.h"

typedef struct loop_ctx {
  const ir_graph *body;
  cg_ew *ew;          /* per body node (non-leaves) */
  int *arg_of;        /* body node -> operand number (args), else -1 */
  int *slot, *pslot;  /* operand -> map argument: broadcast, prefix (-1: none) */
  LLVMValueRef *vals; /* per body node, while the value callback runs */
  const ir_type *space;
  int red;           /* the final reduction's body node, or -1 */
  const cg_map *map; /* the arguments, for the reduction's loads */
} loop_ctx;

/* A scalar constant's value as a compute-type LLVM constant. */
static LLVMValueRef const_value(cg_ctx *c, const ir_node *m) {
  const void *p = m->data;
  switch (m->type.dtype) {
  case IR_F32: return LLVMConstReal(c->t_f32, *(const float *)p);
  case IR_F64: return LLVMConstReal(c->t_f64, *(const double *)p);
  case IR_I32: return LLVMConstInt(c->t_i32, (unsigned long long)(int64_t) * (const int32_t *)p, 1);
  case IR_I64: return LLVMConstInt(c->t_i64, (unsigned long long)*(const int64_t *)p, 1);
  default: return LLVMConstInt(c->t_i1, *(const uint8_t *)p != 0, 0);
  }
}

/* flat / stride % dim: the index along one axis of the iteration space. */
static LLVMValueRef axis_index(cg_ctx *c, const ir_type *t, int axis, LLVMValueRef flat) {
  int64_t s[IR_MAX_RANK];
  ir_strides(t, s);
  LLVMValueRef q = s[axis] == 1 ? flat : LLVMBuildUDiv(c->b, flat, cg_i64(c, s[axis]), "");
  return axis == 0 ? q : LLVMBuildURem(c->b, q, cg_i64(c, t->dims[axis]), "");
}

static LLVMValueRef loop_value(cg_ctx *c, void *ud, LLVMValueRef *v, LLVMValueRef flat) {
  loop_ctx *L = ud;
  const ir_graph *b = L->body;
  for (int j = 0; j < b->nnodes; j++) {
    const ir_node *m = b->nodes[j];
    if (j == L->red) continue; /* the reduction's kernel accumulates the values */
    if (m->op == IR_OP_ARG) {
      int s = L->slot[L->arg_of[j]]; /* -1: read only as sequence_mask lengths */
      L->vals[j] = s >= 0 ? v[s] : NULL;
      continue;
    }
    if (m->op == IR_OP_CONST) {
      L->vals[j] = const_value(c, m);
      continue;
    }
    LLVMValueRef in[3];
    for (int k = 0; k < m->nin && k < 3; k++)
      in[k] = L->vals[m->in[k]];
    if (m->op == IR_OP_IOTA) {
      int64_t axis = m->attrs[1].i;
      if (axis < 0) axis += m->type.rank;
      in[0] = axis_index(c, L->space, (int)axis, flat);
    } else if (m->op == IR_OP_SEQUENCE_MASK) {
      in[1] = v[L->pslot[L->arg_of[m->in[1]]]];
      in[2] = axis_index(c, L->space, L->space->rank - 1, flat);
    }
    L->vals[j] = cg_ew_value(c, &L->ew[j], in, flat);
  }
  return L->vals[L->red >= 0 ? b->nodes[L->red]->in[0] : b->rets[0]];
}

/* The reduction's input element: the map arguments loaded at their offsets
 * (off[1 + a]; off[0] is the flat index in the iteration space), then the
 * body evaluated. */
static LLVMValueRef reduce_value(cg_ctx *c, cg_kernel *k, void *ud, const LLVMValueRef *off) {
  loop_ctx *L = ud;
  LLVMValueRef v[CG_MAP_MAX_ARGS];
  for (int a = 0; a < L->map->nargs; a++) {
    const cg_map_arg *x = &L->map->args[a];
    LLVMValueRef base = x->src < 8 ? k->in[x->src] : cg_operand(c, k, x->src);
    LLVMValueRef idx = off[1 + a];
    if (x->offset) idx = LLVMBuildAdd(c->b, idx, cg_i64(c, x->offset), "");
    v[a] = cg_map_load(c, x->dtype, x->raw, base, idx);
  }
  return loop_value(c, L, v, off[0]);
}

static void loop_setup(cg_ctx *c, cg_kernel *k, void *ud) {
  loop_ctx *L = ud;
  for (int j = 0; j < L->body->nnodes; j++)
    if (L->body->nodes[j]->op == IR_OP_DROPOUT && L->ew[j].drop)
      cg_ew_dropout_setup(c, k, &L->ew[j], cg_i32(c, (int32_t)rt_dropout_key(L->body->nodes[j])));
}

/* Checks one body node against what the per-element evaluation supports. */
static bool check_node(cg_ctx *c, loop_ctx *L, int j, ir_diag *d) {
  const ir_graph *b = L->body;
  const ir_node *m = b->nodes[j];
  if (m->op == IR_OP_CONST) {
    if (ir_type_numel(&m->type) == 1) return true;
    ir_diag_set(d, "loop: a body constant must be a scalar (its body node %d is %lld elements)", j,
                (long long)ir_type_numel(&m->type));
    return false;
  }
  if (!cg_ew_prepare(b, m, c->training, &L->ew[j], d)) return false;
  bool indexed = m->op == IR_OP_IOTA || m->op == IR_OP_SEQUENCE_MASK ||
                 (m->op == IR_OP_DROPOUT && L->ew[j].drop);
  if (indexed && !ir_shape_eq(&m->type, L->space)) {
    ir_diag_set(d, "loop: its body's %s (node %d) does not span the iteration space",
                ir_op_get(m->op)->name, j);
    return false;
  }
  if (m->op == IR_OP_SEQUENCE_MASK && L->arg_of[m->in[1]] < 0) {
    ir_diag_set(d, "loop: sequence_mask's lengths must be a region operand (body node %d)", j);
    return false;
  }
  return true;
}

/* Map arguments: one per operand read by broadcasting, one per operand
 * read as sequence_mask lengths; false with d set when they exceed the map. */
static bool add_args(cg_ctx *c, const ir_node *n, loop_ctx *L, cg_map *m, ir_diag *d) {
  const ir_graph *b = L->body;
  bool *bc = calloc((size_t)n->nin, sizeof *bc), *pre = calloc((size_t)n->nin, sizeof *pre);
  if (!bc || !pre) {
    free(bc), free(pre);
    ir_diag_set(d, "loop: out of memory");
    return false;
  }
  for (int j = 0; j < b->nnodes; j++) {
    const ir_node *x = b->nodes[j];
    for (int k = 0; k < x->nin; k++) {
      int a = L->arg_of[x->in[k]];
      if (a < 0) continue;
      if (x->op == IR_OP_SEQUENCE_MASK && k == 1)
        pre[a] = true;
      else
        bc[a] = true;
    }
  }
  if (b->nrets == 1 && L->arg_of[b->rets[0]] >= 0) bc[L->arg_of[b->rets[0]]] = true;
  int need = 0;
  for (int i = 0; i < n->nin; i++)
    need += bc[i] + pre[i];
  bool ok = need <= CG_MAP_MAX_ARGS;
  for (int i = 0; ok && i < n->nin; i++) {
    const ir_type *t = &c->g->nodes[n->in[i]]->type;
    if (bc[i]) {
      L->slot[i] = m->nargs;
      cg_map_add_bcast(m, i, t, false);
    }
    if (pre[i]) {
      int64_t s[IR_MAX_RANK] = {0};
      ir_strides(t, s); /* a prefix: trailing dims keep stride 0 */
      L->pslot[i] = m->nargs;
      cg_map_add(m, i, t->dtype, false, 0, s);
    }
  }
  free(bc), free(pre);
  if (!ok)
    ir_diag_set(d, "loop: %d operand reads exceed the map's %d arguments", need, CG_MAP_MAX_ARGS);
  return ok;
}

CG_LOWER_FN(cg_lower_loop) {
  const ir_graph *b = n->body;
  if (!b || b->nrets != 1) {
    ir_diag_set(d, "loop: needs a body with one return");
    return false;
  }
  int nb = b->nnodes;
  const ir_node *rn = ir_loop_reduction(n);
  loop_ctx L = {.body = b, .space = &n->type, .red = -1};
  if (rn) {
    L.red = b->rets[0];
    L.space = &b->nodes[rn->in[0]]->type;
  }
  L.ew = calloc((size_t)nb, sizeof *L.ew);
  L.arg_of = malloc(sizeof(int) * (size_t)nb);
  L.vals = calloc((size_t)nb, sizeof *L.vals);
  L.slot = malloc(sizeof(int) * (size_t)(n->nin + 1));
  L.pslot = malloc(sizeof(int) * (size_t)(n->nin + 1));
  bool ok = L.ew && L.arg_of && L.vals && L.slot && L.pslot;
  if (!ok) ir_diag_set(d, "loop: out of memory");
  for (int i = 0; ok && i < n->nin; i++)
    L.slot[i] = L.pslot[i] = -1;
  for (int j = 0, a = 0; ok && j < nb; j++)
    L.arg_of[j] = b->nodes[j]->op == IR_OP_ARG ? a++ : -1;
  for (int j = 0; ok && j < nb; j++)
    if (b->nodes[j]->op != IR_OP_ARG && j != L.red) ok = check_node(c, &L, j, d);
  cg_map m;
  if (ok) {
    cg_map_init(&m, n, loop_value, &L);
    m.rank = L.space->rank; /* the map's arguments broadcast to the iteration space */
    memcpy(m.dims, L.space->dims, sizeof m.dims);
    m.dtype = L.space->dtype;
    m.setup = loop_setup;
    ok = add_args(c, n, &L, &m, d);
  }
  if (ok && rn) {
    int64_t strides[CG_MAP_MAX_ARGS][IR_MAX_RANK];
    for (int a = 0; a < m.nargs; a++)
      memcpy(strides[a], m.args[a].strides, sizeof strides[a]);
    L.map = &m;
    cg_red_input in = {.red = rn,
                       .type = L.space,
                       .nsrc = m.nargs,
                       .strides = (const int64_t(*)[IR_MAX_RANK])strides,
                       .value = reduce_value,
                       .setup = loop_setup,
                       .ud = &L};
    ok = cg_emit_reduce(c, n, &in, d);
  } else if (ok) {
    cg_map_emit(c, n, &m);
  }
  free(L.ew), free(L.arg_of), free(L.vals), free(L.slot), free(L.pslot);
  return ok;
}

/* ---- the kernel signature ------------------------------------------------ */

size_t cg_loop_signature(const ir_node *n, char *buf, size_t len) {
  const ir_graph *b = n->body;
  size_t k = 0;
  if (!b) return 0;
  char t[IR_TYPE_STRLEN];
  for (int j = 0; j < b->nnodes; j++) {
    const ir_node *m = b->nodes[j];
    k = cg_sig_put(buf, len, k, " |%d %s", (int)m->op, ir_type_str(&m->type, t, sizeof t));
    for (int i = 0; i < m->nin; i++)
      k = cg_sig_put(buf, len, k, " %d", m->in[i]);
    if (m->op == IR_OP_DROPOUT) k = cg_sig_put(buf, len, k, " key%u", rt_dropout_key(m));
    if (m->op == IR_OP_CONST && m->data) {
      size_t bytes = (size_t)ir_type_numel(&m->type) * ir_dtype_size(m->type.dtype);
      for (size_t i = 0; i < bytes && i < 8; i++)
        k = cg_sig_put(buf, len, k, "%02x", ((const unsigned char *)m->data)[i]);
    }
    const ir_op_info *info = ir_op_get(m->op);
    for (int i = 0; i < info->nattrs; i++)
      k = cg_sig_attr(buf, len, k, &m->attrs[i]);
  }
  k = cg_sig_put(buf, len, k, " ->%d", b->rets[0]);
  return k;
}
