/* safetensors reader/writer: round trips of every dtype, byte-exact
 * agreement with the layout Hugging Face's library writes (bytes computed
 * by hand below), one malformed image per validation rule, truncations,
 * and the atomic-write guarantees (no partial file, no temp left over). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safetensors.h"

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[64];

static void make_tmpdir(void) {
  strcpy(tmpdir, "/tmp/kiln-st-XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir) {
  DIR *dd = opendir(dir);
  if (!dd) return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(dd))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      remove_tree(p);
    } else {
      unlink(p);
    }
  }
  closedir(dd);
  rmdir(dir);
}

static void drop_tmpdir(void) { remove_tree(tmpdir); }

/* Names in dir, sorted and joined with ' ' (empty string: no entries). */
static void list_dir(const char *dir, char *out, size_t len) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  cr_assert_geq(n, 0, "cannot list %s", dir);
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
      if (out[0]) strncat(out, " ", len - strlen(out) - 1);
      strncat(out, names[i]->d_name, len - strlen(out) - 1);
    }
    free(names[i]);
  }
  free(names);
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s", path);
  uint8_t *buf = malloc(1 << 20);
  *len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  return buf;
}

static rt_tensor *tensor(ir_dtype dt, int rank, const int64_t *dims, const void *data) {
  ir_type t = ir_type_make(dt, rank, dims);
  rt_tensor *r = rt_tensor_create(&t);
  cr_assert_not_null(r);
  if (data) memcpy(r->data, data, r->bytes);
  return r;
}

static void add(rt_safetensors *st, const char *name, rt_tensor *t) {
  ir_diag d = {0};
  cr_assert(rt_st_add(st, name, t, &d), "add %s: %s", name, d.msg);
  rt_tensor_destroy(t);
}

/* An image with a header of exactly `json` (no padding: readers must not
 * require it) and `dlen` data bytes, in an exactly sized allocation so the
 * sanitizer sees any overread. */
static uint8_t *image(const char *json, const void *data, size_t dlen, size_t *len) {
  size_t n = strlen(json);
  *len = 8 + n + dlen;
  uint8_t *b = malloc(*len);
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)((uint64_t)n >> (8 * i));
  memcpy(b + 8, json, n);
  if (dlen) memcpy(b + 8 + n, data, dlen);
  return b;
}

static void expect_rejected(const uint8_t *buf, size_t len, const char *what, const char *p1,
                            const char *p2) {
  ir_diag d = {0};
  rt_safetensors *st = rt_st_parse(buf, len, "bad.safetensors", &d);
  cr_expect_null(st, "%s: accepted", what);
  rt_st_destroy(st);
  cr_expect(strncmp(d.msg, "bad.safetensors: ", 17) == 0, "%s: message lacks the name: %s", what,
            d.msg);
  cr_expect(strstr(d.msg, p1) != NULL, "%s: '%s' not in: %s", what, p1, d.msg);
  if (p2) cr_expect(strstr(d.msg, p2) != NULL, "%s: '%s' not in: %s", what, p2, d.msg);
}

/* ---- the Hugging Face layout, by hand ----------------------------------- */

/* What safetensors.torch.save_file({"a": tensor([[1., 2.], [3., 4.]]),
 * "b": tensor([1, 2, 3])}, metadata={"format": "pt"}) writes: compact JSON,
 * __metadata__ first, tensors by descending dtype size (b, then a), fields
 * dtype/shape/data_offsets, header padded with spaces to 8 + N = 152. */
static const char hf_json[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                              "\"b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[24,40]}}"
                              " "; /* 143 bytes of JSON + 1 space = 144 */
static const uint8_t hf_len[8] = {144, 0, 0, 0, 0, 0, 0, 0};
/* I64 1, 2, 3, then F32 1.0 = 0x3f800000, 2.0 = 0x40000000, 3.0 = 0x40400000,
 * 4.0 = 0x40800000, all little-endian. */
// clang-format off
static const uint8_t hf_data[40] = {
    1, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 0, 0, 0, 0,
    3, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0x80, 0x3f,  0, 0, 0, 0x40,
    0, 0, 0x40, 0x40,  0, 0, 0x80, 0x40};
// clang-format on

static uint8_t *hf_image(size_t *len) {
  cr_assert_eq(sizeof hf_json - 1, 144);
  *len = 8 + 144 + 40;
  uint8_t *b = malloc(*len);
  memcpy(b, hf_len, 8);
  memcpy(b + 8, hf_json, 144);
  memcpy(b + 152, hf_data, 40);
  return b;
}

Test(safetensors, reads_hf_layout) {
  size_t len;
  uint8_t *img = hf_image(&len);
  ir_diag d = {0};
  rt_safetensors *st = rt_st_parse(img, len, "hf.safetensors", &d);
  cr_assert_not_null(st, "%s", d.msg);
  cr_expect_eq(rt_st_count(st), 2);
  cr_expect_str_eq(rt_st_name(st, 0), "b"); /* data-offset order */
  cr_expect_str_eq(rt_st_name(st, 1), "a");
  cr_expect_null(rt_st_name(st, 2));
  cr_expect_null(rt_st_name(st, -1));
  const rt_tensor *a = rt_st_get(st, "a"), *b = rt_st_get(st, "b");
  cr_assert(a && b);
  cr_expect(a->type.dtype == IR_F32 && a->type.rank == 2 && a->type.dims[0] == 2 &&
            a->type.dims[1] == 2);
  cr_expect(b->type.dtype == IR_I64 && b->type.rank == 1 && b->type.dims[0] == 3);
  for (int i = 0; i < 4; i++)
    cr_expect_eq(((const float *)a->data)[i], (float)(i + 1));
  for (int i = 0; i < 3; i++)
    cr_expect_eq(((const int64_t *)b->data)[i], i + 1);
  cr_expect_eq((uintptr_t)a->data % 64, 0);
  cr_expect_eq((uintptr_t)b->data % 64, 0);
  cr_expect_str_eq(rt_st_meta(st, "format"), "pt");
  cr_expect_null(rt_st_meta(st, "step"));
  cr_expect_null(rt_st_get(st, "c"));
  rt_st_destroy(st);
  free(img);
}

Test(safetensors, writes_hf_layout_byte_for_byte, .init = make_tmpdir, .fini = drop_tmpdir) {
  rt_safetensors *st = rt_st_create();
  const int64_t b[3] = {1, 2, 3}, nb = 3, na[2] = {2, 2};
  const float a[4] = {1, 2, 3, 4};
  add(st, "b", tensor(IR_I64, 1, &nb, b));
  add(st, "a", tensor(IR_F32, 2, na, a));
  cr_assert(rt_st_set_meta(st, "format", "pt"));
  char path[128];
  snprintf(path, sizeof path, "%s/hf.safetensors", tmpdir);
  ir_diag d = {0};
  cr_assert(rt_st_write(st, path, &d), "%s", d.msg);
  size_t len, want_len;
  uint8_t *got = slurp(path, &len), *want = hf_image(&want_len);
  cr_assert_eq(len, want_len);
  cr_expect_eq(memcmp(got, want, len), 0, "header written: %.*s", (int)(len - 48), got + 8);
  free(got);
  free(want);
  rt_st_destroy(st);
}

/* Key order inside entries, padding and whitespace are the writer's
 * choice; a reader must not care. */
Test(safetensors, reads_any_key_order_and_whitespace) {
  const char *json = "{ \"x\" : {\"data_offsets\": [0, 8], \"shape\": [2], \"dtype\": \"I32\"},\n"
                     "  \"__metadata__\": {}, \"flag\": {\"shape\": [], \"dtype\": \"BOOL\", "
                     "\"data_offsets\": [8, 9]}}    ";
  const uint8_t data[9] = {0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0, 1};
  size_t len;
  uint8_t *img = image(json, data, sizeof data, &len);
  ir_diag d = {0};
  rt_safetensors *st = rt_st_parse(img, len, "ws", &d);
  cr_assert_not_null(st, "%s", d.msg);
  cr_expect_eq(rt_get_i(rt_st_get(st, "x"), 0), -1);
  cr_expect_eq(rt_get_i(rt_st_get(st, "x"), 1), 7);
  cr_expect_eq(rt_st_get(st, "flag")->type.rank, 0);
  cr_expect_eq(rt_get_i(rt_st_get(st, "flag"), 0), 1);
  rt_st_destroy(st);
  free(img);
}

/* ---- round trip -------------------------------------------------------- */

static rt_safetensors *every_dtype(void) {
  rt_safetensors *st = rt_st_create();
  const int64_t d23[2] = {2, 3}, d4 = 4, d3 = 3, d212[3] = {2, 1, 2}, d5 = 5, d04[2] = {0, 4};
  const int64_t d6[6] = {1, 2, 1, 2, 1, 2};
  const float f32[6] = {-0.0f, INFINITY, 1e-45f, 3.5f, -2.25f, 65504.0f};
  const double f64[4] = {-INFINITY, 1e-310, 0.1, -1e300};
  const int32_t i32[3] = {INT32_MIN, -1, INT32_MAX};
  const int64_t i64[4] = {INT64_MIN, -2, 0, INT64_MAX};
  const uint8_t bl[5] = {1, 0, 1, 1, 0};
  const double scalar = 3.25;
  int32_t r6[8];
  for (int i = 0; i < 8; i++)
    r6[i] = i * 11;
  add(st, "layer.0.weight", tensor(IR_F32, 2, d23, f32));
  add(st, "f64", tensor(IR_F64, 1, &d4, f64));
  add(st, "i32", tensor(IR_I32, 1, &d3, i32));
  add(st, "i64", tensor(IR_I64, 3, d212, i64));
  add(st, "mask", tensor(IR_BOOL, 1, &d5, bl));
  add(st, "scalar", tensor(IR_F64, 0, NULL, &scalar));
  add(st, "empty", tensor(IR_F32, 2, d04, NULL));
  add(st, "rank6", tensor(IR_I32, 6, d6, r6));
  cr_assert(rt_st_set_meta(st, "step", "120"));
  cr_assert(rt_st_set_meta(st, "config", "{\"d\": \"\xc3\xa9\\n\"}\ttab"));
  return st;
}

static void expect_same(const rt_safetensors *a, const rt_safetensors *b) {
  cr_assert_eq(rt_st_count(a), rt_st_count(b));
  for (int i = 0; i < rt_st_count(a); i++) {
    const char *n = rt_st_name(a, i);
    cr_expect_str_eq(rt_st_name(b, i), n);
    const rt_tensor *x = rt_st_get(a, n), *y = rt_st_get(b, n);
    cr_assert(x && y, "%s missing", n);
    cr_expect(ir_type_eq(&x->type, &y->type), "%s: type differs", n);
    cr_expect_eq(x->bytes, y->bytes, "%s", n);
    cr_expect_eq(memcmp(x->data, y->data, x->bytes), 0, "%s: data differs", n);
  }
}

Test(safetensors, round_trip_every_dtype, .init = make_tmpdir, .fini = drop_tmpdir) {
  rt_safetensors *st = every_dtype();
  /* NaN payloads must survive: data is copied, never converted. */
  rt_tensor *nan = tensor(IR_F64, 0, NULL, NULL);
  const uint64_t bits = 0x7ff8000000012345ull;
  memcpy(nan->data, &bits, 8);
  add(st, "nan", nan);
  char path[128];
  snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
  ir_diag d = {0};
  cr_assert(rt_st_write(st, path, &d), "%s", d.msg);
  rt_safetensors *back = rt_st_read(path, &d);
  cr_assert_not_null(back, "%s", d.msg);
  expect_same(st, back);
  cr_expect_str_eq(rt_st_meta(back, "step"), "120");
  cr_expect_str_eq(rt_st_meta(back, "config"), "{\"d\": \"\xc3\xa9\\n\"}\ttab");

  /* The file itself: 8 + N a multiple of 8, padding is spaces, offsets
   * contiguous in insertion order (checked with jansson directly). */
  size_t len;
  uint8_t *img = slurp(path, &len);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | img[i];
  cr_expect_eq((8 + n) % 8, 0);
  cr_expect_eq(img[8], '{');
  json_error_t je;
  json_t *h = json_loadb((const char *)img + 8, n, 0, &je);
  cr_assert_not_null(h, "%s", je.text);
  const char *key;
  json_t *v;
  json_int_t pos = 0;
  int i = 0;
  json_object_foreach(h, key, v) {
    if (i == 0) {
      cr_expect_str_eq(key, "__metadata__");
    } else {
      cr_expect_str_eq(key, rt_st_name(st, i - 1));
      json_t *off = json_object_get(v, "data_offsets");
      cr_expect_eq(json_integer_value(json_array_get(off, 0)), pos, "%s", key);
      pos = json_integer_value(json_array_get(off, 1));
    }
    i++;
  }
  cr_expect_eq(i, 1 + rt_st_count(st));
  cr_expect_eq(8 + n + (uint64_t)pos, len);
  json_decref(h);
  free(img);
  rt_st_destroy(st);
  rt_st_destroy(back);
}

Test(safetensors, no_metadata_key_without_metadata, .init = make_tmpdir, .fini = drop_tmpdir) {
  rt_safetensors *st = rt_st_create();
  const int64_t one = 1;
  const float v = 2.0f;
  add(st, "w", tensor(IR_F32, 1, &one, &v));
  char path[128];
  snprintf(path, sizeof path, "%s/nometa.safetensors", tmpdir);
  ir_diag d = {0};
  cr_assert(rt_st_write(st, path, &d), "%s", d.msg);
  size_t len;
  uint8_t *img = slurp(path, &len);
  /* {"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} is 54 bytes,
   * padded to 56. */
  const char want[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}  ";
  cr_assert_eq(len, 8 + 56 + 4);
  cr_expect_eq(img[0], 56);
  cr_expect_eq(memcmp(img + 8, want, 56), 0, "%.56s", img + 8);
  cr_expect_eq(memcmp(img + 64, &v, 4), 0);
  free(img);
  rt_st_destroy(st);
}

Test(safetensors, add_replaces_and_copies) {
  rt_safetensors *st = rt_st_create();
  const int64_t two = 2;
  float v[2] = {1, 2};
  rt_tensor *t = tensor(IR_F32, 1, &two, v);
  ir_diag d = {0};
  cr_assert(rt_st_add(st, "a", t, &d));
  cr_assert(rt_st_add(st, "b", t, &d));
  ((float *)t->data)[0] = 9; /* deep copy: the stored tensor keeps 1 */
  cr_expect_eq(((const float *)rt_st_get(st, "a")->data)[0], 1.0f);
  cr_assert(rt_st_add(st, "a", t, &d));
  cr_expect_eq(rt_st_count(st), 2);
  cr_expect_str_eq(rt_st_name(st, 0), "a"); /* keeps its place */
  cr_expect_eq(((const float *)rt_st_get(st, "a")->data)[0], 9.0f);
  cr_expect_not(rt_st_add(st, "", t, &d));
  cr_expect(strstr(d.msg, "empty") != NULL, "%s", d.msg);
  cr_expect_not(rt_st_add(st, "__metadata__", t, &d));
  cr_expect(strstr(d.msg, "__metadata__") != NULL, "%s", d.msg);
  cr_expect_eq(rt_st_count(st), 2);
  cr_assert(rt_st_set_meta(st, "k", "1"));
  cr_assert(rt_st_set_meta(st, "k", "2"));
  cr_expect_str_eq(rt_st_meta(st, "k"), "2");
  rt_tensor_destroy(t);
  rt_st_destroy(st);
}

/* ---- malformed images ---------------------------------------------------- */

Test(safetensors, rejects_bad_prefix) {
  uint8_t b[32] = {0};
  for (size_t n = 0; n < 8; n++)
    expect_rejected(b, n, "short", "too short", NULL);
  /* Header length 0. */
  expect_rejected(b, 32, "zero", "header length is 0", NULL);
  /* 200,000,000 = 0x0bebc200: above the 100 MB limit. */
  const uint8_t big[8] = {0x00, 0xc2, 0xeb, 0x0b, 0, 0, 0, 0};
  memcpy(b, big, 8);
  expect_rejected(b, 32, "limit", "exceeds the limit", NULL);
  memset(b, 0xff, 8);
  expect_rejected(b, 32, "2^64-1", "exceeds the limit", NULL);
  /* Length 100 with 24 bytes after it. */
  memset(b, 0, 8);
  b[0] = 100;
  expect_rejected(b, 32, "beyond", "beyond the end of the file", NULL);
}

typedef struct bad_case {
  const char *json;
  size_t dlen; /* data bytes (zeros) after the header */
  const char *p1, *p2;
} bad_case;

#define F32_2 "\"dtype\":\"F32\",\"shape\":[2]"
static const bad_case bad_cases[] = {
    {"{\"w\":", 0, "header is not valid JSON: line 1, column", NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
     "\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
     4, "not valid JSON", "duplicate"},
    {"{\"w\xff\":{}}", 0, "not valid JSON", NULL},
    {"[1, 2]", 0, "header is not a JSON object", NULL},
    {"{\"w\":5}", 0, "tensor 'w': entry is not an object", NULL},
    {"{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing \"dtype\"", NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing \"shape\"",
     NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'w': missing \"data_offsets\"", NULL},
    {"{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     "tensor 'h': dtype F16 is unsupported by kiln", NULL},
    {"{\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     "tensor 'h': dtype BF16 is unsupported by kiln", NULL},
    {"{\"q\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     "tensor 'q': unknown dtype 'Q7'", NULL},
    {"{\"q\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'q': dtype is not a string", NULL},
    {"{\"s\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
     "tensor 's': shape is not an array of non-negative integers", NULL},
    {"{\"s\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
     "tensor 's': shape is not an array of non-negative integers", NULL},
    {"{\"s\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
     "tensor 's': shape is not an array of non-negative integers", NULL},
    {"{\"r\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'r': shape has rank 7", NULL},
    {"{\"o\":{" F32_2 ",\"data_offsets\":[0]}}", 8,
     "tensor 'o': data_offsets is not two non-negative integers", NULL},
    {"{\"o\":{" F32_2 ",\"data_offsets\":[-8,0]}}", 8,
     "tensor 'o': data_offsets is not two non-negative integers", NULL},
    {"{\"o\":{" F32_2 ",\"data_offsets\":[\"0\",\"8\"]}}", 8,
     "tensor 'o': data_offsets is not two non-negative integers", NULL},
    {"{\"o\":{" F32_2 ",\"data_offsets\":[8,0]}}", 8,
     "tensor 'o': data_offsets begin 8 is after end 0", NULL},
    {"{\"e\":{" F32_2 ",\"data_offsets\":[0,8]}}", 4,
     "tensor 'e': data_offsets end 8 is beyond the data buffer (4 bytes)", NULL},
    {"{\"z\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
     "tensor 'z': data_offsets span 8 bytes", "needs 12"},
    {"{\"z\":{\"dtype\":\"I64\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
     "tensor 'z': data_offsets span 16 bytes", "[2,2] of I64 needs 32"},
    /* 2^30 * 2^30 * 16 elements: numel overflows int64. */
    {"{\"big\":{\"dtype\":\"F32\",\"shape\":[1073741824,1073741824,16],\"data_offsets\":[0,0]}}", 0,
     "tensor 'big': shape [1073741824,1073741824,16] is too large", NULL},
    /* 2^62 elements fit int64, but 2^62 * 4 bytes wraps to 0. */
    {"{\"big\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0,
     "tensor 'big': shape [4611686018427387904] is too large", NULL},
    {"{\"big\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0,
     "tensor 'big'", "too large"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8]},\"b\":{" F32_2 ",\"data_offsets\":[4,12]}}", 12,
     "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]", NULL},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"F32\",\"shape\":[0],"
     "\"data_offsets\":[4,4]}}",
     8, "tensor 'z'", "overlap tensor 'a'"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8]},\"b\":{" F32_2 ",\"data_offsets\":[12,20]}}", 20,
     "bytes [8, 12) of the data buffer are not covered by any tensor", "tensor 'b'"},
    {"{\"b\":{" F32_2 ",\"data_offsets\":[4,12]}}", 12,
     "bytes [0, 4) of the data buffer are not covered by any tensor", NULL},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8]}}", 11,
     "bytes [8, 11) of the data buffer are not covered by any tensor", "trailing"},
    {"{}", 3, "bytes [0, 3) of the data buffer are not covered by any tensor", NULL},
    {"{\"__metadata__\":[\"a\"]}", 0, "__metadata__ is not an object of strings", NULL},
    {"{\"__metadata__\":{\"ok\":\"1\",\"step\":5}}", 0, "__metadata__ is not an object of strings",
     "'step'"},
    {"{\"\":{" F32_2 ",\"data_offsets\":[0,8]}}", 8, "tensor with an empty name", NULL},
};

Test(safetensors, rejects_lying_headers) {
  const uint8_t zeros[32] = {0};
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    size_t len;
    uint8_t *img = image(bad_cases[i].json, zeros, bad_cases[i].dlen, &len);
    char what[32];
    snprintf(what, sizeof what, "case %zu", i);
    expect_rejected(img, len, what, bad_cases[i].p1, bad_cases[i].p2);
    free(img);
  }
}

Test(safetensors, rejects_bool_bytes_other_than_0_1) {
  const uint8_t data[3] = {1, 0, 2};
  size_t len;
  uint8_t *img =
      image("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}", data, 3, &len);
  expect_rejected(img, len, "bool", "tensor 'm'", "must be 0 or 1");
  free(img);
}

Test(safetensors, parse_null_name_and_null_diag) {
  ir_diag d = {0};
  cr_expect_null(rt_st_parse("abc", 3, NULL, &d));
  cr_expect(strstr(d.msg, "too short") != NULL, "%s", d.msg);
  cr_expect_null(rt_st_parse("abc", 3, "x", NULL)); /* no diag: must not crash */
}

/* Every proper prefix of a valid file must fail with a message; checked on
 * exactly sized copies so the sanitizer catches any read past the end. */
Test(safetensors, every_truncation_fails, .init = make_tmpdir, .fini = drop_tmpdir) {
  size_t len;
  uint8_t *img = hf_image(&len);
  char path[128];
  snprintf(path, sizeof path, "%s/trunc.safetensors", tmpdir);
  for (size_t n = 0; n < len; n++) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, img, n);
    ir_diag d = {0};
    rt_safetensors *st = rt_st_parse(copy, n, "t", &d);
    cr_expect_null(st, "prefix of %zu bytes accepted", n);
    rt_st_destroy(st);
    cr_expect(strncmp(d.msg, "t: ", 3) == 0, "prefix %zu: %s", n, d.msg);
    FILE *f = fopen(path, "wb");
    fwrite(copy, 1, n, f);
    fclose(f);
    st = rt_st_read(path, &d);
    cr_expect_null(st, "file prefix of %zu bytes accepted", n);
    rt_st_destroy(st);
    cr_expect(strncmp(d.msg, path, strlen(path)) == 0, "file prefix %zu: %s", n, d.msg);
    free(copy);
  }
  free(img);
}

/* Single-byte corruptions anywhere: accepted or rejected, never a crash or
 * an out-of-bounds read (this test matters under the sanitizer). */
Test(safetensors, byte_corruptions_never_crash) {
  size_t len;
  uint8_t *img = hf_image(&len);
  static const uint8_t vals[] = {0, 1, '"', '{', '}', ',', '9', 0x80, 0xff};
  int rejected = 0;
  for (size_t i = 0; i < len; i++) {
    for (size_t k = 0; k < sizeof vals; k++) {
      uint8_t *copy = malloc(len);
      memcpy(copy, img, len);
      copy[i] = vals[k];
      ir_diag d = {0};
      rt_safetensors *st = rt_st_parse(copy, len, "c", &d);
      if (!st) {
        rejected++;
        cr_expect(d.msg[0] != 0, "byte %zu = %u rejected without a message", i, vals[k]);
      }
      rt_st_destroy(st);
      free(copy);
    }
  }
  cr_expect_gt(rejected, 0);
  free(img);
}

Test(safetensors, read_missing_file) {
  ir_diag d = {0};
  const char *p = "/nonexistent-kiln-dir/x.safetensors";
  cr_expect_null(rt_st_read(p, &d));
  char want[256];
  snprintf(want, sizeof want, "%s: cannot open: %s", p, strerror(ENOENT));
  cr_expect_str_eq(d.msg, want);
}

Test(safetensors, read_directory_fails, .init = make_tmpdir, .fini = drop_tmpdir) {
  ir_diag d = {0};
  cr_expect_null(rt_st_read(tmpdir, &d));
  cr_expect(strncmp(d.msg, tmpdir, strlen(tmpdir)) == 0, "%s", d.msg);
}

/* ---- atomic writes --------------------------------------------------- */

Test(safetensors, write_into_missing_directory, .init = make_tmpdir, .fini = drop_tmpdir) {
  rt_safetensors *st = every_dtype();
  char path[128], listing[512];
  snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", tmpdir);
  ir_diag d = {0};
  cr_expect_not(rt_st_write(st, path, &d));
  cr_expect(strstr(d.msg, path) != NULL, "%s", d.msg);
  cr_expect(strstr(d.msg, strerror(ENOENT)) != NULL, "%s", d.msg);
  list_dir(tmpdir, listing, sizeof listing);
  cr_expect_str_eq(listing, "");
  rt_st_destroy(st);
}

Test(safetensors, write_replaces_existing_file, .init = make_tmpdir, .fini = drop_tmpdir) {
  char path[128], listing[512];
  snprintf(path, sizeof path, "%s/ckpt.safetensors", tmpdir);
  FILE *f = fopen(path, "wb");
  fputs("old contents, not a safetensors file", f);
  fclose(f);
  rt_safetensors *first = every_dtype(), *second = rt_st_create();
  const int64_t one = 1;
  const int32_t v = 42;
  add(second, "only", tensor(IR_I32, 1, &one, &v));
  ir_diag d = {0};
  cr_assert(rt_st_write(first, path, &d), "%s", d.msg);
  cr_assert(rt_st_write(second, path, &d), "%s", d.msg);
  rt_safetensors *back = rt_st_read(path, &d);
  cr_assert_not_null(back, "%s", d.msg);
  expect_same(second, back);
  cr_expect_null(rt_st_meta(back, "step"));
  list_dir(tmpdir, listing, sizeof listing);
  cr_expect_str_eq(listing, "ckpt.safetensors");
  rt_st_destroy(first);
  rt_st_destroy(second);
  rt_st_destroy(back);
}

Test(safetensors, write_over_directory_fails_cleanly, .init = make_tmpdir, .fini = drop_tmpdir) {
  char path[128], listing[512];
  snprintf(path, sizeof path, "%s/d.safetensors", tmpdir);
  cr_assert_eq(mkdir(path, 0755), 0);
  rt_safetensors *st = every_dtype();
  ir_diag d = {0};
  cr_expect_not(rt_st_write(st, path, &d));
  cr_expect(strstr(d.msg, path) != NULL, "%s", d.msg);
  list_dir(tmpdir, listing, sizeof listing);
  cr_expect_str_eq(listing, "d.safetensors");
  struct stat sb;
  cr_expect(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
  rt_st_destroy(st);
}

/* A write that fails midway (file size limit: EFBIG, like a full disk)
 * leaves the old file byte-for-byte and no temp file. Criterion runs each
 * test in its own process, so the limit does not leak. */
Test(safetensors, failed_write_leaves_old_file, .init = make_tmpdir, .fini = drop_tmpdir) {
  char path[128], listing[512];
  snprintf(path, sizeof path, "%s/keep.safetensors", tmpdir);
  const char old[] = "previous checkpoint";
  FILE *f = fopen(path, "wb");
  fputs(old, f);
  fclose(f);
  rt_safetensors *st = rt_st_create();
  const int64_t n = 100000;
  add(st, "big", tensor(IR_F32, 1, &n, NULL));
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit saved, small;
  cr_assert_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  small = saved;
  small.rlim_cur = 4096;
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
  ir_diag d = {0};
  bool ok = rt_st_write(st, path, &d);
  setrlimit(RLIMIT_FSIZE, &saved);
  cr_expect_not(ok);
  cr_expect(strstr(d.msg, path) != NULL, "%s", d.msg);
  cr_expect(strstr(d.msg, strerror(EFBIG)) != NULL, "%s", d.msg);
  size_t len;
  uint8_t *got = slurp(path, &len);
  cr_expect(len == strlen(old) && memcmp(got, old, len) == 0, "old file changed");
  free(got);
  list_dir(tmpdir, listing, sizeof listing);
  cr_expect_str_eq(listing, "keep.safetensors");
  rt_st_destroy(st);
}

Test(safetensors, bool_written_as_0_1, .init = make_tmpdir, .fini = drop_tmpdir) {
  rt_safetensors *st = rt_st_create();
  const int64_t three = 3;
  const uint8_t raw[3] = {7, 0, 1};
  add(st, "m", tensor(IR_BOOL, 1, &three, raw));
  char path[128];
  snprintf(path, sizeof path, "%s/b.safetensors", tmpdir);
  ir_diag d = {0};
  cr_assert(rt_st_write(st, path, &d), "%s", d.msg);
  rt_safetensors *back = rt_st_read(path, &d);
  cr_assert_not_null(back, "%s", d.msg);
  const uint8_t *m = rt_st_get(back, "m")->data;
  cr_expect(m[0] == 1 && m[1] == 0 && m[2] == 1);
  rt_st_destroy(st);
  rt_st_destroy(back);
}

Test(safetensors, empty_container_round_trip, .init = make_tmpdir, .fini = drop_tmpdir) {
  rt_safetensors *st = rt_st_create();
  char path[128];
  snprintf(path, sizeof path, "%s/empty.safetensors", tmpdir);
  ir_diag d = {0};
  cr_assert(rt_st_write(st, path, &d), "%s", d.msg);
  size_t len;
  uint8_t *img = slurp(path, &len);
  /* "{}" padded with 6 spaces. */
  cr_expect(len == 16 && img[0] == 8 && memcmp(img + 8, "{}      ", 8) == 0);
  rt_safetensors *back = rt_st_read(path, &d);
  cr_assert_not_null(back, "%s", d.msg);
  cr_expect_eq(rt_st_count(back), 0);
  free(img);
  rt_st_destroy(st);
  rt_st_destroy(back);
}
