#!/usr/bin/python3
"""The PyTorch side of bench/d2l_repro.sh: d2l v0.17's training of the
Bahdanau seq2seq or the Transformer on fra.txt, timed, in one tuned torch
process; prints one JSON line (final_loss, train_s, d2l_bleu, ...).

    /usr/bin/python3 bench/d2l_torch.py --model seq2seq-attn|transformer
        [--data FRA] [--epochs N] [--seed 0] [--threads 1] [--num-examples 600]
        [--torch-mask fill|d2l]

d2l v0.17's code throughout: load_data_nmt(batch_size=64, num_steps=10,
num_examples=600) (preprocess_nmt, tokenize_nmt, which keeps lines 0..600,
so 601 pairs; Vocab(min_freq=2) with <pad>, <bos>, <eos>; truncate_pad
after <eos>; a shuffled DataLoader), train_seq2seq (xavier_init_weights on
both models, Adam lr 0.005, MaskedSoftmaxCELoss summed then backward,
grad_clipping(net, 1), dec_input = <bos> + Y[:, :-1]), then predict_seq2seq
(greedy) and bleu(k=2) on d2l's four sentences. The models are the
goldens' modules (tests/golden/golden_s2s.py, golden_transformer.py), which
are d2l's code (the Transformer's are d2l v1.0's, whose modules, order and
shapes equal v0.17's; their decoder has no key-value cache, so greedy
decoding reruns the prefix, which gives what v0.17's cache gives).
final_loss is d2l's printed loss: the last epoch's summed loss over its
valid target tokens, as kiln prints it.

PyTorch runs tuned as compare_torch.py tunes it (bench/torch_bench.py; the
script re-runs itself as a worker in that environment; masked softmax via
masked_fill unless --torch-mask d2l) and zero_grad(set_to_none=True). The
training time covers the epoch loop (data loading and model building are
not in it); wall_s is the worker process from launch to exit.
"""
import argparse
import collections
import json
import math
import os
import sys
import time

from torch_bench import (TORCH_PY, fill_masked_softmax, run_json, torch_available,
                         tuned_torch)
from torch_bench import torch_env as tuned_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN = os.path.join(ROOT, "tests", "golden")
FRA = os.path.join(ROOT, "..", "shared", "data", "fra-eng", "fra.txt")
RESERVED = ["<pad>", "<bos>", "<eos>"]
# d2l v0.17, 9.7 and 10.4 / 10.7: both models' settings.
SETTINGS = dict(embed=32, hidden=32, layers=2, dropout=0.1, batch=64, num_steps=10, lr=0.005,
                heads=4, ffn=64)
EPOCHS = {"seq2seq-attn": 250, "transformer": 200}
ENGS = ["go .", "i lost .", "he's calm .", "i'm home ."]
FRAS = ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."]


# ---- d2l v0.17's data pipeline -------------------------------------------------

def preprocess_nmt(text):
    def no_space(char, prev_char):
        return char in set(",.!?") and prev_char != " "
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    out = [" " + char if i > 0 and no_space(char, text[i - 1]) else char
           for i, char in enumerate(text)]
    return "".join(out)


def tokenize_nmt(text, num_examples=None):
    source, target = [], []
    for i, line in enumerate(text.split("\n")):
        if num_examples and i > num_examples:
            break
        parts = line.split("\t")
        if len(parts) == 2:
            source.append(parts[0].split(" "))
            target.append(parts[1].split(" "))
    return source, target


class Vocab:
    def __init__(self, tokens, min_freq, reserved_tokens):
        counter = collections.Counter(t for line in tokens for t in line)
        self._token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = ["<unk>"] + reserved_tokens
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self._token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, 0)
        return [self.__getitem__(token) for token in tokens]

    def to_tokens(self, indices):
        return [self.idx_to_token[index] for index in indices]


def truncate_pad(line, num_steps, padding_token):
    if len(line) > num_steps:
        return line[:num_steps]
    return line + [padding_token] * (num_steps - len(line))


def build_array_nmt(torch, lines, vocab, num_steps):
    lines = [vocab[tokens] + [vocab["<eos>"]] for tokens in lines]
    array = torch.tensor([truncate_pad(tokens, num_steps, vocab["<pad>"]) for tokens in lines])
    valid_len = (array != vocab["<pad>"]).type(torch.int32).sum(1)
    return array, valid_len


def load_data_nmt(torch, path, batch_size, num_steps, num_examples):
    with open(path, encoding="utf-8") as f:
        text = preprocess_nmt(f.read())
    source, target = tokenize_nmt(text, num_examples)
    src_vocab = Vocab(source, 2, RESERVED)
    tgt_vocab = Vocab(target, 2, RESERVED)
    arrays = build_array_nmt(torch, source, src_vocab, num_steps) + build_array_nmt(
        torch, target, tgt_vocab, num_steps)
    data = torch.utils.data.TensorDataset(*arrays)
    return (torch.utils.data.DataLoader(data, batch_size, shuffle=True), src_vocab, tgt_vocab,
            len(source))


# ---- d2l v0.17's training and evaluation ------------------------------------------

def build_net(gm, model, s, src_vocab, tgt_vocab):
    if model == "transformer":
        args = (s["hidden"], s["ffn"], s["heads"], s["layers"], s["dropout"], False)
        return gm.EncoderDecoder(gm.TransformerEncoder(len(src_vocab), *args),
                                 gm.TransformerDecoder(len(tgt_vocab), *args))
    args = (s["embed"], s["hidden"], s["layers"], s["dropout"])
    return gm.EncoderDecoder(gm.Seq2SeqEncoder(len(src_vocab), *args),
                             gm.Seq2SeqAttentionDecoder(len(tgt_vocab), *args))


def grad_clipping(torch, net, theta):
    """d2l's: scales by theta / norm (no epsilon) when norm > theta."""
    params = [p for p in net.parameters() if p.requires_grad]
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def train_seq2seq(torch, net, data_iter, lr, num_epochs, tgt_vocab, loss):
    """d2l v0.17's loop; the last epoch's per-token loss and the time."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    t0 = time.perf_counter()
    for epoch in range(num_epochs):
        total, tokens = 0.0, 0
        for X, X_valid_len, Y, Y_valid_len in data_iter:
            optimizer.zero_grad(set_to_none=True)
            bos = torch.tensor([tgt_vocab["<bos>"]] * Y.shape[0]).reshape(-1, 1)
            dec_input = torch.cat([bos, Y[:, :-1]], 1)
            Y_hat, _ = net(X, dec_input, X_valid_len)
            l = loss(Y_hat, Y, Y_valid_len)  # noqa: E741 (d2l's name)
            l.sum().backward()
            grad_clipping(torch, net, 1)
            optimizer.step()
            with torch.no_grad():
                total += float(l.sum())
                tokens += int(Y_valid_len.sum())
        if (epoch + 1) % 10 == 0:
            print("torch: epoch %d  loss %.4f  %.1f s" % (
                epoch + 1, total / tokens, time.perf_counter() - t0), file=sys.stderr, flush=True)
    return total / tokens, time.perf_counter() - t0


def predict_seq2seq(torch, model, net, src_sentence, src_vocab, tgt_vocab, num_steps):
    """d2l's greedy decoding; the Transformer reruns the decoder on the
    prefix (its last position is what v0.17's cached step computes)."""
    net.eval()
    src_tokens = src_vocab[src_sentence.lower().split(" ")] + [src_vocab["<eos>"]]
    enc_valid_len = torch.tensor([len(src_tokens)])
    src_tokens = truncate_pad(src_tokens, num_steps, src_vocab["<pad>"])
    enc_X = torch.unsqueeze(torch.tensor(src_tokens, dtype=torch.long), dim=0)
    enc_outputs = net.encoder(enc_X, enc_valid_len) if model == "transformer" else net.encoder(
        enc_X)
    dec_state = net.decoder.init_state(enc_outputs, enc_valid_len)
    prefix, output_seq = [tgt_vocab["<bos>"]], []
    with torch.no_grad():
        for _ in range(num_steps):
            if model == "transformer":
                Y, _ = net.decoder(torch.tensor([prefix], dtype=torch.long), dec_state)
            else:
                Y, dec_state = net.decoder(torch.tensor([prefix[-1:]], dtype=torch.long),
                                           dec_state)
            pred = int(Y[0, -1].argmax())
            if pred == tgt_vocab["<eos>"]:
                break
            output_seq.append(pred)
            prefix.append(pred)
    return " ".join(tgt_vocab.to_tokens(output_seq))


def bleu(pred_seq, label_seq, k):
    """d2l's bleu; a prediction shorter than n scores 0 where d2l divides
    by zero."""
    pred_tokens, label_tokens = pred_seq.split(" "), label_seq.split(" ")
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0, 1 - len_label / len_pred))
    for n in range(1, k + 1):
        if len_pred - n + 1 <= 0:
            return 0.0
        num_matches, label_subs = 0, collections.defaultdict(int)
        for i in range(len_label - n + 1):
            label_subs[" ".join(label_tokens[i:i + n])] += 1
        for i in range(len_pred - n + 1):
            if label_subs[" ".join(pred_tokens[i:i + n])] > 0:
                num_matches += 1
                label_subs[" ".join(pred_tokens[i:i + n])] -= 1
        score *= math.pow(num_matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


def worker(a):
    torch = tuned_torch(a.threads, a.seed)
    if not torch:
        return 1
    sys.path.insert(0, GOLDEN)
    import golden_s2s
    import golden_transformer
    from golden_translate import MaskedSoftmaxCELoss
    gm = golden_transformer if a.model == "transformer" else golden_s2s
    if a.torch_mask == "fill":
        gm.masked_softmax = fill_masked_softmax(torch)
    s = SETTINGS
    data_iter, src_vocab, tgt_vocab, pairs = load_data_nmt(torch, a.data, s["batch"],
                                                           s["num_steps"], a.num_examples)
    net = build_net(gm, a.model, s, src_vocab, tgt_vocab)
    net.apply(golden_s2s.xavier_init_weights)  # train_seq2seq's, on both models
    loss, train_s = train_seq2seq(torch, net, data_iter, s["lr"], a.epochs, tgt_vocab,
                                  MaskedSoftmaxCELoss())
    preds = [predict_seq2seq(torch, a.model, net, e, src_vocab, tgt_vocab, s["num_steps"])
             for e in ENGS]
    for e, p, f in zip(ENGS, preds, FRAS):
        print("  %s => %s, bleu %.3f" % (e, p, bleu(p, f, k=2)), file=sys.stderr)
    print(json.dumps({"model": a.model, "seed": a.seed, "epochs": a.epochs, "final_loss": loss,
                      "train_s": train_s, "d2l_bleu": [bleu(p, f, k=2) for p, f in
                                                       zip(preds, FRAS)],
                      "translations": preds, "pairs": pairs, "src_vocab": len(src_vocab),
                      "tgt_vocab": len(tgt_vocab), "threads": a.threads,
                      "torch": torch.__version__, "mask": a.torch_mask}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=tuple(EPOCHS), required=True)
    ap.add_argument("--data", default=FRA)
    ap.add_argument("--epochs", type=int, help="default: d2l's (250 seq2seq-attn, 200 "
                    "transformer)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--num-examples", type=int, default=600, help="d2l's num_examples")
    ap.add_argument("--torch-mask", choices=("fill", "d2l"), default="fill")
    ap.add_argument("--python", default=TORCH_PY, help="the python with torch")
    ap.add_argument("--timeout", type=int, default=7200, help="seconds for the worker")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.epochs = EPOCHS[a.model] if a.epochs is None else a.epochs
    if min(a.epochs, a.threads, a.num_examples) < 1:
        ap.error("--epochs, --threads and --num-examples must be >= 1")
    a.data = os.path.abspath(a.data)
    if a.worker:
        return worker(a)
    if not os.path.exists(a.data):
        print(json.dumps({"error": "%s is absent" % a.data}))
        return 1
    if not torch_available(a.python):
        print(json.dumps({"error": "%s cannot import torch" % a.python}))
        return 1
    cmd = [a.python, os.path.abspath(__file__), "--worker"] + sys.argv[1:]
    t0 = time.monotonic()
    r = run_json(cmd, tuned_env(os.environ, a.threads), a.timeout, need="final_loss",
                 stream_stderr=True)
    if "final_loss" in r:
        r["wall_s"] = time.monotonic() - t0
    print(json.dumps(r))
    return 0 if "final_loss" in r else 1


if __name__ == "__main__":
    sys.exit(main())
