/* A Transformer training batch in the date task's shapes, shared by the
 * benchmarks that time a Transformer step (bench_memory_plan, bench_loops). */
#ifndef KILN_BENCH_TF_H
#define KILN_BENCH_TF_H

#include <stdbool.h>

#include "backend/kiln_run.h"
#include "models/transformer.h"

/* The date task's shapes: valid ids and lengths, pads after. */
static inline bool bench_tf_batch(kl_tensor **in, const tf_config *c) {
  int64_t B = c->batch, ts = c->src_steps, tt = c->tgt_steps;
  int64_t d2[2][2] = {{B, ts}, {B, tt}}, d1[1] = {B};
  in[0] = kl_tensor_create(KL_TENSOR_I32, 2, d2[0]);
  in[1] = kl_tensor_create(KL_TENSOR_I32, 1, d1);
  in[2] = kl_tensor_create(KL_TENSOR_I32, 2, d2[1]);
  in[3] = kl_tensor_create(KL_TENSOR_I32, 2, d2[1]);
  in[4] = kl_tensor_create(KL_TENSOR_I32, 1, d1);
  for (int i = 0; i < 5; i++)
    if (!in[i]) return false;
  int32_t *src = kl_tensor_data(in[0]), *sl = kl_tensor_data(in[1]), *dec = kl_tensor_data(in[2]),
          *tgt = kl_tensor_data(in[3]), *tl = kl_tensor_data(in[4]);
  for (int64_t b = 0; b < B; b++) {
    sl[b] = (int32_t)(ts / 2 + b % (ts / 2)), tl[b] = (int32_t)(tt / 2 + b % (tt / 2));
    for (int64_t t = 0; t < ts; t++)
      src[b * ts + t] = t < sl[b] ? (int32_t)(4 + (7 * b + 3 * t) % (c->src_vocab - 4)) : 1;
    for (int64_t t = 0; t < tt; t++) {
      tgt[b * tt + t] = t < tl[b] ? (int32_t)(4 + (5 * b + 2 * t) % (c->tgt_vocab - 4)) : 1;
      dec[b * tt + t] = t == 0 ? 2 : tgt[b * tt + t - 1];
    }
  }
  return true;
}

#endif
