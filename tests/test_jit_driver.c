/* The JIT driver (backend/jit.c): compiled graphs compute what the reference
 * interpreter computes; the on-disk cache hits, misses on any change to the
 * graph or the training flag, stays untouched with no_cache, survives an
 * unwritable directory and recovers from corrupt files; dumps show the
 * optimized module and the host's assembly; JITs are independent. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/jit.h"
#include "backend/jit_internal.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "runtime/ref.h"
#include "runtime/tensor.h"

/* ---- graphs ------------------------------------------------------------- */

/* out = (x + c) * y over f32[n], c[i] = cbase + i / 8. */
static ir_graph *axpy_graph(const char *name, int64_t n, float cbase) {
  ir_graph *g = ir_graph_create(name);
  ir_diag d = {0};
  ir_type t = ir_type_make(IR_F32, 1, &n);
  int x = ir_add_arg(g, "x", &t, &d);
  int y = ir_add_arg(g, "y", &t, &d);
  float *c = malloc((size_t)n * sizeof *c);
  cr_assert(c);
  for (int64_t i = 0; i < n; i++)
    c[i] = cbase + (float)i / 8;
  int k = ir_add_const(g, &t, c, &d);
  free(c);
  int s = ir_add_node(g, IR_OP_ADD, 2, (int[]){x, k}, NULL, NULL, &d);
  int m = ir_add_node(g, IR_OP_MUL, 2, (int[]){s, y}, NULL, NULL, &d);
  cr_assert(x >= 0 && y >= 0 && k >= 0 && s >= 0 && m >= 0, "%s", d.msg);
  ir_set_returns(g, 1, &m);
  cr_assert(ir_verify(g, &d), "%s", d.msg);
  return g;
}

static rt_tensor *arg_tensor(const ir_graph *g, int which, unsigned seed) {
  int ids[8];
  cr_assert(ir_graph_args(g, ids) > which);
  rt_tensor *t = rt_tensor_create(&g->nodes[ids[which]]->type);
  cr_assert(t);
  for (int64_t i = 0; i < rt_numel(t); i++)
    rt_set_f(t, i, (double)((i * 37 + seed * 11) % 101) / 7.0 - 6.0);
  return t;
}

/* Runs a compiled g once on args through a bufs[] array built as the
 * codegen ABI says (one 64-byte aligned buffer per node, the rt_exec last);
 * the caller frees it with free_bufs. */
static void **jit_run(const ir_graph *g, cg_jit *j, rt_tensor **args, rt_exec *x) {
  cr_assert(j);
  cg_step_fn step = cg_jit_step(j);
  cr_assert(step);
  void **bufs = calloc((size_t)g->nnodes + 1, sizeof *bufs);
  cr_assert(bufs);
  int a = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    size_t bytes = (size_t)ir_type_numel(&n->type) * ir_dtype_size(n->type.dtype);
    bufs[i] = rt_alloc(bytes);
    cr_assert(bufs[i]);
    if (n->op == IR_OP_ARG) memcpy(bufs[i], args[a++]->data, bytes);
    if (n->op == IR_OP_CONST) memcpy(bufs[i], n->data, bytes);
  }
  bufs[g->nnodes] = x;
  step(bufs);
  return bufs;
}

static void free_bufs(const ir_graph *g, void **bufs) {
  for (int i = 0; i < g->nnodes; i++)
    rt_free(bufs[i]);
  free(bufs);
}

/* Checks every returned value of a JIT run against the reference
 * interpreter: bit for bit when tol is 0, else within tol relative. */
static void check_outputs(const ir_graph *g, void **bufs, rt_tensor **args, const rt_ref_opts *o,
                          double tol) {
  rt_tensor *outs[4] = {0};
  ir_diag d = {0};
  cr_assert(rt_ref_run(g, (const rt_tensor *const *)args, NULL, NULL, o, outs, &d), "%s", d.msg);
  for (int r = 0; r < g->nrets; r++) {
    if (tol == 0) {
      cr_assert_eq(memcmp(bufs[g->rets[r]], outs[r]->data, outs[r]->bytes), 0,
                   "output %d differs from the reference", r);
    } else {
      rt_tensor got = {.type = outs[r]->type, .data = bufs[g->rets[r]], .bytes = outs[r]->bytes};
      for (int64_t i = 0; i < rt_numel(outs[r]); i++) {
        double want = rt_get_f(outs[r], i), have = rt_get_f(&got, i);
        cr_assert(fabs(have - want) <= tol * (1 + fabs(want)), "output %d[%ld]: %g, want %g", r,
                  (long)i, have, want);
      }
    }
    rt_tensor_destroy(outs[r]);
  }
}

static void check_against_ref(const ir_graph *g, cg_jit *j, rt_tensor **args) {
  rt_exec x;
  rt_exec_init(&x, NULL, 0, 0);
  void **bufs = jit_run(g, j, args, &x);
  cr_assert_eq(x.err_node, -1);
  check_outputs(g, bufs, args, NULL, 0);
  free_bufs(g, bufs);
}

static void run_and_check(const ir_graph *g, cg_jit *j) {
  rt_tensor *args[2] = {arg_tensor(g, 0, 1), arg_tensor(g, 1, 2)};
  check_against_ref(g, j, args);
  rt_tensor_destroy(args[0]);
  rt_tensor_destroy(args[1]);
}

/* ---- cache directories ---------------------------------------------------- */

static char *temp_dir(void) {
  char *t = strdup("/tmp/kiln-jit-test-XXXXXX");
  cr_assert(t && mkdtemp(t));
  return t;
}

static int count_entries(const char *dir) {
  DIR *dd = opendir(dir);
  if (!dd) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(dd));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(dd);
  return n;
}

static void remove_dir(char *dir) {
  DIR *dd = opendir(dir);
  if (dd) {
    for (struct dirent *e; (e = readdir(dd));) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char p[512];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
    closedir(dd);
  }
  rmdir(dir);
  free(dir);
}

static char *cache_file(const char *dir, const char *key) {
  char *p = malloc(strlen(dir) + 80);
  cr_assert(p);
  sprintf(p, "%s/%s.o", dir, key);
  return p;
}

static void *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  cr_assert(buf);
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

static void spit(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

static cg_jit *compile(const ir_graph *g, const cg_jit_opts *o, cg_jit_stats *st) {
  ir_diag d = {0};
  cg_jit *j = cg_jit_compile(g, o, st, &d);
  cr_assert(j, "compile failed: %s", d.msg);
  return j;
}

/* ---- results ---------------------------------------------------------------- */

Test(jit_driver, results_match_reference) {
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  cg_jit_stats st;
  cg_jit *j = compile(g, &(cg_jit_opts){.no_cache = true}, &st);
  cr_assert(!st.cache_hit);
  cr_assert_eq(strlen(st.key), 64);
  cr_assert(st.lower_ms > 0 && st.optimize_ms > 0 && st.codegen_ms > 0 && st.link_ms > 0);
  run_and_check(g, j);
  cg_jit_destroy(j);
  ir_graph_destroy(g);
}

Test(jit_driver, two_jits_are_independent) {
  ir_graph *g1 = axpy_graph("one", 1000, 0.5f);
  ir_graph *g2 = axpy_graph("two", 37, -3.0f);
  cg_jit_opts o = {.no_cache = true};
  cg_jit *j1 = compile(g1, &o, NULL);
  cg_jit *j2 = compile(g2, &o, NULL);
  cr_assert_neq((void *)cg_jit_step(j1), (void *)cg_jit_step(j2));
  run_and_check(g1, j1);
  run_and_check(g2, j2);
  cg_jit_destroy(j1);
  run_and_check(g2, j2); /* unaffected by the other's teardown */
  cg_jit_destroy(j2);
  ir_graph_destroy(g1);
  ir_graph_destroy(g2);
}

/* ---- the cache key ------------------------------------------------------------ */

static void key_of(const ir_graph *g, bool training, char out[65]) {
  cg_jit_cache_key(g, &(cg_jit_opts){.training = training}, out);
  cr_assert_eq(strlen(out), 64);
  cr_assert_eq(strspn(out, "0123456789abcdef"), 64, "not lowercase hex: %s", out);
}

static ir_graph *dropout_graph(double p) {
  ir_graph *g = ir_graph_create("drop");
  ir_diag d = {0};
  int64_t n = 16;
  ir_type t = ir_type_make(IR_F32, 1, &n);
  int x = ir_add_arg(g, "x", &t, &d);
  ir_attr a[2] = {{.kind = IR_ATTR_FLOAT, .f = p}, {.kind = IR_ATTR_INT, .i = -1}};
  int r = ir_add_node(g, IR_OP_DROPOUT, 1, &x, a, NULL, &d);
  cr_assert(r >= 0, "%s", d.msg);
  ir_set_returns(g, 1, &r);
  return g;
}

Test(jit_driver, key_follows_every_input) {
  char base[65], again[65], k[65];
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  ir_graph *same = axpy_graph("axpy", 1000, 0.5f);
  key_of(g, false, base);
  key_of(same, false, again);
  cr_assert_str_eq(base, again, "same graph, same key");

  key_of(g, true, k);
  cr_assert_str_neq(base, k, "training flag");
  cg_jit_cache_key(g, &(cg_jit_opts){.check_numerics = true}, k);
  cr_assert_str_neq(base, k, "check_numerics flag");

  ir_graph *cval = axpy_graph("axpy", 1000, 0.25f);
  key_of(cval, false, k);
  cr_assert_str_neq(base, k, "constant value");

  /* One element of a large constant: the key must see constants in full. */
  ir_graph *one = axpy_graph("axpy", 1000, 0.5f);
  ((float *)one->nodes[2]->data)[999] += 1.0f;
  key_of(one, false, k);
  cr_assert_str_neq(base, k, "one constant element");

  ir_graph *shape = axpy_graph("axpy", 1001, 0.5f);
  key_of(shape, false, k);
  cr_assert_str_neq(base, k, "shape");

  ir_graph *d1 = dropout_graph(0.1), *d2 = dropout_graph(0.2);
  key_of(d1, true, base);
  key_of(d2, true, k);
  cr_assert_str_neq(base, k, "attribute");

  ir_graph *gs[] = {g, same, cval, one, shape, d1, d2};
  for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++)
    ir_graph_destroy(gs[i]);
}

/* ---- the cache ------------------------------------------------------------------ */

Test(jit_driver, second_compile_hits_the_cache) {
  char *dir = temp_dir();
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  cg_jit_opts o = {.cache_dir = dir};
  cg_jit_stats s1, s2;
  cg_jit *j1 = compile(g, &o, &s1);
  cr_assert(!s1.cache_hit);
  char *path = cache_file(dir, s1.key);
  cr_assert_eq(access(path, R_OK), 0, "no cache file %s", path);
  cr_assert_eq(count_entries(dir), 1, "only the object: no temp files left");

  cg_jit *j2 = compile(g, &o, &s2);
  cr_assert(s2.cache_hit);
  cr_assert_str_eq(s1.key, s2.key);
  cr_assert(s2.lower_ms == 0 && s2.optimize_ms == 0 && s2.codegen_ms == 0);
  cr_assert(s2.link_ms > 0);
  run_and_check(g, j1);
  run_and_check(g, j2);
  cg_jit_destroy(j1);
  cg_jit_destroy(j2);
  free(path);
  ir_graph_destroy(g);
  remove_dir(dir);
}

Test(jit_driver, changes_miss_the_cache) {
  char *dir = temp_dir();
  cg_jit_opts o = {.cache_dir = dir};
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  ir_graph *cval = axpy_graph("axpy", 1000, 0.75f);
  ir_graph *shape = axpy_graph("axpy", 999, 0.5f);
  cg_jit_stats st;
  cg_jit_destroy(compile(g, &o, &st));
  cr_assert(!st.cache_hit);

  cg_jit *j = compile(cval, &o, &st);
  cr_assert(!st.cache_hit, "constant value");
  run_and_check(cval, j);
  cg_jit_destroy(j);
  j = compile(shape, &o, &st);
  cr_assert(!st.cache_hit, "shape");
  run_and_check(shape, j);
  cg_jit_destroy(j);
  o.training = true;
  j = compile(g, &o, &st);
  cr_assert(!st.cache_hit, "training flag");
  run_and_check(g, j);
  cg_jit_destroy(j);
  cr_assert_eq(count_entries(dir), 4);

  o.training = false;
  cg_jit_destroy(compile(g, &o, &st));
  cr_assert(st.cache_hit, "the original is still cached");
  ir_graph_destroy(g);
  ir_graph_destroy(cval);
  ir_graph_destroy(shape);
  remove_dir(dir);
}

Test(jit_driver, no_cache_neither_reads_nor_writes) {
  char *dir = temp_dir();
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  cg_jit_opts o = {.cache_dir = dir, .no_cache = true};
  cg_jit_stats st;
  cg_jit_destroy(compile(g, &o, &st));
  cg_jit_destroy(compile(g, &o, &st));
  cr_assert(!st.cache_hit);
  cr_assert_eq(count_entries(dir), 0, "no_cache wrote to the cache");

  o.no_cache = false; /* fill it, then make sure no_cache ignores the entry */
  cg_jit_destroy(compile(g, &o, &st));
  cr_assert_eq(count_entries(dir), 1);
  o.no_cache = true;
  cg_jit *j = compile(g, &o, &st);
  cr_assert(!st.cache_hit, "no_cache read the cache");
  cr_assert(st.lower_ms > 0);
  run_and_check(g, j);
  cg_jit_destroy(j);
  ir_graph_destroy(g);
  remove_dir(dir);
}

Test(jit_driver, unwritable_cache_dir_still_compiles) {
  char *dir = temp_dir();
  /* A path under a regular file cannot be created, even by root. */
  char file[512], bad[600];
  snprintf(file, sizeof file, "%s/plain-file", dir);
  spit(file, "x", 1);
  snprintf(bad, sizeof bad, "%s/sub/cache", file);
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  cg_jit_stats st;
  cg_jit *j = compile(g, &(cg_jit_opts){.cache_dir = bad}, &st);
  cr_assert(!st.cache_hit);
  run_and_check(g, j);
  cg_jit_destroy(j);
  cr_assert_eq(count_entries(dir), 1, "nothing but the plain file");
  ir_graph_destroy(g);
  remove_dir(dir);
}

Test(jit_driver, creates_missing_cache_dirs) {
  char *dir = temp_dir();
  char nested[512];
  snprintf(nested, sizeof nested, "%s/a/b/c", dir);
  ir_graph *g = axpy_graph("axpy", 100, 0.5f);
  cg_jit_stats st;
  cg_jit_destroy(compile(g, &(cg_jit_opts){.cache_dir = nested}, &st));
  cr_assert_eq(count_entries(nested), 1);
  cg_jit_destroy(compile(g, &(cg_jit_opts){.cache_dir = nested}, &st));
  cr_assert(st.cache_hit);
  char p[600];
  snprintf(p, sizeof p, "%s/%s.o", nested, st.key);
  unlink(p);
  snprintf(p, sizeof p, "%s/a/b/c", dir);
  rmdir(p);
  snprintf(p, sizeof p, "%s/a/b", dir);
  rmdir(p);
  snprintf(p, sizeof p, "%s/a", dir);
  rmdir(p);
  ir_graph_destroy(g);
  remove_dir(dir);
}

/* Without cache_dir: $XDG_CACHE_HOME/kiln when absolute, else
 * $HOME/.cache/kiln (Criterion runs each test in its own process). */
Test(jit_driver, default_cache_dir_follows_xdg_then_home) {
  char *xdg = temp_dir(), *home = temp_dir();
  ir_graph *g = axpy_graph("axpy", 64, 0.5f);
  cg_jit_stats st;
  char p[600];
  cr_assert_eq(setenv("XDG_CACHE_HOME", xdg, 1), 0);
  cr_assert_eq(setenv("HOME", home, 1), 0);
  cg_jit_destroy(compile(g, &(cg_jit_opts){0}, &st));
  snprintf(p, sizeof p, "%s/kiln/%s.o", xdg, st.key);
  cr_assert_eq(access(p, R_OK), 0, "%s", p);
  unlink(p);
  snprintf(p, sizeof p, "%s/kiln", xdg);
  rmdir(p);

  cr_assert_eq(setenv("XDG_CACHE_HOME", "relative/dir", 1), 0); /* invalid: ignored */
  cg_jit_destroy(compile(g, &(cg_jit_opts){0}, &st));
  snprintf(p, sizeof p, "%s/.cache/kiln/%s.o", home, st.key);
  cr_assert_eq(access(p, R_OK), 0, "%s", p);
  unlink(p);
  snprintf(p, sizeof p, "%s/.cache/kiln", home);
  rmdir(p);
  snprintf(p, sizeof p, "%s/.cache", home);
  rmdir(p);
  cr_assert_eq(count_entries(xdg), 0);
  ir_graph_destroy(g);
  remove_dir(xdg);
  remove_dir(home);
}

/* Compiles g into dir, replaces its cache file with `bad` (len bytes; as a
 * raw file, or wrapped in a valid trailer when `wrap`), and checks that the
 * next compile recompiles, is correct, and repairs the file. */
static void check_recovers(const ir_graph *g, const void *bad, size_t len, bool wrap) {
  char *dir = temp_dir();
  cg_jit_opts o = {.cache_dir = dir};
  cg_jit_stats st;
  cg_jit_destroy(compile(g, &o, &st));
  char *path = cache_file(dir, st.key);
  if (wrap)
    cr_assert(cg_jit_cache_write(dir, st.key, bad, len));
  else
    spit(path, bad, len);

  cg_jit *j = compile(g, &o, &st);
  cr_assert(!st.cache_hit, "a corrupt file must not count as a hit");
  cr_assert(st.lower_ms > 0);
  run_and_check(g, j);
  cg_jit_destroy(j);
  cr_assert_eq(count_entries(dir), 1);

  j = compile(g, &o, &st);
  cr_assert(st.cache_hit, "the file was replaced by a good object");
  run_and_check(g, j);
  cg_jit_destroy(j);
  free(path);
  remove_dir(dir);
}

Test(jit_driver, corrupt_cache_file_is_recompiled) {
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  unsigned char garbage[4096];
  for (size_t i = 0; i < sizeof garbage; i++)
    garbage[i] = (unsigned char)(i * 131 + 7);
  check_recovers(g, garbage, sizeof garbage, false);
  check_recovers(g, garbage, 3, false); /* shorter than any trailer */
  check_recovers(g, "", 0, false);
  ir_graph_destroy(g);
}

Test(jit_driver, unlinkable_object_is_recompiled) {
  /* Past the integrity check (a valid trailer), so the linker itself must
   * refuse these: garbage, an ELF header with nothing behind it, and a real
   * object cut short. */
  ir_graph *g = axpy_graph("axpy", 1000, 0.5f);
  unsigned char garbage[4096];
  for (size_t i = 0; i < sizeof garbage; i++)
    garbage[i] = (unsigned char)(i * 131 + 7);
  check_recovers(g, garbage, sizeof garbage, true);
  unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  check_recovers(g, elf, sizeof elf, true);

  char *dir = temp_dir();
  cg_jit_stats st;
  cg_jit_destroy(compile(g, &(cg_jit_opts){.cache_dir = dir}, &st));
  char *path = cache_file(dir, st.key);
  size_t len = 0;
  unsigned char *obj = slurp(path, &len);
  cr_assert(obj && len > CG_JIT_CACHE_TRAILER);
  len -= CG_JIT_CACHE_TRAILER;
  check_recovers(g, obj, len / 2, true);
  free(obj);
  free(path);
  remove_dir(dir);
  ir_graph_destroy(g);
}

/* ---- runtime functions -------------------------------------------------------- */

/* Generated code calls rt_parallel_for and rt_dropout_uniform (defined to
 * the JIT explicitly: they live in static libraries), and cblas_sgemm. */
Test(jit_driver, runtime_functions_resolve) {
  ir_graph *g = ir_graph_create("rt");
  ir_diag d = {0};
  int64_t n = 1 << 17, mk[2] = {8, 16}, kn[2] = {16, 4};
  ir_type tv = ir_type_make(IR_F32, 1, &n);
  ir_type ta = ir_type_make(IR_F32, 2, mk), tb = ir_type_make(IR_F32, 2, kn);
  int x = ir_add_arg(g, "x", &tv, &d), a = ir_add_arg(g, "a", &ta, &d);
  int b = ir_add_arg(g, "b", &tb, &d);
  ir_attr p[2] = {{.kind = IR_ATTR_FLOAT, .f = 0.25}, {.kind = IR_ATTR_INT, .i = -1}};
  int drop = ir_add_node(g, IR_OP_DROPOUT, 1, &x, p, NULL, &d);
  int mm = ir_add_node(g, IR_OP_MATMUL, 2, (int[]){a, b}, NULL, NULL, &d);
  cr_assert(drop >= 0 && mm >= 0, "%s", d.msg);
  ir_set_returns(g, 2, (int[]){drop, mm});
  cg_jit *j = compile(g, &(cg_jit_opts){.training = true, .no_cache = true}, NULL);
  rt_tensor *args[3] = {arg_tensor(g, 0, 1), arg_tensor(g, 1, 2), arg_tensor(g, 2, 3)};
  rt_exec ex;
  rt_pool *pool = rt_pool_create(2);
  cr_assert(pool);
  rt_exec_init(&ex, pool, 1234, 7);
  void **bufs = jit_run(g, j, args, &ex);
  cr_assert_eq(ex.err_node, -1);
  check_outputs(g, bufs, args, &(rt_ref_opts){.training = true, .seed = 1234, .step = 7}, 1e-5);
  free_bufs(g, bufs);
  rt_pool_destroy(pool);
  for (int i = 0; i < 3; i++)
    rt_tensor_destroy(args[i]);
  cg_jit_destroy(j);
  ir_graph_destroy(g);
}

/* A gather index out of range reaches rt_exec_error from JIT code. */
Test(jit_driver, kernel_errors_reach_rt_exec_error) {
  ir_graph *g = ir_graph_create("gat");
  ir_diag d = {0};
  int64_t td[2] = {4, 3}, nidx = 2;
  ir_type tt = ir_type_make(IR_F32, 2, td), ti = ir_type_make(IR_I64, 1, &nidx);
  int t = ir_add_arg(g, "t", &tt, &d), i = ir_add_arg(g, "i", &ti, &d);
  int gat = ir_add_node(g, IR_OP_GATHER, 2, (int[]){t, i}, NULL, NULL, &d);
  cr_assert(gat >= 0, "%s", d.msg);
  ir_set_returns(g, 1, &gat);
  cg_jit *j = compile(g, &(cg_jit_opts){.no_cache = true}, NULL);
  rt_tensor *args[2] = {arg_tensor(g, 0, 1), rt_tensor_create(&ti)};
  rt_set_i(args[1], 0, 1);
  rt_set_i(args[1], 1, 9);
  rt_exec ex;
  rt_exec_init(&ex, NULL, 0, 0);
  free_bufs(g, jit_run(g, j, args, &ex));
  cr_assert_eq(ex.err_node, gat);
  cr_assert_eq(ex.err_kind, RT_ERR_INDEX);
  cr_assert_eq(ex.err_val, 9);
  cr_assert_eq(ex.err_limit, 4);
  rt_tensor_destroy(args[0]);
  rt_tensor_destroy(args[1]);
  cg_jit_destroy(j);
  ir_graph_destroy(g);
}

/* ---- dumps ------------------------------------------------------------------------ */

Test(jit_driver, dump_llvm_is_vectorized) {
  ir_graph *g = ir_graph_create("vadd");
  ir_diag d = {0};
  int64_t n = 1000;
  ir_type t = ir_type_make(IR_F32, 1, &n);
  int x = ir_add_arg(g, "x", &t, &d), y = ir_add_arg(g, "y", &t, &d);
  int s = ir_add_node(g, IR_OP_ADD, 2, (int[]){x, y}, NULL, NULL, &d);
  cr_assert(s >= 0, "%s", d.msg);
  ir_set_returns(g, 1, &s);
  char *ir = cg_jit_dump(g, NULL, "llvm", &d);
  cr_assert(ir, "%s", d.msg);
  cr_assert(strstr(ir, "define void @kiln_step"), "%s", ir);
  cr_assert(strstr(ir, "<8 x float>") || strstr(ir, "<16 x float>"), "not vectorized:\n%s", ir);
  free(ir);
  char *as = cg_jit_dump(g, NULL, "asm", &d);
  cr_assert(as, "%s", d.msg);
  cr_assert(strstr(as, "kiln_step"), "%s", as);
  free(as);
  d.msg[0] = 0;
  cr_assert_null(cg_jit_dump(g, NULL, "final", &d));
  cr_assert(strstr(d.msg, "final"), "%s", d.msg);
  ir_graph_destroy(g);
}
