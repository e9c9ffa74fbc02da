/* `kiln train --load` and the checks a run makes before its first step,
 * as a user meets them (issue 16, defects 5-8): checkpoints with metadata
 * out of range or inconsistent with the run are refused naming the file,
 * the key and the value; train and translate refuse the same broken files;
 * outputs and prompts are checked before training; and a --set that
 * conflicts with the checkpoint is refused, where keys not given take the
 * checkpoint's values. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/checkpoint.h"
#include "tests/support/ckpt_edit.h"
#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_resume"); }

TestSuite(cli_resume, .init = make_dir, .fini = test_dir_remove, .timeout = 600);

static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

static void expect_in(const char *hay, const char *needle) {
  cr_expect(strstr(hay, needle), "no '%s' in: %s", needle, hay);
}

/* 32 dates in batches of 32 (a step an epoch) on the reference backend. */
#define S2S_SET "embed=8,hidden=12,layers=2,n_test=4,samples=0,backend=ref,heatmap="
#define S2S "train seq2seq-attn --set " S2S_SET ",max_examples=32 --batch 32 --threads 1 "
#define S2S_NOMAX "train seq2seq-attn --set " S2S_SET " --batch 32 --threads 1 "
#define GPT                                                                                        \
  "train gpt --set layers=1,embed=8,heads=2,block=8,max_examples=60,n_test=4,samples=0,"           \
  "backend=ref --batch 4 --threads 1 "

/* ---- defect 5: metadata out of range or inconsistent ------------------- */

Test(cli_resume, data_position_must_match_the_step) {
  cr_assert_eq(kiln(S2S "--steps 3 --save s.ckpt"), 0, "%s", test_err);
  test_ckpt_rewrite("s.ckpt", "pos.ckpt",
                    (test_ckpt_edit){.key = RT_CKPT_DATA_POS, .value = "9223372036854775807"});
  cr_expect_eq(kiln(S2S "--steps 4 --load pos.ckpt"), 1);
  expect_in(test_err, "pos.ckpt: metadata 'data_position' is 9223372036854775807, but step 3 "
                      "over 32 pairs in batches of 32 is at 96");
  cr_expect(!strstr(test_out, "epoch"), "trained anyway: %s", test_out);
  test_ckpt_rewrite("s.ckpt", "step.ckpt",
                    (test_ckpt_edit){.key = RT_CKPT_STEP, .value = "9223372036854775807"});
  cr_expect_eq(kiln(S2S "--steps 4 --load step.ckpt"), 1);
  expect_in(test_err, "step.ckpt: metadata 'step' is 9223372036854775807: out of range");
  /* gpt draws its windows from the step: the position is the step. */
  cr_assert_eq(kiln(GPT "--steps 2 --save g.ckpt"), 0, "%s", test_err);
  test_ckpt_rewrite("g.ckpt", "gpos.ckpt",
                    (test_ckpt_edit){.key = RT_CKPT_DATA_POS, .value = "9223372036854775807"});
  cr_expect_eq(kiln(GPT "--steps 4 --load gpos.ckpt"), 1);
  expect_in(test_err, "gpos.ckpt: metadata 'data_position' is 9223372036854775807, but gpt's "
                      "data position is its step (2)");
}

Test(cli_resume, optimizer_and_config_must_fit) {
  cr_assert_eq(kiln(S2S "--steps 1 --save s.ckpt"), 0, "%s", test_err);
  test_ckpt_rewrite("s.ckpt", "sgd.ckpt",
                    (test_ckpt_edit){.key = RT_CKPT_OPTIMIZER, .value = "sgd"});
  cr_expect_eq(kiln(S2S "--steps 2 --load sgd.ckpt"), 1);
  expect_in(test_err, "sgd.ckpt: metadata 'optimizer' is 'sgd'; this run trains with adam");
  test_ckpt_rewrite("s.ckpt", "noopt.ckpt", (test_ckpt_edit){.key = RT_CKPT_OPTIMIZER});
  cr_expect_eq(kiln(S2S "--steps 2 --load noopt.ckpt"), 1);
  expect_in(test_err, "noopt.ckpt: metadata 'optimizer' is missing");
  /* A config key the model does not have, a record that disagrees with
   * the config, a record with a key that is not a setting. */
  rt_checkpoint *ck = test_ckpt_load("s.ckpt");
  char cfg[1024], set[1024], *at;
  snprintf(cfg, sizeof cfg, "%s", rt_checkpoint_meta(ck, RT_CKPT_CONFIG));
  snprintf(set, sizeof set, "%s", rt_checkpoint_meta(ck, "settings"));
  rt_checkpoint_destroy(ck);
  char extra[1100];
  snprintf(extra, sizeof extra, "{\"colour\":1,%s", cfg + 1);
  test_ckpt_rewrite("s.ckpt", "cfg.ckpt", (test_ckpt_edit){.key = RT_CKPT_CONFIG, .value = extra});
  cr_expect_eq(kiln(S2S "--steps 2 --load cfg.ckpt"), 1);
  expect_in(test_err, "cfg.ckpt: metadata 'model_config' has 'colour', which a seq2seq-attn "
                      "config does not");
  cr_expect_eq(kiln("translate seq2seq-attn --load cfg.ckpt --backend ref abc"), 1);
  expect_in(test_err, "has 'colour'");
  cr_assert_not_null(at = strstr(set, "\"hidden\":\"12\""), "%s", set);
  at[11] = '6'; /* "hidden":"16" */
  test_ckpt_rewrite("s.ckpt", "rec.ckpt", (test_ckpt_edit){.key = "settings", .value = set});
  cr_expect_eq(kiln("train seq2seq-attn --set samples=0,backend=ref,heatmap= --batch 32 "
                    "--steps 2 --load rec.ckpt"),
               1);
  expect_in(test_err, "rec.ckpt: metadata 'model_config' and 'settings' disagree on hidden");
  test_ckpt_rewrite("s.ckpt", "key.ckpt",
                    (test_ckpt_edit){.key = "settings", .value = "{\"colour\":\"red\"}"});
  cr_expect_eq(kiln(S2S "--steps 2 --load key.ckpt"), 1);
  expect_in(test_err, "key.ckpt: metadata 'settings' has 'colour', which is not a setting");
  test_ckpt_rewrite("s.ckpt", "noset.ckpt", (test_ckpt_edit){.key = "settings"});
  cr_expect_eq(kiln(S2S "--steps 2 --load noset.ckpt"), 1);
  expect_in(test_err, "noset.ckpt: metadata 'settings' is missing");
}

/* ---- defect 6: one validation for train and translate ------------------- */

Test(cli_resume, train_and_translate_refuse_the_same_files) {
  cr_assert_eq(kiln(S2S "--steps 1 --save s.ckpt"), 0, "%s", test_err);
  cr_assert_eq(kiln("translate seq2seq-attn --load s.ckpt --backend ref '1 may 2001'"), 0, "%s",
               test_err);
  test_ckpt_rewrite("s.ckpt", "extra.ckpt", (test_ckpt_edit){.extra = "decoder.bogus"});
  test_ckpt_rewrite("s.ckpt", "nan.ckpt", (test_ckpt_edit){.nan_in = "decoder.dense.weight"});
  const char *files[] = {"extra.ckpt", "nan.ckpt"};
  const char *want[] = {"extra.ckpt: unexpected tensor 'decoder.bogus'",
                        "nan.ckpt: tensor 'decoder.dense.weight' holds nan at element 0"};
  for (int i = 0; i < 2; i++) {
    char args[256];
    snprintf(args, sizeof args, S2S "--steps 2 --load %s", files[i]);
    cr_expect_eq(kiln(args), 1, "train %s", files[i]);
    expect_in(test_err, want[i]);
    snprintf(args, sizeof args, "translate seq2seq-attn --load %s --backend ref '1 may 2001'",
             files[i]);
    cr_expect_eq(kiln(args), 1, "translate %s", files[i]);
    expect_in(test_err, want[i]);
    cr_expect_str_empty(test_out, "translate %s printed: %s", files[i], test_out);
  }
}

/* ---- defect 7: checked before the first step ---------------------------- */

Test(cli_resume, outputs_are_checked_before_training) {
  cr_expect_eq(kiln(S2S "--steps 1 --save no/such/s.ckpt"), 1);
  expect_in(test_err, "--save no/such/s.ckpt: cannot write into 'no/such'");
  cr_expect(!strstr(test_out, "epoch"), "trained first: %s", test_out);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/d", test_dir);
  cr_assert_eq(mkdir(dir, 0755), 0);
  cr_expect_eq(kiln(S2S "--steps 1 --save d"), 1);
  expect_in(test_err, "--save d: is a directory");
  cr_expect_eq(kiln("train seq2seq-attn --set " S2S_SET ",max_examples=32,heatmap=no/h.svg "
                    "--batch 32 --steps 1"),
               1);
  expect_in(test_err, "heatmap no/h.svg: cannot write into 'no'");
  cr_expect(!strstr(test_out, "epoch"), "trained first: %s", test_out);
  cr_expect_eq(kiln("train nw-kernel --set plot=no/p.svg"), 1);
  expect_in(test_err, "plot no/p.svg: cannot write into 'no'");
  cr_expect(!strstr(test_out, "epoch"), "trained first: %s", test_out);
  cr_expect(!test_exists("no"));
}

/* A text with no newline: the default prompt "\n" falls back to the
 * text's first character; a prompt the user gave that is not in the text
 * is an error before training. */
Test(cli_resume, gpt_prompt_is_checked_before_training) {
  test_write_text("nonl.txt", "the cat sat on the mat and the dog sat on the cat and the mat "
                              "sat on the dog and the cat ran to the mat");
  const char *set = "--set layers=1,embed=8,heads=2,block=8,samples=1,length=5,backend=ref "
                    "--batch 4 --threads 1 --steps 2";
  char args[512];
  snprintf(args, sizeof args, "train gpt --data nonl.txt %s --save n.ckpt", set);
  cr_assert_eq(kiln(args), 0, "%s", test_err);
  expect_in(test_out, "nonl.txt has no newline; samples start from its first character 't'");
  expect_in(test_out, "--- sample 1\nt");
  cr_expect(test_exists("n.ckpt"));
  snprintf(args, sizeof args, "train gpt --data nonl.txt %s --set prompt=xyz", set);
  cr_expect_eq(kiln(args), 1);
  expect_in(test_err, "prompt: 'xyz' holds a character that is not in nonl.txt");
  cr_expect(!strstr(test_out, "epoch"), "trained first: %s", test_out);
}

Test(cli_resume, translate_checks_the_heatmap_path_first) {
  cr_assert_eq(kiln(S2S "--steps 1 --save s.ckpt"), 0, "%s", test_err);
  cr_expect_eq(kiln("translate seq2seq-attn --load s.ckpt --heatmap no/h.svg abc"), 1);
  expect_in(test_err, "--heatmap no/h.svg: cannot write into 'no'");
  cr_expect_str_empty(test_out);
}

/* ---- defect 8: --set against the checkpoint ------------------------------ */

Test(cli_resume, conflicting_set_is_refused_and_missing_keys_resume) {
  cr_assert_eq(kiln(S2S "--steps 2 --save s.ckpt"), 0, "%s", test_err);
  cr_expect_eq(kiln(S2S "--steps 3 --load s.ckpt --set hidden=16"), 1);
  expect_in(test_err, "s.ckpt: --set hidden=16 conflicts with the checkpoint's hidden=12");
  cr_expect_eq(kiln(S2S "--steps 3 --load s.ckpt --set max_examples=64"), 1);
  expect_in(test_err, "--set max_examples=64 conflicts with the checkpoint's max_examples=32");
  /* Keys not given are the checkpoint's: 32 pairs, not the 20000 default;
   * the same value written another way and the free keys are accepted. */
  cr_assert_eq(kiln(S2S_NOMAX "--steps 3 --load s.ckpt --set dropout=0.10,samples=2 --lr 0.002"), 0,
               "%s", test_err);
  expect_in(test_out, "32 training pairs");
  expect_in(test_out, "resumed from s.ckpt at step 2");
  cr_assert_eq(kiln(GPT "--steps 2 --save g.ckpt"), 0, "%s", test_err);
  cr_expect_eq(kiln(GPT "--steps 3 --load g.ckpt --set embed=16"), 1);
  expect_in(test_err, "g.ckpt: --set embed=16 conflicts with the checkpoint's embed=8");
}
