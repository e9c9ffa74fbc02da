/* Scale benchmark (issue 16): per-pass times of the generated graphs of
 * tests/support/scale_graphs.h at growing node counts, so a pass that turns
 * quadratic shows as a time that quadruples when N doubles twice.
 *   bench_scale passes chain|returns|fanout|params N...   one line per pass
 *   bench_scale write chain|returns|fanout|params N FILE  the .kir text, for the CLI */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "ir/ir.h"
#include "passes/pipeline.h"
#include "runtime/ref.h"
#include "tests/support/scale_graphs.h"

static char *gen(const char *kind, int n) {
  if (strcmp(kind, "chain") == 0) return sg_chain(n, 16);
  if (strcmp(kind, "returns") == 0) return sg_returns(n, 16);
  if (strcmp(kind, "fanout") == 0) return sg_fanout(n, 16);
  if (strcmp(kind, "params") == 0) return sg_params(n, 16);
  return NULL;
}

/* Runs the default (inference) pipeline row by row, as pass_run_pipeline
 * does, printing each row's seconds; then printing and the reference run. */
static int time_passes(const char *kind, int n) {
  char *text = gen(kind, n);
  if (!text) return fprintf(stderr, "unknown graph kind %s\n", kind), 2;
  ir_diag d = {0};
  double t0 = now_s();
  ir_graph *g = ir_parse(text, strlen(text), kind, &d);
  free(text);
  if (!g) return fprintf(stderr, "%s\n", d.msg), 1;
  printf("%-8s N=%-8d parse %8.3f s\n", kind, n, now_s() - t0);
  pass_opts opts = {0};
  int np;
  const pass_info *p = pass_pipeline(&np);
  for (int i = 0; i < np; i++) {
    if (p[i].enabled && !p[i].enabled(&opts)) continue;
    t0 = now_s();
    bool changed;
    int rounds = 0;
    do {
      if (!p[i].run(&g, &opts, &changed, &d)) return fprintf(stderr, "%s\n", d.msg), 1;
    } while (p[i].fixpoint && changed && ++rounds < 100);
    printf("%-8s N=%-8d %-24s %8.3f s  (%d nodes)\n", kind, n, p[i].name, now_s() - t0, g->nnodes);
  }
  t0 = now_s();
  bool ok = ir_verify(g, &d);
  printf("%-8s N=%-8d %-24s %8.3f s\n", kind, n, "ir_verify", now_s() - t0);
  t0 = now_s();
  char *s = ir_print_str(g, NULL);
  printf("%-8s N=%-8d %-24s %8.3f s\n", kind, n, "ir_print", now_s() - t0);
  free(s);
  ir_type t = ir_type_make(IR_F32, 1, (int64_t[]){16});
  rt_tensor *x = rt_tensor_create(&t);
  rt_tensor **outs = calloc((size_t)g->nrets, sizeof *outs);
  t0 = now_s();
  ok = ok && outs && x && rt_ref_run(g, (const rt_tensor *const[]){x}, NULL, NULL, NULL, outs, &d);
  printf("%-8s N=%-8d %-24s %8.3f s\n", kind, n, "rt_ref_run", now_s() - t0);
  for (int r = 0; ok && r < g->nrets; r++)
    rt_tensor_destroy(outs[r]);
  free(outs);
  rt_tensor_destroy(x);
  ir_graph_destroy(g);
  if (!ok) fprintf(stderr, "%s\n", d.msg);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "write") == 0) {
    char *text = gen(argv[2], atoi(argv[3]));
    int ok = text && sg_write(argv[4], text);
    free(text);
    return ok ? 0 : 1;
  }
  if (argc >= 4 && strcmp(argv[1], "passes") == 0) {
    for (int a = 3; a < argc; a++)
      if (time_passes(argv[2], atoi(argv[a])) != 0) return 1;
    return 0;
  }
  fprintf(stderr, "usage: bench_scale passes KIND N... | write KIND N FILE\n");
  return 2;
}
