/* test_ckpt_rewrite (ckpt_edit.h): load with no expectations, copy every
 * tensor and metadata entry through the checkpoint API, save. */
#include "tests/support/ckpt_edit.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/checkpoint.h"
#include "tests/support/cli_run.h"

rt_checkpoint *test_ckpt_load(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", test_dir, name);
  ir_diag d = {0};
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  return ck;
}

void test_ckpt_rewrite(const char *src, const char *dst, test_ckpt_edit e) {
  char out[512];
  snprintf(out, sizeof out, "%s/%s", test_dir, dst);
  ir_diag d = {0};
  rt_checkpoint *ck = test_ckpt_load(src);
  int n = rt_checkpoint_count(ck), nm = rt_checkpoint_meta_count(ck);
  rt_ckpt_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
  rt_tensor **copies = calloc((size_t)n + 1, sizeof *copies);
  rt_ckpt_meta *meta = calloc((size_t)nm + 1, sizeof *meta);
  cr_assert(ts && copies && meta);
  for (int i = 0; i < n; i++) {
    ts[i].name = rt_checkpoint_name(ck, i);
    const rt_tensor *t = rt_checkpoint_tensor(ck, ts[i].name);
    copies[i] = rt_tensor_create(&t->type);
    cr_assert_not_null(copies[i]);
    memcpy(copies[i]->data, t->data, t->bytes);
    if (e.nan_in && !strcmp(e.nan_in, ts[i].name)) ((float *)copies[i]->data)[0] = NAN;
    ts[i].t = copies[i];
  }
  float one = 1;
  rt_tensor extra = {.type = {.dtype = IR_F32, .rank = 1, .dims = {1}}, .data = &one, .bytes = 4};
  int nt = n;
  if (e.extra) ts[nt++] = (rt_ckpt_tensor){e.extra, &extra};
  int k = 0;
  bool set = false;
  for (int i = 0; i < nm; i++) {
    const char *key = rt_checkpoint_meta_key(ck, i);
    if (e.key && !strcmp(key, e.key)) {
      set = true;
      if (e.value) meta[k++] = (rt_ckpt_meta){key, e.value};
    } else {
      meta[k++] = (rt_ckpt_meta){key, rt_checkpoint_meta(ck, key)};
    }
  }
  if (e.key && e.value && !set) meta[k++] = (rt_ckpt_meta){e.key, e.value};
  cr_assert(rt_checkpoint_save(out, ts, nt, meta, k, &d), "%s", d.msg);
  for (int i = 0; i < n; i++)
    rt_tensor_destroy(copies[i]);
  free(copies);
  free(ts);
  free(meta);
  rt_checkpoint_destroy(ck);
}
