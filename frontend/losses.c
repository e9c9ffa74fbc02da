/* Loss compositions built from primitives: mean squared error (torch's
 * MSELoss) and d2l's masked softmax cross-entropy for padded sequences.
 * Errors inside name the composition ("mse_loss: ...") and the caller's
 * file:line, like kl_attention. */
#include "frontend/internal.h"

/* The graph of the first operand that has one (NULL: all are kl_none()). */
static kl_graph *graph_of(int n, const kl_value *xs) {
  for (int i = 0; i < n; i++)
    if (xs[i].g) return xs[i].g;
  return NULL;
}

kl_value kl_mse_loss_at(kl_value pred, kl_value target, const char *file, int line) {
  kl_value xs[2] = {pred, target};
  kl_graph *g = graph_of(2, xs);
  if (!g) return kl_none();
  const char *saved = g->ctx;
  g->ctx = "mse_loss";
  kl_value diff = kl_sub_at(pred, target, file, line);
  kl_value sq = kl_mul_at(diff, diff, file, line);
  kl_ints all = {.n = kl_value_ok(sq) ? kl_rank(sq) : 0};
  for (int i = 0; i < all.n; i++)
    all.v[i] = i;
  kl_value out = kl_mean_at(sq, all, false, file, line);
  g->ctx = saved;
  return out;
}

kl_value kl_masked_softmax_cross_entropy_at(kl_value logits, kl_value labels, kl_value valid_len,
                                            const char *file, int line) {
  kl_value xs[3] = {logits, labels, valid_len};
  kl_graph *g = graph_of(3, xs);
  if (!g) return kl_none();
  const char *saved = g->ctx;
  g->ctx = "masked_softmax_cross_entropy";
  /* No label is ignored (ignore_index -1 never matches a token id); padded
   * positions are zeroed by the mask instead, as d2l's weights do. */
  kl_value per = kl_softmax_cross_entropy_at(logits, labels, -1, file, line);
  kl_value masked = kl_sequence_mask_at(per, valid_len, 0.0, file, line);
  kl_value out = kl_mean_at(masked, KL_INTS(-1), false, file, line);
  g->ctx = saved;
  return out;
}
