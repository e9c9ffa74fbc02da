/* JIT lowering of the elementwise and data-movement ops (backend/lower_map.c,
 * lower_elementwise.c, lower_layout.c) against the reference interpreter.
 * Each graph is lowered, verified, run unoptimized on one thread and at O3
 * on a thread pool through a minimal LLJIT built here, with guard bytes
 * around every buffer; every non-leaf node is compared with rt_ref_run. */
#include <criterion/criterion.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cg.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "runtime/philox.h"
#include "runtime/ref.h"

/* ---- a minimal JIT -------------------------------------------------------- */

typedef void (*step_fn)(void **bufs);

static void check_err(LLVMErrorRef e, const char *what) {
  if (!e) return;
  char *m = LLVMGetErrorMessage(e);
  char buf[512];
  snprintf(buf, sizeof buf, "%s", m);
  LLVMDisposeErrorMessage(m);
  cr_assert_fail("%s: %s", what, buf);
}

static void optimize(LLVMModuleRef mod) {
  char *triple = LLVMGetDefaultTargetTriple(), *err = NULL;
  LLVMTargetRef target;
  cr_assert(!LLVMGetTargetFromTriple(triple, &target, &err), "target: %s", err);
  char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
  LLVMTargetMachineRef tm =
      LLVMCreateTargetMachine(target, triple, cpu, feat, LLVMCodeGenLevelAggressive,
                              LLVMRelocDefault, LLVMCodeModelJITDefault);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, dl);
  LLVMSetTarget(mod, triple);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  check_err(LLVMRunPasses(mod, "default<O3>", tm, po), "O3");
  LLVMDisposePassBuilderOptions(po);
  LLVMDisposeTargetData(dl);
  LLVMDisposeTargetMachine(tm);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
}

static LLVMOrcCSymbolMapPair runtime_symbol(LLVMOrcLLJITRef j, const char *name, uintptr_t addr) {
  LLVMJITSymbolFlags f = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
  return (LLVMOrcCSymbolMapPair){LLVMOrcLLJITMangleAndIntern(j, name), {addr, f}};
}

/* Lowers g, verifies, optionally optimizes; *ir gets the module text when
 * non-NULL. Returns kiln_step; *jit must be disposed. */
static step_fn jit_build(const ir_graph *g, bool training, bool opt, LLVMOrcLLJITRef *jit,
                         char **ir) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  ir_diag d = {0};
  cg_jit_opts o = {.training = training};
  LLVMModuleRef mod = cg_lower_graph(LLVMOrcThreadSafeContextGetContext(tsc), g, &o, &d);
  cr_assert(mod, "cg_lower_graph: %s", d.msg);
  char *msg = NULL;
  cr_assert(!LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg), "verify: %s", msg);
  LLVMDisposeMessage(msg);
  if (opt) optimize(mod);
  if (ir) *ir = LLVMPrintModuleToString(mod);
  LLVMOrcLLJITRef j;
  check_err(LLVMOrcCreateLLJIT(&j, NULL), "LLJIT");
  LLVMOrcJITDylibRef main = LLVMOrcLLJITGetMainJITDylib(j);
  LLVMOrcDefinitionGeneratorRef gen;
  check_err(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                &gen, LLVMOrcLLJITGetGlobalPrefix(j), NULL, NULL),
            "process symbols");
  LLVMOrcJITDylibAddGenerator(main, gen);
  /* kiln's runtime is linked statically: not in the dynamic symbol table */
  LLVMOrcCSymbolMapPair syms[] = {
      runtime_symbol(j, "rt_dropout_uniform", (uintptr_t)rt_dropout_uniform),
      runtime_symbol(j, "rt_parallel_for", (uintptr_t)rt_parallel_for),
  };
  check_err(LLVMOrcJITDylibDefine(main, LLVMOrcAbsoluteSymbols(syms, 2)), "symbols");
  check_err(LLVMOrcLLJITAddLLVMIRModule(j, main, LLVMOrcCreateNewThreadSafeModule(mod, tsc)),
            "add module");
  LLVMOrcDisposeThreadSafeContext(tsc);
  LLVMOrcExecutorAddress addr = 0;
  check_err(LLVMOrcLLJITLookup(j, &addr, "kiln_step"), "lookup");
  *jit = j;
  return (step_fn)(uintptr_t)addr;
}

/* ---- inputs and buffers --------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Random values with NaN, infinities, signed zeros, huge values and integer
 * extremes mixed in. No input makes a denormal result: pool workers flush
 * them, the reference does not. */
static void fill(rt_tensor *t) {
  static const double fs[] = {NAN,  INFINITY, -INFINITY, 0.0, -0.0, 1, -1,
                              1e30, -1e30,    1e-3,      0.5, 2,    3};
  static const int64_t is[] = {INT64_MIN, INT64_MAX, INT32_MIN, INT32_MAX, -1, 0, 1, 2, -2};
  int64_t n = rt_numel(t);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = rnd();
    bool special = r % 5 == 0;
    switch (t->type.dtype) {
    case IR_F32:
    case IR_F64:
      rt_set_f(t, i,
               special ? fs[(r >> 8) % 13] : ((double)(r >> 11) / 9007199254740992.0) * 8 - 4);
      break;
    case IR_I32:
    case IR_I64: {
      int64_t v = special ? is[(r >> 8) % 9] : (int64_t)((r >> 8) % 41) - 20;
      if (t->type.dtype == IR_I32) v = (int32_t)(uint32_t)(uint64_t)v;
      rt_set_i(t, i, v);
      break;
    }
    default: rt_set_i(t, i, (int64_t)((r >> 20) & 1)); break;
    }
  }
}

#define GUARD 64
static void *guarded_alloc(size_t bytes, int fillbyte) {
  unsigned char *p = rt_alloc(bytes + 2 * GUARD);
  cr_assert(p);
  memset(p, 0xA5, bytes + 2 * GUARD);
  memset(p + GUARD, fillbyte, bytes);
  return p + GUARD;
}

static bool guards_intact(void *data, size_t bytes) {
  unsigned char *p = (unsigned char *)data - GUARD;
  for (size_t i = 0; i < GUARD; i++)
    if (p[i] != 0xA5 || p[GUARD + bytes + i] != 0xA5) return false;
  return true;
}

/* ---- comparison ----------------------------------------------------------- */

typedef struct run_opts {
  bool training;
  double rtol, atol;            /* floats; 0, 0: bit-exact (any NaN equals any NaN) */
  const rt_tensor *const *args; /* explicit arguments (else random) */
} run_opts;

static void compare(const ir_node *n, const void *got, const rt_tensor *want, const run_opts *o,
                    const char *mode) {
  ir_dtype dt = n->type.dtype;
  int64_t cnt = ir_type_numel(&n->type);
  char ts[IR_TYPE_STRLEN];
  ir_type_str(&n->type, ts, sizeof ts);
  const char *op = ir_op_get(n->op)->name;
  rt_tensor g = {.type = n->type, .data = (void *)got, .bytes = want->bytes};
  if (!ir_dtype_is_float(dt)) {
    for (int64_t i = 0; i < cnt; i++)
      cr_assert_eq(rt_get_i(&g, i), rt_get_i(want, i), "%s %s (%s) [%lld]: got %lld want %lld", op,
                   ts, mode, (long long)i, (long long)rt_get_i(&g, i),
                   (long long)rt_get_i(want, i));
    cr_assert(memcmp(got, want->data, want->bytes) == 0, "%s %s (%s): bytes differ", op, ts, mode);
    return;
  }
  for (int64_t i = 0; i < cnt; i++) {
    double a = rt_get_f(&g, i), b = rt_get_f(want, i);
    bool ok;
    if (isnan(a) || isnan(b))
      ok = isnan(a) && isnan(b);
    else if (o->rtol == 0 && o->atol == 0)
      ok = a == b && signbit(a) == signbit(b);
    else
      ok = a == b || fabs(a - b) <= o->atol + o->rtol * fabs(b);
    cr_assert(ok, "%s %s (%s) [%lld]: got %.17g want %.17g", op, ts, mode, (long long)i, a, b);
  }
}

/* Runs every non-leaf node of g through the JIT in both modes and compares
 * it with the reference. */
static void check(ir_graph *g, const run_opts *o) {
  ir_diag d = {0};
  int *rets = malloc(sizeof(int) * (size_t)g->nnodes), nrets = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_op op = g->nodes[i]->op;
    if (op != IR_OP_ARG && op != IR_OP_CONST && op != IR_OP_PARAM) rets[nrets++] = i;
  }
  ir_set_returns(g, nrets, rets);
  cr_assert(ir_verify(g, &d), "verify: %s", d.msg);
  int nargs = ir_graph_args(g, NULL);
  int *argids = malloc(sizeof(int) * (size_t)(nargs + 1));
  ir_graph_args(g, argids);
  rt_tensor **args = calloc((size_t)nargs + 1, sizeof *args);
  for (int a = 0; a < nargs; a++) {
    args[a] = rt_tensor_create(&g->nodes[argids[a]]->type);
    if (o->args)
      memcpy(args[a]->data, o->args[a]->data, args[a]->bytes);
    else
      fill(args[a]);
  }
  rt_ref_opts ro = {.training = o->training, .seed = 0x1234567890abcdefull, .step = 42};
  rt_tensor **want = calloc((size_t)nrets + 1, sizeof *want);
  cr_assert(rt_ref_run(g, (const rt_tensor *const *)args, NULL, NULL, &ro, want, &d), "ref: %s",
            d.msg);

  for (int mode = 0; mode < 2; mode++) {
    const char *mname = mode ? "O3, 3 threads" : "unoptimized, 1 thread";
    LLVMOrcLLJITRef j;
    step_fn step = jit_build(g, o->training, mode == 1, &j, NULL);
    rt_pool *pool = mode ? rt_pool_create(3) : NULL;
    rt_exec x;
    rt_exec_init(&x, pool, ro.seed, ro.step);
    void **bufs = calloc((size_t)g->nnodes + 1, sizeof *bufs);
    size_t *bytes = calloc((size_t)g->nnodes, sizeof *bytes);
    for (int i = 0, a = 0; i < g->nnodes; i++) {
      const ir_node *n = g->nodes[i];
      bytes[i] = (size_t)ir_type_numel(&n->type) * ir_dtype_size(n->type.dtype);
      bufs[i] = guarded_alloc(bytes[i], 0x5A); /* garbage: an unwritten output shows */
      if (n->op == IR_OP_ARG) memcpy(bufs[i], args[a++]->data, bytes[i]);
      if (n->op == IR_OP_CONST) memcpy(bufs[i], n->data, bytes[i]);
    }
    bufs[g->nnodes] = &x;
    step(bufs);
    for (int r = 0; r < nrets; r++)
      compare(g->nodes[rets[r]], bufs[rets[r]], want[r], o, mname);
    for (int i = 0, a = 0; i < g->nnodes; i++) {
      cr_assert(guards_intact(bufs[i], bytes[i]), "node %d (%s): guard bytes overwritten (%s)", i,
                ir_op_get(g->nodes[i]->op)->name, mname);
      if (g->nodes[i]->op == IR_OP_ARG)
        cr_assert(memcmp(bufs[i], args[a++]->data, bytes[i]) == 0, "argument %d was written", i);
      rt_free((char *)bufs[i] - GUARD);
    }
    free(bufs);
    free(bytes);
    if (pool) rt_pool_destroy(pool);
    LLVMOrcDisposeLLJIT(j);
  }
  for (int r = 0; r < nrets; r++)
    rt_tensor_destroy(want[r]);
  for (int a = 0; a < nargs; a++)
    rt_tensor_destroy(args[a]);
  free(want);
  free(args);
  free(argids);
  free(rets);
}

static const run_opts EXACT = {0};
static const run_opts TOL32 = {.rtol = 2e-5, .atol = 2e-5};
static const run_opts TOL64 = {.rtol = 1e-12, .atol = 1e-12};

/* ---- graph building ------------------------------------------------------- */

#define DIMS(...)                                                                                  \
  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]) { __VA_ARGS__ }

static int arg(ir_graph *g, ir_dtype dt, int rank, const int64_t *dims) {
  ir_type t = ir_type_make(dt, rank, dims);
  char name[16];
  snprintf(name, sizeof name, "a%d", g->nnodes);
  ir_diag d = {0};
  int id = ir_add_arg(g, name, &t, &d);
  cr_assert(id >= 0, "%s", d.msg);
  return id;
}

static int scalar_arg(ir_graph *g, ir_dtype dt) { return arg(g, dt, 0, NULL); }

static int node(ir_graph *g, ir_op op, int nin, const int *in, const ir_attr *attrs) {
  ir_diag d = {0};
  int id = ir_add_node(g, op, nin, in, attrs, NULL, &d);
  cr_assert(id >= 0, "%s: %s", ir_op_get(op)->name, d.msg);
  return id;
}

static int node2(ir_graph *g, ir_op op, int a, int b) {
  return node(g, op, 2, (int[]){a, b}, NULL);
}

static ir_attr ints(int n, int64_t *v) { return (ir_attr){.kind = IR_ATTR_INTS, .ints = {n, v}}; }
static ir_attr aint(int64_t v) { return (ir_attr){.kind = IR_ATTR_INT, .i = v}; }
static ir_attr afloat(double v) { return (ir_attr){.kind = IR_ATTR_FLOAT, .f = v}; }
static ir_attr adtype(ir_dtype v) { return (ir_attr){.kind = IR_ATTR_DTYPE, .dt = v}; }

static ir_graph *graph(void) {
  rng_state = 0x9E3779B97F4A7C15ull;
  return ir_graph_create("t");
}

static const ir_dtype numeric[] = {IR_F32, IR_F64, IR_I32, IR_I64};

/* ---- elementwise ---------------------------------------------------------- */

/* Every binary op on a pair of shapes, in every dtype it admits. */
static void binary_case(int ra, const int64_t *da, int rb, const int64_t *db) {
  for (int k = 0; k < 4; k++) {
    ir_dtype dt = numeric[k];
    ir_graph *g = graph();
    int a = arg(g, dt, ra, da), b = arg(g, dt, rb, db);
    for (ir_op op = IR_OP_ADD; op <= IR_OP_MIN; op++)
      if (op != IR_OP_POW || ir_dtype_is_float(dt)) node2(g, op, a, b);
    /* pow: transcendental, the only inexact one here */
    check(g, dt == IR_F32 ? &TOL32 : dt == IR_F64 ? &TOL64 : &EXACT);
    ir_graph_destroy(g);
  }
}

Test(jit_map, binary_same_shape) {
  binary_case(DIMS(1), DIMS(1));
  binary_case(DIMS(3), DIMS(3));
  binary_case(DIMS(17), DIMS(17));
  binary_case(DIMS(1031), DIMS(1031));
  binary_case(DIMS(7, 1000), DIMS(7, 1000));
}

Test(jit_map, binary_broadcast) {
  binary_case(DIMS(3, 1), DIMS(1, 4));
  binary_case(0, NULL, DIMS(17));
  binary_case(DIMS(1000), 0, NULL);
  binary_case(DIMS(4), DIMS(2, 3, 4));
  binary_case(DIMS(2, 1, 5), DIMS(3, 1));
  binary_case(DIMS(2, 5000), DIMS(5000)); /* long inner dim split into blocks */
  binary_case(DIMS(3, 8192), DIMS(8192)); /* ... into whole blocks */
  binary_case(0, NULL, 0, NULL);
}

Test(jit_map, binary_degenerate) {
  binary_case(DIMS(0, 3), DIMS(3));
  binary_case(DIMS(4, 0), DIMS(4, 1));
  binary_case(DIMS(0), 0, NULL);
}

Test(jit_map, binary_large_parallel) {
  ir_graph *g = graph();
  int a = arg(g, IR_F32, DIMS(1000, 1031)), b = arg(g, IR_F32, DIMS(1000, 1031));
  int r = arg(g, IR_F32, DIMS(1031));
  node2(g, IR_OP_ADD, a, b);
  node2(g, IR_OP_MUL, a, r);
  node2(g, IR_OP_MAX, r, a);
  check(g, &EXACT);
  ir_graph_destroy(g);
}

/* Division and wrap-around at the integer limits, checked by hand too. */
Test(jit_map, integer_edges) {
  static const int64_t av[] = {INT32_MIN, INT32_MIN, 7, -7, 7, -7, 0, INT32_MAX, 5, INT32_MAX};
  static const int64_t bv[] = {-1, 0, 2, 2, -2, -2, 0, -1, 0, 1};
  static const int32_t quot[] = {INT32_MIN, 0, 3, -3, -3, 3, 0, -INT32_MAX, 0, INT32_MAX};
  for (int k = 2; k < 4; k++) {
    ir_dtype dt = numeric[k];
    ir_graph *g = graph();
    int a = arg(g, dt, DIMS(10)), b = arg(g, dt, DIMS(10));
    int q = node2(g, IR_OP_DIV, a, b);
    node2(g, IR_OP_MUL, a, a);
    node2(g, IR_OP_ADD, a, a);
    node2(g, IR_OP_SUB, b, a);
    node(g, IR_OP_NEG, 1, &a, NULL);
    node(g, IR_OP_ABS, 1, &a, NULL);
    node(g, IR_OP_RELU, 1, &b, NULL);
    rt_tensor *ta = rt_tensor_create(&g->nodes[a]->type),
              *tb = rt_tensor_create(&g->nodes[b]->type);
    for (int i = 0; i < 10; i++) {
      int64_t x = av[i], y = bv[i];
      if (dt == IR_I64 && i == 0) x = INT64_MIN; /* MIN / -1 in i64 as well */
      rt_set_i(ta, i, x);
      rt_set_i(tb, i, y);
    }
    const rt_tensor *in[] = {ta, tb};
    run_opts o = {.args = in};
    check(g, &o);
    /* the hand-computed quotients, through the JIT alone */
    LLVMOrcLLJITRef j;
    step_fn step = jit_build(g, false, true, &j, NULL);
    void *bufs[16] = {0};
    cr_assert(g->nnodes < 15);
    for (int i = 0; i < g->nnodes; i++)
      bufs[i] = calloc(10, 8);
    memcpy(bufs[a], ta->data, ta->bytes);
    memcpy(bufs[b], tb->data, tb->bytes);
    rt_exec x;
    rt_exec_init(&x, NULL, 0, 0);
    bufs[g->nnodes] = &x;
    step(bufs);
    for (int i = 0; i < 10; i++) {
      int64_t got = dt == IR_I32 ? ((int32_t *)bufs[q])[i] : ((int64_t *)bufs[q])[i];
      int64_t exp = dt == IR_I64 && i == 0 ? INT64_MIN : quot[i];
      cr_expect_eq(got, exp, "%s div [%d]: got %lld want %lld", ir_dtype_name(dt), i,
                   (long long)got, (long long)exp);
    }
    for (int i = 0; i < g->nnodes; i++)
      free(bufs[i]);
    LLVMOrcDisposeLLJIT(j);
    rt_tensor_destroy(ta);
    rt_tensor_destroy(tb);
    ir_graph_destroy(g);
  }
}

/* max/min keep the reference's choice between +0 and -0 and propagate NaN
 * from either side. */
Test(jit_map, max_min_zeros_nan) {
  static const double av[] = {0.0, -0.0, 0.0, -0.0, NAN, 1, NAN, -INFINITY};
  static const double bv[] = {-0.0, 0.0, 0.0, -0.0, 1, NAN, NAN, INFINITY};
  for (int k = 0; k < 2; k++) {
    ir_graph *g = graph();
    int a = arg(g, numeric[k], DIMS(8)), b = arg(g, numeric[k], DIMS(8));
    int mx = node2(g, IR_OP_MAX, a, b), mn = node2(g, IR_OP_MIN, a, b);
    rt_tensor *ta = rt_tensor_create(&g->nodes[a]->type),
              *tb = rt_tensor_create(&g->nodes[b]->type);
    for (int i = 0; i < 8; i++) {
      rt_set_f(ta, i, av[i]);
      rt_set_f(tb, i, bv[i]);
    }
    const rt_tensor *in[] = {ta, tb};
    run_opts o = {.args = in};
    check(g, &o);
    (void)mx, (void)mn;
    rt_tensor_destroy(ta);
    rt_tensor_destroy(tb);
    ir_graph_destroy(g);
  }
}

Test(jit_map, compare) {
  static const ir_dtype dts[] = {IR_F32, IR_F64, IR_I32, IR_I64, IR_BOOL};
  for (int k = 0; k < 5; k++) {
    ir_graph *g = graph();
    int a = arg(g, dts[k], DIMS(3, 1)), b = arg(g, dts[k], DIMS(1, 4));
    int c = arg(g, dts[k], DIMS(1031)), e = arg(g, dts[k], DIMS(1031));
    for (ir_op op = IR_OP_CMP_LT; op <= IR_OP_CMP_EQ; op++) {
      node2(g, op, a, b);
      node2(g, op, c, e);
      node2(g, op, c, c); /* NaN against itself: false */
    }
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

Test(jit_map, select) {
  static const ir_dtype dts[] = {IR_F32, IR_F64, IR_I32, IR_I64, IR_BOOL};
  for (int k = 0; k < 5; k++) {
    ir_graph *g = graph();
    int c = arg(g, IR_BOOL, DIMS(3, 1)), a = arg(g, dts[k], DIMS(1, 4));
    int b = scalar_arg(g, dts[k]);
    node(g, IR_OP_SELECT, 3, (int[]){c, a, b}, NULL);
    int c2 = arg(g, IR_BOOL, DIMS(17, 33)), a2 = arg(g, dts[k], DIMS(17, 33));
    int b2 = arg(g, dts[k], DIMS(33));
    node(g, IR_OP_SELECT, 3, (int[]){c2, a2, b2}, NULL);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

static void unary_case(ir_dtype dt, int rank, const int64_t *dims) {
  ir_graph *g = graph();
  int x = arg(g, dt, rank, dims);
  bool fl = ir_dtype_is_float(dt);
  for (ir_op op = IR_OP_NEG; op <= IR_OP_GELU; op++)
    if (fl || op <= IR_OP_RELU) node(g, op, 1, &x, NULL);
  if (fl) {
    ir_attr tanh_form = {.kind = IR_ATTR_STR, .s = "tanh"};
    node(g, IR_OP_GELU, 1, &x, &tanh_form);
  }
  check(g, dt == IR_F32 ? &TOL32 : dt == IR_F64 ? &TOL64 : &EXACT);
  ir_graph_destroy(g);
}

Test(jit_map, unary) {
  for (int k = 0; k < 4; k++) {
    unary_case(numeric[k], DIMS(1031));
    unary_case(numeric[k], DIMS(3, 17));
    unary_case(numeric[k], 0, NULL);
    unary_case(numeric[k], DIMS(2, 0));
  }
}

/* The exactly rounded unary ops must match bit for bit in f32 too. */
Test(jit_map, unary_exact) {
  for (int k = 0; k < 2; k++) {
    ir_graph *g = graph();
    int x = arg(g, numeric[k], DIMS(1000));
    static const ir_op ops[] = {IR_OP_NEG, IR_OP_ABS, IR_OP_RELU, IR_OP_SQRT};
    for (int i = 0; i < 4; i++)
      node(g, ops[i], 1, &x, NULL);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

Test(jit_map, cast_every_pair) {
  static const ir_dtype dts[] = {IR_F32, IR_F64, IR_I32, IR_I64, IR_BOOL};
  for (int f = 0; f < 5; f++) {
    ir_graph *g = graph();
    int x = arg(g, dts[f], DIMS(37, 3));
    for (int t = 0; t < 5; t++) {
      ir_attr to = adtype(dts[t]);
      node(g, IR_OP_CAST, 1, &x, &to);
    }
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

/* Saturation and NaN at the conversion limits. */
Test(jit_map, cast_float_limits) {
  static const double v[] = {NAN,          INFINITY,     -INFINITY,     3e9,    -3e9,
                             2147483647.0, 2147483648.0, -2147483649.0, 9.3e18, -9.3e18,
                             -0.0,         0.99,         -0.99,         1e-3};
  for (int k = 0; k < 2; k++) {
    ir_graph *g = graph();
    int x = arg(g, numeric[k], DIMS(14));
    for (int t = 0; t < 5; t++) {
      ir_attr to = adtype((ir_dtype[]){IR_F32, IR_F64, IR_I32, IR_I64, IR_BOOL}[t]);
      node(g, IR_OP_CAST, 1, &x, &to);
    }
    rt_tensor *tx = rt_tensor_create(&g->nodes[x]->type);
    for (int i = 0; i < 14; i++)
      rt_set_f(tx, i, v[i]);
    const rt_tensor *in[] = {tx};
    run_opts o = {.args = in};
    check(g, &o);
    rt_tensor_destroy(tx);
    ir_graph_destroy(g);
  }
}

Test(jit_map, dropout) {
  for (int k = 0; k < 2; k++) {
    for (int training = 0; training < 2; training++) {
      ir_graph *g = graph();
      int x = arg(g, numeric[k], DIMS(1000, 17)), y = arg(g, numeric[k], DIMS(3));
      ir_attr p[2] = {afloat(0.3), aint(-1)}, p0[2] = {afloat(0), aint(-1)};
      ir_attr p9[2] = {afloat(0.9), aint(-1)};
      node(g, IR_OP_DROPOUT, 1, &x, p);
      node(g, IR_OP_DROPOUT, 1, &y, p);
      node(g, IR_OP_DROPOUT, 1, &x, p0);
      node(g, IR_OP_DROPOUT, 1, &y, p9);
      run_opts o = {.training = training};
      check(g, &o);
      ir_graph_destroy(g);
    }
  }
}

Test(jit_map, iota) {
  for (int k = 0; k < 4; k++) {
    ir_graph *g = graph();
    for (int axis = -1; axis < 3; axis++) {
      ir_attr a[3] = {ints(DIMS(3, 4, 5)), aint(axis), adtype(numeric[k])};
      node(g, IR_OP_IOTA, 0, NULL, a);
    }
    ir_attr big[3] = {ints(DIMS(1031)), aint(0), adtype(numeric[k])};
    node(g, IR_OP_IOTA, 0, NULL, big);
    ir_attr wide[3] = {ints(DIMS(3, 9000)), aint(1), adtype(numeric[k])};
    node(g, IR_OP_IOTA, 0, NULL, wide);
    ir_attr blocks[3] = {ints(DIMS(4, 3 * 4096)), aint(1), adtype(numeric[k])};
    node(g, IR_OP_IOTA, 0, NULL, blocks);
    ir_attr empty[3] = {ints(DIMS(3, 0)), aint(0), adtype(numeric[k])};
    node(g, IR_OP_IOTA, 0, NULL, empty);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

Test(jit_map, sequence_mask) {
  for (int k = 0; k < 2; k++) {
    ir_graph *g = graph();
    ir_attr v = afloat(-1e6), inf = afloat(-INFINITY);
    int x = arg(g, numeric[k], DIMS(2, 3, 5));
    int l1 = arg(g, IR_I32, DIMS(2)), l2 = arg(g, IR_I64, DIMS(2, 3)), l0 = scalar_arg(g, IR_I32);
    node(g, IR_OP_SEQUENCE_MASK, 2, (int[]){x, l1}, &v);
    node(g, IR_OP_SEQUENCE_MASK, 2, (int[]){x, l2}, &inf);
    node(g, IR_OP_SEQUENCE_MASK, 2, (int[]){x, l0}, &v);
    int y = arg(g, numeric[k], DIMS(4, 1031)), ly = arg(g, IR_I64, DIMS(4));
    node(g, IR_OP_SEQUENCE_MASK, 2, (int[]){y, ly}, &v);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

/* Lengths within the axis, so the mask has both sides (random ones are
 * mostly out of range). */
Test(jit_map, sequence_mask_lengths) {
  ir_graph *g = graph();
  int x = arg(g, IR_F32, DIMS(6, 2, 7)), l = arg(g, IR_I32, DIMS(6));
  ir_attr v = afloat(-1e6);
  node(g, IR_OP_SEQUENCE_MASK, 2, (int[]){x, l}, &v);
  rt_tensor *tx = rt_tensor_create(&g->nodes[x]->type), *tl = rt_tensor_create(&g->nodes[l]->type);
  fill(tx);
  static const int32_t lens[] = {0, 1, 3, 7, 8, -2};
  memcpy(tl->data, lens, sizeof lens);
  const rt_tensor *in[] = {tx, tl};
  run_opts o = {.args = in};
  check(g, &o);
  rt_tensor_destroy(tx);
  rt_tensor_destroy(tl);
  ir_graph_destroy(g);
}

/* ---- data movement --------------------------------------------------------- */

static const ir_dtype all[] = {IR_F32, IR_F64, IR_I32, IR_I64, IR_BOOL};

Test(jit_map, reshape) {
  for (int k = 0; k < 5; k++) {
    ir_graph *g = graph();
    int x = arg(g, all[k], DIMS(3, 4, 5));
    ir_attr s1 = ints(DIMS(60)), s2 = ints(DIMS(5, 1, 12));
    int r = node(g, IR_OP_RESHAPE, 1, &x, &s1);
    node(g, IR_OP_RESHAPE, 1, &r, &s2);
    int big = arg(g, all[k], DIMS(1031, 9)), e = arg(g, all[k], DIMS(0, 4));
    ir_attr s3 = ints(DIMS(9279)), s4 = ints(DIMS(4, 0));
    node(g, IR_OP_RESHAPE, 1, &big, &s3);
    node(g, IR_OP_RESHAPE, 1, &e, &s4);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

Test(jit_map, transpose) {
  static const int64_t perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                      {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int k = 0; k < 5; k++) {
    ir_graph *g = graph();
    int x = arg(g, all[k], DIMS(3, 4, 5));
    for (int p = 0; p < 6; p++) {
      ir_attr a = ints(3, (int64_t *)perms[p]);
      node(g, IR_OP_TRANSPOSE, 1, &x, &a);
    }
    int m = arg(g, all[k], DIMS(17, 1031)), h = arg(g, all[k], DIMS(2, 3, 4, 5));
    int u = arg(g, all[k], DIMS(1, 7, 1, 3));
    ir_attr t2 = ints(DIMS(1, 0)), t4 = ints(DIMS(3, 1, 0, 2)), tu = ints(DIMS(2, 3, 0, 1));
    node(g, IR_OP_TRANSPOSE, 1, &m, &t2);
    node(g, IR_OP_TRANSPOSE, 1, &h, &t4);
    node(g, IR_OP_TRANSPOSE, 1, &u, &tu);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

Test(jit_map, broadcast_to) {
  for (int k = 0; k < 5; k++) {
    ir_graph *g = graph();
    int a = arg(g, all[k], DIMS(3, 1)), s = scalar_arg(g, all[k]), r = arg(g, all[k], DIMS(4));
    ir_attr t1 = ints(DIMS(2, 3, 4)), t2 = ints(DIMS(5)), t3 = ints(DIMS(1000, 4)),
            t4 = ints(DIMS(3, 0)), t5 = ints(DIMS(3, 1));
    node(g, IR_OP_BROADCAST_TO, 1, &a, &t1);
    node(g, IR_OP_BROADCAST_TO, 1, &s, &t2);
    node(g, IR_OP_BROADCAST_TO, 1, &r, &t3);
    node(g, IR_OP_BROADCAST_TO, 1, &a, &t4);
    node(g, IR_OP_BROADCAST_TO, 1, &a, &t5);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

static void slice(ir_graph *g, int x, int rank, const int64_t *st, const int64_t *en) {
  ir_attr a[2] = {ints(rank, (int64_t *)st), ints(rank, (int64_t *)en)};
  node(g, IR_OP_SLICE, 1, &x, a);
}

Test(jit_map, slice) {
  for (int k = 0; k < 5; k++) {
    ir_graph *g = graph();
    int x = arg(g, all[k], DIMS(5, 6, 7));
    slice(g, x, 3, (int64_t[]){1, 2, 3}, (int64_t[]){4, 6, 5});
    slice(g, x, 3, (int64_t[]){0, 0, 0}, (int64_t[]){5, 6, 7});
    slice(g, x, 3, (int64_t[]){4, 5, 6}, (int64_t[]){5, 6, 7});
    slice(g, x, 3, (int64_t[]){2, 2, 0}, (int64_t[]){3, 2, 7}); /* empty */
    slice(g, x, 3, (int64_t[]){0, 1, 0}, (int64_t[]){5, 5, 7});
    int v = arg(g, all[k], DIMS(10000));
    slice(g, v, 1, (int64_t[]){5}, (int64_t[]){9000});
    slice(g, v, 1, (int64_t[]){9999}, (int64_t[]){10000});
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

Test(jit_map, concat_every_axis) {
  for (int k = 0; k < 5; k++) {
    ir_graph *g = graph();
    int a = arg(g, all[k], DIMS(2, 3, 4));
    int b0 = arg(g, all[k], DIMS(1, 3, 4)), b1 = arg(g, all[k], DIMS(2, 5, 4));
    int b2 = arg(g, all[k], DIMS(2, 3, 1)), z1 = arg(g, all[k], DIMS(2, 0, 4));
    ir_attr ax0 = aint(0), ax1 = aint(1), ax2 = aint(2), axm = aint(-1);
    node(g, IR_OP_CONCAT, 3, (int[]){a, b0, a}, &ax0);
    node(g, IR_OP_CONCAT, 4, (int[]){b1, a, z1, b1}, &ax1);
    node(g, IR_OP_CONCAT, 2, (int[]){b2, a}, &ax2);
    node(g, IR_OP_CONCAT, 1, (int[]){a}, &axm);
    node(g, IR_OP_CONCAT, 2, (int[]){z1, z1}, &ax1);
    check(g, &EXACT);
    ir_graph_destroy(g);
  }
}

/* Blocks of output columns that straddle operand boundaries. */
Test(jit_map, concat_large) {
  ir_graph *g = graph();
  int a = arg(g, IR_F32, DIMS(5000)), b = arg(g, IR_F32, DIMS(3000)), c = arg(g, IR_F32, DIMS(1));
  ir_attr ax0 = aint(0), ax1 = aint(1);
  node(g, IR_OP_CONCAT, 4, (int[]){a, c, b, a}, &ax0);
  int m = arg(g, IR_I64, DIMS(3, 5000)), n = arg(g, IR_I64, DIMS(3, 100));
  node(g, IR_OP_CONCAT, 3, (int[]){n, m, n}, &ax1);
  int r = arg(g, IR_F64, DIMS(300, 40)), s = arg(g, IR_F64, DIMS(300, 9));
  node(g, IR_OP_CONCAT, 2, (int[]){r, s}, &ax1);
  check(g, &EXACT);
  ir_graph_destroy(g);
}

/* More operands than the kernel's first eight preloaded buffers. */
Test(jit_map, concat_many_operands) {
  ir_graph *g = graph();
  int in[11];
  for (int i = 0; i < 11; i++)
    in[i] = arg(g, IR_I32, DIMS(2, i % 3 + 1));
  ir_attr ax1 = aint(1);
  node(g, IR_OP_CONCAT, 11, in, &ax1);
  check(g, &EXACT);
  ir_graph_destroy(g);
}

/* ---- code shape --------------------------------------------------------------- */

/* Returns the text of function `name` in module text ir (malloc'd). */
static char *function_text(const char *ir, const char *name) {
  char head[64];
  snprintf(head, sizeof head, "@%s(", name);
  const char *p = strstr(ir, head);
  cr_assert(p, "no function %s", name);
  const char *e = strstr(p, "\n}\n");
  cr_assert(e);
  return strndup(p, (size_t)(e - p));
}

/* A same-shape add collapses to one flat loop that the vectorizer widens,
 * and a large one goes through the parallel-for. */
Test(jit_map, flat_add_is_vectorized_and_parallel) {
  ir_graph *g = graph();
  int a = arg(g, IR_F32, DIMS(1000, 1031)), b = arg(g, IR_F32, DIMS(1000, 1031));
  int s = node2(g, IR_OP_ADD, a, b);
  int c = arg(g, IR_F32, DIMS(3, 17));
  int t = node2(g, IR_OP_ADD, c, c);
  ir_set_returns(g, 1, &s);
  LLVMOrcLLJITRef j;
  char *ir = NULL;
  jit_build(g, false, true, &j, &ir);
  char name[32];
  snprintf(name, sizeof name, "kiln_k%d", s);
  char *k = function_text(ir, name);
  cr_expect(strstr(k, "x float>"), "no vector code in\n%s", k);
  cr_expect(!strstr(k, "udiv"), "flat kernel still decodes a multi-index:\n%s", k);
  char *step = function_text(ir, "kiln_step");
  cr_expect(strstr(step, "rt_parallel_for"), "large add is not parallel:\n%s", step);
  snprintf(name, sizeof name, "@kiln_k%d,", t);
  cr_expect(!strstr(step, name), "small add should be called directly:\n%s", step);
  free(k);
  free(step);
  LLVMDisposeMessage(ir);
  LLVMOrcDisposeLLJIT(j);
  ir_graph_destroy(g);
}
