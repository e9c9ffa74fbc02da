/* The public compile (driver/kiln_compile.h) and kl_compile_train: they run
 * the pass pipeline, so README's attention graph comes out as one fused
 * region whose results equal the unfused graph's on the reference
 * interpreter; kl_pass_options reaches the pipeline (no fusion, stop
 * early, print and explain to a FILE*); bad options and bad values are
 * refused with messages naming them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/train_internal.h"

/* The graph of examples/attention.c (README), built the same way. */
static kl_graph *attention_graph(void) {
  kl_graph *g = kl_graph_create("attention");
  kl_value q = kl_input(g, "q", KL_F32, KL_SHAPE(2, 4, 8));
  kl_value kv = kl_input(g, "kv", KL_F32, KL_SHAPE(2, 6, 8));
  kl_value len = kl_input(g, "len", KL_I32, KL_SHAPE(2));
  kl_output(kl_attention(q, kv, kv, len));
  return g;
}

/* Runs p on the example's inputs; returns the owned output. */
static kl_tensor *run_example(kl_program *p) {
  float x[2 * 6 * 8];
  for (int i = 0; i < 2 * 6 * 8; i++)
    x[i] = (float)(i % 7) * 0.25f - 0.5f;
  int32_t lens[2] = {2, 6};
  kl_tensor *out = NULL, *in[3] = {kl_tensor_from(KL_TENSOR_F32, 3, (int64_t[]){2, 4, 8}, x),
                                   kl_tensor_from(KL_TENSOR_F32, 3, (int64_t[]){2, 6, 8}, x),
                                   kl_tensor_from(KL_TENSOR_I32, 1, (int64_t[]){2}, lens)};
  const char *msg = kl_run(p, in, 3, &out, 1);
  cr_assert_null(msg, "%s", msg);
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(in[i]);
  return out;
}

/* Compiles g under po (through kl_compile_opts.passes) and returns the
 * program's fused-region count. */
static int regions_with(const kl_graph *g, const kl_pass_options *po) {
  char *err = NULL;
  kl_compile_opts co = {.passes = po};
  kl_program *p = kl_compile(g, &co, &err);
  cr_assert_not_null(p, "%s", err);
  int n = kl_program_stats(p)->regions;
  kl_program_destroy(p);
  return n;
}

/* Compiles g under po with *to (one of po's FILE* fields) set to a memory
 * stream; returns what the pipeline wrote there (malloc'd). */
static char *printed_with(const kl_graph *g, kl_pass_options *po, FILE **to) {
  char *text = NULL;
  size_t len = 0;
  *to = open_memstream(&text, &len);
  cr_assert_not_null(*to);
  regions_with(g, po);
  fclose(*to);
  return text;
}

Test(compile_api, the_readme_attention_compiles_to_one_fused_region_on_both_backends) {
  kl_graph *g = attention_graph();
  char *err = NULL;
  /* The expected values: the unfused graph on the reference interpreter. */
  kl_program *raw = kl_compile_unoptimized(kl_graph_ir(g), NULL, &err);
  cr_assert_not_null(raw, "%s", err);
  cr_expect_eq(kl_program_stats(raw)->regions, 0);
  kl_tensor *want = run_example(raw);
  for (int b = 0; b < 2; b++) {
    kl_compile_opts co = {.backend = b ? KL_BACKEND_JIT : KL_BACKEND_REF, .no_cache = true};
    kl_program *p = kl_compile(g, b ? &co : NULL, &err);
    cr_assert_not_null(p, "%s", err);
    cr_expect_eq(kl_program_stats(p)->regions, 1, "backend %d", b);
    kl_tensor *got = run_example(p);
    const float *w = kl_tensor_data(want), *o = kl_tensor_data(got);
    for (int64_t i = 0; i < kl_tensor_numel(want); i++)
      cr_expect(fabsf(o[i] - w[i]) <= 1e-5f + 1e-5f * fabsf(w[i]),
                "backend %d out[%lld]: fused %.9g, unfused %.9g", b, (long long)i, o[i], w[i]);
    kl_tensor_destroy(got);
    kl_program_destroy(p);
  }
  kl_tensor_destroy(want);
  kl_program_destroy(raw);
  kl_graph_destroy(g);
}

Test(compile_api, options_turn_fusion_off_stop_early_print_and_explain) {
  kl_graph *g = attention_graph();
  cr_expect_eq(
      regions_with(g, &(kl_pass_options){.no_fusion = true, .no_plan = true, .verify_each = true}),
      0);
  /* cse runs before fuse-attention */
  cr_expect_eq(regions_with(g, &(kl_pass_options){.stop_after = "cse"}), 0);
  cr_expect_eq(regions_with(g, &(kl_pass_options){.fold_limit = 1}), 1);
  /* The final IR, after the last pass, holds the attention region. */
  kl_pass_options po = {.print_after = "memory-plan"};
  char *ir = printed_with(g, &po, &po.print_to);
  po = (kl_pass_options){0};
  char *why = printed_with(g, &po, &po.explain_fusion);
  cr_expect(strstr(ir, " = attention(%q, %kv, %kv, %len)") && strstr(ir, "region("), "%s", ir);
  cr_expect(strstr(why, "fuse-attention: softmax") && strstr(why, "fused attention"), "%s", why);
  free(ir);
  free(why);
  kl_graph_destroy(g);
}

Test(compile_api, bad_options_and_bad_graphs_are_refused_with_their_names) {
  kl_graph *g = attention_graph();
  char *err = NULL;
  kl_pass_options bad = {.print_after = "fuse-attn"};
  kl_compile_opts co = {.passes = &bad};
  cr_expect_null(kl_compile(g, &co, &err));
  cr_expect_str_eq(err, "kl_compile: kl_pass_options.print_after: no pass named 'fuse-attn' "
                        "(see 'kiln passes')");
  free(err);
  bad = (kl_pass_options){.stop_after = "all"}; /* "all" is for print_after only */
  cr_expect_null(kl_compile(g, &co, &err));
  cr_expect(err && strstr(err, "kl_pass_options.stop_after: no pass named 'all'"), "%s", err);
  free(err);
  bad = (kl_pass_options){.fold_limit = -1};
  cr_expect_null(kl_compile(g, &co, &err));
  cr_expect(err && strstr(err, "kl_pass_options.fold_limit: -1 is negative"), "%s", err);
  free(err);
  cr_expect_null(kl_compile(NULL, NULL, &err));
  cr_expect_str_eq(err, "kl_compile: no graph");
  free(err);
  kl_graph_destroy(g);

  /* A DSL error surfaces from kl_compile with the caller's file:line. */
  g = kl_graph_create("bad");
  kl_value a = kl_input(g, "a", KL_F32, KL_SHAPE(2, 3));
  kl_output(kl_matmul(a, a));
  cr_expect_null(kl_compile(g, NULL, &err));
  cr_expect(err && strstr(err, "test_compile_api.c:") && strstr(err, "matmul"), "%s", err);
  free(err);
  kl_graph_destroy(g);
}

/* y = x w; loss = mean((y - t)^2) with one trainable w. */
typedef struct lin {
  kl_graph *g;
  kl_value w, loss;
} lin;

static lin lin_graph(void) {
  lin l = {.g = kl_graph_create("lin")};
  kl_value x = kl_input(l.g, "x", KL_F32, KL_SHAPE(4, 2));
  kl_value t = kl_input(l.g, "t", KL_F32, KL_SHAPE(4, 1));
  l.w = kl_param_init(l.g, "w", KL_F32, KL_SHAPE(2, 1), KL_INIT_ZEROS, 0);
  l.loss = kl_mse_loss(kl_matmul(x, l.w), t);
  kl_output(l.loss);
  return l;
}

Test(compile_api, compile_train_takes_dsl_values_and_refuses_foreign_ones) {
  lin l = lin_graph(), other = lin_graph();
  kl_optim_opts opt = {.kind = KL_OPT_SGD, .lr = 0.1};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(l.g, l.loss, &l.w, 1, &opt, NULL, &err);
  cr_assert_not_null(s, "%s", err);
  /* One SGD step from w = 0: w -= lr * dL/dw, dL/dw = 2/4 sum_i x_i (x_i w - t_i). */
  float xs[8] = {1, 0, 0, 1, 1, 1, 2, 1}, ts[4] = {1, 2, 3, 4};
  kl_tensor *in[2] = {kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){4, 2}, xs),
                      kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){4, 1}, ts)};
  double loss;
  const char *msg = kl_train_step_run(s, in, 2, &loss);
  cr_assert_null(msg, "%s", msg);
  cr_expect(fabs(loss - (1 + 4 + 9 + 16) / 4.0) < 1e-6, "loss %g", loss);
  kl_tensor *w = NULL;
  cr_assert_null(kl_program_get_param(kl_train_step_program(s), "w", &w));
  for (int j = 0; j < 2; j++) {
    double g = 0;
    for (int i = 0; i < 4; i++)
      g += 2.0 / 4 * xs[2 * i + j] * (0 - ts[i]);
    cr_expect(fabs(((float *)kl_tensor_data(w))[j] - (-0.1 * g)) < 1e-6, "w[%d]", j);
  }
  kl_tensor_destroy(w);
  kl_tensor_destroy(in[0]), kl_tensor_destroy(in[1]);
  kl_train_step_destroy(s);

  cr_expect_null(kl_compile_train(l.g, other.loss, NULL, 0, &opt, NULL, &err));
  cr_expect_str_eq(err, "kl_compile_train: the loss is not a value of the graph");
  free(err);
  cr_expect_null(kl_compile_train(l.g, l.loss, &other.w, 1, &opt, NULL, &err));
  cr_expect_str_eq(err, "kl_compile_train: parameter 0 is not a value of the graph");
  free(err);
  kl_pass_options bad = {.print_after = "nope"};
  kl_compile_opts co = {.passes = &bad};
  cr_expect_null(kl_compile_train(l.g, l.loss, NULL, 0, &opt, &co, &err));
  cr_expect(err && strstr(err, "kl_compile_train: kl_pass_options.print_after: no pass named"),
            "%s", err);
  free(err);
  kl_graph_destroy(l.g);
  kl_graph_destroy(other.g);
}

Test(compile_api, compile_train_passes_reach_the_training_pipeline) {
  lin l = lin_graph();
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.01};
  char *err = NULL, *text = NULL;
  size_t len = 0;
  kl_pass_options po = {.print_after = "autodiff", .print_to = open_memstream(&text, &len)};
  kl_compile_opts co = {.passes = &po};
  kl_train_step *s = kl_compile_train(l.g, l.loss, NULL, 0, &opt, &co, &err);
  cr_assert_not_null(s, "%s", err);
  fclose(po.print_to);
  cr_expect(strstr(text, "assign("), "the update after autodiff: %s", text);
  cr_expect(strstr(text, "w@m"), "Adam's state: %s", text);
  free(text);
  kl_train_step_destroy(s);
  kl_graph_destroy(l.g);
}
