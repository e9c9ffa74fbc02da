/* Malformed IR text: each case asserts the exact "file:line:col:" prefix
 * (positions counted by hand, 1-based, bytes) and a fragment of the
 * message; plus the lenient cases that must parse (comments, locations,
 * integer literals for float attributes). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

static void expect_err(const char *text, const char *where, const char *fragment) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "t.kir", &d);
  if (g) ir_graph_destroy(g);
  cr_assert_null(g, "parsed but should fail (%s):\n%s", fragment, text);
  size_t wl = strlen(where);
  cr_expect(strncmp(d.msg, where, wl) == 0 && d.msg[wl] == ' ', "want %s got '%s'", where, d.msg);
  cr_expect(strstr(d.msg, fragment) != NULL, "want '%s' in '%s'", fragment, d.msg);
  cr_expect(strchr(d.msg, '\n') == NULL);
  int line, col;
  cr_assert(sscanf(where, "t.kir:%d:%d:", &line, &col) == 2);
  cr_expect(d.line == line && d.col == col, "d.line/col %d:%d, want %d:%d", d.line, d.col, line,
            col);
}

#define HDR "graph @g(%x: f32[2]) {\n"

Test(parse_errors, missing_graph_keyword) {
  expect_err("func @g() {\n  return %x\n}\n", "t.kir:1:1:", "expected 'graph'");
  expect_err("", "t.kir:1:1:", "expected 'graph'");
  expect_err("# only a comment\n\n  ", "t.kir:3:3:", "expected 'graph', got end of input");
}

Test(parse_errors, missing_graph_name) {
  expect_err("graph (%x: f32[2]) {\n  return %x\n}\n", "t.kir:1:7:", "expected the graph name");
}

Test(parse_errors, unknown_op) {
  expect_err(HDR "  %y = foo(%x) : f32[2]\n  return %y\n}\n", "t.kir:2:8:", "unknown op 'foo'");
}

Test(parse_errors, arg_in_body) {
  expect_err(HDR "  %y = arg() : f32[2]\n  return %y\n}\n", "t.kir:2:8:", "graph header");
}

Test(parse_errors, undefined_value) {
  expect_err(HDR "  %y = neg(%z) : f32[2]\n  return %y\n}\n",
             "t.kir:2:12:", "use of undefined value '%z'");
}

Test(parse_errors, redefinition) {
  expect_err(HDR "  %x = neg(%x) : f32[2]\n  return %x\n}\n",
             "t.kir:2:3:", "redefinition of '%x' (first defined on line 1)");
  expect_err("graph @g(%a: f32[2], %a: f32[2]) {\n  return %a\n}\n",
             "t.kir:1:22:", "redefinition of '%a'");
}

Test(parse_errors, wrong_operand_count) {
  expect_err(HDR "  %y = add(%x) : f32[2]\n  return %y\n}\n",
             "t.kir:2:8:", "add takes 2 operands, got 1");
  expect_err(HDR "  %y = select(%x, %x) : f32[2]\n  return %y\n}\n",
             "t.kir:2:8:", "select takes 3 operands, got 2");
}

Test(parse_errors, missing_return) {
  expect_err(HDR "  %y = neg(%x) : f32[2]\n}\n", "t.kir:3:1:", "missing 'return'");
  expect_err(HDR "  %y = neg(%x) : f32[2]\n", "t.kir:3:1:", "missing 'return' before end of input");
}

Test(parse_errors, return_of_undefined) {
  expect_err(HDR "  %y = neg(%x) : f32[2]\n  return %y, %q\n}\n",
             "t.kir:3:14:", "return of undefined value '%q'");
}

Test(parse_errors, text_after_closing_brace) {
  expect_err(HDR "  return %x\n}\n# fine\nfoo\n",
             "t.kir:5:1:", "unexpected text after the closing '}'");
  expect_err(HDR "  return %x\n} $", "t.kir:3:3:", "unexpected text after the closing '}'");
}

Test(parse_errors, unterminated_string) {
  expect_err(HDR "  %w = param(\"enc.w) : f32[2]\n  return %w\n}\n",
             "t.kir:2:14:", "unterminated string");
  expect_err(HDR "  %w = param(\"enc.w", "t.kir:2:14:", "unterminated string");
}

Test(parse_errors, bad_escape) {
  expect_err(HDR "  %w = param(\"a\\qb\") : f32[2]\n  return %w\n}\n", "t.kir:2:16:", "bad escape");
  expect_err(HDR "  %w = param(\"a\\x00\") : f32[2]\n  return %w\n}\n", "t.kir:2:16:", "NUL byte");
}

Test(parse_errors, bad_number) {
  expect_err(HDR "  %c = const(1.2.3) : f32[]\n  return %c\n}\n",
             "t.kir:2:14:", "bad number '1.2.3'");
  expect_err(HDR "  %c = const(12abc) : f32[]\n  return %c\n}\n",
             "t.kir:2:14:", "bad number '12abc'");
  expect_err(HDR "  %c = const(1e+) : f32[]\n  return %c\n}\n", "t.kir:2:14:", "bad number");
  expect_err(HDR "  %y = softmax(%x) {axis = 99999999999999999999} : f32[2]\n  return %y\n}\n",
             "t.kir:2:28:", "out of range");
}

Test(parse_errors, bad_types) {
  expect_err("graph @g(%x: f33[2]) {\n  return %x\n}\n", "t.kir:1:14:", "unknown dtype 'f33'");
  expect_err("graph @g(%x: f32[2,) {\n  return %x\n}\n",
             "t.kir:1:20:", "expected a dimension, got ')'");
  expect_err("graph @g(%x: f32[1,1,1,1,1,1,1]) {\n  return %x\n}\n",
             "t.kir:1:30:", "rank exceeds the maximum of 6");
  expect_err("graph @g(%x: f32[2,-3]) {\n  return %x\n}\n", "t.kir:1:20:", "negative dimension -3");
  expect_err("graph @g(%x: f32[1000000,1000000,1000]) {\n  return %x\n}\n",
             "t.kir:1:34:", "too many elements");
  expect_err("graph @g(%x: f32) {\n  return %x\n}\n", "t.kir:1:17:", "expected '['");
  expect_err("graph @g(%x: f32[2 3]) {\n  return %x\n}\n", "t.kir:1:20:", "expected ',' or ']'");
}

Test(parse_errors, missing_colon_type) {
  expect_err(HDR "  %y = neg(%x) f32[2]\n  return %y\n}\n",
             "t.kir:2:16:", "expected ':' and the result type, got 'f32'");
  expect_err(HDR "  %y = neg(%x)", "t.kir:2:15:", "got end of input");
}

Test(parse_errors, unknown_attribute) {
  expect_err(HDR "  %y = softmax(%x) {axes = 1} : f32[2]\n  return %y\n}\n",
             "t.kir:2:21:", "unknown attribute 'axes' (valid attributes of softmax: axis)");
  expect_err(HDR "  %y = neg(%x) {axis = 1} : f32[2]\n  return %y\n}\n",
             "t.kir:2:17:", "neg has no attributes");
}

Test(parse_errors, duplicate_attribute) {
  expect_err(HDR "  %y = softmax(%x) {axis = 0, axis = 0} : f32[2]\n  return %y\n}\n",
             "t.kir:2:31:", "duplicate attribute 'axis'");
  expect_err(HDR "  %w = param(\"a\") {name = \"b\"} : f32[2]\n  return %w\n}\n",
             "t.kir:2:20:", "duplicate attribute 'name'");
}

Test(parse_errors, attribute_kind_mismatch) {
  expect_err(HDR "  %y = softmax(%x) {axis = 1.5} : f32[2]\n  return %y\n}\n",
             "t.kir:2:28:", "attribute 'axis' of softmax expects an integer, got '1.5'");
  expect_err(HDR "  %y = dropout(%x) {p = \"a\"} : f32[2]\n  return %y\n}\n",
             "t.kir:2:25:", "expects a number");
  expect_err(HDR "  %y = matmul(%x, %x) {transpose_a = 1} : f32[]\n  return %y\n}\n",
             "t.kir:2:38:", "expects true or false");
  expect_err(HDR "  %y = transpose(%x) {perm = [0, 1.0]} : f32[2]\n  return %y\n}\n",
             "t.kir:2:34:", "expects a list of integers");
  expect_err(HDR "  %y = cast(%x) {to = \"f16\"} : f32[2]\n  return %y\n}\n",
             "t.kir:2:23:", "unknown dtype '\"f16\"'");
  expect_err(HDR "  %y = cast(%x) {to = f64} : f32[2]\n  return %y\n}\n",
             "t.kir:2:23:", "expects a dtype string");
}

Test(parse_errors, missing_required_attribute) {
  expect_err(HDR "  %y = transpose(%x) : f32[2]\n  return %y\n}\n",
             "t.kir:2:8:", "transpose requires attribute 'perm'");
}

Test(parse_errors, folded_constant) {
  expect_err(HDR "  %c = const(<folded 4 x f32, sha=abcd>) : f32[4]\n  return %c\n}\n",
             "t.kir:2:14:", "folded constant cannot be parsed without its side table");
}

Test(parse_errors, const_payloads) {
  expect_err(HDR "  %c = const(dense [1, 2, 3]) : f32[2,2]\n  return %c\n}\n",
             "t.kir:2:8:", "const has 3 elements but its type f32[2,2] has 4");
  expect_err(HDR "  %c = const(1.5) : f32[2]\n  return %c\n}\n",
             "t.kir:2:8:", "const has 1 element but its type f32[2] has 2");
  expect_err(HDR "  %c = const(dense [1, 2.5]) : i32[2]\n  return %c\n}\n",
             "t.kir:2:24:", "expected an integer for a i32 constant, got '2.5'");
  expect_err(HDR "  %c = const(dense [2147483648]) : i32[1]\n  return %c\n}\n",
             "t.kir:2:21:", "2147483648 is out of range for i32");
  expect_err(HDR "  %c = const(1) : bool[]\n  return %c\n}\n",
             "t.kir:2:14:", "expected true or false for a bool constant");
  expect_err(HDR "  %c = const(true) : f64[]\n  return %c\n}\n",
             "t.kir:2:14:", "expected a number for a f64 constant");
  expect_err(HDR "  %c = const(1e39) : f32[]\n  return %c\n}\n",
             "t.kir:2:14:", "1e39 is out of range for f32");
  expect_err(HDR "  %c = const(%x) : f32[]\n  return %c\n}\n",
             "t.kir:2:14:", "expected a constant value, got '%x'");
}

Test(parse_errors, declared_type_mismatch) {
  expect_err(HDR "  %y = neg(%x) : f32[3]\n  return %y\n}\n",
             "t.kir:2:8:", "declared type f32[3] does not match inferred type f32[2]");
  expect_err(HDR "  %y = cmp_lt(%x, %x) : f32[2]\n  return %y\n}\n",
             "t.kir:2:8:", "declared type f32[2] does not match inferred type bool[2]");
}

Test(parse_errors, operands_do_not_broadcast) {
  expect_err("graph @g(%a: f32[2], %b: f32[3]) {\n  %y = add(%a, %b) : f32[3]\n  return %y\n}\n",
             "t.kir:2:8:", "do not broadcast");
}

Test(parse_errors, unexpected_character) {
  expect_err(HDR "  %y = neg(%x) : f32[2] $\n  return %y\n}\n",
             "t.kir:2:25:", "unexpected character '$'");
  expect_err(HDR "  % = neg(%x) : f32[2]\n  return %y\n}\n",
             "t.kir:2:3:", "expected a value name after '%'");
}

Test(parse_errors, statement_expected) {
  expect_err(HDR "  neg(%x) : f32[2]\n  return %x\n}\n",
             "t.kir:2:3:", "expected a value definition or 'return', got 'neg'");
  expect_err(HDR "  return\n}\n", "t.kir:3:1:", "expected a value to return, got '}'");
}

/* ir_verify runs last; an error about a node points at the node's
 * statement ("%name = op(" or the argument's name in the header). */
Test(parse_errors, verify_failure_at_node) {
  expect_err("\n  graph @g(%0: f32[2]) {\n  return %0\n}\n", "t.kir:2:12:", "no name");
}

/* The three cases of issue 16 (they were reported at 1:1). */
Test(parse_errors, verify_errors_at_node_issue16) {
  expect_err(HDR "  %w = param(\"w\") {init = \"bogus\"} : f32[2]\n  return %w\n}\n",
             "t.kir:2:3:", "unknown init \"bogus\"");
  expect_err(HDR
             "  %b = neg(%x) : f32[2]\n"
             "    %y = loop(%x, %b) {shape = [2], dtype = \"f32\"} : f32[2] region(%p: f32[2]) {\n"
             "    %q = neg(%p) : f32[2]\n    return %q\n  }\n  return %y\n}\n",
             "t.kir:3:5:", "its body has 1 arguments for 2 operands");
  expect_err(HDR "  %y = loop(%x) {shape = [2], dtype = \"f32\"} : f32[2] region(%p: f32[2]) {\n"
                 "    %q = neg(%p) : f32[2]\n    return %q, %p\n  }\n  return %y\n}\n",
             "t.kir:2:3:", "its body returns 2 values, not 1");
}

/* Every verifier check that text can reach (the parser catches the rest
 * first), each on a node that is not the first statement, so a report at
 * the header or at node 0 would fail. */
#define LOOP1(body)                                                                                \
  "  %y = loop(%x) {shape = [2], dtype = \"f32\"} : f32[2] region(%p: f32[2]) {\n" body "  }\n"
Test(parse_errors, verify_error_sweep) {
  static const struct {
    const char *text, *where, *fragment;
  } cases[] = {
      {HDR
       "  %a = neg(%x) : f32[2]\n   %w = param(\"w\") {scale = -1.0} : f32[2]\n  return %w\n}\n",
       "t.kir:3:4:", "init scale must be >= 0"},
      {HDR "  %a = param(\"w\") : f32[2]\n  %b = param(\"w\") : f32[3]\n  return %b\n}\n",
       "t.kir:3:3:", "param \"w\" has type f32[3] here but f32[2]"},
      {HDR "  %a = neg(%x) : f32[2]\n  %s = assign(%a, %x) : f32[2]\n  return %s\n}\n",
       "t.kir:3:3:", "assign's first operand must be a param"},
      {HDR "  %w = param(\"w\") : f32[2]\n  %s = assign(%w, %x) : f32[2]\n"
           "  %t = assign(%w, %x) : f32[2]\n  return %t\n}\n",
       "t.kir:4:3:", "assigns param \"w\" a second time"},
      {HDR "  %w = param(\"w\") : f32[2]\n  %s = assign(%w, %x) : f32[2]\n"
           "  %u = add(%w, %x) : f32[2]\n  return %u\n}\n",
       "t.kir:4:3:", "reads param \"w\" after its assign"},
      {HDR "  %a = neg(%x) : f32[2]\n  %s = step() : f32[2]\n  return %s\n}\n",
       "t.kir:3:3:", "step is a numeric scalar"},
      {HDR "  %a = neg(%x) : f32[2]\n"
           "  %y = loop(%x) {shape = [2], dtype = \"f32\"} : f32[2] region(%p: f32[2], %r: "
           "f32[2]) {\n    return %p\n  }\n  return %y\n}\n",
       "t.kir:3:3:", "more arguments than the node's 1 operands"},
      {HDR "  %a = neg(%x) : f32[2]\n"
           "  %y = loop(%x) {shape = [2], dtype = \"f32\"} : f32[2] region(%p: f32[3]) {\n"
           "    %q = sum(%p) {axes = [0]} : f32[]\n    return %q\n  }\n  return %y\n}\n",
       "t.kir:3:3:", "body argument 0 is f32[3], operand 0 is f32[2]"},
      {HDR "  %a = neg(%x) : f32[2]\n" LOOP1("    %q = sum(%p) {axes = [0]} : f32[]\n"
                                             "    return %q\n") "  return %y\n}\n",
       "t.kir:3:3:", "its body returns f32[], the node is f32[2]"},
      {HDR "  %a = neg(%x) : f32[2]\n" LOOP1(
           "    %w = param(\"w\") : f32[2]\n"
           "    %q = add(%p, %w) : f32[2]\n    return %q\n") "  return %y\n}\n",
       "t.kir:3:3:", "its body holds a param"},
      {HDR "  %a = neg(%x) : f32[2]\n" LOOP1(
           "    %s = step() : f32[]\n"
           "    %q = add(%p, %s) : f32[2]\n    return %q\n") "  return %y\n}\n",
       "t.kir:3:3:", "its body holds a step"},
      {HDR "  %a = neg(%x) : f32[2]\n" LOOP1(
           "    %s = softmax(%p) : f32[2]\n    return %s\n") "  return %y\n}\n",
       "t.kir:3:3:", "its loop body holds a softmax"},
      {HDR
       "  %a = neg(%x) : f32[2]\n"
       "  %y = loop(%x) {shape = [3], dtype = \"f32\"} : f32[3] region(%p: f32[2]) {\n"
       "    %c = const(dense [1, 2, 3]) : f32[3]\n    %q = neg(%c) : f32[3]\n    return %q\n  }\n"
       "  return %y\n}\n",
       "t.kir:3:3:", "operand 0 (f32[2]) does not broadcast to the iteration space f32[3]"},
      /* an error inside a body points at the body's node */
      {HDR "  %a = neg(%x) : f32[2]\n" LOOP1("    %n = neg(%p) : f32[2]\n"
                                             "      %w = param(\"w\") {init = \"x\"} : f32[2]\n"
                                             "    return %n\n") "  return %y\n}\n",
       "t.kir:5:7:", "in its region body: %w (param): unknown init \"x\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    expect_err(cases[i].text, cases[i].where, cases[i].fragment);
}

Test(parse_errors, null_filename_and_diag) {
  ir_diag d = {0};
  cr_expect_null(ir_parse("graph", 5, NULL, &d));
  cr_expect_str_eq(d.msg, "<input>:1:6: expected the graph name '@name', got end of input");
  cr_expect_null(ir_parse("x", 1, "a.kir", NULL));
  cr_expect_null(ir_parse(NULL, 0, "a.kir", &d));
}

/* ---- lenient input that must parse --------------------------------- */

static ir_graph *parse_ok(const char *text) {
  ir_diag d = {0};
  ir_graph *g = ir_parse(text, strlen(text), "ok.kir", &d);
  cr_assert(g, "%s", d.msg);
  return g;
}

Test(parse_ok, comments_locations_and_spacing) {
  ir_graph *g = parse_ok("# leading comment\n"
                         "graph   @g ( %x :f32[ 2 ] ,%n:i32[2])\n{ # header comment\n"
                         "  # a full-line comment\n"
                         "  %y   =   neg ( %x )   :  f32 [2]   # src/model.c:42\n"
                         "  %z = exp(%y) : f32[2] # not a location\n"
                         "  %w = exp(%z) : f32[2]\n"
                         "  # lib/a:b.c:7  (on its own line: not %w's location)\n"
                         "  %v = exp(%w)\n    : f32[2]  #  c:d.c:9  \n"
                         "  %7 = relu(%v) : f32[2]\n"
                         "  return %7 , %y}  # trailing\n");
  cr_assert_eq(g->nnodes, 7);
  const ir_node *y = g->nodes[2], *z = g->nodes[3], *w = g->nodes[4], *v = g->nodes[5];
  cr_expect_str_eq(y->name, "y");
  cr_expect_str_eq(y->loc.file, "src/model.c");
  cr_expect_eq(y->loc.line, 42);
  cr_expect_null(z->loc.file);
  cr_expect_null(w->loc.file);
  cr_expect_str_eq(v->loc.file, "c:d.c");
  cr_expect_eq(v->loc.line, 9);
  cr_expect_null(g->nodes[6]->name);
  cr_expect_eq(g->nrets, 2);
  cr_expect_eq(g->rets[0], 6);
  cr_expect_eq(g->rets[1], 2);
  ir_graph_destroy(g);
}

Test(parse_ok, attribute_defaults_and_int_for_float) {
  ir_graph *g = parse_ok("graph @g(%x: f32[2,3], %g: f32[3], %b: f32[3]) {\n"
                         "  %d = dropout(%x) {p = 0} : f32[2,3]\n"
                         "  %l = layernorm(%x, %g, %b) : f32[2,3]\n"
                         "  %s = sum(%x) {axes = [1], keepdims = true} : f32[2,1]\n"
                         "  %c = cast(%x) {to = \"i64\"} : i64[2,3]\n"
                         "  %e = gelu(%x) {approximate = \"tanh\"} : f32[2,3]\n"
                         "  %w = param(\"enc.\\\"w\\\"\\x41\") : f32[3]\n"
                         "  return %d, %l, %s, %c, %e, %w\n"
                         "}\n");
  cr_expect_eq(ir_node_attr(g->nodes[3], "p")->f, 0.0);
  cr_expect_eq(ir_node_attr(g->nodes[4], "eps")->f, 1e-5);
  cr_expect_eq(ir_node_attr(g->nodes[5], "keepdims")->b, true);
  cr_expect_eq(ir_node_attr(g->nodes[6], "to")->dt, IR_I64);
  cr_expect_str_eq(ir_node_attr(g->nodes[7], "approximate")->s, "tanh");
  cr_expect_str_eq(ir_node_attr(g->nodes[8], "name")->s, "enc.\"w\"A");
  ir_graph_destroy(g);
}

Test(parse_ok, const_literals) {
  ir_graph *g = parse_ok("graph @g() {\n"
                         "  %a = const(dense [1, -2.5, nan, -inf, 1e-3]) : f32[5]\n"
                         "  %b = const(dense [3]) : f64[]\n"
                         "  %c = const(dense [-9223372036854775808]) : i64[1]\n"
                         "  return %a, %b, %c\n"
                         "}\n");
  const float *a = g->nodes[0]->data;
  cr_expect(a[0] == 1.0f && a[1] == -2.5f && a[2] != a[2] && a[3] == -__builtin_inff() &&
            a[4] == 1e-3f);
  cr_expect_eq(*(const double *)g->nodes[1]->data, 3.0);
  cr_expect_eq(*(const int64_t *)g->nodes[2]->data, INT64_MIN);
  ir_graph_destroy(g);
}

/* Issue 16, defect 1: a region op without operands made the parser call
 * memcpy(ops, NULL, 0), undefined behaviour that the sanitizer build now
 * reports as fatal. The fuzzer's minimized input is also replayed from
 * tests/fuzz/regress/ir/. */
Test(parse_errors, region_without_operands) {
  expect_err("graph @p() {\n  %y = loop() {shape = [], dtype = \"f32\"} : f32[] region() {\n"
             "    %c = const(1.0) : f32[]\n    return %c\n  }\n  return %y\n}\n",
             "t.kir:2:8:", "loop takes at least 1 operands, got 0");
  expect_err("graph@p(){%y=loop(){shape=[],dtype=\"f32\"}:f32[]region",
             "t.kir:1:54:", "expected '(' after 'region', got end of input");
}
