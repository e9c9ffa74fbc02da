/* ckpt_program_save (tools/kiln/ckpt_program.h): the program's parameters
 * gathered as checkpoint tensors, the common metadata, one atomic write;
 * and ckpt_program_check, the validation every load of one goes through. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/tensor_bridge.h"
#include "driver/train_internal.h"
#include "ir/ir.h"
#include "passes/pipeline.h"
#include "tools/kiln/ckpt_program.h"

#define MAX_EXTRA 8

bool ckpt_program_save(const char *path, kl_program *train, const char *model,
                       const char *optimizer, uint64_t seed, int64_t data_position,
                       const rt_ckpt_meta *extra, int nextra, ir_diag *d) {
  if (nextra < 0 || nextra > MAX_EXTRA) {
    ir_diag_set(d, "%s: %d extra metadata entries (at most %d)", path, nextra, MAX_EXTRA);
    return false;
  }
  int n = kl_program_num_params(train);
  rt_ckpt_tensor *ts = calloc((size_t)(n > 0 ? n : 1), sizeof *ts);
  kl_tensor **owned = calloc((size_t)(n > 0 ? n : 1), sizeof *owned);
  bool ok = ts && owned;
  if (!ok) ir_diag_set(d, "%s: out of memory", path);
  for (int i = 0; ok && i < n; i++) {
    ts[i].name = kl_program_param_name(train, i);
    const char *e = kl_program_get_param(train, ts[i].name, &owned[i]);
    if (e)
      ok = false, ir_diag_set(d, "%s: %s", path, e);
    else
      ts[i].t = cg_tensor_rt(owned[i]);
  }
  if (ok) {
    char step[32], seeds[32], pos[32];
    snprintf(step, sizeof step, "%llu", (unsigned long long)kl_program_step(train));
    snprintf(seeds, sizeof seeds, "%llu", (unsigned long long)seed);
    snprintf(pos, sizeof pos, "%lld", (long long)data_position);
    rt_ckpt_meta meta[5 + MAX_EXTRA] = {{RT_CKPT_MODEL, model},
                                        {RT_CKPT_STEP, step},
                                        {RT_CKPT_SEED, seeds},
                                        {RT_CKPT_DATA_POS, pos},
                                        {RT_CKPT_OPTIMIZER, optimizer}};
    for (int i = 0; i < nextra; i++)
      meta[5 + i] = extra[i];
    ok = rt_checkpoint_save(path, ts, n, meta, 5 + nextra, d);
  }
  for (int i = 0; owned && i < n; i++)
    kl_tensor_destroy(owned[i]);
  free(owned);
  free(ts);
  return ok;
}

/* The first NaN or infinity of a float tensor: its index, else -1. */
static int64_t first_nonfinite(const rt_tensor *t, double *bad) {
  int64_t n = ir_type_numel(&t->type);
  for (int64_t i = 0; i < n; i++) {
    double v = t->type.dtype == IR_F32 ? (double)((const float *)t->data)[i]
                                       : ((const double *)t->data)[i];
    if (!isfinite(v)) return *bad = v, i;
  }
  return -1;
}

/* The parameters the training program of (g, loss) has, optimizer state
 * included, as expectations. Only the verify and autodiff rows run (which
 * add the update and its state): no folding, fusion or planning, so a
 * config read from an untrusted file costs graph building, not tensors. */
static rt_ckpt_expect *expected_params(const kl_graph *g, kl_value loss, int *n, ir_diag *d) {
  kl_optim_opts opt = {.kind = CKPT_OPTIMIZER, .lr = 0.001};
  pass_opts po = {.train_only = true};
  char *err = NULL;
  ir_graph *tg = kl_train_graph_with(kl_graph_ir(g), loss.id, NULL, 0, &opt, &po, &err);
  rt_ckpt_expect *e = tg ? calloc((size_t)tg->nnodes + 1, sizeof *e) : NULL;
  if (!e) ir_diag_set(d, "the training graph: %s", err ? err : "out of memory");
  free(err);
  *n = 0;
  for (int i = 0; e && i < tg->nnodes; i++) {
    const ir_node *p = tg->nodes[i];
    if (p->op != IR_OP_PARAM) continue;
    const char *name = ir_node_attr(p, "name")->s;
    bool seen = false;
    for (int j = 0; j < *n && !seen; j++)
      seen = !strcmp(e[j].name, name);
    if (seen) continue;
    if (!(e[*n].name = strdup(name))) {
      ir_diag_set(d, "out of memory");
      for (int j = 0; j < *n; j++)
        free((char *)e[j].name);
      free(e);
      e = NULL;
      break;
    }
    e[(*n)++].type = p->type;
  }
  ir_graph_destroy(tg);
  return e;
}

bool ckpt_program_check(const rt_checkpoint *ck, const kl_graph *g, kl_value loss,
                        const char *optimizer, ir_diag *d) {
  const char *path = rt_checkpoint_path(ck), *opt = rt_checkpoint_meta(ck, RT_CKPT_OPTIMIZER);
  int64_t v;
  if (!rt_checkpoint_meta_i64(ck, RT_CKPT_STEP, &v, d) ||
      !rt_checkpoint_meta_i64(ck, RT_CKPT_DATA_POS, &v, d))
    return false;
  if (!opt || strcmp(opt, optimizer)) {
    ir_diag_set(d, "%s: metadata '%s' is %s%.40s%s; this run trains with %s", path,
                RT_CKPT_OPTIMIZER, opt ? "'" : "", opt ? opt : "missing", opt ? "'" : "",
                optimizer);
    return false;
  }
  int n = 0;
  rt_ckpt_expect *e = expected_params(g, loss, &n, d);
  bool ok = e && rt_checkpoint_check(ck, e, n, false, d);
  for (int i = 0; e && i < n; i++)
    free((char *)e[i].name);
  free(e);
  for (int i = 0; ok && i < rt_checkpoint_count(ck); i++) {
    const char *name = rt_checkpoint_name(ck, i);
    const rt_tensor *t = rt_checkpoint_tensor(ck, name);
    double bad = 0;
    int64_t at = ir_dtype_is_float(t->type.dtype) ? first_nonfinite(t, &bad) : -1;
    if (at >= 0) {
      ir_diag_set(d, "%s: tensor '%.160s' holds %g at element %lld; the weights are unusable", path,
                  name, bad, (long long)at);
      ok = false;
    }
  }
  return ok;
}
