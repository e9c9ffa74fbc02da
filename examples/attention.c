/* The README's example, kept there verbatim (tests/test_cli.c checks):
 * build masked scaled dot-product attention with the DSL, print its IR,
 * compile it and run it. */
#include <stdio.h>
#include <kiln/kiln.h>
#include <kiln/kiln_compile.h>

int main(void) {
  kl_graph *g = kl_graph_create("attention");
  kl_value q = kl_input(g, "q", KL_F32, KL_SHAPE(2, 4, 8));
  kl_value kv = kl_input(g, "kv", KL_F32, KL_SHAPE(2, 6, 8));
  kl_value len = kl_input(g, "len", KL_I32, KL_SHAPE(2)); /* valid keys per batch */
  kl_output(kl_attention(q, kv, kv, len));                /* softmax(mask(q kv^T / sqrt(8))) kv */
  kl_graph_print(g, stdout);
  char *err = NULL;
  kl_program *p = kl_compile(g, NULL, &err); /* NULL: all passes, reference backend */
  if (!p) return puts(err), 1;               /* a DSL error would surface here */
  printf("fused regions: %d\n", kl_program_stats(p)->regions); /* the attention */
  float x[2 * 6 * 8];
  for (int i = 0; i < 2 * 6 * 8; i++)
    x[i] = (float)(i % 5);
  int32_t lens[2] = {2, 6}; /* batch 0 attends to 2 keys, batch 1 to all 6 */
  kl_tensor *out, *in[3] = {kl_tensor_from(KL_TENSOR_F32, 3, (int64_t[]){2, 4, 8}, x),
                            kl_tensor_from(KL_TENSOR_F32, 3, (int64_t[]){2, 6, 8}, x),
                            kl_tensor_from(KL_TENSOR_I32, 1, (int64_t[]){2}, lens)};
  const char *msg = kl_run(p, in, 3, &out, 1);
  if (msg) return puts(msg), 1;
  printf("out[0,0,:3] = %.4f %.4f %.4f\n", ((float *)kl_tensor_data(out))[0],
         ((float *)kl_tensor_data(out))[1], ((float *)kl_tensor_data(out))[2]);
  for (int i = 0; i < 3; i++)
    kl_tensor_destroy(in[i]);
  kl_tensor_destroy(out), kl_program_destroy(p), kl_graph_destroy(g);
  return 0;
}
