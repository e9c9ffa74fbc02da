/* The compilation pipeline as data: one row per pass, in order (DESIGN.md,
 * "Compilation pipeline"). Each pass lives in its own file. Options are
 * passed explicitly in pass_opts; nothing here reads globals or the
 * environment. */
#ifndef KILN_PASS_PIPELINE_H
#define KILN_PASS_PIPELINE_H

#include <stdio.h>

#include "ir/ir.h"
#include "passes/optimizer.h"

/* What the autodiff and optimizer rows do when the pipeline compiles a
 * training step: the loss is the graph's return 0 when autodiff runs (the
 * caller puts it there); the update is `optim`'s. */
typedef struct pass_train {
  pass_optim optim;
  const char *const *params; /* names of the params to train; NULL = every trainable one */
  int nparams;
} pass_train;

typedef struct pass_opts {
  bool verify_each;        /* ir_verify after every pass */
  const char *stop_after;  /* NULL: run the whole pipeline */
  const char *print_after; /* NULL, a pass name, or "all" */
  FILE *print_to;          /* where --print-after goes (stderr if NULL) */
  const char *print_dir;   /* --print-after-all DIR: NN-PASS.kir per pass run */
  FILE *explain;           /* --explain-fusion: why each softmax stayed unfused */
  bool no_fusion;          /* skip the fuse-* and fold-embedding rows */
  bool no_plan;            /* skip memory planning (one buffer per value) */
  int64_t fold_limit;      /* constant-fold: max elements of a folded value (0: 1 << 22) */
  const pass_train *train; /* NULL: no autodiff/optimizer rows (inference) */
  bool train_only;         /* only the verify and autodiff rows (dump-ir --stage input) */
} pass_opts;

/* A pass rewrites *g in place or replaces it (freeing the old graph); it
 * sets *changed when it changed anything. It must keep the returns (same
 * values, same order), every assign and every argument. */
typedef bool (*pass_fn)(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);

typedef struct pass_info {
  const char *name;
  pass_fn run;
  bool fixpoint; /* re-run until it reports no change */
  const char *why;
  /* Whether the row runs under o (NULL: always). */
  bool (*enabled)(const pass_opts *o);
} pass_info;

/* The pipeline, in order; *n receives its length. */
const pass_info *pass_pipeline(int *n);
const pass_info *pass_lookup(const char *name);

/* Runs the pipeline on *g (opts NULL: defaults). On failure d names the
 * pass and *g is left verified as it was before that pass or freed and
 * replaced as the pass left it; callers destroy *g either way. */
bool pass_run_pipeline(ir_graph **g, const pass_opts *opts, ir_diag *d);

/* The passes (one file each). */
bool pass_verify(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_canonicalize(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_constant_fold(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_cse(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_dce(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_fuse_attention(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_fuse_additive(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_fold_embedding(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_autodiff_step(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_save_attention_stats(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_fold_gemm(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_fuse_loops(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);
bool pass_memory_plan(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d);

#endif
