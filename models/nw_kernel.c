/* nw-kernel: Nadaraya-Watson attention pooling, d2l section 11.2 ("Attention
 * Pooling by Similarity"). Three estimators of y at a query x from key/value
 * pairs (x_i, y_i): average pooling, the Gaussian kernel, and the Gaussian
 * kernel with a learnable width w, all written as attention. */
#include "models/models.h"

static const char *const graph_names[] = {"nw_average", "nw_gaussian", "nw_parametric"};

nw_graph nw_kernel_build(nw_kind kind, int64_t queries, int64_t key_rows, int64_t keys,
                         bool with_loss) {
  nw_graph r = {.pred = kl_none(), .attn = kl_none(), .loss = kl_none(), .w = kl_none()};
  if ((int)kind < 0 || kind > NW_PARAMETRIC) kind = NW_AVERAGE;
  kl_graph *g = kl_graph_create(graph_names[kind]);
  if (!g) return r;
  r.g = g;
  kl_value q = kl_input(g, "queries", KL_F32, KL_SHAPE(queries));
  kl_value k = kl_input(g, "keys", KL_F32, KL_SHAPE(key_rows, keys));
  kl_value v = kl_input(g, "values", KL_F32, KL_SHAPE(key_rows, keys));

  if (kind == NW_AVERAGE) {
    /* Every key gets the same weight, whatever the query. */
    r.attn = kl_broadcast_to(kl_scalar(g, 1.0 / (double)keys, KL_F32), KL_SHAPE(queries, keys));
    r.pred = kl_broadcast_to(kl_mean(v, KL_INTS(1), false), KL_SHAPE(queries));
  } else {
    /* [Q, 1] - [R, K] broadcasts to [Q, K] for R = Q or R = 1. */
    kl_value d = kl_sub(kl_reshape(q, KL_SHAPE(queries, 1)), k);
    if (kind == NW_PARAMETRIC) {
      /* See NW_PARAM_W: trainers overwrite this initialiser with U[0, 1). */
      r.w = kl_param_init(g, NW_PARAM_W, KL_F32, KL_SHAPE(1), KL_INIT_UNIFORM, 1.0);
      d = kl_mul(d, r.w);
    }
    kl_value scores = kl_mul_scalar(kl_mul(d, d), -0.5);
    r.attn = kl_softmax(scores, 1);
    r.pred = kl_sum(kl_mul(r.attn, v), KL_INTS(1), false);
  }
  kl_name(r.pred, "pred");
  kl_name(r.attn, "attn");
  kl_output(r.pred);
  kl_output(r.attn);
  if (with_loss) {
    kl_value t = kl_input(g, "targets", KL_F32, KL_SHAPE(queries));
    kl_value e = kl_sub(r.pred, t);
    r.loss = kl_name(kl_sum_all(kl_mul(e, e)), "loss");
    kl_output(r.loss);
  }
  return r;
}

kl_graph *nw_kernel_default_graph(int *loss_output) {
  *loss_output = 2; /* pred, attn, loss */
  return nw_kernel_build(NW_PARAMETRIC, 50, 50, 49, true).g;
}
