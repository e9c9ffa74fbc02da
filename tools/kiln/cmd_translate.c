/* `kiln translate MODEL --load CKPT [--beam N] [--heatmap OUT.svg] SENTENCE...`:
 * translates sentences with a trained seq2seq-attn or transformer checkpoint (its config
 * and vocabularies come from the file), greedily or by beam search, one
 * "SOURCE => TRANSLATION" line each; --heatmap draws the first sentence's
 * cross-attention. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"
#include "tools/kiln/cli.h"
#include "tools/kiln/out_path.h"
#include "tools/kiln/s2s_data.h"

int cmd_translate(int argc, char **argv);

static const char usage[] =
    "usage: kiln translate MODEL --load CKPT [--beam N] [--heatmap OUT.svg] [--threads N]\n"
    "                      [--backend jit|ref] SENTENCE...\n"
    "\n"
    "Translates each SENTENCE with a checkpoint written by 'kiln train MODEL --save CKPT'\n"
    "(seq2seq-attn or transformer) and prints 'SENTENCE => TRANSLATION', one line each.\n"
    "  --load CKPT     the checkpoint (its settings and vocabularies are used)\n"
    "  --beam N        beam search keeping N hypotheses (default 1: greedy)\n"
    "  --heatmap F     write the first sentence's attention weights as an SVG heatmap\n"
    "  --threads N     threads for kernels and OpenBLAS (default: all cores)\n"
    "  --backend B     jit (default) or ref (the reference interpreter)\n";

typedef struct tr_opts {
  const char *model, *load, *heatmap;
  int beam, threads;
  kl_backend backend;
  int nsent;
  char **sent; /* argv entries */
} tr_opts;

static int parse_args(int argc, char **argv, tr_opts *o) {
  cli_args a = {.cmd = "translate", .argc = argc, .argv = argv};
  const char *name, *val;
  int k;
  while ((k = cli_next(&a, &name, &val))) {
    if (k == 2) {
      if (!o->model)
        o->model = val;
      else
        o->sent[o->nsent++] = (char *)val;
      continue;
    }
    if (!strcmp(name, "help")) {
      fputs(usage, stdout);
      return -1;
    }
    static const char *const valued[] = {"load", "beam", "heatmap", "threads", "backend", NULL};
    bool known = false;
    for (int i = 0; valued[i]; i++)
      known |= !strcmp(name, valued[i]);
    if (!known) return cli_usage_error("translate", "unknown option '--%s'", name);
    const char *v = cli_value(&a, name, val);
    if (!v) return CLI_USAGE;
    int rc = CLI_OK;
    if (!strcmp(name, "load"))
      o->load = v;
    else if (!strcmp(name, "heatmap"))
      o->heatmap = v;
    else if (!strcmp(name, "beam"))
      rc = cli_parse_int("translate", name, v, 1, 256, &o->beam);
    else if (!strcmp(name, "threads"))
      rc = cli_parse_int("translate", name, v, 1, 1024, &o->threads);
    else if (!strcmp(v, "jit") || !strcmp(v, "ref"))
      o->backend = !strcmp(v, "jit") ? KL_BACKEND_JIT : KL_BACKEND_REF;
    else
      rc = cli_usage_error("translate", "--backend wants jit or ref, got '%s'", v);
    if (rc != CLI_OK) return rc;
  }
  if (!o->model) return cli_usage_error("translate", "which model? ('kiln models')");
  const kl_model_info *m = kl_model_find(o->model);
  if (!m)
    return cli_usage_error("translate", "unknown model '%s' ('kiln models' lists them)", o->model);
  tm_arch arch;
  if (!tm_arch_from_name(o->model, &arch))
    return cli_usage_error("translate", "%s is not a translation model", o->model);
  if (!o->load)
    return cli_usage_error("translate", "--load CKPT is required (a checkpoint of %s)", o->model);
  if (!o->nsent) return cli_usage_error("translate", "no sentences to translate");
  return CLI_OK;
}

/* One sentence, decoded: the source tokens (for labels) and the result. */
typedef struct tr_result {
  rt_toklist src; /* source tokens after preprocessing */
  int32_t *ids;   /* the source row [Ts] */
  int32_t valid;  /* its entries that are not <pad> */
  int32_t *out;   /* [max_len] */
  int64_t out_len;
  float *attn; /* [max_len, heads, Ts] */
} tr_result;

/* Sentence s as the source row of r (its tokens kept for the heatmap). */
static int encode_source(const s2s_meta *m, const char *s, tr_result *r) {
  ir_diag d = {0};
  rt_toklist_free(&r->src);
  char *pre = rt_text_preprocess(s, strlen(s));
  if (!pre) return cli_error("translate", "out of memory");
  bool ok = s2s_tokenize(m, pre, &r->src, &d) &&
            rt_vocab_build_array(m->src, &r->src, 1, m->cfg.src_steps, r->ids, &r->valid, &d);
  free(pre);
  return ok ? CLI_OK : cli_error("translate", "'%s': %s", s, d.msg);
}

static int translate_one(const tr_opts *o, const s2s_meta *m, s2s_decoder *dec, const char *s,
                         int64_t max_len, tr_result *r) {
  int rc = encode_source(m, s, r);
  if (rc != CLI_OK) return rc;
  const char *e = o->beam > 1
                      ? s2s_beam(dec, r->ids, r->valid, max_len, r->out, &r->out_len, r->attn)
                      : s2s_greedy(dec, r->ids, &r->valid, max_len, r->out, &r->out_len, r->attn);
  if (e) return cli_error("translate", "'%s': %s", s, e);
  char *text = s2s_detokenize(m, r->out, r->out_len);
  if (!text) return cli_error("translate", "out of memory");
  printf("%s => %s\n", s, text);
  fflush(stdout);
  free(text);
  return CLI_OK;
}

static int run(const tr_opts *o) {
  ir_diag d = {0};
  s2s_meta m = {0};
  rt_checkpoint *ck = s2s_ckpt_open(o->load, &m, &d);
  if (!ck) return cli_error("translate", "%s", d.msg);
  if (strcmp(tm_arch_name(m.cfg.arch), o->model)) {
    int rc = cli_error("translate", "%s is a checkpoint of %s, not %s", o->load,
                       tm_arch_name(m.cfg.arch), o->model);
    rt_checkpoint_destroy(ck);
    s2s_meta_free(&m);
    return rc;
  }
  tm_config cfg = m.cfg;
  cfg.batch = o->beam;
  cfg.dtype = KL_F32;
  kl_compile_opts co = {.backend = o->backend, .threads = o->threads};
  char *err = NULL;
  int64_t max_len = cfg.tgt_steps, ts = cfg.src_steps;
  /* res[0] keeps the first sentence for the heatmap; res[1] is reused. */
  tr_result res[2];
  memset(res, 0, sizeof res);
  int rc = CLI_OK;
  for (int i = 0; i < 2; i++) {
    res[i].ids = malloc((size_t)ts * sizeof *res[i].ids);
    res[i].out = malloc((size_t)max_len * sizeof *res[i].out);
    res[i].attn = malloc((size_t)(max_len * s2s_attn_heads(&cfg) * ts) * sizeof *res[i].attn);
    if (!rc && (!res[i].ids || !res[i].out || !res[i].attn))
      rc = cli_error("translate", "out of memory");
  }
  /* The figure's path before the decoder is compiled and the first line
   * printed. (Sentences need no such check: any text tokenizes, unknown
   * tokens becoming <unk>.) */
  if (!rc && o->heatmap) rc = cli_check_output("translate", "--heatmap", o->heatmap);
  s2s_decoder *dec = rc ? NULL : s2s_decoder_create(&cfg, &co, &err);
  if (!rc && !dec) rc = cli_error("translate", "%s", err ? err : "out of memory");
  free(err);
  for (int i = 0; !rc && i < 2; i++)
    if (!s2s_ckpt_apply(ck, s2s_decoder_program(dec, i), true, &d))
      rc = cli_error("translate", "%s", d.msg);
  rt_checkpoint_destroy(ck);
  for (int i = 0; !rc && i < o->nsent; i++)
    rc = translate_one(o, &m, dec, o->sent[i], max_len, &res[i > 0]);
  /* Written last, so a failed sentence leaves no figure behind. */
  ir_diag hd = {0};
  if (!rc && o->heatmap &&
      !s2s_heatmap_write(&m, &res[0].src, res[0].ids, res[0].valid, res[0].out, res[0].out_len,
                         max_len, res[0].attn, o->heatmap, &hd))
    rc = cli_error("translate", "%s", hd.msg);
  for (int i = 0; i < 2; i++) {
    rt_toklist_free(&res[i].src);
    free(res[i].ids);
    free(res[i].out);
    free(res[i].attn);
  }
  s2s_decoder_destroy(dec);
  s2s_meta_free(&m);
  return rc;
}

int cmd_translate(int argc, char **argv) {
  tr_opts o = {.beam = 1, .backend = KL_BACKEND_JIT};
  o.sent = calloc((size_t)(argc > 0 ? argc : 1), sizeof *o.sent);
  if (!o.sent) return cli_error("translate", "out of memory");
  int rc = parse_args(argc, argv, &o);
  if (rc == CLI_OK) rc = run(&o);
  free(o.sent);
  return rc < 0 ? CLI_OK : rc;
}
