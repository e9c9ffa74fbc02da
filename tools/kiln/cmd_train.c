/* `kiln train MODEL`: parses DESIGN.md's train options, checks them against
 * the model registry (unknown models, keys and flags are usage errors,
 * planned models say they are not built), and hands over to the model's
 * trainer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/kiln/cli.h"
#include "driver/kiln_train.h"
#include "driver/train_internal.h"
#include "tools/kiln/mem_flag.h"
#include "tools/kiln/out_path.h"
#include "tools/kiln/pass_flags.h"
#include "tools/kiln/train.h"
#include "tools/kiln/train_signal.h"

static const char usage[] =
    "usage: kiln train MODEL [--epochs N | --steps N] [--lr F] [--set KEY=VALUE[,KEY=VALUE...]]\n"
    "                  [--seed N] [--threads N] [--max-memory B] [--json]\n"
    "                  [--data PATH] [--batch N] [--save CKPT] [--save-every N] [--load CKPT]\n"
    "                  [--check-numerics] [pipeline flags]\n"
    "\n"
    "Trains a shipped model ('kiln models' lists them) on its built-in dataset.\n"
    "  --epochs N   passes over the data (default: the model's)\n"
    "  --steps N    stop after N optimizer steps (full-batch models: one per epoch)\n"
    "  --lr F       learning rate (default: the model's)\n"
    "  --set K=V    model settings; 'kiln models --describe MODEL' lists them\n"
    "  --seed N     seed for the data, initialisation and dropout (default 0)\n"
    "  --threads N  threads for kernels and OpenBLAS (default: all cores)\n"
    "  --json       make the last line of stdout one JSON object with the results\n"
    "  --check-numerics  stop at the first node of the training step whose result\n"
    "               holds a NaN or inf, naming it and the step; nothing is saved\n"
    "  --data, --batch, --save, --load: for the models that support them\n"
    "                (nw-kernel uses none of them and refuses them)\n"
    "  --save CKPT  write a checkpoint (atomically) at each epoch's end and at the last step\n"
    "  --save-every N  also write it every N steps (needs --save)\n"
    "  --load CKPT  resume that run: its settings hold; a --set that disagrees is an error\n"
    "                (free to change: --epochs, --steps, --lr, --threads and the keys that\n"
    "                only shape the report: samples, heatmap, plot, backend, n_test,\n"
    "                length, prompt, temperature, top_k, eval_every, eval_iters)\n"
    "SIGINT or SIGTERM ends the run after the current step, saving first with --save;\n"
    "the exit status is then 130 or 143.\n";

typedef int (*trainer_fn)(const train_opts *o);
static const struct {
  const char *model;
  trainer_fn fn;
} trainers[] = {{"nw-kernel", train_nw_kernel},
                {"seq2seq-attn", train_translation},
                {"transformer", train_translation},
                {"gpt", train_gpt}};

const char *train_given(const train_opts *o, const char *key) {
  for (int i = o->nset - 1; i >= 0; i--)
    if (!strcmp(o->set[i].key, key)) return o->set[i].value;
  return NULL;
}

kl_compile_opts train_compile_opts(const train_opts *o, kl_backend backend, bool step) {
  return (kl_compile_opts){.backend = backend,
                           .seed = o->seed,
                           .training = step,
                           .threads = o->threads,
                           .max_memory = o->max_memory,
                           .check_numerics = step && o->check_numerics};
}

const char *train_get(const train_opts *o, const char *key) {
  const char *v = train_given(o, key);
  const kl_model_key *k = v ? NULL : kl_model_key_find(o->model, key);
  return v ? v : k ? k->dflt : NULL;
}

bool train_save_due(const train_opts *o, int64_t step) {
  return o->save && o->save_every > 0 && step > 0 && step % o->save_every == 0;
}

static void free_opts(train_opts *o) {
  for (int i = 0; i < o->nset; i++) {
    free(o->set[i].key);
    free(o->set[i].value);
  }
  o->nset = 0;
  free(o->settings_json);
  o->settings_json = NULL;
}

int train_parse_set(train_opts *o, const char *text) {
  const char *s = text;
  while (*s) {
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    const char *eq = memchr(s, '=', n);
    if (!eq || eq == s)
      return cli_usage_error("train", "--set wants KEY=VALUE[,KEY=VALUE...], got '%s'", text);
    if (o->nset == TRAIN_MAX_SET)
      return cli_usage_error("train", "more than %d --set values", TRAIN_MAX_SET);
    o->set[o->nset].key = strndup(s, (size_t)(eq - s));
    o->set[o->nset].value = strndup(eq + 1, n - (size_t)(eq - s) - 1);
    if (!o->set[o->nset].key || !o->set[o->nset].value) {
      free(o->set[o->nset].key);
      free(o->set[o->nset].value);
      return cli_error("train", "out of memory");
    }
    o->nset++;
    s += n;
    if (*s == ',') s++;
  }
  return CLI_OK;
}

typedef struct raw_flags {
  const char *model, *data, *batch, *save, *load, *save_every;
  bool epochs, steps;
} raw_flags;

static int parse_u64_flag(const char *name, const char *v, unsigned long long lo,
                          unsigned long long hi, unsigned long long *out) {
  if (!cli_parse_u64(v, out) || *out < lo || *out > hi)
    return cli_usage_error("train", "--%s wants an integer in [%llu, %llu], got '%s'", name, lo, hi,
                           v);
  return CLI_OK;
}

static int parse_args(int argc, char **argv, train_opts *o, raw_flags *f) {
  cli_args a = {.cmd = "train", .argc = argc, .argv = argv};
  const char *name, *val;
  int k;
  unsigned long long u;
  while ((k = cli_next(&a, &name, &val))) {
    if (k == 2) {
      if (f->model) return cli_usage_error("train", "more than one model ('%s')", val);
      f->model = val;
      continue;
    }
    if (!strcmp(name, "help")) {
      fputs(usage, stdout);
      fputs(cli_max_memory_usage, stdout);
      fputs("Pipeline flags (they apply to the training step's compile):\n", stdout);
      fputs(cli_pass_flags_usage, stdout);
      return -1;
    }
    if (!strcmp(name, "max-memory")) {
      int rc = cli_max_memory_opt(&a, name, val, &o->max_memory);
      if (rc) return rc;
      continue;
    }
    int prc = cli_pass_flag(&a, name, val, &o->passes);
    if (prc != CLI_PASS_OTHER) {
      if (prc) return prc;
      continue;
    }
    if (!strcmp(name, "json")) {
      if (val) return cli_usage_error("train", "--json takes no value");
      o->json = true;
      continue;
    }
    if (!strcmp(name, "check-numerics")) {
      if (val) return cli_usage_error("train", "--check-numerics takes no value");
      o->check_numerics = true;
      continue;
    }
    const char *v = NULL;
    static const char *const valued[] = {"epochs", "steps", "lr",   "set",  "seed",       "threads",
                                         "data",   "batch", "save", "load", "save-every", NULL};
    bool known = false;
    for (int i = 0; valued[i]; i++)
      known |= !strcmp(name, valued[i]);
    if (!known) return cli_usage_error("train", "unknown option '--%s'", name);
    if (!(v = cli_value(&a, name, val))) return CLI_USAGE;
    int rc = CLI_OK;
    if (!strcmp(name, "epochs") || !strcmp(name, "steps")) {
      rc = parse_u64_flag(name, v, 1, 1000000, &u);
      o->epochs = (int64_t)u;
      *(!strcmp(name, "epochs") ? &f->epochs : &f->steps) = true;
    } else if (!strcmp(name, "lr")) {
      char *end;
      o->lr = strtod(v, &end);
      if (end == v || *end || !isfinite(o->lr) || o->lr < 0)
        rc = cli_usage_error("train", "--lr wants a finite number >= 0, got '%s'", v);
      o->lr_given = true;
    } else if (!strcmp(name, "set")) {
      rc = train_parse_set(o, v);
    } else if (!strcmp(name, "seed")) {
      if (!cli_parse_u64(v, &u)) rc = cli_usage_error("train", "--seed wants an integer >= 0");
      o->seed = u;
    } else if (!strcmp(name, "threads")) {
      rc = parse_u64_flag(name, v, 1, 1024, &u);
      o->threads = (int)u;
    } else if (!strcmp(name, "data")) {
      f->data = v;
    } else if (!strcmp(name, "batch")) {
      f->batch = v;
    } else if (!strcmp(name, "save")) {
      f->save = v;
    } else if (!strcmp(name, "save-every")) {
      f->save_every = v;
    } else {
      f->load = v;
    }
    if (rc != CLI_OK) return rc;
  }
  return CLI_OK;
}

/* What the registry says the model accepts. */
static int check_model_flags(const train_opts *o, const raw_flags *f) {
  const kl_model_info *m = o->model;
  if (f->epochs && f->steps) return cli_usage_error("train", "give --epochs or --steps, not both");
  if (f->data && !m->takes_data)
    return cli_usage_error("train", "%s does not take --data: it trains on its built-in dataset",
                           m->name);
  if (f->batch && m->full_batch)
    return cli_usage_error("train", "%s trains full-batch: --batch does not apply", m->name);
  if ((f->save || f->load || f->save_every) && !m->takes_checkpoints)
    return cli_usage_error("train", "%s does not support checkpoints (--save/--load) yet", m->name);
  if (f->save_every && !f->save)
    return cli_usage_error("train", "--save-every needs --save CKPT (where to write)");
  for (int i = 0; i < o->nset; i++)
    if (!kl_model_key_find(m, o->set[i].key))
      return cli_usage_error("train", "%s has no setting '%s' (see 'kiln models --describe %s')",
                             m->name, o->set[i].key, m->name);
  return CLI_OK;
}

int cmd_train(int argc, char **argv) {
  train_opts o = {0};
  o.passes = kl_default_pass_opts();
  raw_flags f = {0};
  o.epochs = -1;
  o.lr = -1;
  int rc = parse_args(argc, argv, &o, &f);
  if (rc == CLI_OK && !f.model) rc = cli_usage_error("train", "which model? ('kiln models')");
  if (rc == CLI_OK && !(o.model = kl_model_find(f.model)))
    rc = cli_usage_error("train", "unknown model '%s' ('kiln models' lists them)", f.model);
  if (rc == CLI_OK && !o.model->shipped)
    rc = cli_error("train", "not available yet: model '%s' is planned but not built", f.model);
  if (rc == CLI_OK) rc = check_model_flags(&o, &f);
  if (rc == CLI_OK && f.batch) {
    unsigned long long u;
    rc = parse_u64_flag("batch", f.batch, 1, 65536, &u);
    o.batch = (int64_t)u;
  }
  if (rc == CLI_OK && f.save_every) {
    unsigned long long u;
    rc = parse_u64_flag("save-every", f.save_every, 1, 1000000000, &u);
    o.save_every = (int64_t)u;
  }
  /* Before any work: a checkpoint that cannot be written would cost the
   * whole run. */
  if (rc == CLI_OK && f.save) rc = cli_check_output("train", "--save", f.save);
  o.load = f.load;
  if (rc == CLI_OK && f.load) rc = train_settings_resume(&o);
  if (rc == CLI_OK && o.model->takes_checkpoints && !(o.settings_json = train_settings_json(&o)))
    rc = cli_error("train", "out of memory");
  if (rc == CLI_OK) {
    o.data = f.data;
    o.save = f.save;
    o.load = f.load;
    if (f.steps && !o.model->full_batch) o.max_steps = o.epochs;
    if (o.epochs < 0) o.epochs = o.model->epochs;
    if (o.lr < 0) o.lr = o.model->lr;
    trainer_fn fn = NULL;
    for (size_t i = 0; i < sizeof trainers / sizeof trainers[0]; i++)
      if (!strcmp(trainers[i].model, o.model->name)) fn = trainers[i].fn;
    train_signal_install();
    rc = fn ? fn(&o) : cli_error("train", "no trainer for model '%s'", o.model->name);
    train_signal_restore();
  }
  free_opts(&o);
  return rc < 0 ? CLI_OK : rc;
}
