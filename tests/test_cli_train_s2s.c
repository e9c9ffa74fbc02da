/* `kiln train seq2seq-attn` as a user meets it, on tiny settings so each
 * run takes seconds: epoch lines, held-out translations, a heatmap and the
 * JSON line; a resumed run continues the exact loss sequence of an
 * uninterrupted one; bad data, bad settings and mismatched checkpoints are
 * clear errors that leave no file behind. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_s2s"); }

TestSuite(cli_s2s, .init = make_dir, .fini = test_dir_remove, .timeout = 600);

/* Small enough for the reference interpreter: 96 dates, batch 32 (3 steps
 * per epoch), 16 held out. */
#define TINY                                                                                       \
  "--set embed=8,hidden=12,layers=2,max_examples=96,n_test=16,samples=3,backend=ref "              \
  "--batch 32 --threads 1 "

static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

/* The JSON's epoch_losses as text with full precision, for exact compares. */
static void epoch_losses(json_t *j, double *out, int cap, int *n) {
  json_t *a = json_object_get(j, "epoch_losses");
  cr_assert(json_is_array(a));
  *n = (int)json_array_size(a);
  cr_assert_leq(*n, cap);
  for (int i = 0; i < *n; i++)
    out[i] = json_number_value(json_array_get(a, (size_t)i));
}

Test(cli_s2s, trains_translates_and_reports) {
  cr_assert_eq(kiln("train seq2seq-attn " TINY "--epochs 2 --json --set heatmap=h.svg"), 0, "%s",
               test_err);
  cr_expect(strstr(test_out, "96 training pairs, 16 held out"), "%s", test_out);
  cr_expect(strstr(test_out, "epoch 1  steps 3  loss "), "%s", test_out);
  cr_expect(strstr(test_out, "epoch 2  steps 3  loss "), "%s", test_out);
  cr_expect(strstr(test_out, " => "), "samples: %s", test_out);
  cr_expect(strstr(test_out, "held out: exact match "), "%s", test_out);
  char svg[256], path[512];
  snprintf(path, sizeof path, "%s/h.svg", test_dir);
  test_slurp(path, svg, sizeof svg);
  cr_expect(strstr(svg, "<svg"), "heatmap: %s", svg);
  json_t *j = test_last_json();
  cr_expect_eq(json_integer_value(json_object_get(j, "steps")), 6);
  double l[8];
  int n;
  epoch_losses(j, l, 8, &n);
  cr_expect_eq(n, 2);
  cr_expect(isfinite(l[0]) && l[1] < l[0], "losses %g %g", l[0], l[1]);
  double em = json_number_value(json_object_get(j, "exact_match"));
  cr_expect(em >= 0 && em <= 1, "exact match %g", em);
  json_decref(j);
}

/* Three epochs straight, or one saved and two more resumed from the
 * checkpoint: the same losses, bit for bit (weights, Adam moments, step
 * counter, data order and dropout masks all resume). */
Test(cli_s2s, resume_continues_the_exact_run) {
  double full[8], a[8], b[8];
  int nf, na, nb;
  cr_assert_eq(kiln("train seq2seq-attn " TINY "--epochs 3 --json --set heatmap= --seed 7"), 0,
               "%s", test_err);
  json_t *j = test_last_json();
  epoch_losses(j, full, 8, &nf);
  json_decref(j);
  cr_assert_eq(kiln("train seq2seq-attn " TINY "--epochs 1 --json --set heatmap= --seed 7 "
                    "--save run.ckpt"),
               0, "%s", test_err);
  cr_assert(test_exists("run.ckpt"));
  j = test_last_json();
  epoch_losses(j, a, 8, &na);
  json_decref(j);
  cr_assert_eq(kiln("train seq2seq-attn " TINY "--epochs 3 --json --set heatmap= --seed 7 "
                    "--load run.ckpt"),
               0, "%s", test_err);
  cr_expect(strstr(test_out, "resumed from run.ckpt at step 3"), "%s", test_out);
  j = test_last_json();
  epoch_losses(j, b, 8, &nb);
  json_decref(j);
  cr_assert_eq(nf, 3);
  cr_assert_eq(na, 1);
  cr_assert_eq(nb, 2);
  cr_expect_eq(a[0], full[0], "%.17g vs %.17g", a[0], full[0]);
  cr_expect_eq(b[0], full[1], "%.17g vs %.17g", b[0], full[1]);
  cr_expect_eq(b[1], full[2], "%.17g vs %.17g", b[1], full[2]);
  /* Resuming with another seed or batch would not be the same run. */
  cr_expect_eq(kiln("train seq2seq-attn " TINY "--epochs 3 --seed 8 --load run.ckpt"), 1);
  cr_expect(strstr(test_err, "same seed"), "%s", test_err);
  cr_expect_eq(kiln("train seq2seq-attn " TINY "--epochs 3 --seed 7 --batch 16 --load run.ckpt"),
               1);
  cr_expect(strstr(test_err, "batch 32"), "%s", test_err);
}

/* The Transformer through the same trainer: 2 blocks of 2 heads. */
#define TINY_TF                                                                                    \
  "--set hidden=8,heads=2,ffn=16,layers=2,max_examples=96,n_test=16,samples=3,backend=ref "        \
  "--batch 32 --threads 1 "

Test(cli_s2s, transformer_trains_resumes_and_reports) {
  cr_assert_eq(kiln("train transformer " TINY_TF "--epochs 3 --json --set heatmap=h.svg --seed 7"),
               0, "%s", test_err);
  cr_expect(strstr(test_out, "transformer: 96 training pairs, 16 held out"), "%s", test_out);
  cr_expect(strstr(test_out, "hidden 8, blocks 2, heads 2, ffn 16, post-LN"), "%s", test_out);
  cr_expect(strstr(test_out, "held out: exact match "), "%s", test_out);
  char svg[1 << 16], path[512];
  snprintf(path, sizeof path, "%s/h.svg", test_dir);
  test_slurp(path, svg, sizeof svg);
  cr_expect(strstr(svg, ">head 1<") && !strstr(svg, ">head 2<"), "a panel per head");
  json_t *j = test_last_json();
  cr_expect_str_eq(json_string_value(json_object_get(j, "model")), "transformer");
  double full[8], a[8], b[8];
  int nf, na, nb;
  epoch_losses(j, full, 8, &nf);
  json_decref(j);
  cr_assert_eq(nf, 3);
  cr_expect(isfinite(full[0]) && full[2] < full[0], "losses %g %g", full[0], full[2]);
  cr_assert_eq(kiln("train transformer " TINY_TF "--epochs 1 --json --set heatmap= --seed 7 "
                    "--save tf.ckpt"),
               0, "%s", test_err);
  j = test_last_json();
  epoch_losses(j, a, 8, &na);
  json_decref(j);
  cr_assert_eq(kiln("train transformer " TINY_TF "--epochs 3 --json --set heatmap= --seed 7 "
                    "--load tf.ckpt"),
               0, "%s", test_err);
  j = test_last_json();
  epoch_losses(j, b, 8, &nb);
  json_decref(j);
  cr_assert(na == 1 && nb == 2);
  cr_expect_eq(a[0], full[0], "%.17g vs %.17g", a[0], full[0]);
  cr_expect_eq(b[0], full[1], "%.17g vs %.17g", b[0], full[1]);
  cr_expect_eq(b[1], full[2], "%.17g vs %.17g", b[1], full[2]);
  /* translate reads the same checkpoint; the other model's trainer refuses it. */
  cr_expect_eq(kiln("translate transformer --load tf.ckpt --backend ref '1 may 2001'"), 0, "%s",
               test_err);
  cr_expect(strstr(test_out, "1 may 2001 => "), "%s", test_out);
  cr_expect_eq(kiln("train seq2seq-attn " TINY "--epochs 2 --seed 7 --load tf.ckpt"), 1);
  cr_expect(strstr(test_err, "a checkpoint of transformer, not seq2seq-attn"), "%s", test_err);
  cr_expect_eq(kiln("train transformer --set heads=3"), 2);
  cr_expect(strstr(test_err, "heads"), "%s", test_err);
  cr_expect_eq(kiln("train transformer --set norm=mid"), 2);
  cr_expect(strstr(test_err, "norm wants post or pre"), "%s", test_err);
}

Test(cli_s2s, bad_data_is_an_error_with_its_line) {
  test_write_text("pairs.txt", "go .\tva !\nhi .\tsalut !\nno tab on this line\n");
  cr_expect_eq(kiln("train seq2seq-attn --data pairs.txt --set backend=ref"), 1);
  cr_expect(strstr(test_err, "pairs.txt:3: expected 'source<TAB>target'"), "%s", test_err);
  test_write_text("latin1.txt", "go .\tva !\ncaf\xe9 .\tcaf\xe9 !\n");
  cr_expect_eq(kiln("train seq2seq-attn --data latin1.txt --set backend=ref"), 1);
  cr_expect(strstr(test_err, "latin1.txt:2:4: invalid UTF-8"), "%s", test_err);
  cr_expect_eq(kiln("train seq2seq-attn --data nosuch.txt"), 1);
  cr_expect(strstr(test_err, "nosuch.txt: cannot open"), "%s", test_err);
  test_write_text("empty.txt", "\n\n");
  cr_expect_eq(kiln("train seq2seq-attn --data empty.txt"), 1);
  cr_expect(strstr(test_err, "no sentence pairs"), "%s", test_err);
}

/* A file with unknown words at test time, long sentences (truncated to
 * num_steps) and blank lines trains and translates d2l's examples. */
Test(cli_s2s, word_data_trains_with_long_sentences) {
  char body[4096] = "";
  const char *lines[] = {"go .\tva !\n", "\n", "i lost .\tj'ai perdu .\n",
                         "he's calm .\til est calme .\n", "i'm home .\tje suis chez moi .\n"};
  for (int r = 0; r < 4; r++)
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
      strcat(body, lines[i]);
  strcat(body, "this is a very long sentence that runs far past the ten steps the model keeps "
               "and must be truncated .\tune phrase tres longue qui depasse de loin les dix pas "
               "que le modele garde .\n");
  test_write_text("fra.txt", body);
  cr_assert_eq(kiln("train seq2seq-attn --data fra.txt --set embed=8,hidden=8,layers=1,"
                    "backend=ref,heatmap= --batch 8 --epochs 2 --json"),
               0, "%s", test_err);
  cr_expect(strstr(test_out, "17 training pairs, 0 held out"), "%s", test_out);
  cr_expect(strstr(test_out, "go . => "), "%s", test_out);
  cr_expect(strstr(test_out, "i'm home . => "), "%s", test_out);
  json_t *j = test_last_json();
  cr_expect_eq(json_integer_value(json_object_get(j, "steps")), 6);
  json_decref(j);
}

Test(cli_s2s, bad_settings_and_checkpoints) {
  cr_expect_eq(kiln("train seq2seq-attn --set layers=9"), 2);
  cr_expect(strstr(test_err, "layers"), "%s", test_err);
  cr_expect_eq(kiln("train seq2seq-attn --set dropout=1"), 2);
  cr_expect_eq(kiln("train seq2seq-attn --set tokens=bytes"), 2);
  cr_expect_eq(kiln("train seq2seq-attn --set nosuch=1"), 2);
  /* A checkpoint of another kind of file, a corrupt one, a missing one. */
  test_write_text("junk.ckpt", "this is not safetensors");
  cr_expect_eq(kiln("train seq2seq-attn " TINY "--load junk.ckpt"), 1);
  cr_expect(strstr(test_err, "junk.ckpt"), "%s", test_err);
  cr_expect_eq(kiln("train seq2seq-attn " TINY "--load none.ckpt"), 1);
  cr_expect(strstr(test_err, "none.ckpt"), "%s", test_err);
  /* --save into a missing directory fails before training and leaves
   * nothing behind. */
  cr_expect_eq(kiln("train seq2seq-attn " TINY "--epochs 1 --set heatmap= --save no/dir.ckpt"), 1);
  cr_expect(strstr(test_err, "no/dir.ckpt"), "%s", test_err);
  cr_expect(!test_exists("no"));
  cr_expect(!strstr(test_out, "epoch"), "%s", test_out);
}
