/* seq2seq-attn checkpoints (tools/kiln/s2s_ckpt.c): a round trip restores
 * every parameter, the Adam state, the step, the config and both
 * vocabularies; a checkpoint of another shape is refused with every
 * mismatched tensor named and changes nothing; other models' checkpoints
 * are refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/tensor_bridge.h"
#include "driver/kiln_train.h"
#include "tests/support/cli_run.h"
#include "tools/kiln/s2s.h"

static void make_dir(void) { test_dir_make("kiln_s2s_ckpt"); }
TestSuite(s2s_ckpt, .init = make_dir, .fini = test_dir_remove, .timeout = 120);

static tm_config tiny(int64_t hidden) {
  return tm_from_s2s(&(s2s_config){.src_vocab = 7,
                                   .tgt_vocab = 6,
                                   .embed = 3,
                                   .hidden = hidden,
                                   .layers = 2,
                                   .dropout = 0,
                                   .batch = 2,
                                   .src_steps = 4,
                                   .tgt_steps = 3,
                                   .dtype = KL_F32});
}

static rt_vocab *vocab(const char *const *extra, int n) {
  const char *toks[16] = {"<unk>", "<pad>", "<bos>", "<eos>"};
  for (int i = 0; i < n; i++)
    toks[4 + i] = extra[i];
  ir_diag d = {0};
  rt_vocab *v = rt_vocab_from_tokens(toks, 4 + n, &d);
  cr_assert_not_null(v, "%s", d.msg);
  return v;
}

static s2s_meta meta(int64_t hidden) {
  s2s_meta m = {.cfg = tiny(hidden), .char_tokens = false};
  m.src = vocab((const char *[]){"a", "b c", "\xc3\xa9"}, 3);
  m.tgt = vocab((const char *[]){"x", "\"q\""}, 2);
  return m;
}

/* A training program (weights + Adam state) on the reference backend. */
static kl_train_step *train_step(const tm_config *c, uint64_t seed) {
  tm_train t = tm_build_train(c);
  cr_assert_not_null(t.g);
  cr_assert_null(kl_graph_error(t.g), "%s", kl_graph_error(t.g));
  kl_optim_opts o = {.kind = KL_OPT_ADAM, .lr = 0.01};
  kl_compile_opts co = {.backend = KL_BACKEND_REF, .seed = seed};
  char *err = NULL;
  kl_train_step *s = kl_compile_train(t.g, t.loss, NULL, 0, &o, &co, &err);
  cr_assert_not_null(s, "%s", err);
  kl_graph_destroy(t.g);
  return s;
}

static bool same_param(kl_program *a, kl_program *b, const char *name) {
  kl_tensor *x = NULL, *y = NULL;
  cr_assert_null(kl_program_get_param(a, name, &x));
  cr_assert_null(kl_program_get_param(b, name, &y), "%s", name);
  const rt_tensor *u = cg_tensor_rt(x), *v = cg_tensor_rt(y);
  bool same = ir_type_eq(&u->type, &v->type) && !memcmp(u->data, v->data, u->bytes);
  kl_tensor_destroy(x);
  kl_tensor_destroy(y);
  return same;
}

static void path_in_dir(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", test_dir, name);
}

Test(s2s_ckpt, round_trip) {
  s2s_meta m = meta(5);
  kl_train_step *a = train_step(&m.cfg, 1), *b = train_step(&m.cfg, 2);
  kl_program *pa = kl_train_step_program(a), *pb = kl_train_step_program(b);
  kl_program_set_step(pa, 42);
  /* Adam state is zero at first; make it differ so the copy is visible. */
  kl_tensor *one = kl_tensor_from(KL_TENSOR_F32, 2, (int64_t[]){6, 5}, (float[30]){[0] = 1.5f});
  cr_assert_null(kl_program_set_param(pa, "decoder.dense.weight@m", one));
  kl_tensor_destroy(one);
  cr_assert(!same_param(pa, pb, "encoder.embedding.weight"));
  char path[600];
  path_in_dir(path, sizeof path, "a.ckpt");
  ir_diag d = {0};
  cr_assert(s2s_ckpt_save(path, &m, pa, 99, 17, &d), "%s", d.msg);

  s2s_meta back;
  rt_checkpoint *ck = s2s_ckpt_open(path, &back, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  cr_expect_eq(back.cfg.hidden, 5);
  cr_expect_eq(back.cfg.layers, 2);
  cr_expect_eq(back.cfg.src_steps, 4);
  cr_expect_eq(back.cfg.tgt_vocab, 6);
  cr_expect(!back.char_tokens);
  cr_expect_eq(rt_vocab_size(back.src), 7);
  cr_expect_str_eq(rt_vocab_token(back.src, 5), "b c");
  cr_expect_str_eq(rt_vocab_token(back.src, 6), "\xc3\xa9");
  cr_expect_str_eq(rt_vocab_token(back.tgt, 5), "\"q\"");
  int64_t step = 0, pos = 0;
  uint64_t seed = 0;
  cr_expect(rt_checkpoint_meta_i64(ck, RT_CKPT_STEP, &step, &d) && step == 42);
  cr_expect(rt_checkpoint_meta_i64(ck, RT_CKPT_DATA_POS, &pos, &d) && pos == 17);
  cr_expect(rt_checkpoint_meta_u64(ck, RT_CKPT_SEED, &seed, &d) && seed == 99);

  cr_assert(s2s_ckpt_apply(ck, pb, false, &d), "%s", d.msg);
  for (int i = 0; i < kl_program_num_params(pa); i++) {
    const char *name = kl_program_param_name(pa, i);
    cr_expect(same_param(pa, pb, name), "%s differs after the round trip", name);
  }
  rt_checkpoint_destroy(ck);
  s2s_meta_free(&back);
  kl_train_step_destroy(a);
  kl_train_step_destroy(b);
  s2s_meta_free(&m);
}

Test(s2s_ckpt, wrong_shapes_are_listed_and_change_nothing) {
  s2s_meta m = meta(5);
  kl_train_step *a = train_step(&m.cfg, 1);
  tm_config other = tiny(4);
  kl_train_step *b = train_step(&other, 2), *b0 = train_step(&other, 2);
  char path[600];
  path_in_dir(path, sizeof path, "b.ckpt");
  ir_diag d = {0};
  cr_assert(s2s_ckpt_save(path, &m, kl_train_step_program(a), 0, 0, &d), "%s", d.msg);
  s2s_meta back;
  rt_checkpoint *ck = s2s_ckpt_open(path, &back, &d);
  cr_assert_not_null(ck, "%s", d.msg);
  kl_program *pb = kl_train_step_program(b);
  cr_expect(!s2s_ckpt_apply(ck, pb, false, &d));
  /* 20 weights and their Adam moments differ; the first few are named. */
  cr_expect(strstr(d.msg, "60 tensors do not match the model: "), "%s", d.msg);
  cr_expect(strstr(d.msg, "'encoder.rnn.weight_hh_l0' is f32[15,5], expected f32[12,4]"), "%s",
            d.msg);
  cr_expect(strstr(d.msg, "; and 54 more"), "%s", d.msg);
  /* The embeddings match in shape, yet nothing was copied. */
  kl_program *p0 = kl_train_step_program(b0);
  for (int i = 0; i < kl_program_num_params(pb); i++) {
    const char *name = kl_program_param_name(pb, i);
    cr_expect(same_param(pb, p0, name), "%s changed by a failed load", name);
  }
  /* Decoding programs take the weights alone. */
  s2s_decoder *dec = s2s_decoder_create(&m.cfg, &(kl_compile_opts){0}, &(char *){NULL});
  cr_assert_not_null(dec);
  for (int i = 0; i < 2; i++)
    cr_expect(s2s_ckpt_apply(ck, s2s_decoder_program(dec, i), true, &d), "%s", d.msg);
  s2s_decoder_destroy(dec);
  rt_checkpoint_destroy(ck);
  s2s_meta_free(&back);
  kl_train_step_destroy(a);
  kl_train_step_destroy(b);
  kl_train_step_destroy(b0);
  s2s_meta_free(&m);
}

Test(s2s_ckpt, other_models_and_bad_metadata_are_refused) {
  char path[600];
  path_in_dir(path, sizeof path, "nw.ckpt");
  float w = 1;
  rt_tensor t = {.type = {.dtype = IR_F32, .rank = 1, .dims = {1}}, .data = &w, .bytes = 4};
  rt_ckpt_tensor ts[] = {{"w", &t}};
  rt_ckpt_meta mt[] = {{RT_CKPT_MODEL, "nw-kernel"}};
  ir_diag d = {0};
  cr_assert(rt_checkpoint_save(path, ts, 1, mt, 1, &d), "%s", d.msg);
  s2s_meta m;
  cr_expect_null(s2s_ckpt_open(path, &m, &d));
  cr_expect(strstr(d.msg, "model 'nw-kernel', not of a translation model"), "%s", d.msg);
  rt_ckpt_meta bad[] = {{RT_CKPT_MODEL, "seq2seq-attn"}, {RT_CKPT_CONFIG, "{\"hidden\": 3}"}};
  cr_assert(rt_checkpoint_save(path, ts, 1, bad, 2, &d), "%s", d.msg);
  cr_expect_null(s2s_ckpt_open(path, &m, &d));
  cr_expect(strstr(d.msg, "not a seq2seq-attn config"), "%s", d.msg);
  /* A config that is fine but a vocabulary that is not. */
  rt_ckpt_meta badv[] = {{RT_CKPT_MODEL, "seq2seq-attn"},
                         {RT_CKPT_CONFIG,
                          "{\"embed\":2,\"hidden\":2,\"layers\":1,\"dropout\":0.0,\"batch\":1,"
                          "\"src_steps\":2,\"tgt_steps\":2,\"src_vocab\":5,\"tgt_vocab\":4,"
                          "\"tokens\":\"char\"}"},
                         {"src_vocab", "[\"<unk>\",\"<pad>\",\"<bos>\",\"<eos>\",\"<pad>\"]"},
                         {"tgt_vocab", "[\"<unk>\",\"<pad>\",\"<bos>\",\"<eos>\"]"}};
  cr_assert(rt_checkpoint_save(path, ts, 1, badv, 4, &d), "%s", d.msg);
  cr_expect_null(s2s_ckpt_open(path, &m, &d));
  cr_expect(strstr(d.msg, "'src_vocab'") && strstr(d.msg, "repeats"), "%s", d.msg);
}
