/* The reference interpreter's driver: walks a graph in order, binds
 * arguments, parameters and constants, runs each node's kernel from the op
 * table (ops.def REF column), frees intermediates after their last use and
 * hands back owned copies of the returned values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/numerics.h"
#include "runtime/ref_util.h"

static const rt_ref_fn kernels[IR_NUM_OPS] = {
#define IR_OP(E, T, AR, AT, FU, SH, REF, LOWER_, GRAD_) [IR_OP_##E] = REF,
#include "ir/ops.def"
#undef IR_OP
};

void rt_node_where(const ir_node *n, char *buf, size_t len) {
  char nm[160];
  if (n->name)
    snprintf(nm, sizeof nm, "%%%s", n->name);
  else
    snprintf(nm, sizeof nm, "%%%d", n->id);
  if (n->loc.file)
    snprintf(buf, len, "%s:%d: %s", n->loc.file, n->loc.line, nm);
  else if (n->loc.text_line > 0) /* parsed from IR text with no "# file:line" comment */
    snprintf(buf, len, "%d:%d: %s", n->loc.text_line, n->loc.text_col, nm);
  else
    snprintf(buf, len, "%s", nm);
}

/* Rewrites d->msg as "file.c:12: %name: op: <msg>" (kernel messages
 * already start with the op's name). */
static void prefix_node(const ir_node *n, ir_diag *d) {
  if (!d) return;
  char where[256], msg[sizeof d->msg];
  rt_node_where(n, where, sizeof where);
  snprintf(msg, sizeof msg, "%s", d->msg);
  const char *op = (unsigned)n->op < IR_NUM_OPS ? ir_op_get(n->op)->name : "?";
  size_t ol = strlen(op);
  bool has_op = strncmp(msg, op, ol) == 0 && msg[ol] == ':';
  ir_diag_set(d, "%s: %s%s%s", where, has_op ? "" : op, has_op ? "" : ": ", msg);
}

static bool eval_node(const ir_node *n, const rt_tensor *const *in, rt_tensor *out,
                      const rt_ref_opts *opts, ir_diag *d) {
  if ((unsigned)n->op >= IR_NUM_OPS) {
    ir_diag_set(d, "unknown op %d", (int)n->op);
    return false;
  }
  const ir_op_info *info = ir_op_get(n->op);
  if (info->arity >= 0 ? n->nin != info->arity : n->nin < 1) {
    ir_diag_set(d, "%s: %d operands", info->name, n->nin);
    return false;
  }
  for (int i = 0; i < n->nin; i++) {
    if (!in[i]) {
      ir_diag_set(d, "%s: operand %d has no value", info->name, i);
      return false;
    }
  }
  if (!ir_type_eq(&out->type, &n->type)) {
    char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
    ir_diag_set(d, "%s: result tensor is %s, node type is %s", info->name,
                ir_type_str(&out->type, a, sizeof a), ir_type_str(&n->type, b, sizeof b));
    return false;
  }
  return kernels[n->op](n, in, out, opts, d);
}

bool rt_ref_eval_node(const ir_node *n, const rt_tensor *const *in, rt_tensor *out,
                      const rt_ref_opts *opts, ir_diag *d) {
  ir_diag local;
  if (!d) d = &local;
  if (eval_node(n, in, out, opts, d)) return true;
  prefix_node(n, d);
  return false;
}

/* State of one run: a value per node, which of them we own, and the id of
 * each node's last consumer (g->nnodes for returned values). */
typedef struct run_state {
  const rt_tensor **val;
  rt_tensor **own;
  int *last;
  int nnodes;
} run_state;

static void run_free(run_state *s) {
  if (s->own)
    for (int i = 0; i < s->nnodes; i++)
      rt_tensor_destroy(s->own[i]);
  free(s->own);
  free(s->val);
  free(s->last);
}

static void release(run_state *s, int id) {
  rt_tensor_destroy(s->own[id]);
  s->own[id] = NULL;
  s->val[id] = NULL;
}

static bool fail_type(const ir_node *n, const char *what, const ir_type *want, const ir_type *got,
                      ir_diag *d) {
  char a[IR_TYPE_STRLEN], b[IR_TYPE_STRLEN];
  ir_diag_set(d, "%s: expected %s, got %s", what, ir_type_str(want, a, sizeof a),
              ir_type_str(got, b, sizeof b));
  (void)n;
  return false;
}

/* Binds a leaf node's value: an argument, a parameter or a constant. */
static bool bind_leaf(const ir_graph *g, const ir_node *n, int argi, const rt_tensor *const *args,
                      rt_param_lookup params, void *params_ctx, run_state *s, ir_diag *d) {
  char what[200];
  if (n->name)
    snprintf(what, sizeof what, "input %%%s", n->name);
  else
    snprintf(what, sizeof what, "input %%%d", n->id);
  (void)g;
  if (n->op == IR_OP_ARG) {
    const rt_tensor *t = args ? args[argi] : NULL;
    if (!t) {
      ir_diag_set(d, "%s: no value given", what);
      return false;
    }
    if (!ir_type_eq(&t->type, &n->type)) return fail_type(n, what, &n->type, &t->type, d);
    s->val[n->id] = t;
    return true;
  }
  if (n->op == IR_OP_PARAM) {
    const char *pname = n->attrs[0].s ? n->attrs[0].s : "?";
    const rt_tensor *t = params ? params(params_ctx, n) : NULL;
    if (!t) {
      ir_diag_set(d, "parameter '%s' has no value", pname);
      prefix_node(n, d);
      return false;
    }
    if (!ir_type_eq(&t->type, &n->type)) {
      snprintf(what, sizeof what, "parameter '%s'", pname);
      fail_type(n, what, &n->type, &t->type, d);
      prefix_node(n, d);
      return false;
    }
    s->val[n->id] = t;
    return true;
  }
  return false; /* not reached: callers only pass ARG and PARAM */
}

bool rt_ref_run(const ir_graph *g, const rt_tensor *const *args, rt_param_lookup params,
                void *params_ctx, const rt_ref_opts *opts, rt_tensor **outs, ir_diag *d) {
  ir_diag local;
  if (!d) d = &local;
  run_state s = {.nnodes = g->nnodes};
  int nn = g->nnodes ? g->nnodes : 1;
  s.val = calloc((size_t)nn, sizeof *s.val);
  s.own = calloc((size_t)nn, sizeof *s.own);
  s.last = calloc((size_t)nn, sizeof *s.last);
  if (!s.val || !s.own || !s.last) {
    run_free(&s);
    ir_diag_set(d, "out of memory");
    return false;
  }
  for (int i = 0; i < g->nnodes; i++)
    s.last[i] = i; /* unused values die right after they are made */
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->nin; k++) {
      if (n->in[k] < 0 || n->in[k] >= i) {
        ir_diag_set(d, "operand %d refers to no earlier value", k);
        prefix_node(n, d);
        run_free(&s);
        return false;
      }
      s.last[n->in[k]] = i;
    }
  }
  for (int r = 0; r < g->nrets; r++) {
    if (g->rets[r] < 0 || g->rets[r] >= g->nnodes) {
      ir_diag_set(d, "return value %d refers to no value", r);
      run_free(&s);
      return false;
    }
    s.last[g->rets[r]] = g->nnodes;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_ASSIGN) s.last[i] = g->nnodes; /* written back at the end */

  int argi = 0;
  bool ok = true;
  const rt_tensor *inv[16];
  for (int i = 0; ok && i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_ARG || n->op == IR_OP_PARAM) {
      ok = bind_leaf(g, n, argi, args, params, params_ctx, &s, d);
      if (n->op == IR_OP_ARG) argi++;
      continue;
    }
    const rt_tensor **in = n->nin <= 16 ? inv : malloc((size_t)n->nin * sizeof *in);
    rt_tensor *out = rt_tensor_create(&n->type);
    if (!in || !out) {
      char sz[IR_TYPE_STRLEN + 40];
      ir_diag_set(d, "out of memory for its value (%s)", rt_type_size_str(&n->type, sz, sizeof sz));
      prefix_node(n, d);
      ok = false;
    } else {
      for (int k = 0; k < n->nin; k++)
        in[k] = s.val[n->in[k]];
      ok = rt_ref_eval_node(n, in, out, opts, d);
      /* constants are no kernels (compiled code checks none either) */
      int64_t bad = ok && opts && opts->check_numerics && n->op != IR_OP_CONST
                        ? rt_first_nonfinite(out->data, rt_numel(out), out->type.dtype)
                        : -1;
      if (bad >= 0) {
        rt_nonfinite_report(n, out, bad, in, opts, d);
        ok = false;
      }
    }
    if (in != inv) free(in);
    if (!ok) {
      rt_tensor_destroy(out);
      break;
    }
    s.own[i] = out;
    s.val[i] = out;
    for (int k = 0; k < n->nin; k++)
      if (s.last[n->in[k]] == i && s.val[n->in[k]]) release(&s, n->in[k]);
    if (s.last[i] == i) release(&s, i);
  }
  if (!ok) {
    run_free(&s);
    return false;
  }
  rt_tensor *res[64], **tmp = g->nrets <= 64 ? res : calloc((size_t)g->nrets, sizeof *tmp);
  if (!tmp) {
    ir_diag_set(d, "out of memory");
    ok = false;
  }
  for (int r = 0; ok && r < g->nrets; r++) {
    tmp[r] = rt_tensor_clone(s.val[g->rets[r]]);
    if (!tmp[r]) {
      for (int q = 0; q < r; q++)
        rt_tensor_destroy(tmp[q]);
      char sz[IR_TYPE_STRLEN + 40];
      ir_diag_set(d, "out of memory copying output %d (%s)", r,
                  rt_type_size_str(&s.val[g->rets[r]]->type, sz, sizeof sz));
      ok = false;
    }
  }
  for (int i = 0; ok && opts && opts->assign && i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_ASSIGN && !opts->assign(opts->assign_ctx, g->nodes[n->in[0]], s.val[i], d)) {
      for (int r = 0; r < g->nrets; r++)
        rt_tensor_destroy(tmp[r]);
      ok = false;
    }
  }
  if (ok)
    for (int r = 0; r < g->nrets; r++)
      outs[r] = tmp[r];
  if (tmp && tmp != res) free(tmp);
  run_free(&s);
  return ok;
}
