/* Fuzz harness for checkpoint loading: runtime/checkpoint.c's file and
 * metadata validation, then what `kiln train --load` / `kiln translate
 * --load` check on top (s2s_ckpt_open: model, config, vocabularies;
 * gpt_ckpt_open: seed, config, characters). The loaders take a path, so
 * each input is written to a file in a private temporary directory, which
 * is removed at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/checkpoint.h"
#include "tools/kiln/s2s.h"
#include "tools/kiln/train_gpt.h"

/* The gpt run a fuzzed checkpoint is checked against; the seed corpus's gpt
 * checkpoints were made with these settings on the text "ab\nba\n". */
#define FUZZ_GPT_SEED 0
#define FUZZ_GPT_BLOCK 4
#define FUZZ_GPT_BATCH 2
#define FUZZ_GPT_NCHARS 6

static char dir[4096], path[4200];

static void cleanup(void) {
  if (path[0]) unlink(path);
  if (dir[0]) rmdir(dir);
}

static bool write_input(const uint8_t *data, size_t size) {
  if (!dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kiln-fuzz-ckpt.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
      perror("fuzz_checkpoint: mkdtemp");
      abort(); /* the harness cannot run at all */
    }
    snprintf(path, sizeof path, "%s/input.ckpt", dir);
    atexit(cleanup);
  }
  /* A new file each time: rewriting a truncated one makes ext4 start
   * writeback on close (auto_da_alloc), a disk write per execution. */
  unlink(path);
  FILE *f = fopen(path, "wb");
  if (!f) return false;
  bool ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

static void check_gpt(void) {
  static uint32_t chars[] = {'\n', 'a', 'b'};
  gpt_run *r = calloc(1, sizeof *r);
  if (!r) return;
  r->set.cfg = GPT_DATES_DEFAULTS;
  r->set.cfg.block = FUZZ_GPT_BLOCK;
  r->set.cfg.batch = FUZZ_GPT_BATCH;
  r->text.chars = chars;
  r->text.vocab = 3;
  r->text.n = FUZZ_GPT_NCHARS;
  ir_diag d = {0};
  rt_checkpoint *ck = gpt_ckpt_open(path, r, FUZZ_GPT_SEED, &d);
  if (ck) rt_checkpoint_destroy(ck);
  free(r); /* r->text.chars is static: not gpt_run_free */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!write_input(data, size)) return 0;
  ir_diag d = {0};
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, &d);
  if (!ck) return 0;
  int64_t i64;
  uint64_t u64;
  rt_checkpoint_meta_i64(ck, RT_CKPT_STEP, &i64, &d);
  rt_checkpoint_meta_i64(ck, RT_CKPT_DATA_POS, &i64, &d);
  rt_checkpoint_meta_u64(ck, RT_CKPT_SEED, &u64, &d);
  /* Each model's loader refuses the others' checkpoints right after
   * rt_checkpoint_load, so only the one the file names is worth a second load. */
  const char *model = rt_checkpoint_meta(ck, RT_CKPT_MODEL);
  bool gpt = model && !strcmp(model, "gpt");
  rt_checkpoint_destroy(ck);
  if (gpt) {
    check_gpt();
    return 0;
  }
  s2s_meta m;
  ir_diag d2 = {0};
  ck = s2s_ckpt_open(path, &m, &d2);
  if (ck) {
    s2s_meta_free(&m);
    rt_checkpoint_destroy(ck);
  }
  return 0;
}
