/* The training loop of `kiln train gpt`: nanoGPT's get_batch (random
 * windows of block + 1 characters) with one Adam or AdamW step per batch,
 * compiled with clipping and the learning-rate schedule into one program;
 * the progress line, per-epoch lines with the validation loss (and every
 * eval_every steps), and checkpoints at every epoch's end, every
 * --save-every steps and when SIGINT/SIGTERM stops the run. An epoch is
 * floor(n_train / (batch * block)) steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/train_internal.h"
#include "runtime/philox.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/progress.h"
#include "tools/kiln/s2s.h"
#include "tools/kiln/train_gpt.h"
#include "tools/kiln/train_signal.h"

/* Row `row` of step `step` starts at a uniform position of the training
 * text, drawn from Philox keyed by the seed, so the data of any step is
 * known without replaying earlier ones (resume) and threads do not matter. */
static int64_t window_start(uint64_t seed, uint64_t step, int64_t row, int64_t count) {
  uint32_t ctr[4] = {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)row, 0xba7c};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
  rt_philox4x32(ctr, key, out);
  return (int64_t)((((uint64_t)out[0] << 32) | out[1]) % (uint64_t)count);
}

static void fill_batch(const gpt_run *r, uint64_t seed, uint64_t step, int32_t *x, int32_t *y) {
  int64_t B = r->set.cfg.batch, T = r->set.cfg.block, count = r->text.n_train - T;
  for (int64_t b = 0; b < B; b++) {
    int64_t k = window_start(seed, step, b, r->text.line_starts ? r->text.n_line_starts : count);
    const int32_t *src = r->text.ids + (r->text.line_starts ? r->text.line_starts[k] : k);
    memcpy(x + b * T, src, (size_t)T * sizeof *x);
    memcpy(y + b * T, src + 1, (size_t)T * sizeof *y);
  }
}

static int64_t steps_per_epoch(const gpt_run *r) {
  int64_t per_epoch = r->text.n_train / (r->set.cfg.batch * r->set.cfg.block);
  return per_epoch < 1 ? 1 : per_epoch;
}

/* The step the run ends at: --steps, else --epochs whole epochs. */
static int64_t last_step(const train_opts *o, const gpt_run *r) {
  return o->max_steps ? o->max_steps : o->epochs * steps_per_epoch(r);
}

static int compile_all(const train_opts *o, gpt_run *r) {
  gpt_train tg = gpt_build_train(&r->set.cfg);
  kl_graph *lg = gpt_build_logits(&r->set.cfg);
  int rc = CLI_OK;
  if (!tg.g || !lg) rc = cli_error("train", "out of memory building the graph");
  const char *ge = rc ? NULL : kl_graph_error(tg.g) ? kl_graph_error(tg.g) : kl_graph_error(lg);
  if (ge) rc = cli_error("train", "%s", ge);
  kl_optim_opts opt;
  if (rc == CLI_OK) rc = gpt_optim_opts(o, &r->set, last_step(o, r), &opt);
  kl_compile_opts co = train_compile_opts(o, r->set.backend, true);
  char *err = NULL;
  double t0 = cli_now_ms();
  if (rc == CLI_OK && !(r->step = kl_compile_train_with(kl_graph_ir(tg.g), tg.loss.id, NULL, 0,
                                                        &opt, &o->passes, &co, &err)))
    rc = cli_error("train", "%s", err ? err : "out of memory");
  co.training = false;
  if (rc == CLI_OK && !(r->logits = kl_compile_unoptimized(kl_graph_ir(lg), &co, &err)))
    rc = cli_error("train", "sampling graph: %s", err ? err : "out of memory");
  r->compile_s = (cli_now_ms() - t0) / 1000;
  free(err);
  kl_graph_destroy(tg.g);
  kl_graph_destroy(lg);
  return rc;
}

/* Up to this many validation windows, evenly spaced over the validation
 * text, the same ones at every evaluation. */
#define VAL_WINDOWS 256

const char *gpt_val_loss(gpt_run *r, double *loss) {
  const gpt_config *c = &r->set.cfg;
  int64_t B = c->batch, T = c->block, V = c->vocab;
  int64_t count = r->text.n - r->text.n_train - T; /* window starts */
  *loss = NAN;
  if (count < 1) return NULL;
  const int32_t *val = r->text.ids + r->text.n_train;
  int64_t *at = malloc((size_t)count * sizeof *at), nat = 0;
  if (!at) return "out of memory";
  /* Dates: windows start at newlines, as in training. */
  int32_t nl =
      r->text.line_starts && r->text.n_line_starts ? r->text.ids[r->text.line_starts[0]] : -1;
  for (int64_t p = 0; p < count; p++)
    if (nl < 0 || val[p] == nl) at[nat++] = p;
  if (nat == 0) {
    free(at);
    return NULL;
  }
  int64_t want = r->set.eval_iters ? r->set.eval_iters * B : VAL_WINDOWS;
  int64_t nw = nat < want ? nat : want;
  kl_program_copy_params(r->logits, kl_train_step_program(r->step));
  int64_t dt[2] = {B, T}, dl[3] = {B, T, V};
  kl_tensor *tok = kl_tensor_create(KL_TENSOR_I32, 2, dt);
  kl_tensor *lg = kl_tensor_create(KL_TENSOR_F32, 3, dl);
  const char *err = tok && lg ? NULL : "out of memory";
  double sum = 0;
  for (int64_t w0 = 0; !err && w0 < nw; w0 += B) {
    int32_t *x = kl_tensor_data(tok);
    for (int64_t b = 0; b < B && w0 + b < nw; b++)
      memcpy(x + b * T, val + at[(w0 + b) * nat / nw], (size_t)T * sizeof *x);
    if ((err = kl_run_into(r->logits, &tok, 1, &lg, 1))) break;
    const float *l = kl_tensor_data(lg);
    for (int64_t b = 0; b < B && w0 + b < nw; b++) {
      const int32_t *y = val + at[(w0 + b) * nat / nw] + 1;
      for (int64_t t = 0; t < T; t++) {
        const float *row = l + (b * T + t) * V;
        double m = row[0], z = 0;
        for (int64_t v = 1; v < V; v++)
          m = row[v] > m ? row[v] : m;
        for (int64_t v = 0; v < V; v++)
          z += exp((double)row[v] - m);
        sum += m + log(z) - (double)row[y[t]];
      }
    }
  }
  kl_tensor_destroy(tok);
  kl_tensor_destroy(lg);
  free(at);
  if (!err) *loss = sum / (double)(nw * T);
  return err;
}

static void log_eval(gpt_run *r, int64_t step, double val) {
  if (r->nevals < GPT_MAX_EPOCH_LOG)
    r->eval_steps[r->nevals] = step, r->eval_losses[r->nevals] = val;
  r->nevals++;
}

/* The eval_every line: nanoGPT's "step N: ... val loss X" between epochs. */
static int eval_line(gpt_run *r, cli_progress *pg, int64_t step) {
  double val;
  const char *e = gpt_val_loss(r, &val);
  if (e) return cli_error("train", "validation: %s", e);
  log_eval(r, step, val);
  cli_progress_clear(pg);
  printf("step %lld  val loss %.4f\n", (long long)step, val);
  fflush(stdout);
  return CLI_OK;
}

static int save_if(const train_opts *o, gpt_run *r, cli_progress *pg, bool due) {
  ir_diag d = {0};
  if (!due) return CLI_OK;
  cli_progress_clear(pg);
  if (!gpt_ckpt_save(o->save, r, kl_train_step_program(r->step), o->seed, &d))
    return cli_error("train", "%s", d.msg);
  return CLI_OK;
}

static int train_loop(const train_opts *o, gpt_run *r) {
  kl_program *p = kl_train_step_program(r->step);
  const gpt_config *c = &r->set.cfg;
  int64_t tokens = c->batch * c->block, per_epoch = steps_per_epoch(r);
  int64_t first = (int64_t)kl_program_step(p), last = last_step(o, r);
  int64_t dims[2] = {c->batch, c->block};
  kl_tensor *in[2] = {kl_tensor_create(KL_TENSOR_I32, 2, dims),
                      kl_tensor_create(KL_TENSOR_I32, 2, dims)};
  if (!in[0] || !in[1]) {
    kl_tensor_destroy(in[0]);
    kl_tensor_destroy(in[1]);
    return cli_error("train", "out of memory");
  }
  cli_progress pg = cli_progress_start(first, last);
  double ep_loss = 0, ep_t0 = cli_now_ms();
  int64_t ep_steps = 0;
  int rc = CLI_OK;
  while (rc == CLI_OK && (int64_t)kl_program_step(p) < last) {
    uint64_t s = kl_program_step(p);
    fill_batch(r, o->seed, s, kl_tensor_data(in[0]), kl_tensor_data(in[1]));
    double loss = 0;
    const char *e = kl_train_step_run(r->step, in, 2, &loss);
    if (e) {
      rc = cli_error("train", "step %llu: %s", (unsigned long long)s, e);
      break;
    }
    if (!isfinite(loss)) {
      rc = cli_error("train", "step %llu: the loss is %g; try a lower --lr or clip",
                     (unsigned long long)s, loss);
      break;
    }
    r->steps++;
    ep_loss += loss, ep_steps++;
    pg.tokens += tokens;
    int64_t now = (int64_t)kl_program_step(p);
    cli_progress_show(&pg, now, loss);
    bool epoch_end = now % per_epoch == 0;
    int sig = train_signal_pending();
    bool eval_due = r->set.eval_every && now % r->set.eval_every == 0;
    if (!epoch_end && now < last && eval_due && (rc = eval_line(r, &pg, now)) != CLI_OK) break;
    if (!epoch_end && now < last) {
      rc = save_if(o, r, &pg, train_save_due(o, now) || (sig && o->save));
      if (rc == CLI_OK && sig) rc = train_signal_exit(sig, now, o->save);
      continue;
    }
    double secs = (cli_now_ms() - ep_t0) / 1000;
    r->final_loss = ep_loss / (double)ep_steps;
    if (r->nepochs < GPT_MAX_EPOCH_LOG) r->epoch_losses[r->nepochs] = r->final_loss;
    r->nepochs++;
    if ((e = gpt_val_loss(r, &r->val_loss))) {
      rc = cli_error("train", "validation: %s", e);
      break;
    }
    log_eval(r, now, r->val_loss);
    cli_progress_clear(&pg);
    printf("epoch %lld  steps %lld  train loss %.4f  val loss %.4f  %.0f tokens/s  %.1f s%s\n",
           (long long)((now + per_epoch - 1) / per_epoch), (long long)ep_steps, r->final_loss,
           r->val_loss, secs > 0 ? (double)(ep_steps * tokens) / secs : 0, secs,
           epoch_end ? "" : " (partial)");
    fflush(stdout);
    rc = save_if(o, r, &pg, o->save != NULL);
    if (rc == CLI_OK && sig) rc = train_signal_exit(sig, now, o->save);
    ep_loss = 0, ep_steps = 0, ep_t0 = cli_now_ms();
  }
  cli_progress_clear(&pg);
  double el = (cli_now_ms() - pg.t0) / 1000;
  r->train_s = el;
  r->tokens_per_s = el > 0 ? (double)pg.tokens / el : 0;
  kl_tensor_destroy(in[0]);
  kl_tensor_destroy(in[1]);
  return rc;
}

int gpt_train_run(const train_opts *o, gpt_run *r, const rt_checkpoint *ck) {
  const gpt_config *c = &r->set.cfg;
  r->final_loss = r->val_loss = r->exact_match = NAN;
  printf("gpt: %lld characters (%lld train, %lld validation), vocabulary %lld characters%s\n",
         (long long)r->text.n, (long long)r->text.n_train, (long long)(r->text.n - r->text.n_train),
         (long long)c->vocab, o->data ? "" : " (date lines)");
  printf("model: layers %lld, heads %lld, embed %lld, block %lld, dropout %g; batch %lld\n",
         (long long)c->layers, (long long)c->heads, (long long)c->embed, (long long)c->block,
         c->dropout, (long long)c->batch);
  fflush(stdout);
  int rc = compile_all(o, r);
  if (rc != CLI_OK) return rc;
  if (ck) {
    ir_diag d = {0};
    int64_t step;
    kl_program *p = kl_train_step_program(r->step);
    if (!s2s_ckpt_apply(ck, p, false, &d) || !rt_checkpoint_meta_i64(ck, RT_CKPT_STEP, &step, &d))
      return cli_error("train", "%s", d.msg);
    kl_program_set_step(p, (uint64_t)step);
    printf("resumed from %s at step %lld\n", rt_checkpoint_path(ck), (long long)step);
  }
  rc = train_loop(o, r);
  return rc == CLI_OK ? gpt_evaluate(o, r) : rc;
}
