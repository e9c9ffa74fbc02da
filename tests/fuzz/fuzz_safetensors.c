/* Fuzz harness for the safetensors reader (runtime/safetensors_read.c):
 * any byte string is either refused with a message or yields tensors and
 * metadata whose lookups agree with the file's contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/safetensors.h"

static void fail(const char *what) {
  fprintf(stderr, "fuzz_safetensors: %s\n", what);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ir_diag d = {0};
  rt_safetensors *st = rt_st_parse(data, size, "fuzz.safetensors", &d);
  if (!st) {
    if (!d.msg[0]) fail("refused without a message");
    return 0;
  }
  /* Touch every accepted tensor's bytes, so ASan checks what was promised. */
  volatile uint8_t sink = 0;
  for (int i = 0; i < rt_st_count(st); i++) {
    const char *name = rt_st_name(st, i);
    const rt_tensor *t = name ? rt_st_get(st, name) : NULL;
    if (!t) fail("a listed tensor is not found by name");
    size_t want = (size_t)ir_type_numel(&t->type) * ir_dtype_size(t->type.dtype);
    if (t->bytes != want) fail("tensor byte size disagrees with its type");
    for (size_t b = 0; b < t->bytes; b++)
      sink ^= ((const uint8_t *)t->data)[b];
  }
  (void)sink;
  rt_st_meta(st, "format");
  rt_st_destroy(st);
  return 0;
}
