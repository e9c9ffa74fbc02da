/* Shared by the golden tests: the PyTorch cases in tests/golden/ops (a .kir
 * graph plus a .safetensors of inputs and expected outputs out0, out1, ...),
 * listing and loading them, and comparing an output within a tolerance. The
 * *_dir variants serve other case directories of the same layout
 * (tests/golden/grads). */
#ifndef KILN_TEST_GOLDEN_H
#define KILN_TEST_GOLDEN_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "ir/ir.h"
#include "runtime/safetensors.h"

#define GOLDEN_OPS_DIR KILN_SOURCE_DIR "/tests/golden/ops"

typedef struct golden_case {
  char name[128];
} golden_case;

/* The *.kir cases present in dir, sorted; returns the count (-1: no
 * directory). golden_list: in GOLDEN_OPS_DIR. */
int golden_list_dir(const char *dir, golden_case **out);
int golden_list(golden_case **out);
int golden_case_cmp(const void *a, const void *b);
/* Criterion parameters: one per case (an empty array when none). */
struct criterion_test_params golden_params_dir(const char *dir);
struct criterion_test_params golden_params(void);
char *golden_read_text(const char *path, size_t *len);

/* Reads dir/NAME.safetensors (asserting it reads). */
rt_safetensors *golden_st_read(const char *dir, const char *name);
/* st's tensor NAME (asserting it exists). */
const rt_tensor *golden_st_get(const rt_safetensors *st, const char *name);

typedef struct golden_loaded {
  ir_graph *g;
  rt_safetensors *st;
  const rt_tensor **args; /* one per graph argument, borrowed from st */
  int nargs;
} golden_loaded;

/* Parses dir/NAME.kir, reads dir/NAME.safetensors and finds an input in it
 * for every graph argument (asserting on failure). */
void golden_load_dir(const char *dir, const char *name, golden_loaded *L);
/* golden_load_dir in GOLDEN_OPS_DIR, also expecting no output beyond the
 * graph's returns in the file. */
void golden_load(const char *name, golden_loaded *L);
void golden_unload(golden_loaded *L);
/* Expected output k (asserting it exists). */
const rt_tensor *golden_expected(const golden_loaded *L, const char *name, int k);

typedef struct golden_tol {
  double rtol32, atol32, rtol64, atol64;
} golden_tol;

/* Floats within atol + rtol*|expected| (NaN matches NaN, infinities must be
 * equal); ints and bools exact. Reports up to 5 mismatches. */
void golden_compare(const char *cname, const char *what, int k, const rt_tensor *got,
                    const rt_tensor *exp, const golden_tol *tol);

#endif
