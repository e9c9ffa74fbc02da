/* The optimizer settings of `kiln train gpt`: nanoGPT's recipe as --set
 * keys (optim, betas, weight decay on weights of rank >= 2, warm-up, cosine
 * decay to min_lr), read once and turned into the kl_optim_opts that the
 * compiled step is built with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/kiln/cli.h"
#include "tools/kiln/train_gpt.h"

int gpt_read_number(const train_opts *o, const char *key, double lo, double hi, bool hi_open,
                    double *dst) {
  const char *v = train_get(o, key);
  char *end;
  *dst = strtod(v, &end);
  if (end == v || *end || !(*dst >= lo) || (hi_open ? !(*dst < hi) : !(*dst <= hi)))
    return cli_usage_error("train", "%s wants a number in [%g, %g%s, got '%s'", key, lo, hi,
                           hi_open ? ")" : "]", v);
  return CLI_OK;
}

static int count(const train_opts *o, const char *key, int64_t *dst) {
  const char *v = train_get(o, key);
  unsigned long long u;
  if (!cli_parse_u64(v, &u) || u > (1ull << 40))
    return cli_usage_error("train", "%s wants an integer in [0, 2^40], got '%s'", key, v);
  *dst = (int64_t)u;
  return CLI_OK;
}

static int choice(const train_opts *o, const char *key, const char *a, const char *b, bool *is_b) {
  const char *v = train_get(o, key);
  if (strcmp(v, a) && strcmp(v, b))
    return cli_usage_error("train", "%s wants %s or %s, got '%s'", key, a, b, v);
  *is_b = !strcmp(v, b);
  return CLI_OK;
}

int gpt_read_optim(const train_opts *o, gpt_settings *s) {
  gpt_optim *p = &s->optim;
  bool adamw = false, cosine = false, bias = true;
  int rc = choice(o, "optim", "adam", "adamw", &adamw);
  if (rc == CLI_OK) rc = choice(o, "decay", "none", "cosine", &cosine);
  if (rc == CLI_OK) rc = choice(o, "bias", "0", "1", &bias);
  if (rc == CLI_OK) rc = gpt_read_number(o, "beta1", 0, 1, true, &p->beta1);
  if (rc == CLI_OK) rc = gpt_read_number(o, "beta2", 0, 1, true, &p->beta2);
  if (rc == CLI_OK) rc = gpt_read_number(o, "weight_decay", 0, 1e6, false, &p->weight_decay);
  if (rc == CLI_OK) rc = gpt_read_number(o, "min_lr", 0, 1e6, false, &p->min_lr);
  if (rc == CLI_OK) rc = count(o, "warmup", &p->warmup);
  if (rc == CLI_OK) rc = count(o, "decay_iters", &p->decay_iters);
  if (rc == CLI_OK) rc = count(o, "eval_every", &s->eval_every);
  if (rc == CLI_OK) rc = count(o, "eval_iters", &s->eval_iters);
  p->adamw = adamw, p->cosine = cosine;
  s->cfg.no_bias = !bias;
  return rc;
}

int gpt_optim_opts(const train_opts *o, const gpt_settings *s, int64_t last, kl_optim_opts *out) {
  const gpt_optim *p = &s->optim;
  /* beta1 0 would mean "PyTorch's default" to kl_optim_opts: a user's 0 is
   * refused rather than silently replaced. */
  if (p->beta1 == 0 || p->beta2 == 0)
    return cli_usage_error("train", "beta1 and beta2 want a number in (0, 1), got %g and %g",
                           p->beta1, p->beta2);
  *out = (kl_optim_opts){.kind = p->adamw ? KL_OPT_ADAMW : KL_OPT_ADAM,
                         .lr = o->lr,
                         .beta1 = p->beta1,
                         .beta2 = p->beta2,
                         .weight_decay = p->weight_decay,
                         .decay_min_rank = 2, /* nanoGPT's configure_optimizers */
                         .clip_norm = s->clip};
  if (!p->cosine && p->warmup == 0) return CLI_OK;
  int64_t decay_iters = p->decay_iters ? p->decay_iters : last;
  if (!p->cosine) {
    /* Warm-up, then constant: get_lr with the floor at lr. */
    out->min_lr = o->lr;
    decay_iters = p->warmup + 1;
  } else if (p->min_lr > o->lr) {
    return cli_usage_error("train", "min_lr %g is above the learning rate %g", p->min_lr, o->lr);
  } else {
    out->min_lr = p->min_lr;
  }
  if (p->cosine && decay_iters <= p->warmup)
    return cli_usage_error("train",
                           "decay=cosine needs warmup < decay_iters, got warmup %lld and "
                           "decay_iters %lld%s",
                           (long long)p->warmup, (long long)decay_iters,
                           p->decay_iters ? "" : " (the run's last step)");
  out->schedule = KL_LR_NANOGPT;
  out->warmup = p->warmup;
  out->total_steps = decay_iters;
  return CLI_OK;
}
