/* `kiln translate` as a user meets it: usage errors exit 2, unreadable or
 * foreign checkpoints exit 1 with the loader's message, and a checkpoint
 * written here from a freshly initialised training step translates: one
 * line per sentence, the same as decoding in-process, and a valid SVG
 * heatmap only when the whole run succeeds. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/kiln_train.h"
#include "runtime/checkpoint.h"
#include "tests/support/cli_run.h"
#include "tools/kiln/s2s.h"

static void make_dir(void) { test_dir_make("kiln_translate"); }

TestSuite(cli_translate, .init = make_dir, .fini = test_dir_remove, .timeout = 300);

static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

static void expect_in(const char *hay, const char *needle) {
  cr_expect(strstr(hay, needle), "no '%s' in: %s", needle, hay);
}

/* ---- a checkpoint ------------------------------------------------------- */

static rt_vocab *vocab(const char *const *extra, int n) {
  const char *toks[64] = {"<unk>", "<pad>", "<bos>", "<eos>"};
  for (int i = 0; i < n; i++)
    toks[4 + i] = extra[i];
  ir_diag d = {0};
  rt_vocab *v = rt_vocab_from_tokens(toks, 4 + n, &d);
  cr_assert_not_null(v, "%s", d.msg);
  return v;
}

/* The date task's shape in miniature: characters in, digits and '-' out;
 * or, with words, a few words each side. hidden is the config's (a
 * mismatching checkpoint saves weights of another size). */
static s2s_meta tiny_meta(bool chars) {
  static const char *const src_c[] = {"a", "b", "c", "d", "e", "h", "l", "o",
                                      "r", "w", " ", ",", "!", "1", "9"};
  static const char *const tgt_c[] = {"0", "1", "2", "9", "-"};
  static const char *const src_w[] = {"hello", "world", ",", "!", "go", "."};
  static const char *const tgt_w[] = {"bonjour", "monde", "va", "!", "."};
  s2s_meta m = {.char_tokens = chars};
  m.src = chars ? vocab(src_c, 15) : vocab(src_w, 6);
  m.tgt = chars ? vocab(tgt_c, 5) : vocab(tgt_w, 5);
  m.cfg = tm_from_s2s(&(s2s_config){.src_vocab = rt_vocab_size(m.src),
                                    .tgt_vocab = rt_vocab_size(m.tgt),
                                    .embed = 4,
                                    .hidden = 8,
                                    .layers = 2,
                                    .dropout = 0.1,
                                    .batch = 2,
                                    .src_steps = 8,
                                    .tgt_steps = 5,
                                    .dtype = KL_F32});
  return m;
}

/* Saves test_dir/NAME from a fresh Adam training step of cfg (weights and
 * optimizer state, as `kiln train --save` writes them) under meta m. */
static void save_ckpt(const char *name, const s2s_meta *m, const tm_config *cfg) {
  tm_train t = tm_build_train(cfg);
  cr_assert_not_null(t.g);
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.005};
  kl_compile_opts co = {.backend = KL_BACKEND_REF, .seed = 3};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(t.g, t.loss, NULL, 0, &opt, &co, &err);
  cr_assert_not_null(s, "%s", err ? err : "");
  kl_graph_destroy(t.g);
  char path[512];
  snprintf(path, sizeof path, "%s/%s", test_dir, name);
  ir_diag d = {0};
  cr_assert(s2s_ckpt_save(path, m, kl_train_step_program(s), 3, 0, &d), "%s", d.msg);
  kl_train_step_destroy(s);
}

static void save_meta_ckpt(const char *name, bool chars) {
  s2s_meta m = tiny_meta(chars);
  save_ckpt(name, &m, &m.cfg);
  s2s_meta_free(&m);
}

/* What decoding the checkpoint in-process (reference backend, greedy)
 * gives for sentence: the line `kiln translate` should print. */
static void expected_line(const char *ckpt, const char *sentence, char *line, size_t cap) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", test_dir, ckpt);
  ir_diag d = {0};
  s2s_meta m;
  rt_checkpoint *ck = s2s_ckpt_open(path, &m, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  tm_config c = m.cfg;
  c.batch = 1;
  char *err = NULL;
  kl_compile_opts co = {.backend = KL_BACKEND_REF};
  s2s_decoder *dec = s2s_decoder_create(&c, &co, &err);
  cr_assert_not_null(dec, "%s", err ? err : "");
  for (int i = 0; i < 2; i++)
    cr_assert(s2s_ckpt_apply(ck, s2s_decoder_program(dec, i), true, &d), "%s", d.msg);
  char *pre = rt_text_preprocess(sentence, strlen(sentence));
  rt_toklist toks = {0};
  int32_t ids[8], len, out[5];
  int64_t n;
  cr_assert(s2s_tokenize(&m, pre, &toks, &d));
  cr_assert(rt_vocab_build_array(m.src, &toks, 1, 8, ids, &len, &d));
  cr_assert_null(s2s_greedy(dec, ids, &len, 5, out, &n, NULL));
  size_t at = (size_t)snprintf(line, cap, "%s => ", sentence);
  for (int64_t i = 0; i < n; i++)
    at += (size_t)snprintf(line + at, cap - at, "%s%s", i && !m.char_tokens ? " " : "",
                           rt_vocab_token(m.tgt, out[i]));
  snprintf(line + at, cap - at, "\n");
  free(pre);
  rt_toklist_free(&toks);
  s2s_decoder_destroy(dec);
  rt_checkpoint_destroy(ck);
  s2s_meta_free(&m);
}

/* ---- usage and load errors ---------------------------------------------- */

Test(cli_translate, usage_errors_exit_2) {
  static const struct {
    const char *args, *msg;
  } cases[] = {
      {"translate", "which model"},
      {"translate bogus --load x.st hi", "unknown model 'bogus'"},
      {"translate nw-kernel --load x.st hi", "nw-kernel is not a translation model"},
      {"translate seq2seq-attn hi", "--load CKPT is required"},
      {"translate seq2seq-attn --load x.st", "no sentences"},
      {"translate seq2seq-attn --load x.st --beam 0 hi", "--beam wants an integer"},
      {"translate seq2seq-attn --load x.st --beam many hi", "--beam wants an integer"},
      {"translate seq2seq-attn --load x.st --backend gpu hi", "--backend wants jit or ref"},
      {"translate seq2seq-attn --load", "--load needs a value"},
      {"translate seq2seq-attn --load x.st --frob hi", "unknown option '--frob'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(kiln(cases[i].args), 2, "%s: %s", cases[i].args, test_err);
    expect_in(test_err, cases[i].msg);
    cr_expect_str_empty(test_out, "%s", cases[i].args);
  }
  cr_expect_eq(kiln("translate --help"), 0);
  expect_in(test_out, "usage: kiln translate MODEL --load CKPT");
}

/* The Transformer of the same miniature task: 2 blocks of 2 heads. */
static s2s_meta tiny_tf_meta(void) {
  s2s_meta m = tiny_meta(true);
  m.cfg = tm_from_tf(&(tf_config){.src_vocab = m.cfg.src_vocab,
                                  .tgt_vocab = m.cfg.tgt_vocab,
                                  .hidden = 8,
                                  .ffn = 16,
                                  .heads = 2,
                                  .blocks = 2,
                                  .dropout = 0.1,
                                  .batch = 2,
                                  .src_steps = 8,
                                  .tgt_steps = 5,
                                  .dtype = KL_F32});
  return m;
}

Test(cli_translate, checkpoint_of_the_other_model_exits_1) {
  save_meta_ckpt("s2s.st", true);
  cr_expect_eq(kiln("translate transformer --load s2s.st hi"), 1, "%s", test_err);
  expect_in(test_err, "s2s.st is a checkpoint of seq2seq-attn, not transformer");
  cr_expect_str_empty(test_out);
}

Test(cli_translate, unreadable_checkpoints_exit_1) {
  cr_expect_eq(kiln("translate seq2seq-attn --load missing.st --heatmap h.svg hi"), 1);
  expect_in(test_err, "missing.st: cannot open");
  cr_expect_not(test_exists("h.svg"));

  test_write_text("junk.st", "this is not a safetensors file");
  cr_expect_eq(kiln("translate seq2seq-attn --load junk.st hi"), 1);
  expect_in(test_err, "junk.st: ");
  cr_expect_str_empty(test_out);

  /* A valid checkpoint of another model. */
  char path[512];
  snprintf(path, sizeof path, "%s/nw.st", test_dir);
  ir_type ty = ir_type_make(IR_F32, 1, (int64_t[]){1});
  rt_tensor *w = rt_tensor_create(&ty);
  rt_ckpt_tensor ts[] = {{"w", w}};
  ir_diag d = {0};
  cr_assert(rt_checkpoint_save_json(path, ts, 1, "{\"model\": \"nw-kernel\", \"step\": 5}", &d),
            "%s", d.msg);
  rt_tensor_destroy(w);
  cr_expect_eq(kiln("translate seq2seq-attn --load nw.st hi"), 1);
  expect_in(test_err, "a checkpoint of model 'nw-kernel'");
}

/* Weights that do not fit the config: the checkpoint check names the
 * first, and the run fails before writing anything. */
Test(cli_translate, mismatched_weights_exit_1) {
  s2s_meta m = tiny_meta(true);
  tm_config other = m.cfg;
  other.hidden = 6;
  save_ckpt("odd.st", &m, &other);
  s2s_meta_free(&m);
  cr_expect_eq(kiln("translate seq2seq-attn --load odd.st --backend ref --heatmap h.svg abc"), 1);
  expect_in(test_err, "odd.st: tensor 'encoder.rnn.weight_ih_l0': checkpoint has f32[18,4], "
                      "expected f32[24,4]");
  cr_expect_str_empty(test_out);
  cr_expect_not(test_exists("h.svg"));
}

/* ---- translating ---------------------------------------------------------- */

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

Test(cli_translate, translates_each_sentence_like_the_decoder) {
  save_meta_ckpt("chars.st", true);
  char want1[256], want2[256];
  expected_line("chars.st", "Hello, World!", want1, sizeof want1);
  expected_line("chars.st", "abc", want2, sizeof want2);
  cr_assert_eq(kiln("translate seq2seq-attn --load chars.st --backend ref 'Hello, World!' abc"), 0,
               "%s", test_err);
  cr_expect_eq(count_lines(test_out), 2, "%s", test_out);
  cr_expect(!strncmp(test_out, want1, strlen(want1)), "got %s, want %s", test_out, want1);
  expect_in(test_out, want2);

  /* The JIT and a beam of 1 give the same lines. */
  static char ref[1 << 16];
  snprintf(ref, sizeof ref, "%s", test_out);
  cr_assert_eq(kiln("translate seq2seq-attn --load chars.st --threads 1 --beam 1 "
                    "'Hello, World!' abc"),
               0, "%s", test_err);
  cr_expect_str_eq(test_out, ref);
}

Test(cli_translate, beam_and_word_tokens) {
  save_meta_ckpt("words.st", false);
  char want[256];
  expected_line("words.st", "Hello world .", want, sizeof want);
  cr_assert_eq(kiln("translate seq2seq-attn --load words.st --backend ref 'Hello world .'"), 0,
               "%s", test_err);
  cr_expect_str_eq(test_out, want);
  cr_assert_eq(kiln("translate seq2seq-attn --load words.st --beam 3 --threads 1 'Hello world .' "
                    "go ''"),
               0, "%s", test_err);
  cr_expect_eq(count_lines(test_out), 3, "%s", test_out);
  expect_in(test_out, "Hello world . => ");
  expect_in(test_out, "\ngo => ");
  expect_in(test_out, "\n => ");
}

/* kiln translate transformer: the KV-cache decoder's lines, greedy and
 * beam 1 alike, on both backends; the heatmap has a panel per head. */
Test(cli_translate, transformer_translates_like_the_decoder) {
  s2s_meta m = tiny_tf_meta();
  save_ckpt("tf.st", &m, &m.cfg);
  s2s_meta_free(&m);
  char want[256];
  expected_line("tf.st", "Hello, World!", want, sizeof want);
  cr_assert_eq(kiln("translate transformer --load tf.st --backend ref 'Hello, World!'"), 0, "%s",
               test_err);
  cr_expect_str_eq(test_out, want);
  cr_assert_eq(kiln("translate transformer --load tf.st --threads 1 --beam 1 --heatmap h.svg "
                    "'Hello, World!'"),
               0, "%s", test_err);
  cr_expect_str_eq(test_out, want);
  char svg[1 << 16], path[512];
  snprintf(path, sizeof path, "%s/h.svg", test_dir);
  test_slurp(path, svg, sizeof svg);
  expect_in(svg, ">head 0<");
  expect_in(svg, ">head 1<");
  cr_expect_null(strstr(svg, ">head 2<"));
  /* "hello , world !" is 15 characters plus <eos>: 16 key columns per head. */
  int cells = 0;
  for (const char *p = svg; (p = strstr(p, "class=\"cell\"")); p++)
    cells++;
  cr_expect(cells > 0 && cells % 32 == 0 && cells <= 32 * 5, "%d cells", cells);
  cr_assert_eq(kiln("translate transformer --load tf.st --beam 3 --threads 1 abc ''"), 0, "%s",
               test_err);
  cr_expect_eq(count_lines(test_out), 2, "%s", test_out);
}

Test(cli_translate, heatmap_of_the_first_sentence) {
  save_meta_ckpt("chars.st", true);
  cr_assert_eq(kiln("translate seq2seq-attn --load chars.st --threads 1 --heatmap h.svg "
                    "'bad,' hello"),
               0, "%s", test_err);
  cr_expect_eq(count_lines(test_out), 2, "%s", test_out);
  char svg[1 << 16];
  char path[512];
  snprintf(path, sizeof path, "%s/h.svg", test_dir);
  test_slurp(path, svg, sizeof svg);
  cr_assert(strstr(svg, "<svg") && strstr(svg, "</svg>"), "not an SVG: %.200s", svg);
  /* "bad," preprocesses to "bad ,": 5 tokens plus <eos> = 6 key columns. */
  int cells = 0;
  for (const char *p = svg; (p = strstr(p, "class=\"cell\"")); p++)
    cells++;
  cr_expect(cells > 0 && cells % 6 == 0 && cells <= 6 * 5, "%d cells", cells);
  expect_in(svg, "&lt;eos&gt;");
  expect_in(svg, ">b<");

  /* A run that fails writes no figure: here the figure itself cannot be
   * written. */
  cr_expect_eq(kiln("translate seq2seq-attn --load chars.st --threads 1 --heatmap no/such/h.svg "
                    "abc"),
               1);
  expect_in(test_err, "no/such/h.svg");
  cr_expect_not(test_exists("no/such/h.svg"));
}
