/* kiln_run.h — the public API of compiled programs: tensors, the compile
 * options, running a program and its parameters. kl_compile itself, which
 * runs the pass pipeline first, is in kiln_compile.h (driver/). Separate
 * from kiln.h because it belongs to the execution layers (backend,
 * runtime) while the DSL belongs to the frontend. Ownership as in kiln.h:
 * create/destroy pairs; returned messages are borrowed. */
#ifndef KILN_RUN_H
#define KILN_RUN_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kl_tensor kl_tensor;
typedef struct kl_pass_options kl_pass_options; /* kiln_compile.h */

/* Same order as kl_dtype in kiln.h and ir_dtype. */
typedef enum {
  KL_TENSOR_F32,
  KL_TENSOR_F64,
  KL_TENSOR_I32,
  KL_TENSOR_I64,
  KL_TENSOR_BOOL
} kl_tensor_dtype;

/* Owned tensor of zeros; NULL for a rank above 6, a negative dim, or no
 * memory. */
kl_tensor *kl_tensor_create(kl_tensor_dtype dt, int rank, const int64_t *dims);
/* Owned tensor holding a copy of `data` (numel elements of dt, row-major). */
kl_tensor *kl_tensor_from(kl_tensor_dtype dt, int rank, const int64_t *dims, const void *data);
void kl_tensor_destroy(kl_tensor *t);
void *kl_tensor_data(kl_tensor *t); /* borrowed, 64-byte aligned */
int64_t kl_tensor_numel(const kl_tensor *t);
int kl_tensor_rank(const kl_tensor *t);
int64_t kl_tensor_dim(const kl_tensor *t, int axis);

typedef enum { KL_BACKEND_REF, KL_BACKEND_JIT } kl_backend;

typedef struct kl_compile_opts {
  kl_backend backend;    /* KL_BACKEND_REF (0) or KL_BACKEND_JIT; opts NULL = {0} */
  uint64_t seed;         /* dropout masks and parameter initialisation */
  bool training;         /* dropout active */
  int threads;           /* JIT: kernel and OpenBLAS threads; 0 = all cores */
  bool no_cache;         /* JIT: bypass the on-disk cache of compiled code */
  const char *cache_dir; /* JIT: NULL = $XDG_CACHE_HOME/kiln or ~/.cache/kiln */
  bool guard_bytes;      /* surround every buffer with guard bytes checked
                            after each run (tests: catches kernel overruns) */
  /* Memory guard: kl_compile refuses a graph whose run needs more bytes
   * than this (arguments + parameters + intermediates, i.e. the planned
   * arena and the values outside it, or on the reference backend the peak
   * of live values + outputs), naming the largest buffers, before
   * allocating any of it. 0 = the machine's physical memory
   * (sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE)); negative = no
   * limit. */
  int64_t max_memory;
  /* After every kernel (on the reference, every node but constants; a
   * fused region counts as one), scan its f32/f64 result for NaN and
   * +-inf and stop the run at the first that holds one, running nothing
   * after it: kl_run, kl_run_into and kl_train_step_run then fail with
   *   "FILE:LINE: %NAME: OP: nan at index 5 [1,2] of f32[2,3] (step 7)"
   * (the node's source location when the IR has one, its value name or
   * %id, op, first bad flat and multi-index, nan/inf/-inf, and
   * kl_program_step of the run); a region adds "; first made in its body
   * by ..." naming the body node, found by re-running the body on the
   * reference. kl_run then returns no outputs (kl_run_into's may hold
   * partial results). On the reference no assign takes effect; compiled
   * code updates parameters in place, so there the assigns before the
   * offender (and an offending assign) have written theirs. JIT: compiled
   * in only when set, and part of the cache key. */
  bool check_numerics;
  /* The pass pipeline's options (kiln_compile.h), read during kl_compile
   * and kl_compile_train only; NULL = the defaults (fusion, folding and
   * memory planning on). */
  const kl_pass_options *passes;
} kl_compile_opts;

/* What compiling cost (JIT): whether the disk cache answered, and the wall
 * time of each phase in milliseconds (zeros for the reference backend);
 * and on both backends the number of fused regions (attention,
 * additive_attention, embed, loop, ...) in the graph compiled. */
typedef struct kl_compile_stats {
  bool cache_hit;
  double lower_ms, optimize_ms, codegen_ms, link_ms, total_ms;
  int regions;
} kl_compile_stats;

typedef struct kl_program kl_program;

void kl_program_destroy(kl_program *p);
/* Statistics of the compile that made p (borrowed). */
const kl_compile_stats *kl_program_stats(const kl_program *p);
/* Copies t into the parameter called `name`. Returns NULL, or a message
 * (borrowed, valid until the next call on p). */
const char *kl_program_set_param(kl_program *p, const char *name, const kl_tensor *t);
/* One input per graph argument, in order; outputs[i] receives an owned
 * tensor per graph output. Returns NULL, or a message naming the input and
 * the types (borrowed, valid until the next call on p). */
const char *kl_run(kl_program *p, kl_tensor *const *inputs, int ninputs, kl_tensor **outputs,
                   int noutputs);

/* Like kl_run, but into caller-owned output tensors of exactly the output
 * types: no allocation, so a loop of runs allocates nothing. */
const char *kl_run_into(kl_program *p, kl_tensor *const *inputs, int ninputs,
                        kl_tensor *const *outputs, int noutputs);

/* ---- parameters ---------------------------------------------------------- */

/* Number of distinct parameters (trainable ones and optimizer state) and
 * the name of the i-th (borrowed), in order of first appearance. */
int kl_program_num_params(const kl_program *p);
const char *kl_program_param_name(const kl_program *p, int i);
/* Copies the parameter called `name` into *out (an owned tensor). Returns
 * NULL, or a message (borrowed, valid until the next call on p). */
const char *kl_program_get_param(kl_program *p, const char *name, kl_tensor **out);
/* Copies every parameter of src whose name and type match one of dst's
 * into dst (an eval program sharing a training step's weights); returns how
 * many were copied. */
int kl_program_copy_params(kl_program *dst, const kl_program *src);
/* The run counter (`step` nodes read it; dropout masks are keyed by it).
 * Starts at 0 and grows by one per run; set it to resume a run. */
uint64_t kl_program_step(const kl_program *p);
void kl_program_set_step(kl_program *p, uint64_t step);

#ifdef __cplusplus
}
#endif
#endif
