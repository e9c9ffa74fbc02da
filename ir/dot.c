/* Graphviz DOT output of a graph (`kiln dump-ir --format dot`): nodes show
 * the op and result type, edges follow operands, returns are marked. */
#include "ir/ir.h"

/* DOT labels are quoted strings: escape what would end or break them. */
static void escaped(const char *s, FILE *f) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    fputc(*s, f);
  }
}

void ir_print_dot(const ir_graph *g, FILE *f) {
  fprintf(f, "digraph \"");
  escaped(g->name, f);
  fprintf(f, "\" {\n  node [shape=box, fontname=\"monospace\"];\n");
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    char ty[IR_TYPE_STRLEN];
    fprintf(f, "  n%d [label=\"", i);
    if (n->name) {
      fputc('%', f);
      escaped(n->name, f);
    } else {
      fprintf(f, "%%%d", n->id);
    }
    fprintf(f, " = %s\\n%s\"", ir_op_get(n->op)->name, ir_type_str(&n->type, ty, sizeof ty));
    if (n->op == IR_OP_ARG || n->op == IR_OP_PARAM) fprintf(f, ", style=rounded");
    fprintf(f, "];\n");
    for (int j = 0; j < n->nin; j++)
      fprintf(f, "  n%d -> n%d;\n", n->in[j], i);
  }
  for (int r = 0; r < g->nrets; r++)
    fprintf(f, "  ret%d [label=\"return %d\", shape=plaintext];\n  n%d -> ret%d;\n", r, r,
            g->rets[r], r);
  fprintf(f, "}\n");
}
