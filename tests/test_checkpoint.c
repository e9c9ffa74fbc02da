/* Checkpoints: bit-exact round trips with metadata, the safetensors layout
 * PyTorch's loader expects (checked by parsing the header with jansson),
 * atomic replacement when a save fails midway, and the messages for
 * missing, corrupt and truncated files and for mismatched tensors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/checkpoint.h"
#include "runtime/safetensors.h"

/* ---- helpers ----------------------------------------------------------------- */

static char dir[64], path[160];

static void setup(void) {
  strcpy(dir, "/tmp/kiln-ckpt-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
}

static void teardown(void) {
  DIR *dd = opendir(dir);
  if (!dd) return;
  struct dirent *e;
  char p[320];
  while ((e = readdir(dd))) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  closedir(dd);
  rmdir(dir);
}

/* Entries of dir other than . and .., joined by spaces in sorted order. */
static void listing(char *out, size_t len) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  cr_assert_geq(n, 0);
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] != '.') {
      if (out[0]) strncat(out, " ", len - strlen(out) - 1);
      strncat(out, names[i]->d_name, len - strlen(out) - 1);
    }
    free(names[i]);
  }
  free(names);
}

static uint8_t *slurp(const char *p, size_t *len) {
  FILE *f = fopen(p, "rb");
  cr_assert_not_null(f, "cannot open %s", p);
  uint8_t *buf = malloc(1 << 20);
  *len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  return buf;
}

static void spit(const char *p, const void *buf, size_t len) {
  FILE *f = fopen(p, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
}

static rt_tensor *make(ir_dtype dt, int rank, const int64_t *dims, const void *data) {
  ir_type t = ir_type_make(dt, rank, dims);
  rt_tensor *x = rt_tensor_create(&t);
  cr_assert_not_null(x);
  if (data) memcpy(x->data, data, x->bytes);
  return x;
}

/* A model's worth of state: f32 weights with awkward values (NaN with a
 * payload, -0, a subnormal, infinities), an f64 accumulator, an i64 step
 * table with the extreme values. */
typedef struct {
  rt_tensor *w, *acc, *ids;
} state;

static state make_state(void) {
  const int64_t wd[2] = {2, 3}, ad[1] = {4}, id[1] = {3};
  uint32_t wbits[6] = {0x3f800000u, 0x80000000u, 0x00000001u,
                       0x7fc12345u, 0xff800000u, 0x40490fdbu};
  const double acc[4] = {1e-300, -2.5, 0x1.fffffffffffffp+1023, 1.0 / 3.0};
  const int64_t ids[3] = {INT64_MIN, -1, INT64_MAX};
  return (state){make(IR_F32, 2, wd, wbits), make(IR_F64, 1, ad, acc), make(IR_I64, 1, id, ids)};
}

static void free_state(state *s) {
  rt_tensor_destroy(s->w);
  rt_tensor_destroy(s->acc);
  rt_tensor_destroy(s->ids);
}

static const char *config = "{\"d_model\":64,\"layers\":2,\"dropout\":0.1}";

static bool save_state(const state *s, ir_diag *d) {
  rt_ckpt_tensor ts[] = {{"encoder.w", s->w}, {"adam.m", s->acc}, {"data.ids", s->ids}};
  rt_ckpt_meta meta[] = {{RT_CKPT_STEP, "1200"},      {RT_CKPT_SEED, "18446744073709551615"},
                         {RT_CKPT_DATA_POS, "38400"}, {RT_CKPT_MODEL, "seq2seq-gru"},
                         {RT_CKPT_CONFIG, config},    {RT_CKPT_OPTIMIZER, "adam"},
                         {"note", "é, \"quoted\"\n"}};
  return rt_checkpoint_save(path, ts, 3, meta, 7, d);
}

static rt_ckpt_expect expect_of(const char *name, const rt_tensor *t) {
  return (rt_ckpt_expect){name, t->type};
}

static void expect_bits(const rt_tensor *got, const rt_tensor *want, const char *name) {
  cr_assert_not_null(got, "tensor %s missing", name);
  cr_expect(ir_type_eq(&got->type, &want->type), "%s: type differs", name);
  cr_expect_eq(got->bytes, want->bytes, "%s", name);
  cr_expect(memcmp(got->data, want->data, want->bytes) == 0, "%s: bytes differ", name);
}

/* ---- round trips ---------------------------------------------------------------- */

Test(checkpoint, round_trip_bit_exact, .init = setup, .fini = teardown) {
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  rt_ckpt_expect ex[] = {expect_of("data.ids", s.ids), expect_of("encoder.w", s.w),
                         expect_of("adam.m", s.acc)};
  rt_checkpoint *ck = rt_checkpoint_load(path, ex, 3, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  expect_bits(rt_checkpoint_tensor(ck, "encoder.w"), s.w, "encoder.w");
  expect_bits(rt_checkpoint_tensor(ck, "adam.m"), s.acc, "adam.m");
  expect_bits(rt_checkpoint_tensor(ck, "data.ids"), s.ids, "data.ids");
  cr_expect_null(rt_checkpoint_tensor(ck, "nope"));
  cr_expect_eq(rt_checkpoint_count(ck), 3);
  cr_expect_str_eq(rt_checkpoint_name(ck, 0), "encoder.w");
  cr_expect_str_eq(rt_checkpoint_name(ck, 2), "data.ids");
  cr_expect_str_eq(rt_checkpoint_path(ck), path);
  cr_expect_str_eq(rt_checkpoint_meta(ck, RT_CKPT_MODEL), "seq2seq-gru");
  cr_expect_str_eq(rt_checkpoint_meta(ck, RT_CKPT_CONFIG), config);
  cr_expect_str_eq(rt_checkpoint_meta(ck, RT_CKPT_OPTIMIZER), "adam");
  cr_expect_str_eq(rt_checkpoint_meta(ck, "note"), "é, \"quoted\"\n");
  cr_expect_str_eq(rt_checkpoint_meta(ck, RT_CKPT_FORMAT), "pt");
  int64_t step = 0, pos = 0;
  uint64_t seed = 0;
  cr_expect(rt_checkpoint_meta_i64(ck, RT_CKPT_STEP, &step, &d), "%s", d.msg);
  cr_expect(rt_checkpoint_meta_i64(ck, RT_CKPT_DATA_POS, &pos, &d), "%s", d.msg);
  cr_expect(rt_checkpoint_meta_u64(ck, RT_CKPT_SEED, &seed, &d), "%s", d.msg);
  cr_expect_eq(step, 1200);
  cr_expect_eq(pos, 38400);
  cr_expect_eq(seed, UINT64_MAX);
  cr_expect_not(rt_checkpoint_meta_i64(ck, RT_CKPT_SEED, &step, &d)); /* > INT64_MAX */
  cr_expect(strstr(d.msg, "'seed'") != NULL, "%s", d.msg);
  cr_expect_not(rt_checkpoint_meta_i64(ck, "epoch", &step, &d));
  char want[300];
  snprintf(want, sizeof want, "%s: metadata 'epoch' is missing", path);
  cr_expect_str_eq(d.msg, want);
  rt_checkpoint_destroy(ck);
  free_state(&s);
}

Test(checkpoint, json_metadata, .init = setup, .fini = teardown) {
  state s = make_state();
  rt_ckpt_tensor ts[] = {{"w", s.w}};
  ir_diag d = {0};
  cr_assert(rt_checkpoint_save_json(
                path, ts, 1,
                "{\"step\": 7, \"model\": \"mlp\", \"model_config\": {\"hidden\": [4, 8]},"
                " \"lr\": 0.5, \"format\": \"kiln\"}",
                &d),
            "%s", d.msg);
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  cr_expect_str_eq(rt_checkpoint_meta(ck, "step"), "7");
  cr_expect_str_eq(rt_checkpoint_meta(ck, "model"), "mlp");
  cr_expect_str_eq(rt_checkpoint_meta(ck, "model_config"), "{\"hidden\":[4,8]}");
  cr_expect_str_eq(rt_checkpoint_meta(ck, "lr"), "0.5");
  cr_expect_str_eq(rt_checkpoint_meta(ck, "format"), "kiln"); /* the caller's wins */
  expect_bits(rt_checkpoint_tensor(ck, "w"), s.w, "w");
  rt_checkpoint_destroy(ck);

  cr_expect_not(rt_checkpoint_save_json(path, ts, 1, "[1, 2]", &d));
  cr_expect(strstr(d.msg, "not a JSON object") != NULL, "%s", d.msg);
  cr_expect_not(rt_checkpoint_save_json(path, ts, 1, "{\"step\": -3}", &d));
  cr_expect(strstr(d.msg, "'step'") != NULL, "%s", d.msg);
  free_state(&s);
}

Test(checkpoint, empty_checkpoint, .init = setup, .fini = teardown) {
  ir_diag d = {0};
  cr_assert(rt_checkpoint_save(path, NULL, 0, NULL, 0, &d), "%s", d.msg);
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  cr_expect_eq(rt_checkpoint_count(ck), 0);
  rt_checkpoint_destroy(ck);
}

/* ---- layout ---------------------------------------------------------------------- */

/* What PyTorch's safetensors loader relies on: u64 LE header length, a JSON
 * object whose tensor entries have exactly dtype/shape/data_offsets with
 * contiguous offsets covering the data, and a string -> string
 * __metadata__. */
Test(checkpoint, pytorch_layout, .init = setup, .fini = teardown) {
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  size_t len;
  uint8_t *buf = slurp(path, &len);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | buf[i];
  cr_assert_leq(8 + n, len);
  cr_expect_eq(n % 8, 0, "header padded to 8 bytes");
  json_error_t je;
  json_t *root = json_loadb((const char *)buf + 8, n, 0, &je);
  cr_assert_not_null(root, "%s", je.text);
  json_t *meta = json_object_get(root, "__metadata__");
  cr_assert(json_is_object(meta));
  const char *key;
  json_t *val;
  json_object_foreach(meta, key, val) cr_expect(json_is_string(val), "metadata %s", key);
  cr_expect_str_eq(json_string_value(json_object_get(meta, "step")), "1200");
  const char *names[] = {"encoder.w", "adam.m", "data.ids"}, *dtypes[] = {"F32", "F64", "I64"};
  const rt_tensor *ts[] = {s.w, s.acc, s.ids};
  json_int_t off = 0;
  for (int i = 0; i < 3; i++) {
    json_t *e = json_object_get(root, names[i]);
    cr_assert(json_is_object(e), "%s", names[i]);
    cr_expect_eq(json_object_size(e), 3);
    cr_expect_str_eq(json_string_value(json_object_get(e, "dtype")), dtypes[i]);
    json_t *shape = json_object_get(e, "shape"), *offs = json_object_get(e, "data_offsets");
    cr_assert_eq(json_array_size(shape), (size_t)ts[i]->type.rank);
    for (int k = 0; k < ts[i]->type.rank; k++)
      cr_expect_eq(json_integer_value(json_array_get(shape, k)), ts[i]->type.dims[k]);
    cr_assert_eq(json_array_size(offs), 2);
    json_int_t b = json_integer_value(json_array_get(offs, 0));
    json_int_t e2 = json_integer_value(json_array_get(offs, 1));
    cr_expect_eq(b, off, "%s begins where the previous tensor ends", names[i]);
    cr_expect_eq(e2 - b, (json_int_t)ts[i]->bytes);
    cr_expect(memcmp(buf + 8 + n + b, ts[i]->data, ts[i]->bytes) == 0, "%s raw bytes", names[i]);
    off = e2;
  }
  cr_expect_eq(json_object_size(root), 4);
  cr_expect_eq((size_t)(8 + n + (uint64_t)off), len, "data ends the file");
  json_decref(root);
  free(buf);
  free_state(&s);
}

/* ---- atomicity ------------------------------------------------------------------- */

static const char old_bytes[] = "the previous checkpoint";

static void write_old(void) { spit(path, old_bytes, strlen(old_bytes)); }

static void expect_old_intact(void) {
  size_t len;
  uint8_t *got = slurp(path, &len);
  cr_expect(len == strlen(old_bytes) && memcmp(got, old_bytes, len) == 0, "old file changed");
  free(got);
  char names[512];
  listing(names, sizeof names);
  cr_expect_str_eq(names, "model.safetensors", "no temp file may be left over");
}

/* The disk "fills up" (file size limit, EFBIG) halfway through the data.
 * Criterion runs each test in its own process, so the limit stays here. */
Test(checkpoint, failed_save_keeps_old_file, .init = setup, .fini = teardown) {
  write_old();
  const int64_t big = 50000;
  rt_tensor *w = make(IR_F32, 1, &big, NULL);
  rt_ckpt_tensor ts[] = {{"w", w}};
  rt_ckpt_meta meta[] = {{RT_CKPT_STEP, "5"}};
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit saved, small;
  cr_assert_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  small = saved;
  small.rlim_cur = 100000;
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
  ir_diag d = {0};
  bool ok = rt_checkpoint_save(path, ts, 1, meta, 1, &d);
  setrlimit(RLIMIT_FSIZE, &saved);
  cr_expect_not(ok);
  cr_expect(strstr(d.msg, path) != NULL, "%s", d.msg);
  cr_expect(strstr(d.msg, strerror(EFBIG)) != NULL, "%s", d.msg);
  expect_old_intact();
  rt_tensor_destroy(w);
}

/* Invalid input is refused before anything is written. */
Test(checkpoint, refused_save_keeps_old_file, .init = setup, .fini = teardown) {
  write_old();
  state s = make_state();
  ir_diag d = {0};
  char want[400];
  rt_ckpt_tensor dup[] = {{"w", s.w}, {"w", s.acc}};
  cr_expect_not(rt_checkpoint_save(path, dup, 2, NULL, 0, &d));
  snprintf(want, sizeof want, "%s: tensor 'w' is given twice", path);
  cr_expect_str_eq(d.msg, want);
  rt_ckpt_tensor none[] = {{"w", NULL}};
  cr_expect_not(rt_checkpoint_save(path, none, 1, NULL, 0, &d));
  snprintf(want, sizeof want, "%s: tensor 'w' has no data", path);
  cr_expect_str_eq(d.msg, want);
  rt_ckpt_tensor ok1[] = {{"w", s.w}};
  rt_ckpt_meta badcfg[] = {{RT_CKPT_CONFIG, "{\"layers\": 2,"}};
  cr_expect_not(rt_checkpoint_save(path, ok1, 1, badcfg, 1, &d));
  cr_expect(strstr(d.msg, "metadata 'model_config' is not valid JSON") != NULL, "%s", d.msg);
  rt_ckpt_meta badstep[] = {{RT_CKPT_STEP, "12a"}};
  cr_expect_not(rt_checkpoint_save(path, ok1, 1, badstep, 1, &d));
  snprintf(want, sizeof want, "%s: metadata 'step' is not a non-negative integer: '12a'", path);
  cr_expect_str_eq(d.msg, want);
  rt_ckpt_meta dupmeta[] = {{"a", "1"}, {"a", "2"}};
  cr_expect_not(rt_checkpoint_save(path, ok1, 1, dupmeta, 2, &d));
  cr_expect(strstr(d.msg, "'a' is given twice") != NULL, "%s", d.msg);
  expect_old_intact();
  free_state(&s);
}

Test(checkpoint, save_over_directory_or_into_missing_dir, .init = setup, .fini = teardown) {
  state s = make_state();
  rt_ckpt_tensor ts[] = {{"w", s.w}};
  cr_assert_eq(mkdir(path, 0755), 0);
  ir_diag d = {0};
  cr_expect_not(rt_checkpoint_save(path, ts, 1, NULL, 0, &d));
  cr_expect(strstr(d.msg, path) != NULL, "%s", d.msg);
  struct stat sb;
  cr_expect(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
  char names[512];
  listing(names, sizeof names);
  cr_expect_str_eq(names, "model.safetensors");
  char missing[256];
  snprintf(missing, sizeof missing, "%s/no/such/x.safetensors", dir);
  cr_expect_not(rt_checkpoint_save(missing, ts, 1, NULL, 0, &d));
  cr_expect(strstr(d.msg, missing) != NULL, "%s", d.msg);
  free_state(&s);
}

Test(checkpoint, save_replaces_existing, .init = setup, .fini = teardown) {
  write_old();
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  cr_expect_eq(rt_checkpoint_count(ck), 3);
  rt_checkpoint_destroy(ck);
  char names[512];
  listing(names, sizeof names);
  cr_expect_str_eq(names, "model.safetensors");
  free_state(&s);
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void) {
  pid_t p = fork();
  cr_assert_geq(p, 0);
  if (p == 0) _exit(0);
  cr_assert_eq(waitpid(p, NULL, 0), p);
  return p;
}

/* A save removes the temp files that killed writers of the same file left
 * (defect: 4 of 40 kills during saves left model.safetensors.tmp.*), and
 * nothing else: not a live writer's (its pid is alive), not another
 * checkpoint's, not a name that only looks similar. */
Test(checkpoint, save_removes_dead_writers_temp_files, .init = setup, .fini = teardown) {
  const char *leave[] = {"model.safetensors.tmp.%ld.Ab12Cd", "other.safetensors.tmp.%ld.Ab12Cd",
                         "model.safetensors.tmp.%ld.short", "model.safetensorsX.tmp.%ld.Ab12Cd"};
  long dead = (long)dead_pid(), live = (long)getppid();
  char gone[2][320], kept[4][320];
  snprintf(gone[0], sizeof gone[0], "%s/model.safetensors.tmp.%ld.Zz9xY8", dir, dead);
  snprintf(gone[1], sizeof gone[1], "%s/model.safetensors.tmp.%ld.Qq1wE2", dir, (long)dead_pid());
  for (int i = 0; i < 2; i++)
    spit(gone[i], "torn", (size_t)(4 * i));
  for (int i = 0; i < 4; i++) {
    char name[128];
    snprintf(name, sizeof name, leave[i], i == 0 ? live : dead);
    snprintf(kept[i], sizeof kept[i], "%s/%s", dir, name);
    spit(kept[i], "keep", 4);
  }
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  struct stat sb;
  cr_expect_eq(stat(path, &sb), 0);
  for (int i = 0; i < 2; i++)
    cr_expect_neq(stat(gone[i], &sb), 0, "%s survived the save", gone[i]);
  for (int i = 0; i < 4; i++)
    cr_expect_eq(stat(kept[i], &sb), 0, "%s was removed", kept[i]);
  free_state(&s);
}

/* ---- load errors ------------------------------------------------------------------ */

Test(checkpoint, missing_file, .init = setup, .fini = teardown) {
  ir_diag d = {0};
  cr_expect_null(rt_checkpoint_load(path, NULL, 0, &d));
  char want[400];
  snprintf(want, sizeof want, "%s: cannot open: %s", path, strerror(ENOENT));
  cr_expect_str_eq(d.msg, want);
}

Test(checkpoint, corrupt_header, .init = setup, .fini = teardown) {
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  size_t len;
  uint8_t *buf = slurp(path, &len);
  cr_assert_eq(buf[8], '{');
  buf[8] = '[';
  spit(path, buf, len);
  cr_expect_null(rt_checkpoint_load(path, NULL, 0, &d));
  cr_expect(strncmp(d.msg, path, strlen(path)) == 0, "%s", d.msg);
  cr_expect(strstr(d.msg, "header is not valid JSON") != NULL, "%s", d.msg);
  /* a header length pointing past the end */
  buf[8] = '{';
  buf[1] += 1; /* +256 bytes, more than the data */
  spit(path, buf, len);
  cr_expect_null(rt_checkpoint_load(path, NULL, 0, &d));
  cr_expect(strstr(d.msg, "beyond the end of the file") != NULL, "%s", d.msg);
  free(buf);
  free_state(&s);
}

Test(checkpoint, truncated_data, .init = setup, .fini = teardown) {
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  size_t len;
  uint8_t *buf = slurp(path, &len);
  spit(path, buf, len - 5);
  cr_expect_null(rt_checkpoint_load(path, NULL, 0, &d));
  cr_expect(strncmp(d.msg, path, strlen(path)) == 0, "%s", d.msg);
  cr_expect(strstr(d.msg, "data.ids") != NULL, "names the cut tensor: %s", d.msg);
  spit(path, buf, 5);
  cr_expect_null(rt_checkpoint_load(path, NULL, 0, &d));
  cr_expect(strncmp(d.msg, path, strlen(path)) == 0, "%s", d.msg);
  free(buf);
  free_state(&s);
}

Test(checkpoint, bad_metadata_in_file, .init = setup, .fini = teardown) {
  rt_safetensors *st = rt_st_create();
  cr_assert(rt_st_set_meta(st, RT_CKPT_SEED, "-1"));
  ir_diag d = {0};
  cr_assert(rt_st_write(st, path, &d), "%s", d.msg);
  rt_st_destroy(st);
  cr_expect_null(rt_checkpoint_load(path, NULL, 0, &d));
  char want[400];
  snprintf(want, sizeof want, "%s: metadata 'seed' is not an unsigned 64-bit integer: '-1'", path);
  cr_expect_str_eq(d.msg, want);
}

/* ---- expected tensors --------------------------------------------------------------- */

Test(checkpoint, wrong_shape_names_tensor_and_shapes, .init = setup, .fini = teardown) {
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  const int64_t t32[2] = {3, 2};
  rt_ckpt_expect ex[] = {{"encoder.w", ir_type_make(IR_F32, 2, t32)},
                         expect_of("adam.m", s.acc),
                         expect_of("data.ids", s.ids)};
  cr_expect_null(rt_checkpoint_load(path, ex, 3, &d));
  char want[400];
  snprintf(want, sizeof want, "%s: tensor 'encoder.w': checkpoint has f32[2,3], expected f32[3,2]",
           path);
  cr_expect_str_eq(d.msg, want);
  ex[0] = expect_of("encoder.w", s.w);
  ex[1].type.dtype = IR_F32;
  cr_expect_null(rt_checkpoint_load(path, ex, 3, &d));
  snprintf(want, sizeof want, "%s: tensor 'adam.m': checkpoint has f64[4], expected f32[4]", path);
  cr_expect_str_eq(d.msg, want);
  free_state(&s);
}

Test(checkpoint, missing_and_unexpected_tensors, .init = setup, .fini = teardown) {
  state s = make_state();
  ir_diag d = {0};
  cr_assert(save_state(&s, &d), "%s", d.msg);
  rt_ckpt_expect ex[] = {expect_of("encoder.w", s.w), expect_of("decoder.w", s.w)};
  cr_expect_null(rt_checkpoint_load(path, ex, 2, &d));
  char want[400];
  snprintf(want, sizeof want, "%s: tensor 'decoder.w' is missing", path);
  cr_expect_str_eq(d.msg, want);
  /* only the weights expected: the optimizer state is "unexpected" unless
   * the caller allows extra tensors */
  cr_expect_null(rt_checkpoint_load(path, ex, 1, &d));
  snprintf(want, sizeof want, "%s: unexpected tensor 'adam.m'", path);
  cr_expect_str_eq(d.msg, want);
  rt_checkpoint *ck = rt_checkpoint_load(path, NULL, 0, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  cr_expect(rt_checkpoint_check(ck, ex, 1, true, &d), "%s", d.msg);
  cr_expect_not(rt_checkpoint_check(ck, ex, 2, true, &d));
  cr_expect(strstr(d.msg, "'decoder.w' is missing") != NULL, "%s", d.msg);
  rt_checkpoint_destroy(ck);
  free_state(&s);
}
