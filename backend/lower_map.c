/* The strided-map emitter (lower_map.h). The output and every argument are
 * affine in the multi-index, so adjacent dims that are contiguous for all of
 * them collapse into one; the last collapsed dim becomes the innermost loop
 * (unit or zero strides in the common cases, which is what the vectorizer
 * wants) and the dims before it, plus blocks of a long last dim, form the
 * kernel's parallel iteration space. */
#include <string.h>

#include "backend/lower_map.h"

void cg_map_init(cg_map *m, const ir_node *n, cg_map_value_fn value, void *ud) {
  memset(m, 0, sizeof *m);
  m->rank = n->type.rank;
  memcpy(m->dims, n->type.dims, sizeof m->dims);
  m->dtype = n->type.dtype;
  m->value = value;
  m->ud = ud;
}

cg_map_arg *cg_map_add(cg_map *m, int src, ir_dtype dt, bool raw, int64_t offset,
                       const int64_t *strides) {
  /* Callers add at most CG_MAP_MAX_ARGS arguments (loop regions check); a
   * full map reuses the last slot rather than writing past the array. */
  cg_map_arg *a = &m->args[m->nargs < CG_MAP_MAX_ARGS ? m->nargs++ : CG_MAP_MAX_ARGS - 1];
  memset(a, 0, sizeof *a);
  a->src = src;
  a->dtype = dt;
  a->raw = raw;
  a->offset = offset;
  for (int i = 0; i < m->rank; i++)
    a->strides[i] = strides ? strides[i] : 0;
  return a;
}

cg_map_arg *cg_map_add_bcast(cg_map *m, int src, const ir_type *t, bool raw) {
  ir_type res = ir_type_make(t->dtype, m->rank, m->dims);
  int64_t s[IR_MAX_RANK] = {0};
  ir_broadcast_strides(t, &res, s);
  return cg_map_add(m, src, t->dtype, raw, 0, s);
}

LLVMValueRef cg_map_load(cg_ctx *c, ir_dtype dt, bool raw, LLVMValueRef base, LLVMValueRef idx) {
  if (!raw) return cg_load(c, dt, base, idx);
  LLVMTypeRef t = cg_type(c, dt);
  LLVMValueRef p = LLVMBuildGEP2(c->b, t, base, &idx, 1, "");
  return LLVMBuildLoad2(c->b, t, p, "");
}

/* The loop nest after collapsing: r dims, stride row 0 is the output's,
 * rows 1.. the arguments'. */
typedef struct map_plan {
  int r;
  int64_t dims[IR_MAX_RANK];
  int64_t s[CG_MAP_MAX_ARGS + 1][IR_MAX_RANK];
} map_plan;

static void plan_map(const cg_map *m, map_plan *p) {
  int ns = m->nargs + 1;
  int64_t os[IR_MAX_RANK];
  ir_type ot = ir_type_make(m->dtype, m->rank, m->dims);
  ir_strides(&ot, os);
  p->r = 0;
  for (int i = 0; i < m->rank; i++) {
    if (m->dims[i] == 1) continue; /* any stride: the index is always 0 */
    int64_t col[CG_MAP_MAX_ARGS + 1];
    col[0] = os[i];
    for (int a = 0; a < m->nargs; a++)
      col[a + 1] = m->args[a].strides[i];
    /* Merge into the previous dim when stepping it equals stepping through
     * all of this one, for every array (broadcast 0 strides included). */
    bool merge = p->r > 0;
    for (int a = 0; merge && a < ns; a++)
      merge = p->s[a][p->r - 1] == col[a] * m->dims[i];
    if (merge) {
      p->dims[p->r - 1] *= m->dims[i];
      for (int a = 0; a < ns; a++)
        p->s[a][p->r - 1] = col[a];
      continue;
    }
    p->dims[p->r] = m->dims[i];
    for (int a = 0; a < ns; a++)
      p->s[a][p->r] = col[a];
    p->r++;
  }
  if (p->r == 0) { /* a scalar, or all dims 1 */
    p->r = 1;
    p->dims[0] = 1;
    for (int a = 0; a < ns; a++)
      p->s[a][0] = 0;
  }
}

/* base + idx * stride, folding the trivial strides away. */
static LLVMValueRef affine(cg_ctx *c, LLVMValueRef base, LLVMValueRef idx, int64_t stride) {
  if (stride == 0) return base;
  LLVMValueRef t = stride == 1 ? idx : LLVMBuildNSWMul(c->b, idx, cg_i64(c, stride), "");
  return LLVMBuildNSWAdd(c->b, base, t, "");
}

void cg_map_emit(cg_ctx *c, const ir_node *n, const cg_map *m) {
  cg_kernel k;
  cg_kernel_begin(c, n, &k);
  int64_t numel = 1;
  for (int i = 0; i < m->rank; i++)
    numel *= m->dims[i];
  if (numel == 0) { /* nothing to touch; the kernel still exists */
    k.extent = 0;
    cg_kernel_end(c, &k);
    return;
  }
  map_plan p;
  plan_map(m, &p);
  int ns = m->nargs + 1, last = p.r - 1;
  int64_t inner = p.dims[last];
  int64_t blk = inner > CG_MAP_BLOCK ? CG_MAP_BLOCK : inner;
  int64_t nblk = (inner + blk - 1) / blk;
  int64_t extent = nblk;
  for (int i = 0; i < last; i++)
    extent *= p.dims[i];
  k.extent = extent;
  k.work = blk;

  LLVMValueRef base[CG_MAP_MAX_ARGS + 1];
  base[0] = k.out;
  for (int a = 0; a < m->nargs; a++) {
    int src = m->args[a].src;
    base[a + 1] = src < 0 ? NULL : src < 8 ? k.in[src] : cg_operand(c, &k, src);
  }
  if (m->setup) m->setup(c, &k, m->ud);

  cg_loop outer;
  LLVMValueRef item = cg_loop_begin(c, &outer, k.begin, k.end);
  /* Decode the item into outer digits once; the inner loop then only adds. */
  LLVMValueRef off[CG_MAP_MAX_ARGS + 1];
  for (int a = 0; a < ns; a++)
    off[a] = cg_i64(c, a == 0 ? 0 : m->args[a - 1].offset);
  LLVMValueRef q = item, col0 = cg_i64(c, 0);
  if (nblk > 1) {
    LLVMValueRef b = q; /* the block index, alone when nothing is outside it */
    if (last > 0) {
      b = LLVMBuildURem(c->b, q, cg_i64(c, nblk), "");
      q = LLVMBuildUDiv(c->b, q, cg_i64(c, nblk), "");
    }
    col0 = LLVMBuildNSWMul(c->b, b, cg_i64(c, blk), "");
    for (int a = 0; a < ns; a++)
      off[a] = affine(c, off[a], col0, p.s[a][last]);
  }
  for (int j = last - 1; j >= 0; j--) {
    LLVMValueRef dj = q;
    if (j > 0) {
      dj = LLVMBuildURem(c->b, q, cg_i64(c, p.dims[j]), "");
      q = LLVMBuildUDiv(c->b, q, cg_i64(c, p.dims[j]), "");
    }
    for (int a = 0; a < ns; a++)
      off[a] = affine(c, off[a], dj, p.s[a][j]);
  }
  LLVMValueRef trip = cg_i64(c, blk);
  if (inner % blk != 0) { /* the last block is short */
    LLVMValueRef rest = LLVMBuildNSWSub(c->b, cg_i64(c, inner), col0, "");
    LLVMValueRef shorter = LLVMBuildICmp(c->b, LLVMIntSLT, rest, trip, "");
    trip = LLVMBuildSelect(c->b, shorter, rest, trip, "");
  }

  cg_loop in;
  LLVMValueRef i = cg_loop_begin(c, &in, cg_i64(c, 0), trip);
  LLVMValueRef at[CG_MAP_MAX_ARGS + 1], v[CG_MAP_MAX_ARGS];
  for (int a = 0; a < ns; a++)
    at[a] = affine(c, off[a], i, p.s[a][last]);
  for (int a = 0; a < m->nargs; a++) {
    const cg_map_arg *g = &m->args[a];
    v[a] = g->src < 0 ? at[a + 1] : cg_map_load(c, g->dtype, g->raw, base[a + 1], at[a + 1]);
  }
  LLVMValueRef r = m->value(c, m->ud, v, at[0]);
  if (m->raw_out) {
    LLVMTypeRef t = cg_type(c, m->dtype);
    LLVMBuildStore(c->b, r, LLVMBuildGEP2(c->b, t, k.out, &at[0], 1, ""));
  } else {
    cg_store(c, m->dtype, k.out, at[0], r);
  }
  cg_loop_end(c, &in);
  cg_loop_end(c, &outer);
  cg_kernel_end(c, &k);
}

LLVMValueRef cg_map_copy_value(cg_ctx *c, void *ud, LLVMValueRef *v, LLVMValueRef flat) {
  (void)c, (void)ud, (void)flat;
  return v[0];
}

void cg_map_copy(cg_ctx *c, const ir_node *n, int64_t offset, const int64_t *strides) {
  cg_map m;
  cg_map_init(&m, n, cg_map_copy_value, NULL);
  m.raw_out = true;
  int64_t contig[IR_MAX_RANK];
  ir_strides(&n->type, contig);
  cg_map_add(&m, 0, n->type.dtype, true, offset, strides ? strides : contig);
  cg_map_emit(c, n, &m);
}
