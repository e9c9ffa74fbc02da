/* `kiln train gpt` as a user meets it, on tiny settings so each run takes
 * seconds (epoch lines with validation loss, samples, held-out exact match,
 * the JSON line, exact resume, clear errors for bad settings and bad
 * text), and the sampler (tools/kiln/gpt_sample.h) against hand-computed
 * softmax probabilities. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kiln_backend.h"
#include "frontend/graph_ir.h"
#include "models/gpt.h"
#include "tests/support/cli_run.h"
#include "tools/kiln/gpt_sample.h"

static void make_dir(void) { test_dir_make("kiln_gpt"); }

TestSuite(cli_gpt, .init = make_dir, .fini = test_dir_remove, .timeout = 300);

/* 300 date lines (8323 training characters), 16 x 16 windows: 32 steps
 * per epoch. */
#define TINY                                                                                       \
  "--set layers=1,embed=16,heads=2,block=16,max_examples=300,n_test=20,samples=2,length=40 "       \
  "--batch 16 --threads 1 "

static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

static double num(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  cr_assert(json_is_number(v), "%s is not a number", key);
  return json_number_value(v);
}

static int losses(json_t *j, double *out, int cap) {
  json_t *a = json_object_get(j, "epoch_losses");
  cr_assert(json_is_array(a));
  int n = (int)json_array_size(a);
  cr_assert_leq(n, cap);
  for (int i = 0; i < n; i++)
    out[i] = json_number_value(json_array_get(a, (size_t)i));
  return n;
}

Test(cli_gpt, short_run_reports) {
  cr_assert_eq(kiln("train gpt " TINY "--steps 30 --json"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "vocabulary "), "%s", test_out);
  cr_expect(strstr(test_out, "epoch 1  steps 30  train loss "), "%s", test_out);
  cr_expect(strstr(test_out, "val loss "), "%s", test_out);
  cr_expect(strstr(test_out, "--- sample 2\n"), "%s", test_out);
  cr_expect(strstr(test_out, "held out: exact match "), "%s", test_out);
  json_t *j = test_last_json();
  cr_expect_str_eq(json_string_value(json_object_get(j, "model")), "gpt");
  cr_expect_eq(json_integer_value(json_object_get(j, "steps")), 30);
  cr_expect(isfinite(num(j, "final_loss")) && num(j, "final_loss") > 0);
  cr_expect(isfinite(num(j, "val_loss")) && num(j, "val_loss") > 0);
  cr_expect(num(j, "tokens_per_s") > 0);
  double em = num(j, "exact_match");
  cr_expect(em >= 0 && em <= 1, "exact match %g", em);
  cr_expect_eq(json_integer_value(json_object_get(j, "seed")), 0);
  json_decref(j);
}

/* Four epochs: the training loss falls from the first epoch to the last,
 * and the validation loss ends well below log(vocab) (uniform guessing). */
Test(cli_gpt, loss_drops) {
  cr_assert_eq(kiln("train gpt " TINY "--epochs 4 --lr 0.01 --set samples=0 --json"), 0, "%s",
               test_err);
  json_t *j = test_last_json();
  double l[8];
  int n = losses(j, l, 8);
  cr_assert_eq(n, 4);
  cr_expect(l[3] < l[0] - 0.5, "losses %g .. %g", l[0], l[3]);
  cr_expect(num(j, "val_loss") < log(30.0) - 0.5, "val loss %g", num(j, "val_loss"));
  json_decref(j);
}

/* Two epochs straight, or one saved and one more resumed: the same losses
 * bit for bit (weights, Adam moments, step counter, windows, dropout). */
Test(cli_gpt, resume_continues_the_exact_run) {
  double full[4], a[4], b[4];
  cr_assert_eq(kiln("train gpt " TINY "--epochs 2 --seed 5 --json"), 0, "%s", test_err);
  json_t *j = test_last_json();
  cr_assert_eq(losses(j, full, 4), 2);
  json_decref(j);
  cr_assert_eq(kiln("train gpt " TINY "--epochs 1 --seed 5 --save g.ckpt --json"), 0, "%s",
               test_err);
  j = test_last_json();
  cr_assert_eq(losses(j, a, 4), 1);
  json_decref(j);
  cr_assert_eq(kiln("train gpt " TINY "--epochs 2 --seed 5 --load g.ckpt --json"), 0, "%s",
               test_err);
  cr_expect(strstr(test_out, "resumed from g.ckpt at step 32"), "%s", test_out);
  j = test_last_json();
  cr_assert_eq(losses(j, b, 4), 1);
  json_decref(j);
  cr_expect_eq(a[0], full[0], "%.17g vs %.17g", a[0], full[0]);
  cr_expect_eq(b[0], full[1], "%.17g vs %.17g", b[0], full[1]);
  cr_expect_eq(kiln("train gpt " TINY "--epochs 2 --seed 6 --load g.ckpt"), 1);
  cr_expect(strstr(test_err, "same seed"), "%s", test_err);
  cr_expect_eq(kiln("train gpt " TINY "--epochs 2 --seed 5 --batch 8 --load g.ckpt"), 1);
  cr_expect(strstr(test_err, "batch 16"), "%s", test_err);
  cr_expect_eq(kiln("train gpt " TINY "--epochs 2 --seed 5 --set max_examples=200 --load g.ckpt"),
               1);
  cr_expect(strstr(test_err, "--set max_examples=200 conflicts with the checkpoint's "
                             "max_examples=300"),
            "%s", test_err);
}

/* nanoGPT's recipe (train_gpt_optim.c) on the tiny run: AdamW with the
 * rank >= 2 grouping, bias=False, warm-up and cosine. It must change the
 * run (the keys reach the compiled step), evaluate every eval_every steps,
 * record "adamw" and resume to the same losses in every digit. */
#define RECIPE                                                                                     \
  "--set optim=adamw,beta2=0.99,weight_decay=0.1,bias=0,warmup=5,decay=cosine,decay_iters=64,"     \
  "min_lr=1e-4,eval_every=8,eval_iters=2 "

Test(cli_gpt, nanogpt_recipe_trains_evaluates_and_resumes) {
  double plain[4], full[4], a[4], b[4];
  cr_assert_eq(kiln("train gpt " TINY "--epochs 2 --seed 3 --json"), 0, "%s", test_err);
  json_t *j = test_last_json();
  cr_assert_eq(losses(j, plain, 4), 2);
  json_decref(j);
  cr_assert_eq(kiln("train gpt " TINY RECIPE "--epochs 2 --seed 3 --json"), 0, "%s", test_err);
  cr_expect(strstr(test_out, "step 8  val loss "), "%s", test_out);
  j = test_last_json();
  cr_assert_eq(losses(j, full, 4), 2);
  cr_expect_str_eq(json_string_value(json_object_get(j, "optimizer")), "adamw");
  /* Estimates at every multiple of 8 and at both epoch ends, in order. */
  json_int_t per_epoch = json_integer_value(json_object_get(j, "steps")) / 2, want[16];
  size_t nwant = 0;
  for (json_int_t s = 1; s <= 2 * per_epoch && nwant < 16; s++)
    if (s % 8 == 0 || s % per_epoch == 0) want[nwant++] = s;
  json_t *ev = json_object_get(j, "val_losses");
  cr_assert_eq(json_array_size(ev), nwant);
  for (size_t i = 0; i < nwant; i++) {
    json_t *e = json_array_get(ev, i);
    cr_expect_eq(json_integer_value(json_array_get(e, 0)), want[i], "estimate %zu", i);
    cr_expect(json_number_value(json_array_get(e, 1)) > 0);
  }
  json_decref(j);
  cr_expect(full[0] != plain[0] && full[1] != plain[1], "the recipe changed nothing: %.17g",
            full[1]);
  cr_assert_eq(kiln("train gpt " TINY RECIPE "--epochs 1 --seed 3 --save r.ckpt --json"), 0, "%s",
               test_err);
  j = test_last_json();
  cr_assert_eq(losses(j, a, 4), 1);
  json_decref(j);
  cr_assert_eq(kiln("train gpt " TINY RECIPE "--epochs 2 --seed 3 --load r.ckpt --json"), 0, "%s",
               test_err);
  j = test_last_json();
  cr_assert_eq(losses(j, b, 4), 1);
  json_decref(j);
  cr_expect_eq(a[0], full[0], "%.17g vs %.17g", a[0], full[0]);
  cr_expect_eq(b[0], full[1], "%.17g vs %.17g", b[0], full[1]);
  /* The recorded settings hold: a plain-Adam resume of it is refused. */
  cr_expect_eq(kiln("train gpt " TINY "--epochs 2 --seed 3 --set optim=adam --load r.ckpt"), 1);
  cr_expect(strstr(test_err, "optim=adam conflicts"), "%s", test_err);
}

Test(cli_gpt, bad_settings_are_usage_errors) {
  const char *cases[][2] = {
      {"train gpt --set embed=16,heads=3", "heads"},
      {"train gpt --set block=0", "block"},
      {"train gpt --set dropout=1", "dropout"},
      {"train gpt --set temperature=-1", "temperature"},
      {"train gpt --set top_k=many", "top_k"},
      {"train gpt --set backend=tpu", "backend"},
      {"train gpt --set prompt=", "prompt"},
      {"train gpt --set colour=red", "colour"},
      {"train gpt --set optim=sgd", "optim"},
      {"train gpt --set decay=linear", "decay"},
      {"train gpt --set bias=2", "bias"},
      {"train gpt --set beta2=1", "beta2"},
      {"train gpt --set beta1=0", "beta1"},
      {"train gpt --set weight_decay=-1", "weight_decay"},
      {"train gpt --set eval_iters=x", "eval_iters"},
      {"train gpt --set warmup=10,decay=cosine,decay_iters=5", "warmup < decay_iters"},
      {"train gpt --lr 0.001 --set decay=cosine,min_lr=0.01", "min_lr"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(kiln(cases[i][0]), 2, "%s: %s", cases[i][0], test_err);
    cr_expect(strstr(test_err, cases[i][1]), "%s: %s", cases[i][0], test_err);
  }
}

Test(cli_gpt, bad_text_is_an_error_with_its_place) {
  test_write_text("bad.txt", "first line\nca\xc3(t\n");
  cr_expect_eq(kiln("train gpt --data bad.txt"), 1);
  cr_expect(strstr(test_err, "bad.txt:2:3: invalid UTF-8"), "%s", test_err);
  test_write_text("surrogate.txt", "ok\xed\xa0\x80\n");
  cr_expect_eq(kiln("train gpt --data surrogate.txt"), 1);
  cr_expect(strstr(test_err, "surrogate.txt:1:3: invalid UTF-8"), "%s", test_err);
  test_write_text("empty.txt", "");
  cr_expect_eq(kiln("train gpt --data empty.txt"), 1);
  cr_expect(strstr(test_err, "empty.txt: no text"), "%s", test_err);
  test_write_text("short.txt", "too short for a block\n");
  cr_expect_eq(kiln("train gpt --data short.txt"), 1);
  cr_expect(strstr(test_err, "block 48"), "%s", test_err);
  cr_expect_eq(kiln("train gpt --data nosuch.txt"), 1);
  cr_expect(strstr(test_err, "nosuch.txt: cannot open"), "%s", test_err);
}

/* Multi-byte characters are single tokens; file data has no exact match. */
Test(cli_gpt, utf8_text_trains_and_samples) {
  static char text[8192];
  for (int i = 0; i < 60; i++)
    strcat(text, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 ");
  test_write_text("u.txt", text);
  cr_assert_eq(kiln("train gpt --data u.txt --steps 10 --set layers=1,embed=8,heads=2,block=8,"
                    "samples=1,length=20,prompt=h --batch 4 --threads 1 --json"),
               0, "%s", test_err);
  cr_expect(strstr(test_out, "vocabulary 10 characters"), "%s", test_out);
  json_t *j = test_last_json();
  cr_expect(json_is_null(json_object_get(j, "exact_match")));
  cr_expect(isfinite(num(j, "val_loss")));
  json_decref(j);
  cr_expect_eq(kiln("train gpt --data u.txt --steps 1 --set layers=1,embed=8,heads=2,block=8,"
                    "prompt=xyz --batch 4"),
               1);
  cr_expect(strstr(test_err, "prompt"), "%s", test_err);
}

/* ---- the sampler -------------------------------------------------------- */

static const float L8[8] = {0.1f, 2.0f, -1.0f, 1.5f, 0.7f, 3.0f, -0.5f, 1.0f};

static void softmax(const float *l, int n, double t, double *p) {
  double z = 0;
  for (int i = 0; i < n; i++)
    z += p[i] = exp(l[i] / t);
  for (int i = 0; i < n; i++)
    p[i] /= z;
}

Test(gpt_sample, greedy_cases_are_argmax) {
  float scratch[8];
  gpt_rng rng = {.seed = 1};
  for (int i = 0; i < 1000; i++) {
    double u = gpt_rng_uniform(&rng);
    cr_assert(u >= 0 && u < 1);
    cr_assert_eq(gpt_sample_pick(L8, 8, 1.0, 1, u, scratch), 5);
    cr_assert_eq(gpt_sample_pick(L8, 8, 0.0, 0, u, scratch), 5);
    cr_assert_eq(gpt_sample_pick(L8, 8, 0.0, 3, u, scratch), 5);
  }
  float tie[3] = {1, 4, 4};
  cr_expect_eq(gpt_sample_pick(tie, 3, 0, 0, 0.9, scratch), 1);
}

/* Draws at temperature t with top_k k over L8 against the hand-computed
 * distribution; 200000 draws put one standard deviation of a frequency
 * below 0.0012, so 0.006 is about five of them. */
static void check_frequencies(double t, int k) {
  enum { N = 200000 };
  float scratch[8];
  double p[8], want[8] = {0}, got[8] = {0};
  float kept[8];
  int order[8] = {5, 1, 3, 7, 4, 0, 6, 2}; /* L8 by value, descending */
  for (int i = 0; i < 8; i++)
    kept[i] = -INFINITY;
  for (int i = 0; i < (k ? k : 8); i++)
    kept[order[i]] = L8[order[i]];
  softmax(kept, 8, t, p);
  for (int i = 0; i < 8; i++)
    want[i] = p[i];
  gpt_rng rng = {.seed = 42};
  for (int i = 0; i < N; i++)
    got[gpt_sample_pick(L8, 8, t, k, gpt_rng_uniform(&rng), scratch)] += 1.0 / N;
  for (int i = 0; i < 8; i++) {
    if (want[i] == 0)
      cr_expect_eq(got[i], 0, "t %g k %d: id %d drawn (only the top k)", t, k, i);
    else
      cr_expect(fabs(got[i] - want[i]) < 0.006, "t %g k %d id %d: %g vs %g", t, k, i, got[i],
                want[i]);
  }
}

Test(gpt_sample, frequencies_match_softmax) {
  check_frequencies(1.0, 0);
  check_frequencies(2.0, 0);
  check_frequencies(0.5, 8);
}

Test(gpt_sample, top_k_keeps_only_the_k_most_likely) {
  check_frequencies(1.0, 3);
  check_frequencies(1.5, 2);
}

/* A tiny random model compiled for the reference interpreter: the same
 * seed gives the same text, another seed another text, texts grow past
 * the block (the window slides) and stop after the stop id. */
Test(gpt_sample, generate_is_reproducible) {
  gpt_config c = {
      .vocab = 7, .block = 4, .embed = 8, .heads = 2, .layers = 1, .batch = 2, .dtype = KL_F32};
  kl_graph *g = gpt_build_logits(&c);
  cr_assert(g && !kl_graph_error(g));
  char *err = NULL;
  kl_compile_opts co = {.backend = KL_BACKEND_REF, .seed = 3};
  kl_program *p = kl_compile_unoptimized(kl_graph_ir(g), &co, &err);
  cr_assert(p, "%s", err);
  kl_graph_destroy(g);
  gpt_sampler s = {.prog = p, .batch = 2, .block = 4, .vocab = 7, .temperature = 1.0, .stop = -1};
  int32_t a[2][32], b[2][32], c2[2][32];
  int32_t *ia[2] = {a[0], a[1]}, *ib[2] = {b[0], b[1]}, *ic[2] = {c2[0], c2[1]};
  int64_t la[2] = {1, 2}, lb[2] = {1, 2}, lc[2] = {1, 2};
  a[0][0] = b[0][0] = c2[0][0] = 3;
  a[1][0] = b[1][0] = c2[1][0] = 1, a[1][1] = b[1][1] = c2[1][1] = 4;
  gpt_rng r1 = {.seed = 9}, r2 = {.seed = 9}, r3 = {.seed = 10};
  cr_assert_null(gpt_generate(&s, 2, ia, la, 32, 20, &r1));
  cr_assert_null(gpt_generate(&s, 2, ib, lb, 32, 20, &r2));
  cr_assert_null(gpt_generate(&s, 2, ic, lc, 32, 20, &r3));
  cr_expect_eq(la[0], 21);
  cr_expect_eq(la[1], 22);
  cr_expect(!memcmp(a[0], b[0], 21 * sizeof(int32_t)) && !memcmp(a[1], b[1], 22 * sizeof(int32_t)),
            "same seed, same text");
  cr_expect(memcmp(a[0], c2[0], 21 * sizeof(int32_t)) || memcmp(a[1], c2[1], 22 * sizeof(int32_t)),
            "another seed, another text");
  for (int i = 0; i < 21; i++)
    cr_expect(a[0][i] >= 0 && a[0][i] < 7);
  /* Greedy with a stop id: the text ends right after the first stop. */
  s.temperature = 0;
  int32_t gr[32] = {3}, *ig[1] = {gr};
  int64_t lg = 1;
  cr_assert_null(gpt_generate(&s, 1, ig, &lg, 32, 20, &r1));
  s.stop = gr[3];
  int32_t gs[32] = {3}, *is[1] = {gs};
  int64_t ls = 1;
  cr_assert_null(gpt_generate(&s, 1, is, &ls, 32, 20, &r1));
  int64_t first = 1;
  while (gr[first] != s.stop)
    first++;
  cr_expect_eq(ls, first + 1, "stops after the first stop id");
  cr_expect(!memcmp(gs, gr, (size_t)ls * sizeof *gs));
  kl_program_destroy(p);
}
