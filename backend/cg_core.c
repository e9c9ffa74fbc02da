/* Codegen core: the module for a graph (kernels, then kiln_step calling
 * them in node order), kernel scaffolding, loops, typed loads and stores,
 * intrinsics and external calls. Kernels read their buffers from an
 * argument block, not from fixed slots, so nodes with the same signature
 * (op, attributes, types) share one compiled kernel: a model that repeats
 * a layer compiles each distinct kernel once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cg.h"
#include "runtime/ref.h"

static const cg_lower_fn lowerings[IR_NUM_OPS] = {
#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER, GRAD_) [IR_OP_##E] = LOWER,
#include "ir/ops.def"
#undef IR_OP
};

/* Work (elements touched) below which a kernel runs on the calling thread:
 * waking workers costs more than it saves. */
#define CG_PARALLEL_MIN_WORK (1 << 15)

CG_LOWER_FN(cg_lower_leaf) {
  (void)c, (void)n, (void)d;
  return true; /* arguments, parameters and constants arrive in bufs */
}

LLVMValueRef cg_i64(cg_ctx *c, int64_t v) {
  return LLVMConstInt(c->t_i64, (unsigned long long)v, 1);
}
LLVMValueRef cg_i32(cg_ctx *c, int32_t v) {
  return LLVMConstInt(c->t_i32, (unsigned long long)(int64_t)v, 1);
}

LLVMTypeRef cg_type(cg_ctx *c, ir_dtype dt) {
  switch (dt) {
  case IR_F32: return c->t_f32;
  case IR_F64: return c->t_f64;
  case IR_I32: return c->t_i32;
  case IR_I64: return c->t_i64;
  default: return c->t_i8;
  }
}

LLVMTypeRef cg_ctype(cg_ctx *c, ir_dtype dt) { return dt == IR_BOOL ? c->t_i1 : cg_type(c, dt); }

LLVMValueRef cg_const(cg_ctx *c, ir_dtype dt, double v) {
  if (ir_dtype_is_float(dt)) return LLVMConstReal(cg_type(c, dt), v);
  if (dt == IR_BOOL) return LLVMConstInt(c->t_i1, v != 0, 0);
  /* Out-of-range doubles would be undefined to convert; saturate. */
  double lo = dt == IR_I32 ? -2147483648.0 : -9223372036854775808.0;
  double hi = dt == IR_I32 ? 2147483647.0 : 9223372036854775807.0;
  int64_t i = v != v    ? 0
              : v <= lo ? (int64_t)lo
              : v >= hi ? (dt == IR_I32 ? INT32_MAX : INT64_MAX)
                        : (int64_t)v;
  return LLVMConstInt(cg_type(c, dt), (unsigned long long)i, 1);
}

LLVMValueRef cg_elem_ptr(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildGEP2(c->b, cg_type(c, dt), base, &idx, 1, "");
}

LLVMValueRef cg_load(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, cg_type(c, dt), cg_elem_ptr(c, dt, base, idx), "");
  if (dt == IR_BOOL) v = LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(c->t_i8, 0, 0), "");
  return v;
}

void cg_store(cg_ctx *c, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
  if (dt == IR_BOOL) v = LLVMBuildZExt(c->b, v, c->t_i8, "");
  LLVMBuildStore(c->b, v, cg_elem_ptr(c, dt, base, idx));
}

LLVMValueRef cg_intrinsic(cg_ctx *c, const char *name, LLVMTypeRef type, LLVMValueRef *args,
                          int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, &type, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(c->ctx, id, &type, 1);
  return LLVMBuildCall2(c->b, ft, fn, args, (unsigned)nargs, "");
}

LLVMValueRef cg_call(cg_ctx *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int nparams,
                     LLVMValueRef *args) {
  LLVMTypeRef ft = LLVMFunctionType(ret, params, (unsigned)nparams, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
  if (!fn) fn = LLVMAddFunction(c->mod, name, ft);
  return LLVMBuildCall2(c->b, ft, fn, args, (unsigned)nparams, "");
}

/* ---- loops ----------------------------------------------------------- */

LLVMValueRef cg_loop_begin(cg_ctx *c, cg_loop *l, LLVMValueRef from, LLVMValueRef to) {
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
  l->pre = LLVMGetInsertBlock(c->b);
  l->body = LLVMAppendBasicBlockInContext(c->ctx, fn, "loop");
  l->exit = LLVMAppendBasicBlockInContext(c->ctx, fn, "after");
  l->to = to;
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, from, to, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(c->b, l->body);
  l->i = LLVMBuildPhi(c->b, c->t_i64, "i");
  LLVMAddIncoming(l->i, &from, &l->pre, 1);
  return l->i;
}

void cg_loop_end(cg_ctx *c, cg_loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
  LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->i, cg_i64(c, 1), "");
  LLVMAddIncoming(l->i, &next, &latch, 1);
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, next, l->to, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(c->b, l->exit);
}

/* ---- kernels --------------------------------------------------------- */

static LLVMValueRef load_buf(cg_ctx *c, LLVMValueRef bufs, int slot) {
  LLVMValueRef idx = cg_i64(c, slot);
  LLVMValueRef p = LLVMBuildGEP2(c->b, c->t_ptr, bufs, &idx, 1, "");
  return LLVMBuildLoad2(c->b, c->t_ptr, p, "");
}

void cg_kernel_begin(cg_ctx *c, const ir_node *n, cg_kernel *k) {
  char name[32];
  snprintf(name, sizeof name, "kiln_k%d", n->id);
  memset(k, 0, sizeof *k);
  k->n = n;
  k->work = 1;
  k->fn = LLVMAddFunction(c->mod, name, c->t_kernel);
  LLVMSetLinkage(k->fn, LLVMInternalLinkage);
  /* Kernels stay separate functions. A shared kernel is called once per
   * twin node; inlined at every call it is optimized and compiled again
   * each time (measured: a 500-node chain of 4 distinct kernels compiles in
   * ~125 ms with noinline, ~2.3 s without). */
  unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
  LLVMAddAttributeAtIndex(k->fn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(c->ctx, noinline, 0));
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, k->fn, "entry"));
  k->bufs = LLVMGetParam(k->fn, 0);
  k->begin = LLVMGetParam(k->fn, 1);
  k->end = LLVMGetParam(k->fn, 2);
  k->out = load_buf(c, k->bufs, 0);
  for (int i = 0; i < n->nin && i < 8; i++)
    k->in[i] = load_buf(c, k->bufs, 1 + i);
  k->exec = load_buf(c, k->bufs, 1 + n->nin);
}

LLVMValueRef cg_operand(cg_ctx *c, cg_kernel *k, int i) { return load_buf(c, k->bufs, 1 + i); }

LLVMValueRef cg_kernel_tag(cg_ctx *c, cg_kernel *k) {
  return LLVMBuildPtrToInt(c->b, load_buf(c, k->bufs, 2 + k->n->nin), c->t_i64, "tag");
}

int64_t cg_node_tag(const ir_node *n) {
  return n->op == IR_OP_DROPOUT ? (int64_t)rt_dropout_key(n) : n->id;
}

/* Room for n more kernel records. */
static bool reserve(cg_ctx *c, int n) {
  if (c->nkernels + n <= c->capkernels) return true;
  int cap = c->capkernels ? 2 * c->capkernels : 64;
  while (cap < c->nkernels + n)
    cap *= 2;
  cg_kernel_rec *r = realloc(c->kernels, (size_t)cap * sizeof *r);
  if (!r) return false;
  c->kernels = r;
  c->capkernels = cap;
  return true;
}

void cg_kernel_end(cg_ctx *c, cg_kernel *k) {
  LLVMBuildRetVoid(c->b);
  if (!reserve(c, 1)) return; /* lower_node notices the missing record */
  int64_t work = k->work > 0 ? k->work : 1;
  int64_t grain = k->grain > 0 ? k->grain : (CG_PARALLEL_MIN_WORK / 2) / work;
  if (grain < 1) grain = 1;
  bool parallel = !k->serial && k->extent >= 2 * grain && k->extent * work >= CG_PARALLEL_MIN_WORK;
  c->kernels[c->nkernels++] = (cg_kernel_rec){k->fn, k->n, k->extent, grain, parallel};
}

/* kiln_step walks a constant call table instead of calling each kernel
 * from straight-line code: with thousands of nodes, a straight-line step
 * was most of the module and took ~25 s of O3 and codegen (measured on
 * the seq2seq-attn training step, 6164 nodes), while the loop is a few
 * dozen instructions whatever the node count. Per call i:
 *   kiln_fns[i]    the kernel
 *   kiln_calls[i]  {extent, grain (0: call directly, on this thread),
 *                   cg_operand_offset, cg_node_tag, first slot, number of
 *                   slots}
 *   kiln_slots[first..first+n)  bufs indices of {out, operands..., exec};
 * the block is {out, operands..., exec, tag}.
 * One argument block serves every call: calls (and rt_parallel_for)
 * return before the next begins. */
LLVMValueRef cg_const_table(cg_ctx *c, const char *name, LLVMTypeRef elt, LLVMValueRef *v,
                            unsigned n) {
  LLVMValueRef init = LLVMConstArray2(elt, v, n);
  LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  return gv;
}

static LLVMValueRef gep2(cg_ctx *c, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef i, int field) {
  LLVMValueRef idx[] = {cg_i64(c, 0), i, cg_i32(c, field)};
  return LLVMBuildInBoundsGEP2(c->b, t, base, idx, field < 0 ? 2 : 3, "");
}

static bool emit_step(cg_ctx *c, ir_diag *d) {
  int ncalls = 0, nslots = 0, maxslots = 2;
  for (int i = 0; i < c->nkernels; i++) {
    if (c->kernels[i].extent <= 0) continue;
    int k = c->kernels[i].n->nin + 2;
    ncalls++;
    nslots += k;
    if (k + 1 > maxslots) maxslots = k + 1; /* and the tag */
  }
  LLVMTypeRef t_call = LLVMStructTypeInContext(
      c->ctx, (LLVMTypeRef[]){c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_i32, c->t_i32}, 6, 0);
  LLVMValueRef *fns = malloc((size_t)(ncalls ? ncalls : 1) * sizeof *fns);
  LLVMValueRef *calls = malloc((size_t)(ncalls ? ncalls : 1) * sizeof *calls);
  LLVMValueRef *slots = malloc((size_t)(nslots ? nslots : 1) * sizeof *slots);
  if (!fns || !calls || !slots) {
    free(fns), free(calls), free(slots);
    return ir_diag_set(d, "out of memory"), false;
  }
  for (int i = 0, k = 0, s = 0; i < c->nkernels; i++) {
    cg_kernel_rec *r = &c->kernels[i];
    if (r->extent <= 0) continue;
    const ir_node *n = r->n;
    LLVMValueRef f[] = {cg_i64(c, r->extent),
                        cg_i64(c, r->parallel ? r->grain : 0),
                        cg_i64(c, cg_operand_offset(c->g, n)),
                        cg_i64(c, cg_node_tag(n)),
                        cg_i32(c, s),
                        cg_i32(c, n->nin + 2)};
    fns[k] = r->fn;
    calls[k++] = LLVMConstNamedStruct(t_call, f, 6);
    for (int j = 0; j <= n->nin + 1; j++)
      slots[s++] = cg_i32(c, j == 0 ? n->id : j <= n->nin ? n->in[j - 1] : c->g->nnodes);
  }
  LLVMValueRef g_fns = cg_const_table(c, "kiln_fns", c->t_ptr, fns, (unsigned)ncalls);
  LLVMValueRef g_calls = cg_const_table(c, "kiln_calls", t_call, calls, (unsigned)ncalls);
  LLVMValueRef g_slots = cg_const_table(c, "kiln_slots", c->t_i32, slots, (unsigned)nslots);
  LLVMTypeRef at_fns = LLVMGlobalGetValueType(g_fns), at_calls = LLVMGlobalGetValueType(g_calls);
  LLVMTypeRef at_slots = LLVMGlobalGetValueType(g_slots);
  free(fns), free(calls), free(slots);
  cg_numerics nx;
  if (c->check_numerics && !cg_numerics_begin(c, &nx, d)) return false;

  LLVMTypeRef ft = LLVMFunctionType(c->t_void, &c->t_ptr, 1, 0);
  LLVMValueRef step = LLVMAddFunction(c->mod, "kiln_step", ft);
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, step, "entry"));
  LLVMValueRef bufs = LLVMGetParam(step, 0);
  LLVMValueRef exec = load_buf(c, bufs, c->g->nnodes);
  LLVMValueRef block = LLVMBuildArrayAlloca(c->b, c->t_ptr, cg_i64(c, maxslots), "args");
  if (c->check_numerics) cg_numerics_allocas(c, &nx);
  cg_loop calls_loop;
  LLVMValueRef i = cg_loop_begin(c, &calls_loop, cg_i64(c, 0), cg_i64(c, ncalls));
  LLVMValueRef extent = LLVMBuildLoad2(c->b, c->t_i64, gep2(c, at_calls, g_calls, i, 0), "extent");
  LLVMValueRef grain = LLVMBuildLoad2(c->b, c->t_i64, gep2(c, at_calls, g_calls, i, 1), "grain");
  LLVMValueRef off = LLVMBuildLoad2(c->b, c->t_i64, gep2(c, at_calls, g_calls, i, 2), "offset");
  LLVMValueRef tag = LLVMBuildLoad2(c->b, c->t_i64, gep2(c, at_calls, g_calls, i, 3), "tag");
  LLVMValueRef first = LLVMBuildLoad2(c->b, c->t_i32, gep2(c, at_calls, g_calls, i, 4), "first");
  LLVMValueRef count = LLVMBuildLoad2(c->b, c->t_i32, gep2(c, at_calls, g_calls, i, 5), "count");
  count = LLVMBuildZExt(c->b, count, c->t_i64, "");
  first = LLVMBuildZExt(c->b, first, c->t_i64, "");
  cg_loop fill;
  LLVMValueRef j = cg_loop_begin(c, &fill, cg_i64(c, 0), count);
  LLVMValueRef sl = gep2(c, at_slots, g_slots, LLVMBuildAdd(c->b, first, j, ""), -1);
  sl = LLVMBuildZExt(c->b, LLVMBuildLoad2(c->b, c->t_i32, sl, ""), c->t_i64, "");
  LLVMValueRef buf =
      LLVMBuildLoad2(c->b, c->t_ptr, LLVMBuildGEP2(c->b, c->t_ptr, bufs, &sl, 1, ""), "");
  LLVMBuildStore(c->b, buf, LLVMBuildGEP2(c->b, c->t_ptr, block, &j, 1, ""));
  cg_loop_end(c, &fill);
  LLVMValueRef one = cg_i64(c, 1);
  LLVMValueRef in0 = LLVMBuildGEP2(c->b, c->t_ptr, block, &one, 1, "");
  LLVMValueRef p0 = LLVMBuildLoad2(c->b, c->t_ptr, in0, "");
  LLVMBuildStore(c->b, LLVMBuildGEP2(c->b, c->t_i8, p0, &off, 1, ""), in0);
  LLVMBuildStore(c->b, LLVMBuildIntToPtr(c->b, tag, c->t_ptr, ""),
                 LLVMBuildGEP2(c->b, c->t_ptr, block, &count, 1, ""));
  LLVMValueRef fn = LLVMBuildLoad2(c->b, c->t_ptr, gep2(c, at_fns, g_fns, i, -1), "fn");
  LLVMBasicBlockRef par = LLVMAppendBasicBlockInContext(c->ctx, step, "parallel");
  LLVMBasicBlockRef direct = LLVMAppendBasicBlockInContext(c->ctx, step, "direct");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, step, "next");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, grain, cg_i64(c, 0), ""), direct, par);
  LLVMPositionBuilderAtEnd(c->b, par);
  LLVMTypeRef pf_params[] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_i64};
  LLVMValueRef pargs[] = {exec, fn, block, extent, grain};
  cg_call(c, "rt_parallel_for", c->t_void, pf_params, 5, pargs);
  LLVMBuildBr(c->b, next);
  LLVMPositionBuilderAtEnd(c->b, direct);
  LLVMValueRef dargs[] = {block, cg_i64(c, 0), extent};
  LLVMBuildCall2(c->b, c->t_kernel, fn, dargs, 3, "");
  LLVMBuildBr(c->b, next);
  LLVMPositionBuilderAtEnd(c->b, next);
  if (c->check_numerics) cg_numerics_check(c, &nx, i, block, exec);
  cg_loop_end(c, &calls_loop);
  LLVMBuildRetVoid(c->b);
  return true;
}

int64_t cg_operand_offset(const ir_graph *g, const ir_node *n) {
  if (n->op != IR_OP_SLICE || !ir_type_numel(&n->type)) return 0;
  const ir_type *xt = &g->nodes[n->in[0]]->type;
  return ir_slice_base(xt, &n->attrs[0].ints) * (int64_t)ir_dtype_size(xt->dtype);
}

size_t cg_sig_put(char *buf, size_t len, size_t k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(k < len ? buf + k : NULL, k < len ? len - k : 0, fmt, ap);
  va_end(ap);
  return k + (w > 0 ? (size_t)w : 0);
}

size_t cg_sig_attr(char *buf, size_t len, size_t k, const ir_attr *a) {
  switch (a->kind) {
  case IR_ATTR_INT: return cg_sig_put(buf, len, k, " i%lld", (long long)a->i);
  case IR_ATTR_FLOAT: return cg_sig_put(buf, len, k, " f%a", a->f);
  case IR_ATTR_BOOL: return cg_sig_put(buf, len, k, " b%d", a->b);
  case IR_ATTR_STR: return cg_sig_put(buf, len, k, " s%zu:%s", strlen(a->s), a->s);
  case IR_ATTR_DTYPE: return cg_sig_put(buf, len, k, " d%d", (int)a->dt);
  case IR_ATTR_INTS:
    k = cg_sig_put(buf, len, k, " [");
    for (int j = 0; j < a->ints.n; j++)
      k = cg_sig_put(buf, len, k, "%lld,", (long long)a->ints.v[j]);
    return k;
  }
  return k;
}

/* What makes two nodes' kernels interchangeable: op, result and operand
 * types, attributes. Left out, because they arrive as data: a slice's
 * starts (they only move its operand pointer, cg_operand_offset) and a
 * dropout's key (the kernel tag, as is the node id of error records). An
 * unrolled model otherwise compiles one kernel per time step for each.
 * snprintf-style: returns the length it needed (a loop's body makes it
 * long: the body is the kernel). */
static size_t node_signature(const ir_graph *g, const ir_node *n, char *buf, size_t len) {
  char t[IR_TYPE_STRLEN];
  size_t k = cg_sig_put(buf, len, 0, "%d %s", (int)n->op, ir_type_str(&n->type, t, sizeof t));
  for (int i = 0; i < n->nin; i++)
    k = cg_sig_put(buf, len, k, " %s", ir_type_str(&g->nodes[n->in[i]]->type, t, sizeof t));
  const ir_op_info *info = ir_op_get(n->op);
  for (int i = 0; n->op != IR_OP_SLICE && i < info->nattrs; i++) {
    if (n->op == IR_OP_DROPOUT && strcmp(info->attrs[i].name, "key") == 0) continue;
    k = cg_sig_attr(buf, len, k, &n->attrs[i]);
  }
  if (n->op == IR_OP_LOOP)
    k += cg_loop_signature(n, k < len ? buf + k : NULL, k < len ? len - k : 0);
  return k;
}

/* Kernels already emitted for a signature: records [first, first + count).
 * Kept in an open-addressing table by the signature's hash, so that a graph
 * of many distinct kernels does not compare each node with all of them. */
typedef struct sig_entry {
  char *sig;
  uint64_t hash;
  int first, count;
} sig_entry;

typedef struct sig_table {
  sig_entry *v; /* cap slots; sig NULL = empty */
  size_t n, cap;
} sig_table;

static sig_entry *sig_slot(const sig_table *t, const char *sig, uint64_t h) {
  size_t i = (size_t)h & (t->cap - 1);
  while (t->v[i].sig && (t->v[i].hash != h || strcmp(t->v[i].sig, sig) != 0))
    i = (i + 1) & (t->cap - 1);
  return &t->v[i];
}

/* Room for one more entry (load at most 1/2); false when out of memory. */
static bool sig_reserve(sig_table *t) {
  if (2 * (t->n + 1) <= t->cap) return true;
  size_t cap = t->cap ? 2 * t->cap : 64;
  sig_table g = {calloc(cap, sizeof *g.v), t->n, cap};
  if (!g.v) return false;
  for (size_t i = 0; i < t->cap; i++)
    if (t->v[i].sig) *sig_slot(&g, t->v[i].sig, t->v[i].hash) = t->v[i];
  free(t->v);
  *t = g;
  return true;
}

static void sig_free(sig_table *t) {
  for (size_t i = 0; i < t->cap; i++)
    free(t->v[i].sig);
  free(t->v);
}

/* Emits n's kernels, or reuses those of an earlier node with the same
 * signature (appending records that point at n's buffers). */
static bool lower_node(cg_ctx *c, const ir_node *n, sig_table *sigs, ir_diag *d) {
  char stack[1024], *sig = stack;
  size_t need = node_signature(c->g, n, stack, sizeof stack);
  if (need >= sizeof stack && (sig = malloc(need + 1)) != NULL)
    node_signature(c->g, n, sig, need + 1);
  /* Out of memory for a long signature: the node gets kernels of its own. */
  bool shareable = sig != NULL && sig_reserve(sigs);
  uint64_t h = shareable ? ir_str_hash(sig) : 0;
  sig_entry *e = shareable ? sig_slot(sigs, sig, h) : NULL;
  if (e && e->sig) {
    if (sig != stack) free(sig);
    for (int j = 0; j < e->count; j++) {
      if (!reserve(c, 1)) return ir_diag_set(d, "out of memory"), false;
      cg_kernel_rec r = c->kernels[e->first + j];
      r.n = n;
      c->kernels[c->nkernels++] = r;
    }
    return true;
  }
  int before = c->nkernels;
  bool ok = lowerings[n->op](c, n, d);
  if (ok && c->nkernels == before) {
    ir_diag_set(d, "%s: lowering emitted no kernel", ir_op_get(n->op)->name);
    ok = false;
  }
  char *kept = ok && e ? (sig != stack ? sig : strdup(sig)) : NULL;
  if (kept) {
    *e = (sig_entry){kept, h, before, c->nkernels - before};
    sigs->n++;
  } else if (sig != stack) {
    free(sig);
  }
  return ok;
}

LLVMModuleRef cg_lower_graph(LLVMContextRef ctx, const ir_graph *g, const cg_jit_opts *o,
                             ir_diag *d) {
  cg_ctx c = {
      .ctx = ctx, .g = g, .training = o && o->training, .check_numerics = o && o->check_numerics};
  char name[128];
  snprintf(name, sizeof name, "kiln.%s", g->name);
  c.mod = LLVMModuleCreateWithNameInContext(name, ctx);
  c.b = LLVMCreateBuilderInContext(ctx);
  c.t_void = LLVMVoidTypeInContext(ctx);
  c.t_ptr = LLVMPointerTypeInContext(ctx, 0);
  c.t_i1 = LLVMInt1TypeInContext(ctx);
  c.t_i8 = LLVMInt8TypeInContext(ctx);
  c.t_i32 = LLVMInt32TypeInContext(ctx);
  c.t_i64 = LLVMInt64TypeInContext(ctx);
  c.t_f32 = LLVMFloatTypeInContext(ctx);
  c.t_f64 = LLVMDoubleTypeInContext(ctx);
  LLVMTypeRef kp[] = {c.t_ptr, c.t_i64, c.t_i64};
  c.t_kernel = LLVMFunctionType(c.t_void, kp, 3, 0);
  bool ok = true;
  sig_table sigs = {0};
  for (int i = 0; ok && i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_ARG || n->op == IR_OP_PARAM || n->op == IR_OP_CONST) continue;
    ok = lower_node(&c, n, &sigs, d);
  }
  if (ok) ok = emit_step(&c, d);
  sig_free(&sigs);
  LLVMDisposeBuilder(c.b);
  free(c.kernels);
  if (!ok) {
    LLVMDisposeModule(c.mod);
    return NULL;
  }
  return c.mod;
}
