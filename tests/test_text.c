/* The text pipeline against hand-worked d2l 9.5 examples: preprocessing,
 * tokenizers, the pair reader and its errors, the vocabulary order, padded
 * id arrays, and the reproducible shuffle. The fra.txt counts come from a
 * plain-Python transcription of d2l's preprocess_nmt/tokenize_nmt. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/text.h"
#include "runtime/vocab.h"

static void expect_pre(const char *in, const char *want) {
  char *got = rt_text_preprocess(in, strlen(in));
  cr_assert(got);
  cr_expect_str_eq(got, want, "preprocess(\"%s\") = \"%s\", want \"%s\"", in, got, want);
  free(got);
}

Test(text, preprocess_d2l_rules) {
  expect_pre("Go.", "go .");
  expect_pre("Va !", "va !");
  expect_pre("Hello,World?", "hello ,world ?");
  expect_pre("...", ". . .");
  expect_pre(".Hi", ".hi");                    /* no space at the start */
  expect_pre("Cours\xe2\x80\xaf!", "cours !"); /* U+202F, then no double space */
  expect_pre("a\xc2\xa0"
             "b\xc2\xa0.",
             "a b .");                   /* U+00A0 */
  expect_pre("Café ÉTÉ.", "café ÉtÉ ."); /* only ASCII is lower-cased */
  expect_pre("", "");
}

static void expect_tokens(const rt_toklist *t, int n, const char *const *want) {
  cr_assert_eq(t->n, n, "got %lld tokens, want %d", (long long)t->n, n);
  for (int i = 0; i < n; i++)
    cr_expect_str_eq(t->v[i], want[i], "token %d: \"%s\", want \"%s\"", i, t->v[i], want[i]);
}

Test(text, word_and_char_tokens) {
  ir_diag d = {0};
  rt_toklist w = {0}, c = {0};
  cr_assert(rt_tokenize_words("  go  . now ", &w, &d));
  expect_tokens(&w, 3, (const char *const[]){"go", ".", "now"});
  cr_assert(rt_tokenize_chars("né !", &c, &d));
  expect_tokens(&c, 4, (const char *const[]){"n", "é", " ", "!"});
  rt_toklist_free(&c);
  cr_assert(rt_tokenize_chars("a\x80\xe2\x80\xafz", &c, &d)); /* stray byte, U+202F */
  expect_tokens(&c, 4, (const char *const[]){"a", "\x80", "\xe2\x80\xaf", "z"});
  rt_toklist_free(&w);
  rt_toklist_free(&c);
}

Test(text, parse_pairs) {
  const char *txt = "Go.\tVa !\r\n\nRun!\tCours\xe2\x80\xaf!\tCC-BY 2.0 (France) #2877272\n"
                    "Hi.\tSalut.";
  ir_diag d = {0};
  rt_pairs p;
  cr_assert(rt_pairs_parse(txt, strlen(txt), "mem", 0, &p, &d), "%s", d.msg);
  cr_assert_eq(p.n, 3);
  const char *src[] = {"go .", "run !", "hi ."}, *tgt[] = {"va !", "cours !", "salut ."};
  for (int i = 0; i < 3; i++) {
    cr_expect_str_eq(p.src[i], src[i]);
    cr_expect_str_eq(p.tgt[i], tgt[i]);
  }
  rt_pairs_free(&p);
  cr_assert(rt_pairs_parse(txt, strlen(txt), "mem", 2, &p, &d));
  cr_expect_eq(p.n, 2, "max_examples 2 gave %lld", (long long)p.n);
  rt_pairs_free(&p);
}

Test(text, bad_line_names_file_and_line) {
  char path[] = "/tmp/kiln_text_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  const char body[] = "go .\tva !\n\nno tab here\nhi\tsalut\n";
  cr_assert_eq(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
  close(fd);
  ir_diag d = {0};
  rt_pairs p;
  bool ok = rt_pairs_read(path, 0, &p, &d);
  char want[64];
  snprintf(want, sizeof want, "%s:3:", path);
  cr_expect(!ok);
  cr_expect(strncmp(d.msg, want, strlen(want)) == 0, "message \"%s\" should start \"%s\"", d.msg,
            want);
  cr_expect_eq(p.n, 0);
  /* The bad line is past max_examples: no error. */
  cr_expect(rt_pairs_read(path, 1, &p, &d), "%s", d.msg);
  cr_expect_eq(p.n, 1);
  rt_pairs_free(&p);
  unlink(path);
  cr_expect(!rt_pairs_read("/nonexistent/kiln/fra.txt", 0, &p, &d));
  cr_expect(strstr(d.msg, "/nonexistent/kiln/fra.txt") != NULL, "%s", d.msg);
}

/* a x3, b x2, c x1, d x1, plus a literal <eos> in the data. */
static rt_vocab *small_vocab(int64_t min_freq, rt_toklist seqs[2]) {
  ir_diag d = {0};
  memset(seqs, 0, 2 * sizeof *seqs);
  cr_assert(rt_tokenize_words("a b a c <eos>", &seqs[0], &d));
  cr_assert(rt_tokenize_words("d b a", &seqs[1], &d));
  rt_vocab *v = rt_vocab_build(seqs, 2, min_freq, &d);
  cr_assert(v, "%s", d.msg);
  return v;
}

Test(vocab, order_and_min_freq) {
  rt_toklist seqs[2];
  rt_vocab *v = small_vocab(1, seqs);
  const char *want[] = {"<unk>", "<pad>", "<bos>", "<eos>", "a", "b", "c", "d"};
  const int64_t count[] = {0, 0, 0, 0, 3, 2, 1, 1};
  cr_assert_eq(rt_vocab_size(v), 8);
  for (int i = 0; i < 8; i++) {
    cr_expect_str_eq(rt_vocab_token(v, i), want[i], "id %d", i);
    cr_expect_eq(rt_vocab_id(v, want[i]), i, "token %s", want[i]);
    cr_expect_eq(rt_vocab_count(v, i), count[i], "count of %s", want[i]);
  }
  cr_expect_eq(rt_vocab_id(v, "zebra"), RT_VOCAB_UNK);
  cr_expect_eq(rt_vocab_id(v, ""), RT_VOCAB_UNK);
  cr_expect_null(rt_vocab_token(v, 8));
  cr_expect_null(rt_vocab_token(v, -1));
  rt_vocab_free(v);
  rt_toklist_free(&seqs[0]);
  rt_toklist_free(&seqs[1]);

  v = small_vocab(2, seqs);
  cr_expect_eq(rt_vocab_size(v), 6);
  cr_expect_eq(rt_vocab_id(v, "b"), 5);
  cr_expect_eq(rt_vocab_id(v, "c"), RT_VOCAB_UNK);
  rt_vocab_free(v);
  rt_toklist_free(&seqs[0]);
  rt_toklist_free(&seqs[1]);
}

Test(vocab, many_tokens_grow_the_table) {
  rt_toklist s = {0};
  char tok[16];
  for (int i = 0; i < 1000; i++)
    for (int k = 0; k <= i % 3; k++) {
      snprintf(tok, sizeof tok, "w%03d", i);
      cr_assert(rt_toklist_push(&s, tok, strlen(tok)));
    }
  ir_diag d = {0};
  rt_vocab *v = rt_vocab_build(&s, 1, 1, &d);
  cr_assert(v);
  cr_assert_eq(rt_vocab_size(v), 1004);
  /* Count 3 first (i = 2, 5, ...), in text order: w002 is id 4, w005 id 5. */
  cr_expect_str_eq(rt_vocab_token(v, 4), "w002");
  cr_expect_str_eq(rt_vocab_token(v, 5), "w005");
  cr_expect_str_eq(rt_vocab_token(v, 1003), "w999"); /* last of the count-1 group */
  for (int64_t id = 0; id < 1004; id++)
    cr_expect_eq(rt_vocab_id(v, rt_vocab_token(v, id)), id);
  rt_vocab_free(v);
  rt_toklist_free(&s);
}

Test(vocab, build_array_truncates_and_pads) {
  rt_toklist seqs[2];
  rt_vocab *v = small_vocab(1, seqs);
  ir_diag d = {0};
  rt_toklist in[3] = {{0}};
  cr_assert(rt_tokenize_words("a b", &in[0], &d));
  cr_assert(rt_tokenize_words("a b c d zebra", &in[1], &d));
  int32_t ids[12], valid[3];
  cr_assert(rt_vocab_build_array(v, in, 3, 4, ids, valid, &d), "%s", d.msg);
  const int32_t want[12] = {4, 5, 3, 1, 4, 5, 6, 7, 3, 1, 1, 1}, want_valid[3] = {3, 4, 1};
  for (int i = 0; i < 12; i++)
    cr_expect_eq(ids[i], want[i], "ids[%d] = %d, want %d", i, ids[i], want[i]);
  for (int i = 0; i < 3; i++)
    cr_expect_eq(valid[i], want_valid[i], "valid[%d]", i);
  cr_assert(rt_vocab_build_array(v, in + 1, 1, 7, ids, valid, &d));
  const int32_t want7[7] = {4, 5, 6, 7, 0, 3, 1}; /* zebra -> <unk> */
  for (int i = 0; i < 7; i++)
    cr_expect_eq(ids[i], want7[i], "ids[%d] = %d, want %d", i, ids[i], want7[i]);
  cr_expect_eq(valid[0], 6);
  cr_expect(!rt_vocab_build_array(v, in, 1, 0, ids, valid, &d));
  for (int i = 0; i < 3; i++)
    rt_toklist_free(&in[i]);
  rt_vocab_free(v);
  rt_toklist_free(&seqs[0]);
  rt_toklist_free(&seqs[1]);
}

Test(order, shuffle_is_a_reproducible_permutation) {
  enum { N = 50 };
  int64_t a[N], b[N], c[N];
  rt_order_perm(N, 42, 0, a);
  rt_order_perm(N, 42, 0, b);
  rt_order_perm(N, 42, 1, c);
  int seen[N] = {0}, same_ab = 0, same_ac = 0, fixed = 0;
  for (int i = 0; i < N; i++) {
    cr_assert(a[i] >= 0 && a[i] < N);
    seen[a[i]]++;
    same_ab += a[i] == b[i];
    same_ac += a[i] == c[i];
    fixed += a[i] == i;
  }
  for (int i = 0; i < N; i++)
    cr_expect_eq(seen[i], 1, "index %d appears %d times", i, seen[i]);
  cr_expect_eq(same_ab, N);
  cr_expect_lt(same_ac, N / 2, "epochs 0 and 1 agree at %d places", same_ac);
  cr_expect_lt(fixed, N / 2, "%d fixed points: not shuffled", fixed);
}

Test(order, batches_epochs_and_resume) {
  ir_diag d = {0};
  rt_data_order o;
  cr_assert(rt_order_init(&o, 10, 7, true, &d));
  int64_t idx[4], got[3];
  got[0] = rt_order_next(&o, 4, false, idx);
  got[1] = rt_order_next(&o, 4, false, idx);
  got[2] = rt_order_next(&o, 4, false, idx);
  cr_expect(got[0] == 4 && got[1] == 4 && got[2] == 2, "%lld %lld %lld", (long long)got[0],
            (long long)got[1], (long long)got[2]);
  cr_expect_eq(rt_order_next(&o, 4, false, idx), 4);
  cr_expect(o.pos.epoch == 1 && o.pos.index == 4);
  rt_data_pos saved = o.pos;
  int64_t next1[4], next2[4];
  cr_expect_eq(rt_order_next(&o, 4, true, next1), 4);
  cr_expect_eq(rt_order_next(&o, 4, true, idx), 4); /* 2 left: drop_last starts epoch 2 */
  cr_expect(o.pos.epoch == 2 && o.pos.index == 4);
  /* A fresh order seeked to the saved position continues identically. */
  rt_data_order r;
  cr_assert(rt_order_init(&r, 10, 7, true, &d));
  cr_assert(rt_order_seek(&r, saved, &d));
  cr_expect_eq(rt_order_next(&r, 4, true, next2), 4);
  cr_expect(memcmp(next1, next2, sizeof next1) == 0);
  int64_t perm[10];
  rt_order_perm(10, 7, 1, perm);
  cr_expect(memcmp(next1, perm + 4, sizeof next1) == 0);
  cr_expect(!rt_order_seek(&r, (rt_data_pos){0, 11}, &d));
  cr_expect_eq(rt_order_next(&r, 11, true, idx), 0);
  rt_order_free(&o);
  rt_order_free(&r);
  rt_data_order plain;
  cr_assert(rt_order_init(&plain, 3, 1, false, &d));
  cr_expect_eq(rt_order_next(&plain, 4, false, idx), 3);
  cr_expect(idx[0] == 0 && idx[1] == 1 && idx[2] == 2);
  rt_order_free(&plain);
  cr_expect(!rt_order_init(&plain, 0, 1, true, &d));
}

#define FRA KILN_SOURCE_DIR "/../shared/data/fra-eng/fra.txt"

Test(text, tatoeba_first_600) {
  if (access(FRA, R_OK) != 0) cr_skip_test("no %s", FRA);
  ir_diag d = {0};
  rt_pairs p;
  cr_assert(rt_pairs_read(FRA, 600, &p, &d), "%s", d.msg);
  cr_assert_eq(p.n, 600);
  cr_expect_str_eq(p.src[0], "go .");
  cr_expect_str_eq(p.tgt[0], "va !");
  cr_expect_str_eq(p.src[599], "i'm lucky .");
  cr_expect_str_eq(p.tgt[599], "je suis chanceux .");
  int64_t sw = 0, tw = 0, sc = 0, tc = 0;
  for (int64_t i = 0; i < p.n; i++) {
    rt_toklist a = {0}, b = {0}, ca = {0}, cb = {0};
    cr_assert(rt_tokenize_words(p.src[i], &a, &d) && rt_tokenize_words(p.tgt[i], &b, &d));
    cr_assert(rt_tokenize_chars(p.src[i], &ca, &d) && rt_tokenize_chars(p.tgt[i], &cb, &d));
    sw += a.n, tw += b.n, sc += ca.n, tc += cb.n;
    rt_toklist_free(&a), rt_toklist_free(&b), rt_toklist_free(&ca), rt_toklist_free(&cb);
  }
  /* From the Python transcription of d2l (see the file comment). */
  cr_expect_eq(sw, 1883);
  cr_expect_eq(tw, 2005);
  cr_expect_eq(sc, 5942);
  cr_expect_eq(tc, 8664);
  rt_pairs_free(&p);
}

/* Latin-1 bytes, a truncated sequence, an overlong form and a surrogate are
 * each refused at their line and column; well-formed multi-byte text is
 * kept. */
Test(text, invalid_utf8_names_line_and_column) {
  static const struct {
    const char *body;
    int line, col;
  } cases[] = {
      {"go .\tva !\ncaf\xe9\tcafe\n", 2, 4},
      {"ok\tok\n\nab\t\xc3\n", 3, 4},
      {"\xc0\xaf\tx\n", 1, 1},
      {"a\tb\nc\td\nx\xed\xa0\x80\ty\n", 3, 2},
      {"a\t\xf4\x90\x80\x80\n", 1, 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ir_diag d = {0};
    rt_pairs p;
    cr_expect(!rt_pairs_parse(cases[i].body, strlen(cases[i].body), "f.txt", 0, &p, &d), "case %zu",
              i);
    cr_expect_eq(d.line, cases[i].line, "case %zu: line %d", i, d.line);
    cr_expect_eq(d.col, cases[i].col, "case %zu: col %d", i, d.col);
    char want[32];
    snprintf(want, sizeof want, "f.txt:%d:%d: invalid UTF-8", cases[i].line, cases[i].col);
    cr_expect(strncmp(d.msg, want, strlen(want)) == 0, "case %zu: \"%s\"", i, d.msg);
    cr_expect_eq(p.n, 0);
  }
  const char ok[] = "caf\xc3\xa9\t\xe2\x82\xac \xf0\x9f\x98\x80\n";
  ir_diag d = {0};
  rt_pairs p;
  cr_assert(rt_pairs_parse(ok, strlen(ok), "f.txt", 0, &p, &d), "%s", d.msg);
  cr_expect_eq(p.n, 1);
  cr_expect_str_eq(p.src[0], "caf\xc3\xa9");
  rt_pairs_free(&p);
}
