/* The backend's own compile entry, which skips the pass pipeline: it runs
 * an IR graph exactly as given (tests of kernels and lowering, the CLI's
 * decoders, benches of unfused baselines). Internal: users call kl_compile
 * (kiln_compile.h), which runs the passes first. */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include "backend/kiln_run.h"
#include "ir/ir.h"

/* Verifies g and prepares it to run as it is: no pass runs, opts->passes
 * is ignored. Otherwise as kl_compile: a graph holding a DSL builder error
 * is refused with that error, one over opts->max_memory with the memory
 * guard's message; the program keeps its own copy of g. NULL with *err
 * (malloc'd) on failure; opts NULL = {0} (reference backend). */
kl_program *kl_compile_unoptimized(const ir_graph *g, const kl_compile_opts *opts, char **err);

#endif
