/* The fuse-attention pass: matmul(Q, K^T) -> scale -> canonical mask ->
 * softmax -> [dropout] -> matmul(., V) becomes one attention region
 * (pass_build_attention); where only scale -> mask -> softmax matches, one
 * scale_mask_softmax node. With --explain-fusion it says, per softmax, what
 * it fused or which node broke which pattern (passes/fuse_match.c). */
#include <stdlib.h>
#include <string.h>

#include "passes/fuse_match.h"
#include "passes/fused_build.h"
#include "passes/pipeline.h"
#include "passes/rewrite.h"

static void where(const ir_graph *g, int id, char *buf, size_t len) {
  char s[128];
  fm_node_str(g, id, s, sizeof s);
  const ir_loc *l = &g->nodes[id]->loc;
  if (l->file)
    snprintf(buf, len, "%s (%s:%d)", s, l->file, l->line);
  else
    snprintf(buf, len, "%s", s);
}

static void explain(FILE *f, const ir_graph *g, int sm, const fm_match *m) {
  char w[300], t[128];
  where(g, sm, w, sizeof w);
  const char *mask = "";
  if (m->prm.mask >= 0)
    mask = ir_dtype_is_int(g->nodes[m->prm.mask]->type.dtype) ? ", lengths" : ", bias";
  switch (m->kind) {
  case FM_ATTENTION:
    fm_node_str(g, m->top, t, sizeof t);
    fprintf(f, "fuse-attention: softmax %s: fused attention replacing %s (scale %g%s%s%s)\n", w, t,
            m->prm.scale, mask, m->prm.causal ? ", causal" : "", m->p > 0 ? ", dropout" : "");
    break;
  case FM_SMS:
    fprintf(f,
            "fuse-attention: softmax %s: fused scale_mask_softmax (scale %g%s%s); attention not "
            "fused: %s\n",
            w, m->prm.scale, mask, m->prm.causal ? ", causal" : "", m->why_att);
    break;
  default:
    fprintf(f, "fuse-attention: softmax %s: unfused: attention: %s; scale_mask_softmax: %s\n", w,
            m->why_att, m->why_sms);
  }
}

/* Builds the replacement of m->top in rw->dst; returns its id or -1. */
static int build(pass_rw *rw, const fm_match *m) {
  const ir_graph *src = rw->src;
  const ir_node *top = src->nodes[m->top];
  int mask = m->prm.mask >= 0 ? rw->map[m->prm.mask] : -1;
  if (m->kind == FM_ATTENTION) {
    ir_attr a[5] = {
        {.kind = IR_ATTR_FLOAT, .f = m->prm.scale},
        {.kind = IR_ATTR_BOOL, .b = m->prm.causal},
        {.kind = IR_ATTR_FLOAT, .f = m->prm.mask_value},
        {.kind = IR_ATTR_FLOAT, .f = m->p},
        {.kind = IR_ATTR_INT, .i = m->p > 0 ? m->key : -1},
    };
    int id = pass_build_attention(rw->dst, rw->map[m->q], rw->map[m->k], rw->map[m->v], mask, a,
                                  &top->loc, rw->d);
    if (id < 0) return rw->failed = true, -1;
    if (top->name) ir_node_set_name(rw->dst, id, top->name);
    return id;
  }
  ir_attr a[3] = {{.kind = IR_ATTR_FLOAT, .f = m->prm.scale},
                  {.kind = IR_ATTR_BOOL, .b = m->prm.causal},
                  {.kind = IR_ATTR_FLOAT, .f = m->prm.mask_value}};
  int in[2] = {rw->map[m->x], mask};
  return pass_rw_add(rw, IR_OP_SCALE_MASK_SOFTMAX, mask >= 0 ? 2 : 1, in, a, NULL, m->top);
}

/* Copies src node i; a dropout with key -1 gets key = its old id, so its
 * mask stream survives the renumbering. */
static int copy(pass_rw *rw, int i) {
  const ir_node *n = rw->src->nodes[i];
  if (n->op != IR_OP_DROPOUT || n->attrs[1].i >= 0) return pass_rw_copy(rw, i);
  ir_attr a[2] = {n->attrs[0], {.kind = IR_ATTR_INT, .i = i}};
  int in = rw->map[n->in[0]];
  int id = pass_rw_add(rw, IR_OP_DROPOUT, 1, &in, a, NULL, i);
  if (id >= 0) pass_rw_map(rw, i, id);
  return id;
}

static bool keeps_state(ir_op op) {
  return op == IR_OP_ARG || op == IR_OP_ASSIGN || op == IR_OP_STEP || op == IR_OP_PARAM;
}

static bool rewrite(ir_graph **g, fm_match *ms, int nm, const int *uses, ir_diag *d) {
  const ir_graph *src = *g;
  int nn = src->nnodes;
  int *left = malloc(sizeof(int) * (size_t)nn), *fused = malloc(sizeof(int) * (size_t)nn);
  bool *dead = calloc((size_t)nn, sizeof(bool));
  if (!left || !fused || !dead) {
    free(left), free(fused), free(dead);
    ir_diag_set(d, "out of memory");
    return false;
  }
  memcpy(left, uses, sizeof(int) * (size_t)nn);
  for (int i = 0; i < nn; i++)
    fused[i] = -1;
  for (int j = 0; j < nm; j++) {
    fm_match *m = &ms[j];
    fused[m->top] = j;
    for (int s = 0; s < m->nswallow; s++)
      dead[m->swallow[s]] = true;
    int ops[4] = {m->kind == FM_ATTENTION ? m->q : m->x, m->k, m->v, m->prm.mask};
    for (int o = 0; o < 4; o++)
      if (ops[o] >= 0) left[ops[o]]++;
  }
  /* What the swallowed nodes alone used (scale constants, the causal
   * comparison and its iotas, an explicit K^T) goes too. */
  for (int i = nn - 1; i >= 0; i--) {
    const ir_node *n = src->nodes[i];
    if (!dead[i] && fused[i] < 0 && !(uses[i] > 0 && left[i] == 0 && !keeps_state(n->op))) continue;
    if (fused[i] < 0) dead[i] = true;
    for (int k = 0; k < n->nin; k++)
      left[n->in[k]]--;
  }
  pass_rw rw;
  bool ok = pass_rw_init(&rw, src, d);
  for (int i = 0; ok && i < nn; i++) {
    if (fused[i] >= 0)
      pass_rw_map(&rw, i, build(&rw, &ms[fused[i]]));
    else if (!dead[i])
      copy(&rw, i);
    ok = !rw.failed;
  }
  free(left), free(fused), free(dead);
  ir_graph *out = ok ? pass_rw_finish(&rw) : NULL;
  if (!ok) pass_rw_abort(&rw);
  if (!out) return false;
  ir_graph_destroy(*g);
  *g = out;
  return true;
}

bool pass_fuse_attention(ir_graph **g, const pass_opts *o, bool *changed, ir_diag *d) {
  *changed = false;
  const ir_graph *src = *g;
  int nn = src->nnodes, nsm = 0;
  for (int i = 0; i < nn; i++)
    nsm += src->nodes[i]->op == IR_OP_SOFTMAX;
  if (nsm == 0) return true;
  int *uses = pass_use_counts(src), *users = malloc(sizeof(int) * (size_t)nn);
  int *assigns = pass_assign_prefix(src);
  fm_match *ms = malloc(sizeof(fm_match) * (size_t)nsm);
  if (!uses || !users || !assigns || !ms) {
    free(uses), free(users), free(assigns), free(ms);
    ir_diag_set(d, "out of memory");
    return false;
  }
  for (int i = 0; i < nn; i++)
    users[i] = -1;
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < src->nodes[i]->nin; k++)
      users[src->nodes[i]->in[k]] = i;
  int nm = 0;
  for (int i = 0; i < nn; i++) {
    if (src->nodes[i]->op != IR_OP_SOFTMAX) continue;
    fm_match_softmax(src, i, uses, users, assigns, &ms[nm]);
    if (o && o->explain) explain(o->explain, src, i, &ms[nm]);
    if (ms[nm].kind != FM_NONE) nm++;
  }
  bool ok = nm == 0 || rewrite(g, ms, nm, uses, d);
  *changed = ok && nm > 0;
  free(uses), free(users), free(assigns), free(ms);
  return ok;
}
