/* A training loop as a user writes one: a 1-32-1 tanh MLP fitted to
 * sin(x) on [-3, 3] with Adam, forward + backward + update compiled into one
 * native function by kl_compile_train. Prints the loss every 100 steps. */
#include <math.h>
#include <stdio.h>

#include <kiln/kiln.h>
#include <kiln/kiln_train.h>

int main(void) {
  kl_graph *g = kl_graph_create("mlp");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(64, 1));
  kl_value y = kl_input(g, "y", KL_F32, KL_SHAPE(64, 1));
  kl_value w1 = kl_param_init(g, "w1", KL_F32, KL_SHAPE(1, 32), KL_INIT_XAVIER_UNIFORM, 0);
  kl_value b1 = kl_param_init(g, "b1", KL_F32, KL_SHAPE(32), KL_INIT_ZEROS, 0);
  kl_value w2 = kl_param_init(g, "w2", KL_F32, KL_SHAPE(32, 1), KL_INIT_XAVIER_UNIFORM, 0);
  kl_value h = kl_tanh(kl_add(kl_matmul(x, w1), b1));
  kl_value loss = kl_mse_loss(kl_matmul(h, w2), y);
  kl_output(loss);

  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = 0.01};
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .seed = 1};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(g, loss, NULL, 0, &opt, &co, &err);
  if (!s) return puts(err), 1; /* a DSL error would surface here, with its file:line */

  float xs[64], ys[64];
  for (int i = 0; i < 64; i++)
    xs[i] = -3.0f + 6.0f * (float)i / 63.0f, ys[i] = sinf(xs[i]);
  kl_tensor *in[2] = {kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){64, 1}, xs),
                      kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){64, 1}, ys)};
  for (int step = 0; step <= 500; step++) {
    double l;
    const char *msg = kl_train_step_run(s, in, 2, &l); /* allocates nothing */
    if (msg) return puts(msg), 1;
    if (step % 100 == 0) printf("step %3d  loss %.5f\n", step, l);
  }
  kl_tensor_destroy(in[0]), kl_tensor_destroy(in[1]);
  kl_train_step_destroy(s), kl_graph_destroy(g);
  return 0;
}
