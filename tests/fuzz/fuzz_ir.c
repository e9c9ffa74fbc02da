/* Fuzz harness for the IR text path: parse; whatever parses (ir_parse also
 * verifies) must verify again, print, parse back and print to the same
 * text: the round-trip property of DESIGN.md's canonical form. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

/* A violated property: the library returned, but wrongly. */
static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_ir: %s\n%s\n", what, detail ? detail : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ir_diag d = {0};
  ir_graph *g = ir_parse((const char *)data, size, "fuzz.kir", &d);
  if (!g) return 0;
  ir_diag vd = {0};
  if (!ir_verify(g, &vd)) fail("a parsed graph does not verify", vd.msg);
  /* No elision: an elided constant does not parse back by design. */
  const ir_print_opts opts = {.locs = true, .elide_consts = 0};
  char *t1 = ir_print_str(g, &opts);
  ir_graph_destroy(g);
  if (!t1) return 0; /* out of memory */
  ir_diag d2 = {0};
  ir_graph *g2 = ir_parse(t1, strlen(t1), "printed.kir", &d2);
  if (!g2) fail("printed text does not parse back", d2.msg);
  char *t2 = ir_print_str(g2, &opts);
  ir_graph_destroy(g2);
  if (t2 && strcmp(t1, t2) != 0) {
    fprintf(stderr, "first print:\n%s\nsecond print:\n%s\n", t1, t2);
    fail("print(parse(print(g))) differs from print(g)", NULL);
  }
  free(t1);
  free(t2);
  return 0;
}
