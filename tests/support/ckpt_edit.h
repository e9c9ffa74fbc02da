/* Hand-edited copies of checkpoints for the tests of what loaders refuse:
 * one metadata value changed, a tensor added, a weight made NaN. */
#ifndef KILN_TEST_CKPT_EDIT_H
#define KILN_TEST_CKPT_EDIT_H

#include <stdbool.h>

typedef struct test_ckpt_edit {
  const char *key, *value; /* metadata key set to value (NULL value: removed) */
  const char *extra;       /* a tensor f32[1] added under this name */
  const char *nan_in;      /* element 0 of this tensor becomes NaN */
} test_ckpt_edit;

/* Writes test_dir/DST: test_dir/SRC with the edit applied (asserting). */
void test_ckpt_rewrite(const char *src, const char *dst, test_ckpt_edit e);

/* test_dir/NAME loaded with no expectations (asserting it loads). */
struct rt_checkpoint;
struct rt_checkpoint *test_ckpt_load(const char *name);

#endif
