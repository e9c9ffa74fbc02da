/* Training-step benchmark: one SGD step of a 2-layer MLP (batch 256,
 * 512 -> 512 relu -> 512, MSE) through kl_compile_train on the JIT, against
 * the step's five GEMMs called directly through cblas_sgemm, alternating in
 * blocks in one process (medians). It also counts heap allocations made during steps
 * after warm-up (the target is none). Usage: bench_train [--reps N]
 * [--threads N]. */
#include <cblas.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "driver/kiln_train.h"
#include "frontend/kiln.h"

/* ---- counting allocations --------------------------------------------------
 * The executable defines the allocation functions, so every caller in the
 * process (kiln's static libraries, libc's own strdup, OpenBLAS, LLVM)
 * reaches these, and they forward to glibc's implementation. Linker --wrap
 * would only see calls made from the statically linked objects. ASan brings
 * its own allocator, so sanitizer builds count nothing. */
#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
#define COUNTING 0
static uint64_t allocations(void) { return 0; }
#else
#define COUNTING 1
static atomic_uint_fast64_t nalloc;
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) {
  atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
  atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
  return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
  atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
  return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
  atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
  return __libc_memalign(a, n);
}
void *memalign(size_t a, size_t n) {
  atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
  return __libc_memalign(a, n);
}
int posix_memalign(void **out, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1))) return 22; /* EINVAL */
  atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
  void *p = __libc_memalign(a, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}
static uint64_t allocations(void) { return atomic_load(&nalloc); }
#endif

static void fill(float *p, int64_t n, uint32_t s, float scale) {
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * scale;
  }
}

enum { B = 256, IN = 512, HID = 512, OUT = 512 };

static kl_train_step *mlp_step(int threads) {
  kl_graph *g = kl_graph_create("mlp");
  kl_value x = kl_input(g, "x", KL_F32, KL_SHAPE(B, IN));
  kl_value y = kl_input(g, "y", KL_F32, KL_SHAPE(B, OUT));
  kl_value w1 = kl_param_init(g, "w1", KL_F32, KL_SHAPE(IN, HID), KL_INIT_KAIMING_UNIFORM, 0);
  kl_value b1 = kl_param_init(g, "b1", KL_F32, KL_SHAPE(HID), KL_INIT_ZEROS, 0);
  kl_value w2 = kl_param_init(g, "w2", KL_F32, KL_SHAPE(HID, OUT), KL_INIT_XAVIER_UNIFORM, 0);
  kl_value b2 = kl_param_init(g, "b2", KL_F32, KL_SHAPE(OUT), KL_INIT_ZEROS, 0);
  kl_value h = kl_relu(kl_add(kl_matmul(x, w1), b1));
  kl_value loss = kl_mse_loss(kl_add(kl_matmul(h, w2), b2), y);
  kl_output(loss);
  kl_optim_opts o = {.kind = KL_OPT_SGD, .lr = 0.01};
  kl_compile_opts co = {.backend = KL_BACKEND_JIT, .seed = 1, .threads = threads};
  char *err = NULL;
  kl_train_step *s = kl_graph_error(g) ? NULL : kl_compile_train(g, loss, NULL, 0, &o, &co, &err);
  if (!s) fprintf(stderr, "bench_train: %s\n", kl_graph_error(g) ? kl_graph_error(g) : err);
  free(err);
  kl_graph_destroy(g);
  return s;
}

/* The GEMMs of the same step: two forward, dW2 = h^T dy, dh = dy W2^T and
 * dW1 = x^T dz (no gradient for the input x). */
typedef struct gemms {
  float *x, *w1, *h, *w2, *dy, *dh, *dw1, *dw2;
  int threads; /* OpenBLAS's for the direct calls: a kiln step leaves it at 1 */
} gemms;

static void run_gemms(gemms *m) {
  openblas_set_num_threads(m->threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, HID, IN, 1, m->x, IN, m->w1, HID, 0,
              m->h, HID);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, OUT, HID, 1, m->h, HID, m->w2, OUT, 0,
              m->dy, OUT);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, HID, OUT, B, 1, m->h, HID, m->dy, OUT, 0,
              m->dw2, OUT);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, HID, OUT, 1, m->dy, OUT, m->w2, OUT, 0,
              m->dh, HID);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IN, HID, B, 1, m->x, IN, m->dh, HID, 0,
              m->dw1, HID);
}

int main(int argc, char **argv) {
  int reps = 21, threads = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: bench_train [--reps N] [--threads N]\n");
      return 2;
    }
  }
  if (reps < 1 || threads < 0) {
    fprintf(stderr, "bench_train: --reps must be >= 1 and --threads >= 0\n");
    return 2;
  }
  uint64_t compile_allocs = allocations();
  kl_train_step *s = mlp_step(threads);
  if (!s) return 1;
  compile_allocs = allocations() - compile_allocs;
  kl_tensor *in[2] = {kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){B, IN}),
                      kl_tensor_create(KL_TENSOR_F32, 2, (int64_t[]){B, OUT})};
  fill(kl_tensor_data(in[0]), (int64_t)B * IN, 1, 2.0f);
  fill(kl_tensor_data(in[1]), (int64_t)B * OUT, 2, 1.0f);

  gemms m = {.threads = threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN)};
  float **bufs[8] = {&m.x, &m.w1, &m.h, &m.w2, &m.dy, &m.dh, &m.dw1, &m.dw2};
  for (int i = 0; i < 8; i++) {
    *bufs[i] = aligned_alloc(64, sizeof(float) * 512 * 512);
    fill(*bufs[i], 512 * 512, (uint32_t)(10 + i), 0.1f);
  }

  double first = 0, last = 0;
  for (int i = 0; i < 3; i++) { /* warm-up: first-touch, thread pools, BLAS buffers */
    const char *msg = kl_train_step_run(s, in, 2, i == 0 ? &first : &last);
    if (msg) {
      fprintf(stderr, "bench_train: step failed: %s\n", msg);
      return 1;
    }
    run_gemms(&m);
  }
  /* Blocks of steps, then of direct runs, each after a pause (bench_util.h). */
  reps = (reps + BENCH_BLOCK - 1) / BENCH_BLOCK * BENCH_BLOCK;
  double *tk = malloc(sizeof(double) * (size_t)reps), *tg = malloc(sizeof(double) * (size_t)reps);
  uint64_t allocs = 0, blas_allocs = 0;
  for (int r0 = 0; r0 < reps; r0 += BENCH_BLOCK) {
    bench_pause();
    for (int r = r0; r < r0 + BENCH_BLOCK; r++) {
      uint64_t a0 = allocations();
      double t0 = now_s();
      kl_train_step_run(s, in, 2, &last);
      tk[r] = now_s() - t0;
      allocs += allocations() - a0;
    }
    bench_pause();
    for (int r = r0; r < r0 + BENCH_BLOCK; r++) {
      uint64_t a1 = allocations();
      double t1 = now_s();
      run_gemms(&m);
      tg[r] = now_s() - t1;
      blas_allocs += allocations() - a1;
    }
  }
  double mk = median(tk, reps), mg = median(tg, reps);
  double flop = 5.0 * 2.0 * B * 512.0 * 512.0;
  printf("bench_train: MLP %dx%d -> %d relu -> %d, MSE, SGD; %d reps, %d thread%s\n", B, IN, HID,
         OUT, reps, threads, threads == 1 ? "" : "s");
  printf("  loss            %.6f -> %.6f\n", first, last);
  printf("  kiln step       %8.3f ms  (%.1f GFLOP/s in its GEMMs)\n", mk * 1e3, flop / mk * 1e-9);
  printf("  5 cblas_sgemm   %8.3f ms  (%.1f GFLOP/s)\n", mg * 1e3, flop / mg * 1e-9);
  printf("  ratio           %8.3f x  (target <= 1.2)\n", mk / mg);
  /* OpenBLAS's threaded drivers allocate a job queue per call: the direct
   * GEMMs show how many of the step's allocations are BLAS's own. */
  if (COUNTING)
    printf("  allocations     %8.2f per step after warm-up (target 0), %.2f in the 5 direct\n"
           "                  GEMMs alone; compiling made %llu\n",
           (double)allocs / reps, (double)blas_allocs / reps, (unsigned long long)compile_allocs);
  else
    printf("  allocations     not counted (sanitizer build)\n");
  free(tk);
  free(tg);
  for (int i = 0; i < 8; i++)
    free(*bufs[i]);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
  kl_train_step_destroy(s);
  return 0;
}
