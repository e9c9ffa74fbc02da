/* IR text round trips: every canonical corpus file prints back byte for
 * byte, the non-canonical DESIGN.md example parses to its canonical form,
 * truncated and mutated inputs fail cleanly, and printer details (name
 * uniquing, float formatting, elided constants, SHA-256) match hand or
 * known-answer values. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/numfmt.h"
#include "ir/sha256.h"

#define CORPUS KILN_SOURCE_DIR "/tests/corpus"

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
  buf[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* Sorted list of the corpus .kir paths; returns the count. */
static int corpus_files(char paths[][512], int max) {
  DIR *dir = opendir(CORPUS);
  cr_assert(dir, "no corpus directory %s", CORPUS);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) && n < max) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".kir") == 0)
      snprintf(paths[n++], 512, "%s/%s", CORPUS, e->d_name);
  }
  closedir(dir);
  qsort(paths, (size_t)n, 512, (int (*)(const void *, const void *))strcmp);
  return n;
}

static ir_graph *parse_ok(const char *text, size_t len, const char *name) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, len, name, &d);
  cr_assert(g, "%s does not parse: %s", name, d.msg);
  return g;
}

Test(roundtrip, corpus_prints_back_byte_for_byte) {
  char paths[64][512];
  int n = corpus_files(paths, 64);
  cr_assert_geq(n, 10, "corpus has only %d files", n);
  for (int i = 0; i < n; i++) {
    size_t len;
    char *text = read_file(paths[i], &len);
    ir_graph *g = parse_ok(text, len, paths[i]);
    char *out = ir_print_str(g, NULL);
    cr_assert_str_eq(out, text, "%s does not print back", paths[i]);
    ir_graph *g2 = parse_ok(out, strlen(out), paths[i]);
    char *out2 = ir_print_str(g2, NULL);
    cr_assert_str_eq(out2, out, "%s: second round trip differs", paths[i]);
    free(out2);
    ir_graph_destroy(g2);
    free(out);
    ir_graph_destroy(g);
    free(text);
  }
}

Test(roundtrip, corpus_uses_every_op_and_attribute_kind) {
  char paths[64][512];
  int n = corpus_files(paths, 64);
  bool op_seen[IR_NUM_OPS] = {false};
  bool kind_seen[IR_ATTR_INTS + 1] = {false};
  bool loc_seen = false, multi_ret = false, numbered = false, scalar = false;
  for (int i = 0; i < n; i++) {
    size_t len;
    char *text = read_file(paths[i], &len);
    ir_graph *g = parse_ok(text, len, paths[i]);
    for (int j = 0; j < g->nnodes; j++) {
      const ir_node *nd = g->nodes[j];
      const ir_op_info *info = ir_op_get(nd->op);
      op_seen[nd->op] = true;
      for (int k = 0; k < info->nattrs; k++)
        kind_seen[info->attrs[k].kind] = true;
      loc_seen |= nd->loc.file != NULL;
      numbered |= nd->name == NULL;
      scalar |= nd->type.rank == 0;
    }
    multi_ret |= g->nrets > 1;
    ir_graph_destroy(g);
    free(text);
  }
  for (int op = 0; op < IR_NUM_OPS; op++)
    cr_expect(op_seen[op], "no corpus file uses op %s", ir_op_get((ir_op)op)->name);
  for (int k = 0; k <= IR_ATTR_INTS; k++)
    cr_expect(kind_seen[k], "no corpus file uses attribute kind %d", k);
  cr_expect(loc_seen && multi_ret && numbered && scalar);
}

/* DESIGN.md's example, aligned '=' and a comment: canonical form written
 * out by hand (single spaces, f32 const in shortest round-trip digits). */
Test(roundtrip, noncanonical_design_example) {
  static const char want[] =
      "graph @attention(%q: f32[2,4,8], %k: f32[2,6,8], %v: f32[2,6,8], %len: i32[2]) {\n"
      "  %kt = transpose(%k) {perm = [0, 2, 1]} : f32[2,8,6]\n"
      "  %s = matmul(%q, %kt) : f32[2,4,6]\n"
      "  %c = const(0.35355338) : f32[]\n"
      "  %sc = mul(%s, %c) : f32[2,4,6]\n"
      "  %m = sequence_mask(%sc, %len) {value = -1000000.0} : f32[2,4,6]\n"
      "  %w = softmax(%m) {axis = -1} : f32[2,4,6]\n"
      "  %o = matmul(%w, %v) : f32[2,4,8]\n"
      "  return %o\n"
      "}\n";
  size_t len;
  char *text = read_file(CORPUS "/noncanonical/design_attention.kir", &len);
  ir_graph *g = parse_ok(text, len, "design_attention.kir");
  cr_assert_eq(g->nnodes, 11);
  float c = *(const float *)g->nodes[6]->data;
  cr_expect_eq(c, 0.35355339f);
  char *out = ir_print_str(g, NULL);
  cr_assert_str_eq(out, want);
  ir_graph *g2 = parse_ok(out, strlen(out), "again");
  char *out2 = ir_print_str(g2, NULL);
  cr_expect_str_eq(out2, out);
  free(out2);
  free(out);
  ir_graph_destroy(g2);
  ir_graph_destroy(g);
  free(text);
}

/* Every prefix of every corpus file, and single-byte mutations, either
 * parse or fail with a positioned message (run under ASan for leaks). */
Test(roundtrip, truncated_and_mutated_inputs_fail_cleanly) {
  char paths[64][512];
  int n = corpus_files(paths, 64);
  static const char mut[] = {'%', '"', '#', '\0', '[', '-', 'x', '\n', '}', '9'};
  long failures = 0;
  for (int i = 0; i < n; i++) {
    size_t len;
    char *text = read_file(paths[i], &len);
    char *copy = malloc(len);
    for (size_t k = 0; k < len; k++) {
      /* An exact-size heap copy lets ASan catch reads past the end. */
      char *pre = malloc(k ? k : 1);
      memcpy(pre, text, k);
      ir_diag d = {0};
      ir_graph *g = ir_parse(pre, k, "t.kir", &d);
      if (g) {
        ir_graph_destroy(g);
      } else {
        failures++;
        cr_assert(d.line >= 1 && d.col >= 1, "%s prefix %zu: no position (%s)", paths[i], k, d.msg);
        cr_assert(strncmp(d.msg, "t.kir:", 6) == 0 && !strchr(d.msg, '\n'), "%s", d.msg);
      }
      free(pre);
      for (size_t m = 0; m < sizeof mut; m++) {
        memcpy(copy, text, len);
        copy[k] = mut[m];
        g = ir_parse(copy, len, "t.kir", &d);
        if (g)
          ir_graph_destroy(g);
        else
          cr_assert(d.line >= 1 && d.col >= 1, "mutation: no position (%s)", d.msg);
      }
    }
    free(copy);
    free(text);
  }
  cr_expect_gt(failures, 0);
}

/* ---- printer -------------------------------------------------------------- */

static int neg_of(ir_graph *g, int x, const char *name) {
  ir_diag d = {0};
  int id = ir_add_node(g, IR_OP_NEG, 1, &x, NULL, NULL, &d);
  cr_assert_geq(id, 0, "%s", d.msg);
  if (name) ir_node_set_name(g, id, name);
  return id;
}

Test(print, display_names_are_unique_and_sanitised) {
  ir_graph *g = ir_graph_create("my graph!");
  ir_diag d = {0};
  ir_type t = ir_type_make(IR_F32, 1, (int64_t[]){2});
  int x = ir_add_arg(g, "x", &t, &d);
  int h = neg_of(g, x, "h");
  int h2 = neg_of(g, h, "h");
  int zero = neg_of(g, h2, "0");
  int un = neg_of(g, zero, NULL);
  int ab = neg_of(g, un, "a b-c");
  int h1 = neg_of(g, ab, "h_1");
  int empty = neg_of(g, h1, "");
  ir_set_returns(g, 2, (int[]){empty, h});
  ir_node_set_loc(g, h, "m.c", 3);
  static const char want[] = "graph @my_graph_(%x: f32[2]) {\n"
                             "  %h = neg(%x) : f32[2]  # m.c:3\n"
                             "  %h_1 = neg(%h) : f32[2]\n"
                             "  %0 = neg(%h_1) : f32[2]\n"
                             "  %1 = neg(%0) : f32[2]\n"
                             "  %a_b_c = neg(%1) : f32[2]\n"
                             "  %h_1_1 = neg(%a_b_c) : f32[2]\n"
                             "  %2 = neg(%h_1_1) : f32[2]\n"
                             "  return %2, %h\n"
                             "}\n";
  char *s = ir_print_str(g, NULL);
  cr_assert_str_eq(s, want);
  ir_graph *g2 = parse_ok(s, strlen(s), "names");
  char *s2 = ir_print_str(g2, NULL);
  cr_expect_str_eq(s2, want);
  ir_print_opts nolocs = {.locs = false};
  char *s3 = ir_print_str(g2, &nolocs);
  cr_expect(strstr(s3, "  %h = neg(%x) : f32[2]\n") != NULL && !strchr(s3, '#'), "%s", s3);
  free(s3);
  free(s2);
  free(s);
  ir_graph_destroy(g2);
  ir_graph_destroy(g);
}

Test(print, float_formatting) {
  char b[IR_NUMFMT_LEN];
  cr_expect_str_eq(ir_fmt_f32(0.1f, b, sizeof b), "0.1");
  cr_expect_str_eq(ir_fmt_f64(1e-5, b, sizeof b), "1e-05");
  cr_expect_str_eq(ir_fmt_f64(-1e6, b, sizeof b), "-1000000.0");
  /* float(1/3) = 0.3333333432674407958984375: 8 digits (0.33333334) are
   * within half an ulp (1.49e-8) of it, 7 (0.3333333) are not. */
  cr_expect_str_eq(ir_fmt_f32(1 / 3.0f, b, sizeof b), "0.33333334");
  cr_expect_str_eq(ir_fmt_f64(1 / 3.0, b, sizeof b), "0.3333333333333333");
  cr_expect_str_eq(ir_fmt_f64(0.1 + 0.2, b, sizeof b), "0.30000000000000004");
  cr_expect_str_eq(ir_fmt_f32(123456789.0f, b, sizeof b), "123456790.0");
  cr_expect_str_eq(ir_fmt_f64(1e16, b, sizeof b), "1e+16");
  cr_expect_str_eq(ir_fmt_f64(1e15, b, sizeof b), "1000000000000000.0");
  cr_expect_str_eq(ir_fmt_f64(0.0001, b, sizeof b), "0.0001");
  cr_expect_str_eq(ir_fmt_f64(1.5e-7, b, sizeof b), "1.5e-07");
  cr_expect_str_eq(ir_fmt_f64(5e-324, b, sizeof b), "5e-324");
  cr_expect_str_eq(ir_fmt_f64(1.7976931348623157e308, b, sizeof b), "1.7976931348623157e+308");
  cr_expect_str_eq(ir_fmt_f32(3.4028235e38f, b, sizeof b), "3.4028235e+38");
  cr_expect_str_eq(ir_fmt_f32(-0.0f, b, sizeof b), "-0.0");
  cr_expect_str_eq(ir_fmt_f64(2.5, b, sizeof b), "2.5");
  cr_expect_str_eq(ir_fmt_f64(100.0, b, sizeof b), "100.0");
  cr_expect_str_eq(ir_fmt_f32(__builtin_nanf(""), b, sizeof b), "nan");
  cr_expect_str_eq(ir_fmt_f64(-__builtin_inf(), b, sizeof b), "-inf");
}

static void hex(const uint8_t *h, int n, char *out) {
  for (int i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", h[i]);
}

Test(print, sha256_known_answers) {
  uint8_t h[32];
  char s[65];
  ir_sha256("abc", 3, h);
  hex(h, 32, s);
  cr_expect_str_eq(s, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ir_sha256("", 0, h);
  hex(h, 32, s);
  cr_expect_str_eq(s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char *m56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  ir_sha256(m56, strlen(m56), h);
  hex(h, 32, s);
  cr_expect_str_eq(s, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  char *ma = malloc(1000000);
  memset(ma, 'a', 1000000);
  ir_sha256(ma, 1000000, h);
  hex(h, 32, s);
  cr_expect_str_eq(s, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  free(ma);
}

Test(print, elided_constants) {
  ir_graph *g = ir_graph_create("c");
  ir_diag d = {0};
  ir_type t = ir_type_make(IR_F32, 1, (int64_t[]){4});
  int c = ir_add_const(g, &t, (float[]){1, 2, 3, 4}, &d);
  ir_type ti = ir_type_make(IR_I32, 1, (int64_t[]){3});
  int ci = ir_add_const(g, &ti, (int32_t[]){1, 2, 3}, &d);
  cr_assert(c >= 0 && ci >= 0, "%s", d.msg);
  ir_set_returns(g, 2, (int[]){c, ci});
  /* Digests from Python: hashlib.sha256(struct.pack('<4f', 1, 2, 3, 4)) and
   * struct.pack('<3i', 1, 2, 3), first 16 hex digits. */
  ir_print_opts o = {.locs = true, .elide_consts = 3};
  char *s = ir_print_str(g, &o);
  cr_assert_str_eq(s, "graph @c() {\n"
                      "  %0 = const(<folded 4 x f32, sha=ad73b9acd6e4a74b>) : f32[4]\n"
                      "  %1 = const(dense [1, 2, 3]) : i32[3]\n"
                      "  return %0, %1\n"
                      "}\n");
  ir_diag pd = {0};
  cr_expect_null(ir_parse(s, strlen(s), "f.kir", &pd));
  cr_expect_str_eq(pd.msg, "f.kir:2:14: folded constant cannot be parsed without its side table");
  free(s);
  o.elide_consts = 2;
  s = ir_print_str(g, &o);
  cr_expect(strstr(s, "const(<folded 3 x i32, sha=4636993d3e1da4e9>) : i32[3]"), "%s", s);
  free(s);
  s = ir_print_str(g, NULL);
  cr_expect(strstr(s, "const(dense [1.0, 2.0, 3.0, 4.0]) : f32[4]"), "%s", s);
  free(s);
  ir_graph_destroy(g);
}
