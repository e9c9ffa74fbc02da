/* One shipped model's full training step (forward, loss, backward, clipping,
 * Adam) at a given config, timed for bench/compare_torch.py: the median of
 * --reps steps after --warmup, on fixed synthetic ids whose formulas
 * compare_torch.py repeats for PyTorch, printed as one JSON line on stdout
 * (errors: a JSON line with "error" and exit status 1).
 *   bench_step --model transformer|seq2seq-attn|gpt [--src-vocab N --tgt-vocab N
 *     --vocab N --embed N --hidden N --ffn N --heads N --layers N --batch N
 *     --src-steps N --tgt-steps N --block N --dropout P --lr X --clip X]
 *     [--threads 2 --warmup 5 --reps 20 --seed 1 --check-numerics 0|1|ab]
 * Unset model flags take the d2l v1.0 Transformer's values; --layers is
 * the Transformer's blocks. --check-numerics 1 compiles the NaN/inf check
 * after every kernel in (kl_compile_opts.check_numerics); ab compiles the
 * step both ways and alternates them step by step, so that the load of a
 * shared machine falls on both alike, adding the checked step's median
 * and the median of the per-pair time ratios checked/unchecked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "backend/kiln_run.h"
#include "bench/bench_util.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "models/gpt.h"
#include "models/seq2seq_attn.h"
#include "models/transformer.h"

/* d2l's reserved ids in golden_translate.py's order. */
enum { PAD = 1, BOS = 2, EOS = 3, FIRST_WORD = 4 };

typedef struct bench_opts {
  const char *model;
  int64_t src_vocab, tgt_vocab, vocab, embed, hidden, ffn, heads, layers, batch, src_steps,
      tgt_steps, block;
  double dropout, lr, clip;
  int threads, warmup, reps;
  uint64_t seed;
  const char *check_numerics; /* "0", "1" or "ab" */
} bench_opts;

static const char *flag(int argc, char **argv, const char *name) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return NULL;
}

static int64_t int_flag(int argc, char **argv, const char *name, int64_t def) {
  const char *v = flag(argc, argv, name);
  return v ? strtoll(v, NULL, 10) : def;
}

static double num_flag(int argc, char **argv, const char *name, double def) {
  const char *v = flag(argc, argv, name);
  return v ? strtod(v, NULL) : def;
}

static int fail(const char *model, const char *msg) {
  printf("{\"model\":\"%s\",\"error\":\"", model ? model : "");
  for (const char *p = msg; *p; p++)
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if ((unsigned char)*p >= 0x20)
      putchar(*p);
  printf("\"}\n");
  fprintf(stderr, "bench_step: %s\n", msg);
  return 1;
}

static kl_tensor *i32(int rank, int64_t d0, int64_t d1) {
  int64_t dims[2] = {d0, d1};
  return kl_tensor_create(KL_TENSOR_I32, rank, dims);
}

/* Valid lengths near those of d2l's first 640 fra-eng pairs (sources of
 * 3-5 tokens with <eos>, targets of 3-7). */
static int32_t src_len(int64_t b, int64_t steps) {
  return (int32_t)(3 + b % 3 < steps ? 3 + b % 3 : steps);
}
static int32_t tgt_len(int64_t b, int64_t steps) {
  return (int32_t)(3 + b % 5 < steps ? 3 + b % 5 : steps);
}

/* Row b of a sentence batch: words, <eos> at len - 1, <pad> after. */
static int32_t word(int64_t b, int64_t t, int32_t len, int64_t vocab, int64_t mb, int64_t mt) {
  if (t < len - 1)
    return vocab > FIRST_WORD ? FIRST_WORD + (int32_t)((mb * b + mt * t) % (vocab - FIRST_WORD))
                              : (int32_t)vocab - 1;
  return t == len - 1 ? EOS : PAD;
}

/* The translation models' five arguments: src, src_len, dec_in, tgt, tgt_len. */
static bool translation_batch(kl_tensor **in, int64_t B, int64_t ts, int64_t tt, int64_t vs,
                              int64_t vt) {
  in[0] = i32(2, B, ts), in[1] = i32(1, B, 1), in[2] = i32(2, B, tt), in[3] = i32(2, B, tt);
  in[4] = i32(1, B, 1);
  for (int i = 0; i < 5; i++)
    if (!in[i]) return false;
  int32_t *src = kl_tensor_data(in[0]), *sl = kl_tensor_data(in[1]), *dec = kl_tensor_data(in[2]),
          *tgt = kl_tensor_data(in[3]), *tl = kl_tensor_data(in[4]);
  for (int64_t b = 0; b < B; b++) {
    sl[b] = src_len(b, ts), tl[b] = tgt_len(b, tt);
    for (int64_t t = 0; t < ts; t++)
      src[b * ts + t] = word(b, t, sl[b], vs, 7, 3);
    for (int64_t t = 0; t < tt; t++) {
      tgt[b * tt + t] = word(b, t, tl[b], vt, 5, 2);
      dec[b * tt + t] = t == 0 ? BOS : word(b, t - 1, tl[b], vt, 5, 2);
    }
  }
  return true;
}

static int32_t gpt_char(int64_t b, int64_t t, int64_t vocab) {
  return (int32_t)((13 * b + 7 * t + (t * t) % 5) % vocab);
}

static bool gpt_batch(kl_tensor **in, int64_t B, int64_t T, int64_t V) {
  in[0] = i32(2, B, T), in[1] = i32(2, B, T);
  if (!in[0] || !in[1]) return false;
  int32_t *x = kl_tensor_data(in[0]), *y = kl_tensor_data(in[1]);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      x[b * T + t] = gpt_char(b, t, V), y[b * T + t] = gpt_char(b, t + 1, V);
  return true;
}

/* Builds the model's training graph and its inputs; a message on failure. */
static const char *build(const bench_opts *o, kl_graph **g, int *loss, kl_tensor **in, int *nin) {
  const char *bad = NULL;
  bool ok = true;
  if (strcmp(o->model, "transformer") == 0) {
    tf_config c = TF_DATES_DEFAULTS;
    c.src_vocab = o->src_vocab, c.tgt_vocab = o->tgt_vocab, c.hidden = o->hidden, c.ffn = o->ffn;
    c.heads = o->heads, c.blocks = o->layers, c.dropout = o->dropout, c.batch = o->batch;
    c.src_steps = o->src_steps, c.tgt_steps = o->tgt_steps;
    if ((bad = tf_config_check(&c))) return bad;
    tf_train t = tf_build_train(&c);
    *g = t.g, *loss = t.loss.id, *nin = 5;
    ok = translation_batch(in, c.batch, c.src_steps, c.tgt_steps, c.src_vocab, c.tgt_vocab);
  } else if (strcmp(o->model, "seq2seq-attn") == 0) {
    s2s_config c = S2S_DATES_DEFAULTS;
    c.src_vocab = o->src_vocab, c.tgt_vocab = o->tgt_vocab, c.embed = o->embed;
    c.hidden = o->hidden, c.layers = o->layers, c.dropout = o->dropout, c.batch = o->batch;
    c.src_steps = o->src_steps, c.tgt_steps = o->tgt_steps;
    if ((bad = s2s_config_check(&c))) return bad;
    s2s_train t = s2s_build_train(&c);
    *g = t.g, *loss = t.loss.id, *nin = 5;
    ok = translation_batch(in, c.batch, c.src_steps, c.tgt_steps, c.src_vocab, c.tgt_vocab);
  } else if (strcmp(o->model, "gpt") == 0) {
    gpt_config c = GPT_DATES_DEFAULTS;
    c.vocab = o->vocab, c.block = o->block, c.embed = o->embed, c.heads = o->heads;
    c.layers = o->layers, c.dropout = o->dropout, c.batch = o->batch;
    if ((bad = gpt_config_check(&c))) return bad;
    gpt_train t = gpt_build_train(&c);
    *g = t.g, *loss = t.loss.id, *nin = 2;
    ok = gpt_batch(in, c.batch, c.block, c.vocab);
  } else {
    return "--model must be transformer, seq2seq-attn or gpt";
  }
  if (!*g || !ok) return "out of memory";
  return kl_graph_error(*g);
}

static double peak_rss_mb(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0; /* KiB on Linux */
}

int main(int argc, char **argv) {
  /* Defaults: the d2l v1.0 Transformer workload of compare_torch.py. */
  bench_opts o = {
      .model = flag(argc, argv, "--model"),
      .src_vocab = int_flag(argc, argv, "--src-vocab", 194),
      .tgt_vocab = int_flag(argc, argv, "--tgt-vocab", 212),
      .vocab = int_flag(argc, argv, "--vocab", 65),
      .embed = int_flag(argc, argv, "--embed", 256),
      .hidden = int_flag(argc, argv, "--hidden", 256),
      .ffn = int_flag(argc, argv, "--ffn", 64),
      .heads = int_flag(argc, argv, "--heads", 4),
      .layers = int_flag(argc, argv, "--layers", 2),
      .batch = int_flag(argc, argv, "--batch", 128),
      .src_steps = int_flag(argc, argv, "--src-steps", 9),
      .tgt_steps = int_flag(argc, argv, "--tgt-steps", 9),
      .block = int_flag(argc, argv, "--block", 256),
      .dropout = num_flag(argc, argv, "--dropout", 0.2),
      .lr = num_flag(argc, argv, "--lr", 0.001),
      .clip = num_flag(argc, argv, "--clip", 1),
      .threads = (int)int_flag(argc, argv, "--threads", 2),
      .warmup = (int)int_flag(argc, argv, "--warmup", 5),
      .reps = (int)int_flag(argc, argv, "--reps", 20),
      .seed = (uint64_t)int_flag(argc, argv, "--seed", 1),
      .check_numerics = flag(argc, argv, "--check-numerics"),
  };
  if (!o.model) return fail("", "usage: bench_step --model transformer|seq2seq-attn|gpt [...]");
  static const char *const known[] = {
      "--model",         "--src-vocab", "--tgt-vocab", "--vocab",   "--embed",
      "--hidden",        "--ffn",       "--heads",     "--layers",  "--batch",
      "--src-steps",     "--tgt-steps", "--block",     "--dropout", "--lr",
      "--clip",          "--threads",   "--warmup",    "--reps",    "--seed",
      "--check-numerics"};
  for (int i = 1; i < argc; i += 2) {
    bool ok = false;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
      ok = ok || strcmp(argv[i], known[k]) == 0;
    if (!ok || i + 1 >= argc) {
      char msg[160];
      snprintf(msg, sizeof msg, "unknown flag or missing value: %.100s", argv[i]);
      return fail(o.model, msg);
    }
  }
  if (!o.check_numerics) o.check_numerics = "0";
  bool ab = !strcmp(o.check_numerics, "ab"), on = !strcmp(o.check_numerics, "1");
  if (!ab && !on && strcmp(o.check_numerics, "0"))
    return fail(o.model, "--check-numerics takes 0, 1 or ab");
  if (o.reps < 1 || o.warmup < 0 || o.threads < 1)
    return fail(o.model, "--reps and --threads must be at least 1, --warmup at least 0");

  kl_graph *g = NULL;
  kl_tensor *in[5] = {0};
  int loss_id = -1, nin = 0;
  const char *bad = build(&o, &g, &loss_id, in, &nin);
  if (bad) return fail(o.model, bad);

  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = o.lr, .clip_norm = o.clip};
  /* The disk cache is bypassed so compile_s is a cold compile. */
  kl_compile_opts co = {.backend = KL_BACKEND_JIT,
                        .seed = o.seed,
                        .training = true,
                        .threads = o.threads,
                        .no_cache = true,
                        .check_numerics = on};
  char *err = NULL;
  double t0 = now_s();
  kl_train_step *s = kl_compile_train_with(kl_graph_ir(g), loss_id, NULL, 0, &opt, NULL, &co, &err);
  double compile_s = now_s() - t0;
  co.check_numerics = true;
  kl_train_step *sc =
      s && ab ? kl_compile_train_with(kl_graph_ir(g), loss_id, NULL, 0, &opt, NULL, &co, &err)
              : NULL;
  kl_graph_destroy(g);
  if (!s || (ab && !sc)) {
    int rc = fail(o.model, err ? err : "compile failed");
    free(err);
    return rc;
  }

  double *ms = malloc((size_t)o.reps * 3 * sizeof *ms);
  if (!ms) return fail(o.model, "out of memory");
  double *ms_on = ms + o.reps, *ratio = ms + 2 * o.reps;
  double loss = 0, first = 0;
  for (int i = 0; i < o.warmup + o.reps; i++) {
    /* ab: the order within a pair alternates too */
    for (int k = 0; k < (ab ? 2 : 1); k++) {
      bool checked = ab && (k ^ (i & 1));
      double l = 0;
      t0 = now_s();
      const char *e = kl_train_step_run(checked ? sc : s, in, nin, &l);
      double dt = (now_s() - t0) * 1e3;
      if (e) return fail(o.model, e);
      if (!checked) loss = l;
      if (i == 0 && !checked) first = l;
      if (i >= o.warmup) (checked ? ms_on : ms)[i - o.warmup] = dt;
    }
    if (ab && i >= o.warmup) ratio[i - o.warmup] = ms_on[i - o.warmup] / ms[i - o.warmup];
  }
  double med = median(ms, o.reps);
  printf("{\"model\":\"%s\",\"median_ms\":%.3f,\"min_ms\":%.3f,\"compile_s\":%.3f,"
         "\"peak_rss_mb\":%.1f,\"threads\":%d,\"warmup\":%d,\"reps\":%d,\"first_loss\":%.6g,"
         "\"last_loss\":%.6g,\"check_numerics\":\"%s\"",
         o.model, med, ms[0], compile_s, peak_rss_mb(), o.threads, o.warmup, o.reps, first, loss,
         o.check_numerics);
  if (ab)
    printf(",\"checked_median_ms\":%.3f,\"checked_ratio_median\":%.4f", median(ms_on, o.reps),
           median(ratio, o.reps));
  printf("}\n");
  free(ms);
  kl_train_step_destroy(sc);
  for (int i = 0; i < nin; i++)
    kl_tensor_destroy(in[i]);
  kl_train_step_destroy(s);
  return 0;
}
