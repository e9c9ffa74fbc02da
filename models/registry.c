/* The model registry: what `kiln models` lists and `kiln train` accepts.
 * Planned models are listed too (marked not shipped) so the CLI can tell
 * "not built yet" apart from a typo. */
#include <string.h>

#include "models/models.h"
#include "models/gpt.h"
#include "models/seq2seq_attn.h"
#include "models/transformer.h"

static const kl_model_key nw_keys[] = {
    {"plot", "nw_kernel_fit.svg", "SVG plot of the truth, the three estimators and the data"},
    {"heatmap", "nw_kernel_attention.svg",
     "SVG heatmap of the trained model's attention (test x training points)"},
    {"n_train", "50", "number of training points (2..2000)"},
    {"w0", "rand", "initial w: a number, or rand for U[0,1) from --seed (torch.rand)"},
    {"backend", "jit", "jit (LLVM-compiled) or ref (the reference interpreter)"},
};

/* "auto" values depend on the data: the built-in dates or a --data file. */
static const kl_model_key s2s_keys[] = {
    {"embed", "32", "embedding size"},
    {"hidden", "64", "GRU hidden size (also the attention size)"},
    {"layers", "2", "GRU layers in the encoder and in the decoder"},
    {"dropout", "0.1", "dropout between GRU layers and on the attention weights"},
    {"num_steps", "auto", "source length after truncation/padding (auto: 30 dates, 10 files)"},
    {"tgt_steps", "auto", "target length (auto: 11 dates, num_steps for files)"},
    {"max_examples", "auto", "training pairs: the first N of the file (auto: all; dates: 20000)"},
    {"n_test", "auto", "held-out pairs after the training ones (auto: 1000 dates, 0 files)"},
    {"min_freq", "auto", "tokens seen fewer times become <unk> (auto: 1 dates, 2 files)"},
    {"tokens", "auto", "char or word tokens (auto: char for dates, word for files)"},
    {"clip", "1", "global gradient-norm clipping threshold (0: off)"},
    {"samples", "5", "held-out translations printed after training"},
    {"heatmap", "seq2seq_attention.svg", "SVG heatmap of one held-out translation's attention"},
    {"backend", "jit", "jit (LLVM-compiled) or ref (the reference interpreter)"},
};

static const kl_model_key tf_keys[] = {
    {"hidden", "32", "model width (embeddings, attention, residual stream)"},
    {"layers", "2", "encoder blocks = decoder blocks"},
    {"heads", "4", "attention heads (divide hidden)"},
    {"ffn", "64", "hidden width of the position-wise feed-forward network"},
    {"dropout", "0.1", "after the positional encoding, on attention weights and sublayer outputs"},
    {"norm", "post", "post (d2l's AddNorm) or pre (LayerNorm before each sublayer)"},
    {"tie_output", "0", "1: the output layer reuses the target embedding"},
    {"num_steps", "auto", "source length after truncation/padding (auto: 30 dates, 10 files)"},
    {"tgt_steps", "auto", "target length (auto: 11 dates, num_steps for files)"},
    {"max_examples", "auto", "training pairs: the first N of the file (auto: all; dates: 20000)"},
    {"n_test", "auto", "held-out pairs after the training ones (auto: 1000 dates, 0 files)"},
    {"min_freq", "auto", "tokens seen fewer times become <unk> (auto: 1 dates, 2 files)"},
    {"tokens", "auto", "char or word tokens (auto: char for dates, word for files)"},
    {"clip", "1", "global gradient-norm clipping threshold (0: off)"},
    {"samples", "5", "held-out translations printed after training"},
    {"heatmap", "transformer_attention.svg",
     "SVG heatmap of one held-out translation's cross-attention, a panel per head"},
    {"backend", "jit", "jit (LLVM-compiled) or ref (the reference interpreter)"},
};

static const kl_model_key gpt_keys[] = {
    {"layers", "2", "transformer blocks"},
    {"heads", "4", "attention heads (divide embed)"},
    {"embed", "48", "model width"},
    {"block", "48", "context length in characters"},
    {"dropout", "0", "after the embeddings, on attention weights and sublayer outputs"},
    {"max_examples", "20000", "date lines in the built-in text (ignored with --data)"},
    {"bias", "1", "0: nanoGPT's bias=False (no Linear biases, LayerNorm gains only)"},
    {"clip", "1", "global gradient-norm clipping threshold (0: off)"},
    {"optim", "adam", "adam or adamw (decoupled weight decay, torch.optim.AdamW)"},
    {"beta1", "0.9", "Adam's first-moment decay"},
    {"beta2", "0.999", "Adam's second-moment decay (nanoGPT's shakespeare: 0.99)"},
    {"weight_decay", "0", "weight decay on the weights of rank >= 2 only, as nanoGPT"},
    {"warmup", "0", "linear warm-up over this many steps: lr (t + 1) / (warmup + 1)"},
    {"decay", "none", "none or cosine: nanoGPT's get_lr from lr down to min_lr"},
    {"decay_iters", "0", "the step where the cosine reaches min_lr (0: the last step)"},
    {"min_lr", "0", "the learning rate after decay_iters (decay=cosine)"},
    {"eval_every", "0", "also print the validation loss every N steps (0: at epoch ends)"},
    {"eval_iters", "0", "validation batches per estimate (0: 256 windows)"},
    {"samples", "3", "texts sampled after training"},
    {"length", "200", "characters per sample (dates: a sample also ends at a newline)"},
    {"prompt", "\\n", "text the samples start from (\\n, \\t, \\\\ are escapes)"},
    {"temperature", "0.8", "sampling temperature (0: always the most likely character)"},
    {"top_k", "0", "sample among the k most likely characters only (0: all)"},
    {"n_test", "200", "held-out dates completed greedily for the exact match (dates only)"},
    {"backend", "jit", "jit (LLVM-compiled) or ref (the reference interpreter)"},
};

static const kl_model_info models[] = {
    {.name = "nw-kernel",
     .summary = "Nadaraya-Watson attention pooling (d2l 11.2): one learnable kernel width",
     .detail = "Data: n_train points x ~ U[0,5) sorted, y = 2 sin(x) + x^0.8 + N(0, 0.5^2),\n"
               "test points 0, 0.1, ..., 4.9 against the noiseless truth (seeded by --seed).\n"
               "Training: each training point attends to the others (leave-one-out);\n"
               "full-batch SGD on the sum of squared errors, one step per epoch.\n"
               "Prints the loss per epoch, the learned w and the test MSE of average\n"
               "pooling, the Gaussian kernel and the trained kernel; writes the fit and\n"
               "the attention heatmap as SVG.",
     .shipped = true,
     .epochs = 5,
     .lr = 0.5,
     .full_batch = true,
     .nkeys = (int)(sizeof nw_keys / sizeof nw_keys[0]),
     .keys = nw_keys,
     .graph = nw_kernel_default_graph},
    {.name = "seq2seq-attn",
     .summary = "RNN encoder-decoder with Bahdanau attention (d2l 11.4)",
     .detail = "Data: without --data, dates in ten human formats -> ISO YYYY-MM-DD, generated\n"
               "from --seed (character tokens); --data takes english<TAB>french lines\n"
               "(d2l's preprocessing, word tokens). Training: teacher forcing over\n"
               "tgt_steps, the loss summed over the batch as d2l (printed per token),\n"
               "Adam with gradient clipping. Prints per-epoch loss and tokens/s, then\n"
               "greedy translations of held-out pairs, exact-match accuracy (dates) or\n"
               "corpus BLEU-4, and writes the attention heatmap of one translation.",
     .shipped = true,
     .epochs = 1,
     .lr = 0.005,
     .takes_data = true,
     .takes_checkpoints = true,
     .nkeys = (int)(sizeof s2s_keys / sizeof s2s_keys[0]),
     .keys = s2s_keys,
     .graph = s2s_default_graph},
    {.name = "transformer",
     .summary = "Transformer encoder-decoder (d2l 11.7)",
     .detail = "Data: as seq2seq-attn (dates by default, --data for english<TAB>french).\n"
               "Model: token embedding * sqrt(hidden) + sinusoidal positional encoding,\n"
               "multi-head attention with valid-length masks, AddNorm (post-LN as d2l, or\n"
               "pre-LN), position-wise FFN, causal decoder self-attention, cross-attention.\n"
               "Training: teacher forcing, d2l's masked loss, Adam with gradient clipping.\n"
               "Decoding: greedy or beam search with a key/value cache. Prints per-epoch\n"
               "loss, held-out translations, exact match (dates) or corpus BLEU-4, and\n"
               "writes the last decoder block's cross-attention, one panel per head.",
     .shipped = true,
     .epochs = 2,
     .lr = 0.005,
     .takes_data = true,
     .takes_checkpoints = true,
     .nkeys = (int)(sizeof tf_keys / sizeof tf_keys[0]),
     .keys = tf_keys,
     .graph = tf_default_graph},
    {.name = "gpt",
     .summary = "decoder-only character language model (nanoGPT)",
     .detail = "Data: without --data, lines '<human date> => <ISO date>' made by the date\n"
               "generator from --seed; --data takes a UTF-8 text file (e.g. tinyshakespeare).\n"
               "Characters are the tokens; the first 90% trains, the rest validates.\n"
               "Model: nanoGPT's pre-LN blocks, GELU MLP, learned positions, causal\n"
               "attention, output head tied to the token embedding. Training: random\n"
               "windows of block + 1 characters, Adam with gradient clipping; an epoch is\n"
               "n_train / (batch * block) steps. Prints train and validation loss per\n"
               "epoch, samples (temperature, top-k) and, on dates, the exact match of\n"
               "greedy completions of held-out '<human date> => '.",
     .shipped = true,
     .epochs = 2,
     .lr = 0.005,
     .takes_data = true,
     .takes_checkpoints = true,
     .nkeys = (int)(sizeof gpt_keys / sizeof gpt_keys[0]),
     .keys = gpt_keys,
     .graph = gpt_default_graph},
};

const kl_model_info *kl_models(int *n) {
  *n = (int)(sizeof models / sizeof models[0]);
  return models;
}

const kl_model_info *kl_model_find(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
    if (!strcmp(models[i].name, name)) return &models[i];
  return NULL;
}

const kl_model_key *kl_model_key_find(const kl_model_info *m, const char *key) {
  if (!m || !key) return NULL;
  for (int i = 0; i < m->nkeys; i++)
    if (!strcmp(m->keys[i].name, key)) return &m->keys[i];
  return NULL;
}
