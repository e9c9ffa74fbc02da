/* kiln_compile.h — the public compile: runs the pass pipeline on a DSL graph
 * (canonicalize, constant folding, CSE, fusion, memory planning; `kiln
 * passes` lists it), then prepares the result to run on the chosen backend.
 * It lives in driver/, the layer that may run passes and then compile.
 * Ownership as in kiln.h: create/destroy pairs; messages are values. */
#ifndef KILN_COMPILE_H
#define KILN_COMPILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <kiln/kiln.h>
#include <kiln/kiln_run.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The pipeline's options, the C side of the CLI's pipeline flags. Zero (or
 * kl_compile_opts.passes NULL) means the defaults: every pass on,
 * verification after each pass only in kiln's debug builds. */
struct kl_pass_options {
  bool no_fusion;   /* --no-fusion: skip the fuse-* and fold-embedding passes */
  bool no_plan;     /* --no-plan: no memory plan (one buffer per value) */
  bool verify_each; /* --verify-each: verify the graph after every pass */
  /* --fold-limit: constant-fold values of at most this many elements;
   * 0 = 4194304 (2^22). */
  int64_t fold_limit;
  /* --print-after: a pass name (see `kiln passes`) or "all"; the IR text
   * after that pass is written to print_to (NULL = stderr). NULL: none. */
  const char *print_after;
  FILE *print_to;
  /* --stop-after: run the pipeline up to this pass only (NULL: all). */
  const char *stop_after;
  /* --explain-fusion: why each softmax was or was not fused (NULL: not). */
  FILE *explain_fusion;
};

/* Runs the pipeline on a copy of g with opts->passes (NULL: defaults), then
 * verifies and prepares the result to run (the memory guard of
 * opts->max_memory applies to it); opts NULL = {0}: the reference backend.
 * A graph holding a DSL builder error is refused with that error, an
 * unknown pass name in the options with a message naming the option. The
 * program keeps its own copy, so g may be destroyed afterwards.
 * Parameters start from their `init` attribute (seeded; kl_param_init)
 * until set with kl_program_set_param. kl_program_stats(p)->regions counts
 * the fused regions. NULL with *err (malloc'd; caller frees) on failure. */
kl_program *kl_compile(const kl_graph *g, const kl_compile_opts *opts, char **err);

#ifdef __cplusplus
}
#endif
#endif
