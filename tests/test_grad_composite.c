/* Gradient checks of whole models built with the DSL: gradients of every
 * parameter and float input from pass_autodiff against central differences
 * of the reference interpreter in f64 (tests/grad_harness.h). */
#include "tests/grad_harness.h"

#define F64 KL_F64

Test(grad_composite, mlp_tanh_mse) {
  kl_graph *kg = kl_graph_create("mlp");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(4, 3));
  kl_value t = kl_input(kg, "target", F64, KL_SHAPE(4, 2));
  kl_value w1 = kl_param(kg, "w1", F64, KL_SHAPE(3, 5));
  kl_value b1 = kl_param(kg, "b1", F64, KL_SHAPE(5));
  kl_value w2 = kl_param(kg, "w2", F64, KL_SHAPE(5, 2));
  kl_value b2 = kl_param(kg, "b2", F64, KL_SHAPE(2));
  kl_value h1 = kl_tanh(kl_add(kl_matmul(x, w1), b1));
  kl_output(kl_mse_loss(kl_add(kl_matmul(h1, w2), b2), t));
  gh h;
  gh_init_dsl(&h, kg, 11);
  gh_check(&h, "mlp", 5, ((const char *const[]){"w1", "b1", "w2", "b2", "x"}));
  gh_free(&h);
}

Test(grad_composite, layernorm_residual) {
  kl_graph *kg = kl_graph_create("ln");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3, 4));
  kl_value w = kl_param(kg, "w", F64, KL_SHAPE(4, 4));
  kl_value gm = kl_param(kg, "gamma", F64, KL_SHAPE(4));
  kl_value bt = kl_param(kg, "beta", F64, KL_SHAPE(4));
  kl_value y = kl_layernorm(kl_add(x, kl_relu(kl_matmul(x, w))), gm, bt, 1e-5);
  kl_output(kl_mul(y, y));
  gh h;
  gh_init_dsl(&h, kg, 12);
  gh_check(&h, "layernorm", 4, ((const char *const[]){"x", "w", "gamma", "beta"}));
  gh_free(&h);
}

Test(grad_composite, masked_softmax) {
  kl_graph *kg = kl_graph_create("msm");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3, 5));
  kl_value len = kl_input(kg, "len", KL_I32, KL_SHAPE(2, 3));
  kl_output(kl_softmax(kl_sequence_mask(x, len, -1e6), -1));
  gh h;
  gh_init_dsl(&h, kg, 13);
  gh_set(&h, "len", (const double[]){1, 5, 3, 2, 4, 5});
  gh_fill(&h, "x", -2, 2);
  gh_check(&h, "masked softmax", 1, ((const char *const[]){"x"}));
  gh_free(&h);
}

Test(grad_composite, attention_with_valid_lengths) {
  kl_graph *kg = kl_graph_create("att");
  kl_value q = kl_input(kg, "q", F64, KL_SHAPE(2, 3, 4));
  kl_value k = kl_input(kg, "k", F64, KL_SHAPE(2, 5, 4));
  kl_value v = kl_input(kg, "v", F64, KL_SHAPE(2, 5, 3));
  kl_value len = kl_input(kg, "len", KL_I32, KL_SHAPE(2));
  kl_value wq = kl_param(kg, "wq", F64, KL_SHAPE(4, 4));
  kl_output(kl_attention(kl_matmul(q, wq), k, v, len));
  gh h;
  gh_init_dsl(&h, kg, 14);
  gh_set(&h, "len", (const double[]){2, 5});
  gh_check(&h, "attention", 4, ((const char *const[]){"q", "k", "v", "wq"}));
  gh_free(&h);
}

/* PyTorch's GRUCell: r = s(x Wr + h Ur), z = s(x Wz + h Uz),
 * n = tanh(x Wn + r * (h Un)), h' = (1 - z) n + z h. */
Test(grad_composite, gru_cell) {
  kl_graph *kg = kl_graph_create("gru");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 3));
  kl_value hp = kl_input(kg, "h", F64, KL_SHAPE(2, 4));
  const char *wn[3] = {"wr", "wz", "wn"}, *un[3] = {"ur", "uz", "un"};
  kl_value xw[3], hu[3];
  for (int i = 0; i < 3; i++) {
    xw[i] = kl_matmul(x, kl_param(kg, wn[i], F64, KL_SHAPE(3, 4)));
    hu[i] = kl_matmul(hp, kl_param(kg, un[i], F64, KL_SHAPE(4, 4)));
  }
  kl_value r = kl_sigmoid(kl_add(xw[0], hu[0]));
  kl_value z = kl_sigmoid(kl_add(xw[1], hu[1]));
  kl_value n = kl_tanh(kl_add(xw[2], kl_mul(r, hu[2])));
  kl_value one = kl_scalar(kg, 1.0, F64);
  kl_output(kl_add(kl_mul(kl_sub(one, z), n), kl_mul(z, hp)));
  gh h;
  gh_init_dsl(&h, kg, 15);
  gh_check(&h, "gru", 8, ((const char *const[]){"x", "h", "wr", "wz", "wn", "ur", "uz", "un"}));
  gh_free(&h);
}

/* Padding twice over: ignored labels and a valid-length mask on the
 * per-token loss (d2l's MaskedSoftmaxCELoss), then the mean. */
Test(grad_composite, cross_entropy_with_padding) {
  kl_graph *kg = kl_graph_create("xent");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(2, 4, 3));
  kl_value lb = kl_input(kg, "labels", KL_I32, KL_SHAPE(2, 4));
  kl_value len = kl_input(kg, "len", KL_I32, KL_SHAPE(2));
  kl_value w = kl_param(kg, "w", F64, KL_SHAPE(3, 6));
  kl_value logits = kl_matmul(x, w);
  kl_value a = kl_softmax_cross_entropy(logits, lb, 0);
  kl_value b = kl_masked_softmax_cross_entropy(logits, lb, len);
  kl_output(kl_add(kl_mean(a, KL_INTS(0, 1), false), kl_sum_all(b)));
  gh h;
  gh_init_dsl(&h, kg, 16);
  gh_set(&h, "labels", (const double[]){3, 5, 0, 0, 1, 2, 4, 0});
  gh_set(&h, "len", (const double[]){2, 3});
  gh_check(&h, "cross-entropy", 2, ((const char *const[]){"w", "x"}));
  gh_free(&h);
}

Test(grad_composite, embedding_repeated_indices) {
  kl_graph *kg = kl_graph_create("emb");
  kl_value idx = kl_input(kg, "idx", KL_I64, KL_SHAPE(2, 4));
  kl_value table = kl_param(kg, "embed", F64, KL_SHAPE(6, 3));
  kl_value w = kl_param(kg, "proj", F64, KL_SHAPE(3, 2));
  kl_value e = kl_mul_scalar(kl_gather(table, idx), 1.7320508075688772);
  kl_output(kl_tanh(kl_matmul(e, w)));
  gh h;
  gh_init_dsl(&h, kg, 17);
  gh_set(&h, "idx", (const double[]){1, 1, 5, 0, 5, 2, 1, 1});
  gh_check(&h, "embedding", 2, ((const char *const[]){"embed", "proj"}));
  gh_free(&h);
}

Test(grad_composite, dropout_mlp_training) {
  kl_graph *kg = kl_graph_create("drop");
  kl_value x = kl_input(kg, "x", F64, KL_SHAPE(3, 4));
  kl_value w1 = kl_param(kg, "w1", F64, KL_SHAPE(4, 6));
  kl_value w2 = kl_param(kg, "w2", F64, KL_SHAPE(6, 2));
  kl_value h1 = kl_dropout(kl_gelu(kl_matmul(x, w1), false), 0.3);
  kl_output(kl_matmul(kl_dropout(h1, 0.2), w2));
  gh h;
  gh_init_dsl(&h, kg, 18);
  h.opts = (rt_ref_opts){.training = true, .seed = 42, .step = 5};
  gh_check(&h, "dropout mlp", 3, ((const char *const[]){"w1", "w2", "x"}));
  gh_free(&h);
}
