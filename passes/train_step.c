/* The autodiff row of the pipeline: when compiling a training step, the
 * gradient of return 0 (the loss) with respect to the chosen parameters
 * (pass_autodiff), then clipping and the optimizer update (pass_optimizer).
 * Fusion ran before this row, so fused regions differentiate through their
 * own gradient rules. Afterwards the graph returns the loss alone. */
#include <stdlib.h>
#include <string.h>

#include "passes/autodiff.h"
#include "passes/pipeline.h"

static bool train_enabled(const ir_node *n) {
  return n->op == IR_OP_PARAM && ir_dtype_is_float(n->type.dtype) &&
         ir_node_attr(n, "trainable")->b;
}

static const char *pname(const ir_node *n) { return ir_node_attr(n, "name")->s; }

/* One PARAM node per distinct name to train: the named ones (each must
 * exist and be trainable) or every trainable one. Returns the count or -1. */
static int pick(const ir_graph *g, const pass_train *t, int *out, ir_diag *d) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *p = g->nodes[i];
    if (!train_enabled(p)) continue;
    bool wanted = !t->params || t->nparams <= 0;
    for (int k = 0; k < t->nparams && !wanted && t->params; k++)
      wanted = strcmp(t->params[k], pname(p)) == 0;
    for (int j = 0; j < n && wanted; j++)
      wanted = strcmp(pname(g->nodes[out[j]]), pname(p)) != 0;
    if (wanted) out[n++] = i;
  }
  for (int k = 0; t->params && k < t->nparams; k++) {
    bool found = false;
    for (int j = 0; j < n && !found; j++)
      found = strcmp(pname(g->nodes[out[j]]), t->params[k]) == 0;
    if (!found) {
      ir_diag_set(d, "no trainable float parameter named \"%s\"", t->params[k]);
      return -1;
    }
  }
  if (n == 0) ir_diag_set(d, "the graph has no trainable parameter");
  return n ? n : -1;
}

bool pass_autodiff_step(ir_graph **gp, const pass_opts *o, bool *changed, ir_diag *d) {
  ir_graph *g = *gp;
  *changed = false;
  if (!o || !o->train) return true;
  int loss = g->rets[0];
  const ir_node *ln = g->nodes[loss];
  if (ln->type.rank != 0 || !ir_dtype_is_float(ln->type.dtype)) {
    char t[IR_TYPE_STRLEN];
    ir_diag_set(d, "the loss (return 0) must be a float scalar, %%%s is %s",
                ln->name ? ln->name : "(unnamed)", ir_type_str(&ln->type, t, sizeof t));
    return false;
  }
  int *wrt = malloc(sizeof(int) * 2 * (size_t)(g->nnodes + 1));
  if (!wrt) {
    ir_diag_set(d, "out of memory");
    return false;
  }
  int *grads = wrt + g->nnodes + 1;
  int n = pick(g, o->train, wrt, d);
  bool ok = n > 0 && pass_autodiff(g, loss, n, wrt, grads, d) &&
            pass_optimizer(g, &o->train->optim, n, wrt, grads, d);
  free(wrt);
  if (ok) {
    ir_set_returns(g, 1, &loss);
    *changed = true;
  }
  return ok;
}
