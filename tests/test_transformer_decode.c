/* Incremental decoding of the transformer (tf_build_memory + tf_build_step
 * over a key/value cache) against the full-prefix decoder (tf_build_encoder
 * + tf_build_decoder) with the same random weights, on both backends, post-
 * and pre-LN, tied and untied output: every position's log-probabilities
 * and cross-attention, caches holding NaN after pos, rows at different
 * positions, and configs the builders must refuse. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backend/kiln_run.h"
#include "frontend/graph_ir.h"
#include "ir/ir.h"
#include "models/transformer.h"
#include "tests/support/model_golden.h"

#define B 3
#define TS 5
#define TT 6
#define NKV 4 /* 2 * blocks */

static tf_config small(bool pre_ln, bool tie, kl_backend be) {
  return (tf_config){.src_vocab = 11,
                     .tgt_vocab = 10,
                     .hidden = 8,
                     .ffn = 16,
                     .heads = 2,
                     .blocks = NKV / 2,
                     .dropout = 0.1, /* inactive: programs compile for inference */
                     .batch = B,
                     .src_steps = TS,
                     .tgt_steps = TT,
                     .pre_ln = pre_ln,
                     .tie_output = tie,
                     .dtype = be == KL_BACKEND_REF ? KL_F64 : KL_F32};
}

/* Row 0 uses the whole source, row 2 one token of it. */
static const int32_t SRC[B][TS] = {{3, 7, 1, 9, 2}, {4, 10, 5, 0, 0}, {6, 0, 0, 0, 0}};
static const int32_t SRC_LEN[B] = {5, 3, 1};
static const int32_t DEC_IN[B][TT] = {{1, 4, 2, 8, 3, 5}, {1, 9, 9, 0, 6, 2}, {1, 3, 7, 7, 4, 0}};

static bool is_f64(const tf_config *c) { return c->dtype == KL_F64; }

static double get(const tf_config *c, kl_tensor *t, int64_t i) {
  return is_f64(c) ? ((double *)kl_tensor_data(t))[i] : ((float *)kl_tensor_data(t))[i];
}

static void set(const tf_config *c, kl_tensor *t, int64_t i, double v) {
  if (is_f64(c))
    ((double *)kl_tensor_data(t))[i] = v;
  else
    ((float *)kl_tensor_data(t))[i] = (float)v;
}

static kl_tensor *float_tensor(const tf_config *c, int rank, const int64_t *dims, double fill) {
  kl_tensor *t = kl_tensor_create(is_f64(c) ? KL_TENSOR_F64 : KL_TENSOR_F32, rank, dims);
  cr_assert_not_null(t);
  for (int64_t i = 0; i < kl_tensor_numel(t); i++)
    set(c, t, i, fill);
  return t;
}

static kl_tensor *i32_tensor(int rank, const int64_t *dims, const int32_t *data) {
  kl_tensor *t = kl_tensor_from(KL_TENSOR_I32, rank, dims, data);
  cr_assert_not_null(t);
  return t;
}

static kl_tensor *copy_tensor(const tf_config *c, kl_tensor *t) {
  int64_t dims[KL_MAX_RANK];
  for (int i = 0; i < kl_tensor_rank(t); i++)
    dims[i] = kl_tensor_dim(t, i);
  kl_tensor *r = float_tensor(c, kl_tensor_rank(t), dims, 0);
  memcpy(kl_tensor_data(r), kl_tensor_data(t),
         (size_t)kl_tensor_numel(t) * (is_f64(c) ? sizeof(double) : sizeof(float)));
  return r;
}

static double urand(uint64_t *s) { /* splitmix64 -> [0, 1) */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

static kl_program *compile_graph(kl_graph *g, kl_backend be) {
  cr_assert_not_null(g);
  cr_assert_null(kl_graph_error(g), "%s", kl_graph_error(g));
  kl_program *p = mg_compile(kl_graph_ir(g), be);
  kl_graph_destroy(g);
  return p;
}

/* The four decoding programs, their weights those of one training program
 * set to random values (LayerNorm gains and biases too, so that the norms
 * are exercised, not the identity they start as). */
typedef struct progs {
  tf_config c;
  kl_backend be;
  kl_program *enc, *dec, *mem, *step;
} progs;

static void setup(progs *p, bool pre_ln, bool tie, kl_backend be) {
  p->c = small(pre_ln, tie, be);
  p->be = be;
  tf_train t = tf_build_train(&p->c);
  kl_program *src = compile_graph(t.g, KL_BACKEND_REF);
  uint64_t rng = 11 + 2 * pre_ln + tie;
  int n = kl_program_num_params(src);
  for (int i = 0; i < n; i++) {
    const char *name = kl_program_param_name(src, i);
    kl_tensor *w = NULL;
    const char *msg = kl_program_get_param(src, name, &w);
    cr_assert_null(msg, "%s", msg);
    bool gain = strstr(name, "ln.weight") != NULL;
    for (int64_t k = 0; k < kl_tensor_numel(w); k++)
      set(&p->c, w, k, gain ? 0.5 + urand(&rng) : urand(&rng) - 0.5);
    msg = kl_program_set_param(src, name, w);
    cr_assert_null(msg, "%s", msg);
    kl_tensor_destroy(w);
  }
  p->enc = compile_graph(tf_build_encoder(&p->c), be);
  p->dec = compile_graph(tf_build_decoder(&p->c), be);
  p->mem = compile_graph(tf_build_memory(&p->c), be);
  p->step = compile_graph(tf_build_step(&p->c), be);
  int ne = kl_program_copy_params(p->enc, src), nd = kl_program_copy_params(p->dec, src);
  int nm = kl_program_copy_params(p->mem, src), ns = kl_program_copy_params(p->step, src);
  cr_assert_eq(ne + nd, n);
  cr_assert_eq(ne, kl_program_num_params(p->enc));
  cr_assert_eq(nd, kl_program_num_params(p->dec));
  /* Every weight of the decoding graphs is one of the model's, and they
   * hold only what they read: the memory graph the encoder and the
   * cross-attention keys/values, the step graph the rest of the decoder. */
  cr_expect_eq(nm, kl_program_num_params(p->mem));
  cr_expect_eq(ns, kl_program_num_params(p->step));
  cr_expect_eq(nm, ne + NKV, "memory graph: %d parameters", nm);
  cr_expect_eq(ns, nd - NKV, "step graph: %d parameters", ns);
  kl_program_destroy(src);
}

static void teardown(progs *p) {
  kl_program_destroy(p->enc);
  kl_program_destroy(p->dec);
  kl_program_destroy(p->mem);
  kl_program_destroy(p->step);
}

/* What the full decoder and the memory graph give for SRC / DEC_IN. */
typedef struct reference {
  kl_tensor *logp; /* [B, TT, V] */
  kl_tensor *attn; /* [B, heads, TT, TS] */
  kl_tensor *mem[NKV];
  kl_tensor *in[2]; /* src, src_len */
} reference;

static void reference_run(progs *p, reference *r) {
  int64_t ds[2] = {B, TS}, db = B, dt[2] = {B, TT};
  r->in[0] = i32_tensor(2, ds, &SRC[0][0]);
  r->in[1] = i32_tensor(1, &db, SRC_LEN);
  kl_tensor *enc = NULL, *dec_in = i32_tensor(2, dt, &DEC_IN[0][0]);
  const char *msg = kl_run(p->enc, r->in, 2, &enc, 1);
  cr_assert_null(msg, "%s", msg);
  kl_tensor *din[3] = {dec_in, enc, r->in[1]}, *dout[2] = {NULL, NULL};
  msg = kl_run(p->dec, din, 3, dout, 2);
  cr_assert_null(msg, "%s", msg);
  r->logp = dout[0];
  r->attn = dout[1];
  msg = kl_run(p->mem, r->in, 2, r->mem, NKV);
  cr_assert_null(msg, "%s", msg);
  for (int i = 0; i < NKV; i++) {
    cr_assert_eq(kl_tensor_rank(r->mem[i]), 3);
    cr_assert_eq(kl_tensor_numel(r->mem[i]), B * TS * p->c.hidden);
  }
  kl_tensor_destroy(enc);
  kl_tensor_destroy(dec_in);
}

static void reference_free(reference *r) {
  kl_tensor_destroy(r->logp);
  kl_tensor_destroy(r->attn);
  for (int i = 0; i < NKV; i++)
    kl_tensor_destroy(r->mem[i]);
  kl_tensor_destroy(r->in[0]);
  kl_tensor_destroy(r->in[1]);
}

static double tolerance(const tf_config *c, double want) {
  return is_f64(c) ? 1e-10 * (1 + fabs(want)) : 1e-5 * (1 + fabs(want));
}

/* Runs one step with row r at position pos[r] (token DEC_IN[r][pos[r]])
 * and expects row r's logp and attn to be the full decoder's at pos[r].
 * cache[] is consumed: replaced by the step's updated caches. Returns the
 * largest error seen. */
static double step_and_check(progs *p, const reference *ref, kl_tensor *cache[NKV],
                             const int32_t pos[B], const char *what) {
  const tf_config *c = &p->c;
  int64_t db = B, v = c->tgt_vocab, h = c->heads;
  int32_t tok[B];
  for (int r = 0; r < B; r++)
    tok[r] = DEC_IN[r][pos[r]];
  kl_tensor *in[3 + 2 * NKV], *out[2 + NKV] = {0};
  int k = 0;
  in[k++] = i32_tensor(1, &db, tok);
  for (int i = 0; i < NKV; i++)
    in[k++] = cache[i];
  for (int i = 0; i < NKV; i++)
    in[k++] = ref->mem[i];
  in[k++] = ref->in[1];
  in[k++] = i32_tensor(1, &db, pos);
  cr_assert_eq(k, 3 + 2 * NKV);
  const char *msg = kl_run(p->step, in, k, out, 2 + NKV);
  cr_assert_null(msg, "%s: %s", what, msg);
  cr_assert_eq(kl_tensor_numel(out[0]), B * v);
  cr_assert_eq(kl_tensor_numel(out[1 + NKV]), B * h * TS);
  double worst = 0;
  int bad = 0;
  for (int r = 0; r < B; r++) {
    for (int64_t j = 0; j < v; j++) {
      double got = get(c, out[0], r * v + j), want = get(c, ref->logp, (r * TT + pos[r]) * v + j);
      worst = fmax(worst, fabs(got - want));
      if (!(fabs(got - want) <= tolerance(c, want)) && bad++ < 5)
        cr_expect_fail("%s: row %d pos %d logp[%lld]: step %.15g, full decoder %.15g", what, r,
                       pos[r], (long long)j, got, want);
    }
    for (int64_t hd = 0; hd < h; hd++)
      for (int64_t s = 0; s < TS; s++) {
        double got = get(c, out[1 + NKV], (r * h + hd) * TS + s);
        double want = get(c, ref->attn, ((r * h + hd) * TT + pos[r]) * TS + s);
        worst = fmax(worst, fabs(got - want));
        if (!(fabs(got - want) <= tolerance(c, want)) && bad++ < 5)
          cr_expect_fail("%s: row %d pos %d attn[head %lld, key %lld]: step %.15g, full %.15g",
                         what, r, pos[r], (long long)hd, (long long)s, got, want);
        if (s >= SRC_LEN[r]) cr_expect_eq(got, 0.0, "%s: attention on source padding", what);
      }
  }
  /* The updated caches copy every position but pos bit for bit (NaN too). */
  int64_t d = c->hidden;
  for (int i = 0; i < NKV; i++) {
    int64_t diff = 0, fresh = 0;
    for (int r = 0; r < B; r++)
      for (int64_t t = 0; t < TT; t++)
        for (int64_t e = 0; e < d; e++) {
          int64_t idx = (r * TT + t) * d + e;
          double a = get(c, out[1 + i], idx), b = get(c, cache[i], idx);
          if (t != pos[r])
            diff += !(a == b || (isnan(a) && isnan(b)));
          else
            fresh += !isfinite(a);
        }
    cr_expect_eq(diff, 0, "%s: cache %d changed at %lld positions other than pos", what, i,
                 (long long)diff);
    cr_expect_eq(fresh, 0, "%s: cache %d has non-finite new entries", what, i);
  }
  cr_expect_eq(bad, 0, "%s: %d mismatches", what, bad);
  for (int i = 0; i < NKV; i++) {
    kl_tensor_destroy(cache[i]);
    cache[i] = out[1 + i];
  }
  kl_tensor_destroy(out[0]);
  kl_tensor_destroy(out[1 + NKV]);
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[k - 1]);
  return worst;
}

/* Greedy-style decoding in lockstep (every row at pos = 0..TT-1, caches fed
 * back), from caches filled with `fill`, then rows at different positions:
 * row r continues from the cache state the lockstep run had before its
 * position PER_ROW[r]. */
static void decode_matches(bool pre_ln, bool tie, kl_backend be) {
  progs p;
  setup(&p, pre_ln, tie, be);
  reference ref;
  reference_run(&p, &ref);
  const tf_config *c = &p.c;
  int64_t dc[3] = {B, TT, c->hidden};
  static const int32_t PER_ROW[B] = {4, 0, 2};
  for (int nan_fill = 0; nan_fill < 2; nan_fill++) {
    double fill = nan_fill ? NAN : 0;
    kl_tensor *cache[NKV], *saved[TT][NKV];
    for (int i = 0; i < NKV; i++)
      cache[i] = float_tensor(c, 3, dc, fill);
    double worst = 0;
    for (int t = 0; t < TT; t++) {
      for (int i = 0; i < NKV; i++)
        saved[t][i] = copy_tensor(c, cache[i]);
      int32_t pos[B] = {t, t, t};
      char what[64];
      snprintf(what, sizeof what, "lockstep %s pos %d", nan_fill ? "NaN" : "zero", t);
      worst = fmax(worst, step_and_check(&p, &ref, cache, pos, what));
    }
    /* Mixed positions: row r of the caches from saved[PER_ROW[r]]. */
    kl_tensor *mixed[NKV];
    int64_t row = TT * c->hidden;
    for (int i = 0; i < NKV; i++) {
      mixed[i] = float_tensor(c, 3, dc, 0);
      for (int r = 0; r < B; r++)
        for (int64_t e = 0; e < row; e++)
          set(c, mixed[i], r * row + e, get(c, saved[PER_ROW[r]][i], r * row + e));
    }
    worst = fmax(worst, step_and_check(&p, &ref, mixed, PER_ROW, "per-row positions"));
    cr_log_info("decode %s%s %s, caches %s: worst |step - full decoder| %.2g",
                pre_ln ? "pre-LN" : "post-LN", tie ? " tied" : "", mg_backend_name(be),
                nan_fill ? "NaN" : "zero", worst);
    for (int i = 0; i < NKV; i++) {
      kl_tensor_destroy(cache[i]);
      kl_tensor_destroy(mixed[i]);
      for (int t = 0; t < TT; t++)
        kl_tensor_destroy(saved[t][i]);
    }
  }
  reference_free(&ref);
  teardown(&p);
}

Test(transformer_decode, post_ln_ref) { decode_matches(false, false, KL_BACKEND_REF); }
Test(transformer_decode, post_ln_tied_ref) { decode_matches(false, true, KL_BACKEND_REF); }
Test(transformer_decode, pre_ln_ref) { decode_matches(true, false, KL_BACKEND_REF); }
Test(transformer_decode, pre_ln_tied_ref) { decode_matches(true, true, KL_BACKEND_REF); }
Test(transformer_decode, post_ln_jit) { decode_matches(false, false, KL_BACKEND_JIT); }
Test(transformer_decode, post_ln_tied_jit) { decode_matches(false, true, KL_BACKEND_JIT); }
Test(transformer_decode, pre_ln_jit) { decode_matches(true, false, KL_BACKEND_JIT); }
Test(transformer_decode, pre_ln_tied_jit) { decode_matches(true, true, KL_BACKEND_JIT); }

/* The graphs' interfaces as documented in models/transformer.h. */
Test(transformer_decode, graph_interfaces) {
  tf_config c = small(false, false, KL_BACKEND_REF);
  kl_graph *m = tf_build_memory(&c), *s = tf_build_step(&c);
  cr_assert(m && s);
  cr_assert_null(kl_graph_error(m), "%s", kl_graph_error(m));
  cr_assert_null(kl_graph_error(s), "%s", kl_graph_error(s));
  const ir_graph *mi = kl_graph_ir(m), *si = kl_graph_ir(s);
  cr_expect_eq(ir_graph_args(mi, NULL), 2);
  cr_expect_eq(mi->nrets, NKV);
  for (int i = 0; i < mi->nrets; i++) {
    const ir_type *t = &mi->nodes[mi->rets[i]]->type;
    cr_expect(t->rank == 3 && t->dims[0] == B && t->dims[1] == TS && t->dims[2] == c.hidden);
  }
  cr_expect_eq(ir_graph_args(si, NULL), 3 + 2 * NKV);
  cr_expect_eq(si->nrets, 2 + NKV);
  const ir_type *lp = &si->nodes[si->rets[0]]->type, *at = &si->nodes[si->rets[1 + NKV]]->type;
  cr_expect(lp->rank == 2 && lp->dims[0] == B && lp->dims[1] == c.tgt_vocab);
  cr_expect(at->rank == 3 && at->dims[0] == B && at->dims[1] == c.heads && at->dims[2] == TS);
  for (int i = 1; i <= NKV; i++) {
    const ir_type *t = &si->nodes[si->rets[i]]->type;
    cr_expect(t->rank == 3 && t->dims[0] == B && t->dims[1] == TT && t->dims[2] == c.hidden);
  }
  kl_graph_destroy(m);
  kl_graph_destroy(s);
}

Test(transformer_decode, bad_configs_build_nothing) {
  tf_config ok = small(false, false, KL_BACKEND_REF);
  tf_config bad[6];
  for (int i = 0; i < 6; i++)
    bad[i] = ok;
  bad[0].hidden = 7;
  bad[1].heads = 3;
  bad[2].blocks = 0;
  bad[3].tgt_steps = 0;
  bad[4].dtype = KL_I32;
  bad[5].blocks = 33;
  for (int i = 0; i < 6; i++) {
    cr_expect_not_null(tf_config_check(&bad[i]));
    cr_expect_null(tf_build_memory(&bad[i]), "memory graph built for bad config %d", i);
    cr_expect_null(tf_build_step(&bad[i]), "step graph built for bad config %d", i);
  }
  cr_expect_null(tf_build_memory(NULL));
  cr_expect_null(tf_build_step(NULL));
}

/* A position outside the cache is a run error naming the gather, not a read
 * past the positional encoding's table. */
static void bad_pos_fails(kl_backend be) {
  tf_config c = small(true, false, be);
  kl_program *p = compile_graph(tf_build_step(&c), be);
  int64_t db = B, dc[3] = {B, TT, c.hidden}, dm[3] = {B, TS, c.hidden};
  static const int32_t tok[B] = {1, 2, 3}, pos[B] = {0, TT, 1};
  kl_tensor *in[3 + 2 * NKV], *out[2 + NKV] = {0};
  int k = 0;
  in[k++] = i32_tensor(1, &db, tok);
  for (int i = 0; i < NKV; i++)
    in[k++] = float_tensor(&c, 3, dc, 0);
  for (int i = 0; i < NKV; i++)
    in[k++] = float_tensor(&c, 3, dm, 0);
  in[k++] = i32_tensor(1, &db, SRC_LEN);
  in[k++] = i32_tensor(1, &db, pos);
  const char *msg = kl_run(p, in, k, out, 2 + NKV);
  cr_expect_not_null(msg, "pos %d accepted (%s)", TT, mg_backend_name(be));
  if (msg) cr_expect(strstr(msg, "gather") != NULL, "message: %s", msg);
  for (int i = 0; i < 2 + NKV; i++)
    kl_tensor_destroy(out[i]);
  for (int i = 0; i < k; i++)
    kl_tensor_destroy(in[i]);
  kl_program_destroy(p);
}

Test(transformer_decode, pos_out_of_range_ref) { bad_pos_fails(KL_BACKEND_REF); }
Test(transformer_decode, pos_out_of_range_jit) { bad_pos_fails(KL_BACKEND_JIT); }
