/* The JIT driver: lowers a graph (cg_lower_graph), verifies the module,
 * optimizes it with default<O3> for the host CPU, emits an object file,
 * keeps it in an on-disk cache, and links it into an ORC LLJIT with its own
 * ThreadSafeContext. A cache hit loads the object and skips lowering,
 * optimization and code generation. Internal to backend/. */
#ifndef KILN_CG_JIT_H
#define KILN_CG_JIT_H

#include "ir/ir.h"

typedef struct cg_jit cg_jit;
typedef void (*cg_step_fn)(void **bufs);

typedef struct cg_jit_opts {
  bool training;         /* dropout compiled in (else identity) */
  bool check_numerics;   /* kiln_step scans every float result for NaN/inf
                            and returns at the first (cg_lower_graph) */
  bool no_cache;         /* neither read nor write the disk cache */
  const char *cache_dir; /* NULL: $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln */
} cg_jit_opts;

typedef struct cg_jit_stats {
  bool cache_hit;
  double lower_ms, optimize_ms, codegen_ms, link_ms; /* wall time per phase */
  char key[65];                                      /* the cache key (hex SHA-256) */
} cg_jit_stats;

/* Compiles g (verified by the caller). stats may be NULL. NULL with d set on
 * failure (d names the phase; LLVM's own message included). */
cg_jit *cg_jit_compile(const ir_graph *g, const cg_jit_opts *o, cg_jit_stats *stats, ir_diag *d);
cg_step_fn cg_jit_step(const cg_jit *j);
void cg_jit_destroy(cg_jit *j);

/* The optimized module as LLVM IR text (stage "llvm") or the host's
 * assembly (stage "asm") for options o (NULL: all off; the cache fields are
 * ignored); malloc'd, caller frees. NULL with d set. */
char *cg_jit_dump(const ir_graph *g, const cg_jit_opts *o, const char *stage, ir_diag *d);

/* The cache key: SHA-256 over the printed graph (constants in full, no
 * locations), the options that change code (training, check_numerics; o
 * NULL: off), the host CPU name and features, the kiln, codegen-revision
 * and LLVM versions. */
void cg_jit_cache_key(const ir_graph *g, const cg_jit_opts *o, char out[65]);

#endif
