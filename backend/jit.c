/* The JIT driver: graph -> verified, O3-optimized LLVM module for the host
 * CPU -> object file (kept in the on-disk cache) -> ORC LLJIT -> kiln_step.
 * Cache hits and misses link through the same path (an object file), so a
 * cached object behaves exactly like a fresh one. Every LLVM object and
 * error is released on every path; the only process-wide state is the
 * one-time native target initialisation. */
#include <cblas.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cg.h"
#include "backend/jit.h"
#include "backend/jit_internal.h"
#include "backend/kern_additive.h"
#include "backend/kern_attention.h"
#include "backend/kern_embed.h"
#include "ir/sha256.h"
#include "runtime/exec.h"
#include "runtime/philox.h"

#if __has_include(<llvm/Config/llvm-config.h>)
#include <llvm/Config/llvm-config.h>
#endif
#ifndef LLVM_VERSION_STRING
#define LLVM_VERSION_STRING "19"
#endif
/* Bumped when generated code changes for the same graph (faster kernels,
 * a new step layout), so objects cached by an older kiln are not reused. */
#define CG_CODEGEN_REVISION 6
#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif

/* Functions generated code calls that the process-symbol generator cannot
 * find: kiln's own live in static libraries, so they are not in the
 * executable's dynamic symbol table. The BLAS entries make sure libopenblas
 * is linked in whenever the JIT is, so the generator finds every other
 * cblas_* too. */
typedef void (*cg_any_fn)(void);
static const struct {
  const char *name;
  cg_any_fn addr;
} runtime_symbols[] = {
    {"rt_parallel_for", (cg_any_fn)rt_parallel_for},
    {"rt_exec_error", (cg_any_fn)rt_exec_error},
    {"rt_dropout_uniform", (cg_any_fn)rt_dropout_uniform},
    {"cblas_sgemm", (cg_any_fn)cblas_sgemm},
    {"cblas_dgemm", (cg_any_fn)cblas_dgemm},
    {"kiln_attention_f32", (cg_any_fn)kiln_attention_f32},
    {"kiln_attention_f64", (cg_any_fn)kiln_attention_f64},
    {"kiln_attention_grad_f32", (cg_any_fn)kiln_attention_grad_f32},
    {"kiln_attention_grad_f64", (cg_any_fn)kiln_attention_grad_f64},
    {"kiln_additive_fwd", (cg_any_fn)kiln_additive_fwd},
    {"kiln_additive_bwd", (cg_any_fn)kiln_additive_bwd},
    {"kiln_embed_fwd", (cg_any_fn)kiln_embed_fwd},
    {"kiln_embed_bwd", (cg_any_fn)kiln_embed_bwd},
};
#define NUM_RUNTIME_SYMBOLS (sizeof runtime_symbols / sizeof runtime_symbols[0])

struct cg_jit {
  LLVMOrcThreadSafeContextRef tsc; /* NULL after a cache hit (nothing lowered) */
  LLVMOrcLLJITRef jit;
  cg_step_fn step;
  char session_error[256]; /* first error ORC reported asynchronously */
};

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static bool llvm_ready;

static void init_llvm(void) {
  llvm_ready = !LLVMInitializeNativeTarget() && !LLVMInitializeNativeAsmPrinter();
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Consumes err, copying its message into d after `what`. */
static void set_llvm_error(ir_diag *d, const char *what, LLVMErrorRef err) {
  char *msg = LLVMGetErrorMessage(err);
  ir_diag_set(d, "%s: %s", what, msg ? msg : "(no message)");
  LLVMDisposeErrorMessage(msg);
}

static void set_llvm_message(ir_diag *d, const char *what, char *msg) {
  ir_diag_set(d, "%s: %s", what, msg ? msg : "(no message)");
  if (msg) LLVMDisposeMessage(msg);
}

/* ---- the cache key ------------------------------------------------------ */

void cg_jit_cache_key(const ir_graph *g, const cg_jit_opts *o, char out[65]) {
  ir_print_opts po = {.locs = false, .elide_consts = 0};
  char *text = ir_print_str(g, &po);
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  unsigned maj = 0, min = 0, patch = 0;
  LLVMGetVersion(&maj, &min, &patch);
  /* Separators keep adjacent fields from running into each other. */
  char tail[256];
  int nt =
      snprintf(tail, sizeof tail,
               "\n--\ntraining=%d\nnumerics=%d\ncpu=%s\nkiln=%s\ncodegen=%d\nllvm=%s/%u.%u.%u\n",
               o && o->training, o && o->check_numerics, cpu ? cpu : "", KILN_VERSION,
               CG_CODEGEN_REVISION, LLVM_VERSION_STRING, maj, min, patch);
  size_t ltext = text ? strlen(text) : 0, lfeat = features ? strlen(features) : 0;
  size_t ltail = nt > 0 ? (size_t)nt < sizeof tail ? (size_t)nt : sizeof tail - 1 : 0;
  char *buf = text ? malloc(ltext + ltail + lfeat + 1) : NULL;
  if (buf) {
    memcpy(buf, text, ltext);
    memcpy(buf + ltext, tail, ltail);
    memcpy(buf + ltext + ltail, features ? features : "", lfeat);
    uint8_t h[32];
    ir_sha256(buf, ltext + ltail + lfeat, h);
    for (int i = 0; i < 32; i++)
      snprintf(out + 2 * i, 3, "%02x", h[i]);
  } else {
    out[0] = 0; /* out of memory: the caller compiles without the cache */
  }
  out[64] = 0;
  free(buf);
  free(text);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
}

/* ---- lowering, optimization, code generation ---------------------------- */

static LLVMTargetMachineRef host_target_machine(ir_diag *d) {
  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  LLVMTargetRef target = NULL;
  LLVMTargetMachineRef tm = NULL;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    set_llvm_message(d, "codegen: no LLVM target for the host", msg);
    msg = NULL;
  } else {
    /* PIC: JIT memory can sit anywhere in the address space, so the object
     * must not need 32-bit absolute relocations. */
    tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                 LLVMRelocPIC, LLVMCodeModelSmall);
    if (!tm) ir_diag_set(d, "codegen: cannot create a target machine for %s (%s)", triple, cpu);
  }
  if (msg) LLVMDisposeMessage(msg);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return tm;
}

/* Lowers, verifies and optimizes g into a module of ctx; NULL with d set.
 * Phase times go to st when non-NULL. */
static LLVMModuleRef build_module(LLVMContextRef ctx, LLVMTargetMachineRef tm, const ir_graph *g,
                                  const cg_jit_opts *o, cg_jit_stats *st, ir_diag *d) {
  double t0 = now_ms();
  LLVMModuleRef mod = cg_lower_graph(ctx, g, o, d);
  if (!mod) return NULL;
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    ir_diag_set(d, "internal: invalid LLVM module for @%s: %s", g->name, msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(mod);
    return NULL;
  }
  if (msg) LLVMDisposeMessage(msg);
  double t1 = now_ms();

  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, dl);
  LLVMDisposeTargetData(dl);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
  LLVMPassBuilderOptionsSetLoopInterleaving(po, 1);
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
  LLVMErrorRef err = LLVMRunPasses(mod, "default<O3>", tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (err) {
    set_llvm_error(d, "optimize", err);
    LLVMDisposeModule(mod);
    return NULL;
  }
  if (st) {
    st->lower_ms = t1 - t0;
    st->optimize_ms = now_ms() - t1;
  }
  return mod;
}

static LLVMMemoryBufferRef emit(LLVMTargetMachineRef tm, LLVMModuleRef mod,
                                LLVMCodeGenFileType kind, ir_diag *d) {
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, kind, &msg, &buf)) {
    set_llvm_message(d, "codegen", msg);
    return NULL;
  }
  if (msg) LLVMDisposeMessage(msg);
  return buf;
}

/* ---- linking ------------------------------------------------------------ */

static void report_session_error(void *ctx, LLVMErrorRef err) {
  cg_jit *j = ctx;
  char *msg = LLVMGetErrorMessage(err);
  if (!j->session_error[0] && msg) snprintf(j->session_error, sizeof j->session_error, "%s", msg);
  LLVMDisposeErrorMessage(msg);
}

static void dispose_lljit(cg_jit *j) {
  if (!j->jit) return;
  LLVMErrorRef err = LLVMOrcDisposeLLJIT(j->jit);
  if (err) LLVMConsumeError(err);
  j->jit = NULL;
  j->step = NULL;
}

static LLVMErrorRef define_runtime_symbols(LLVMOrcLLJITRef jit, LLVMOrcJITDylibRef jd) {
  LLVMOrcCSymbolMapPair pairs[NUM_RUNTIME_SYMBOLS];
  for (size_t i = 0; i < NUM_RUNTIME_SYMBOLS; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, runtime_symbols[i].name);
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)runtime_symbols[i].addr;
    pairs[i].Sym.Flags.GenericFlags =
        LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, NUM_RUNTIME_SYMBOLS);
  LLVMErrorRef err = LLVMOrcJITDylibDefine(jd, mu);
  if (err) LLVMOrcDisposeMaterializationUnit(mu);
  return err;
}

/* A fresh LLJIT holding obj (ownership taken), with kiln_step resolved.
 * False with d set and j->jit NULL on failure. */
static bool link_object(cg_jit *j, LLVMMemoryBufferRef obj, ir_diag *d) {
  j->session_error[0] = 0;
  LLVMOrcJITTargetMachineBuilderRef jtmb = NULL;
  LLVMErrorRef err = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
  if (err) {
    LLVMDisposeMemoryBuffer(obj);
    set_llvm_error(d, "link: cannot detect the host", err);
    return false;
  }
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
  err = LLVMOrcCreateLLJIT(&j->jit, builder);
  if (err) {
    j->jit = NULL;
    LLVMDisposeMemoryBuffer(obj);
    set_llvm_error(d, "link: cannot create the JIT", err);
    return false;
  }
  LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->jit),
                                          report_session_error, j);
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  LLVMOrcDefinitionGeneratorRef gen = NULL;
  err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
      &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
  const char *what = "link: process symbols";
  if (!err) {
    LLVMOrcJITDylibAddGenerator(jd, gen);
    what = "link: runtime symbols";
    err = define_runtime_symbols(j->jit, jd);
  }
  if (!err) {
    what = "link: cannot load the object file";
    err = LLVMOrcLLJITAddObjectFile(j->jit, jd, obj);
    obj = NULL; /* the JIT owns it now, even on failure */
  }
  LLVMOrcExecutorAddress addr = 0;
  if (!err) {
    what = "link: kiln_step";
    err = LLVMOrcLLJITLookup(j->jit, &addr, "kiln_step");
  }
  if (obj) LLVMDisposeMemoryBuffer(obj);
  if (!err && !addr) {
    ir_diag_set(d, "link: kiln_step resolved to address 0");
    dispose_lljit(j);
    return false;
  }
  if (err) {
    set_llvm_error(d, what, err);
    if (d && j->session_error[0]) {
      size_t n = strlen(d->msg);
      snprintf(d->msg + n, sizeof d->msg - n, " (%s)", j->session_error);
    }
    dispose_lljit(j);
    return false;
  }
  j->step = (cg_step_fn)(uintptr_t)addr;
  return true;
}

/* ---- the driver --------------------------------------------------------- */

/* Lowers, optimizes and emits g into an object file (a fresh context in
 * j->tsc); NULL with d set. */
static LLVMMemoryBufferRef compile_object(cg_jit *j, const ir_graph *g, const cg_jit_opts *o,
                                          cg_jit_stats *st, ir_diag *d) {
  if (!j->tsc) j->tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(j->tsc);
  LLVMTargetMachineRef tm = host_target_machine(d);
  if (!tm) return NULL;
  LLVMModuleRef mod = build_module(ctx, tm, g, o, st, d);
  LLVMMemoryBufferRef obj = NULL;
  if (mod) {
    double t0 = now_ms();
    obj = emit(tm, mod, LLVMObjectFile, d);
    st->codegen_ms = now_ms() - t0;
    LLVMDisposeModule(mod);
  }
  LLVMDisposeTargetMachine(tm);
  return obj;
}

cg_jit *cg_jit_compile(const ir_graph *g, const cg_jit_opts *o, cg_jit_stats *stats, ir_diag *d) {
  static const cg_jit_opts defaults = {0};
  if (!o) o = &defaults;
  cg_jit_stats local;
  cg_jit_stats *st = stats ? stats : &local;
  memset(st, 0, sizeof *st);
  pthread_once(&llvm_once, init_llvm);
  if (!llvm_ready) {
    ir_diag_set(d, "jit: LLVM's native target is not available");
    return NULL;
  }
  cg_jit *j = calloc(1, sizeof *j);
  if (!j) {
    ir_diag_set(d, "jit: out of memory");
    return NULL;
  }
  cg_jit_cache_key(g, o, st->key);
  char *dir = o->no_cache || !st->key[0] ? NULL : cg_jit_cache_dir(o->cache_dir);

  if (dir) {
    double t0 = now_ms();
    size_t len = 0;
    void *bytes = cg_jit_cache_read(dir, st->key, &len);
    if (bytes) {
      LLVMMemoryBufferRef obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(bytes, len, st->key);
      free(bytes);
      /* A cached object the linker refuses is treated as a miss: it is
       * recompiled below and the file replaced. */
      ir_diag ignored = {0};
      if (link_object(j, obj, &ignored)) {
        st->cache_hit = true;
        st->link_ms = now_ms() - t0;
        free(dir);
        return j;
      }
    }
  }

  LLVMMemoryBufferRef obj = compile_object(j, g, o, st, d);
  if (!obj) {
    free(dir);
    cg_jit_destroy(j);
    return NULL;
  }
  if (dir) {
    (void)cg_jit_cache_write(dir, st->key, LLVMGetBufferStart(obj), LLVMGetBufferSize(obj));
    free(dir);
  }
  double t0 = now_ms();
  if (!link_object(j, obj, d)) {
    cg_jit_destroy(j);
    return NULL;
  }
  st->link_ms = now_ms() - t0;
  return j;
}

cg_step_fn cg_jit_step(const cg_jit *j) { return j ? j->step : NULL; }

void cg_jit_destroy(cg_jit *j) {
  if (!j) return;
  dispose_lljit(j);
  if (j->tsc) LLVMOrcDisposeThreadSafeContext(j->tsc);
  free(j);
}

char *cg_jit_dump(const ir_graph *g, const cg_jit_opts *o, const char *stage, ir_diag *d) {
  bool asm_ = stage && strcmp(stage, "asm") == 0;
  if (!stage || (!asm_ && strcmp(stage, "llvm") != 0)) {
    ir_diag_set(d, "dump: unknown stage '%s' (expected llvm or asm)", stage ? stage : "(null)");
    return NULL;
  }
  pthread_once(&llvm_once, init_llvm);
  if (!llvm_ready) {
    ir_diag_set(d, "jit: LLVM's native target is not available");
    return NULL;
  }
  LLVMTargetMachineRef tm = host_target_machine(d);
  if (!tm) return NULL;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = build_module(ctx, tm, g, o, NULL, d);
  char *out = NULL;
  if (mod && !asm_) {
    char *text = LLVMPrintModuleToString(mod);
    out = strdup(text);
    LLVMDisposeMessage(text);
    if (!out) ir_diag_set(d, "dump: out of memory");
  } else if (mod) {
    LLVMMemoryBufferRef buf = emit(tm, mod, LLVMAssemblyFile, d);
    if (buf) {
      size_t n = LLVMGetBufferSize(buf);
      out = malloc(n + 1);
      if (out) {
        memcpy(out, LLVMGetBufferStart(buf), n);
        out[n] = 0;
      } else {
        ir_diag_set(d, "dump: out of memory");
      }
      LLVMDisposeMemoryBuffer(buf);
    }
  }
  if (mod) LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  return out;
}
