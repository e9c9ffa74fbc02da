/* The compilation pipeline as data: one row per pass, in order (DESIGN.md,
 * "Compilation pipeline"). Each pass lives in its own file. Options are
 * passed explicitly; nothing here reads globals or the environment. */
#ifndef KILN_PASS_PIPELINE_H
#define KILN_PASS_PIPELINE_H

#include "ir/ir.h"

/* A pass rewrites *g in place or replaces it (freeing the old graph); it
 * sets *changed when it changed anything. */
typedef bool (*pass_fn)(ir_graph **g, bool *changed, ir_diag *d);

typedef struct pass_info {
  const char *name;
  pass_fn run;
  bool fixpoint; /* re-run until it reports no change */
  const char *why;
} pass_info;

/* The pipeline, in order; *n receives its length. */
const pass_info *pass_pipeline(int *n);
const pass_info *pass_lookup(const char *name);

typedef struct pass_opts {
  bool verify_each;        /* ir_verify after every pass */
  const char *stop_after;  /* NULL: run the whole pipeline */
  const char *print_after; /* NULL, a pass name, or "all" */
  FILE *print_to;          /* where --print-after goes (stderr if NULL) */
} pass_opts;

/* Runs the pipeline on *g. On failure d names the pass. */
bool pass_run_pipeline(ir_graph **g, const pass_opts *opts, ir_diag *d);

/* The passes. */
bool pass_verify(ir_graph **g, bool *changed, ir_diag *d);

#endif
