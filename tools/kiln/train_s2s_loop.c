/* The training loop of `kiln train seq2seq-attn` and `transformer`: compile the step, resume
 * from a checkpoint, feed shuffled mini-batches, report progress (a live
 * line on a terminal, plain lines otherwise) and per-epoch summaries, and
 * save checkpoints at every epoch's end, every --save-every steps and when
 * SIGINT/SIGTERM stops the run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/train_internal.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/progress.h"
#include "tools/kiln/train_s2s.h"
#include "tools/kiln/train_signal.h"

/* Input tensors of the training graph, allocated once and refilled. */
typedef struct batch_in {
  kl_tensor *t[5];
  int64_t *idx;
} batch_in;

static bool batch_alloc(batch_in *b, const tm_config *c) {
  int64_t d_src[2] = {c->batch, c->src_steps}, d_tgt[2] = {c->batch, c->tgt_steps};
  b->t[0] = kl_tensor_create(KL_TENSOR_I32, 2, d_src);
  b->t[1] = kl_tensor_create(KL_TENSOR_I32, 1, &c->batch);
  b->t[2] = kl_tensor_create(KL_TENSOR_I32, 2, d_tgt);
  b->t[3] = kl_tensor_create(KL_TENSOR_I32, 2, d_tgt);
  b->t[4] = kl_tensor_create(KL_TENSOR_I32, 1, &c->batch);
  b->idx = malloc((size_t)c->batch * sizeof *b->idx);
  bool ok = b->idx != NULL;
  for (int i = 0; i < 5; i++)
    ok = ok && b->t[i];
  return ok;
}

static void batch_free(batch_in *b) {
  for (int i = 0; i < 5; i++)
    kl_tensor_destroy(b->t[i]);
  free(b->idx);
}

static int compile_step(const train_opts *o, s2s_run *r) {
  tm_train tg = tm_build_train(&r->set.meta.cfg);
  if (!tg.g) return cli_error("train", "out of memory building the graph");
  if (kl_graph_error(tg.g)) {
    int rc = cli_error("train", "%s", kl_graph_error(tg.g));
    kl_graph_destroy(tg.g);
    return rc;
  }
  kl_optim_opts opt = {.kind = KL_OPT_ADAM, .lr = o->lr, .clip_norm = r->set.clip};
  kl_compile_opts co = train_compile_opts(o, r->set.backend, true);
  char *err = NULL;
  double t0 = cli_now_ms();
  r->step =
      kl_compile_train_with(kl_graph_ir(tg.g), tg.loss.id, NULL, 0, &opt, &o->passes, &co, &err);
  r->compile_s = (cli_now_ms() - t0) / 1000;
  kl_graph_destroy(tg.g);
  if (!r->step) {
    int rc = cli_error("train", "%s", err ? err : "out of memory");
    free(err);
    return rc;
  }
  return CLI_OK;
}

/* Where the data order stands after `step` steps from the start: an epoch
 * is ceil(n / batch) steps, its last batch takes what is left, and a
 * position is epoch * n + index. false when that does not fit in 64 bits. */
static bool position_after(int64_t step, int64_t n, int64_t batch, int64_t *pos) {
  int64_t per_epoch = (n + batch - 1) / batch;
  if (step == 0) return *pos = 0, true;
  int64_t e = (step - 1) / per_epoch, in = step - e * per_epoch; /* 1..per_epoch */
  int64_t at = in * batch < n ? in * batch : n;
  return !__builtin_mul_overflow(e, n, pos) && !__builtin_add_overflow(*pos, at, pos);
}

/* Weights, optimizer state, step counter and data position from ck; the
 * position must be the one its step implies for this data and batch. */
static bool resume(const rt_checkpoint *ck, kl_program *p, rt_data_order *ord, int64_t batch,
                   ir_diag *d) {
  int64_t step, pos, want;
  const char *path = rt_checkpoint_path(ck);
  if (!rt_checkpoint_meta_i64(ck, RT_CKPT_STEP, &step, d) ||
      !rt_checkpoint_meta_i64(ck, RT_CKPT_DATA_POS, &pos, d))
    return false;
  if (!position_after(step, ord->n, batch, &want)) {
    ir_diag_set(d, "%s: metadata '%s' is %lld: out of range for %lld pairs in batches of %lld",
                path, RT_CKPT_STEP, (long long)step, (long long)ord->n, (long long)batch);
    return false;
  }
  if (pos != want) {
    ir_diag_set(d,
                "%s: metadata '%s' is %lld, but step %lld over %lld pairs in batches of %lld is "
                "at %lld",
                path, RT_CKPT_DATA_POS, (long long)pos, (long long)step, (long long)ord->n,
                (long long)batch, (long long)want);
    return false;
  }
  if (!s2s_ckpt_apply(ck, p, false, d)) return false;
  kl_program_set_step(p, (uint64_t)step);
  return rt_order_seek(ord, (rt_data_pos){pos / ord->n, pos % ord->n}, d);
}

static int save(const train_opts *o, s2s_run *r, const rt_data_order *ord) {
  ir_diag d = {0};
  int64_t pos = ord->pos.epoch * ord->n + ord->pos.index;
  if (!s2s_ckpt_save(o->save, &r->set.meta, kl_train_step_program(r->step), o->seed, pos, &d))
    return cli_error("train", "%s", d.msg);
  return CLI_OK;
}

/* The loop proper; per-epoch losses go to r->epoch_losses. */
static int train_loop(const train_opts *o, s2s_run *r, rt_data_order *ord, batch_in *b) {
  kl_program *p = kl_train_step_program(r->step);
  const tm_config *c = &r->set.meta.cfg;
  int64_t n = r->train.n, per_epoch = (n + c->batch - 1) / c->batch;
  int64_t first = (int64_t)kl_program_step(p);
  int64_t last = o->max_steps ? o->max_steps : o->epochs * per_epoch;
  cli_progress pg = cli_progress_start(first, last);
  double ep_loss = 0, ep_t0 = cli_now_ms();
  int64_t ep_tokens = 0, ep_steps = 0;
  int32_t *data[5];
  for (int i = 0; i < 5; i++)
    data[i] = kl_tensor_data(b->t[i]);
  while ((int64_t)kl_program_step(p) < last) {
    if (ord->pos.index >= n && ord->pos.epoch + 1 >= o->epochs) break;
    int64_t k = rt_order_next(ord, c->batch, false, b->idx);
    int64_t tokens =
        s2s_batch_fill(&r->train, b->idx, k, c->batch, data[0], data[1], data[2], data[3], data[4]);
    double loss = 0;
    uint64_t s = kl_program_step(p); /* the failed run counts too */
    const char *e = kl_train_step_run(r->step, b->t, 5, &loss);
    if (e) return cli_error("train", "step %llu: %s", (unsigned long long)s, e);
    if (!isfinite(loss))
      return cli_error("train", "step %llu: the loss is %g; try a lower --lr or clip",
                       (unsigned long long)kl_program_step(p), loss);
    r->steps++;
    ep_loss += loss, ep_tokens += tokens, ep_steps++;
    pg.tokens += tokens;
    cli_progress_show(&pg, (int64_t)kl_program_step(p), tokens ? loss / (double)tokens : 0);
    int64_t now = (int64_t)kl_program_step(p);
    bool epoch_end = ord->pos.index >= n, saved = false;
    if (epoch_end || now >= last) {
      double secs = (cli_now_ms() - ep_t0) / 1000;
      r->final_loss = ep_tokens ? ep_loss / (double)ep_tokens : 0;
      if (r->nepochs < S2S_MAX_EPOCH_LOG) r->epoch_losses[r->nepochs] = r->final_loss;
      r->nepochs++;
      cli_progress_clear(&pg);
      printf("epoch %lld  steps %lld  loss %.4f  %.0f tokens/s  %.1f s%s\n",
             (long long)ord->pos.epoch + 1, (long long)ep_steps, r->final_loss,
             secs > 0 ? (double)ep_tokens / secs : 0, secs, epoch_end ? "" : " (partial)");
      fflush(stdout);
      saved = o->save != NULL;
      ep_loss = 0, ep_tokens = 0, ep_steps = 0, ep_t0 = cli_now_ms();
    }
    int sig = train_signal_pending();
    if (saved || train_save_due(o, now) || (sig && o->save)) {
      cli_progress_clear(&pg);
      int rc = save(o, r, ord);
      if (rc != CLI_OK) return rc;
    }
    if (sig) {
      cli_progress_clear(&pg);
      return train_signal_exit(sig, now, o->save);
    }
  }
  cli_progress_clear(&pg);
  double el = (cli_now_ms() - pg.t0) / 1000;
  r->train_s = el;
  r->tokens_per_s = el > 0 ? (double)pg.tokens / el : 0;
  return CLI_OK;
}

int s2s_train_run(const train_opts *o, s2s_run *r, const rt_checkpoint *ck) {
  const tm_config *c = &r->set.meta.cfg;
  printf("%s: %lld training pairs, %lld held out; vocabularies %lld -> %lld %s tokens\n",
         tm_arch_name(c->arch), (long long)r->train.n, (long long)r->test.n,
         (long long)c->src_vocab, (long long)c->tgt_vocab,
         r->set.meta.char_tokens ? "char" : "word");
  if (c->arch == TM_TRANSFORMER)
    printf("model: hidden %lld, blocks %lld, heads %lld, ffn %lld, %s-LN%s, dropout %g; ",
           (long long)c->hidden, (long long)c->layers, (long long)c->heads, (long long)c->ffn,
           c->pre_ln ? "pre" : "post", c->tie_output ? ", tied output" : "", c->dropout);
  else
    printf("model: embed %lld, hidden %lld, layers %lld, dropout %g; ", (long long)c->embed,
           (long long)c->hidden, (long long)c->layers, c->dropout);
  printf("batch %lld, steps %lld -> %lld\n", (long long)c->batch, (long long)c->src_steps,
         (long long)c->tgt_steps);
  fflush(stdout);
  int rc = compile_step(o, r);
  if (rc != CLI_OK) return rc;
  ir_diag d = {0};
  rt_data_order ord = {0};
  batch_in b = {0};
  if (!rt_order_init(&ord, r->train.n, o->seed, true, &d) || !batch_alloc(&b, c)) {
    rc = cli_error("train", "%s", d.msg[0] ? d.msg : "out of memory");
  } else if (ck && !resume(ck, kl_train_step_program(r->step), &ord, c->batch, &d)) {
    rc = cli_error("train", "%s", d.msg);
  } else {
    if (ck)
      printf("resumed from %s at step %llu\n", rt_checkpoint_path(ck),
             (unsigned long long)kl_program_step(kl_train_step_program(r->step)));
    rc = train_loop(o, r, &ord, &b);
  }
  batch_free(&b);
  rt_order_free(&ord);
  return rc == CLI_OK ? s2s_evaluate(o, r) : rc;
}
