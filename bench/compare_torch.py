#!/usr/bin/python3
"""Times one full training step (forward, loss, backward, clip_grad_norm 1,
Adam) of kiln's shipped models against the same models in PyTorch, with the
same shapes, hyper-parameters, inputs and thread count, and prints one
markdown table (or --json).

    /usr/bin/python3 bench/compare_torch.py [--rounds 2] [--workloads a,b]
        [--build build] [--threads 2] [--warmup 5] [--reps 20] [--json]

Every measurement is a fresh process: `bench_step` (bench/bench_step.c) for
kiln, this script in --worker mode under Debian's /usr/bin/python3 for
PyTorch. Per workload the two alternate (torch, kiln, torch, kiln, ... for
--rounds rounds); each process reports the median of --reps steps after
--warmup, and the table shows the median of those per-process medians and
the largest peak RSS (getrusage) of each side.

PyTorch runs at its best on a small shared machine, not at its defaults:
torch.set_flush_denormal(True) (d2l's sqrt(d)-scaled attention scores
produce denormal softmax outputs that slow OpenBLAS), OMP_WAIT_POLICY=
PASSIVE (busy-waiting pools fight over 2 cores), glibc's malloc kept from
returning memory (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_),
set_num_threads, zero_grad(set_to_none=True), and d2l's masked softmax
written with masked_fill instead of boolean-mask assignment (same values,
no nonzero() per call; --torch-mask d2l keeps d2l's code). kiln runs as
shipped, in the caller's environment.

The torch models are the goldens' (tests/golden/golden_transformer.py,
golden_s2s.py, golden_translate.py's loss), which are d2l's code; the GPT is
nanoGPT's model.py shape (bench/torch_bench.py), because golden_gpt.py has no
dropout.
"""
import argparse
import collections
import json
import os
import resource
import statistics
import sys
import time

from torch_bench import (TORCH_ENV, TORCH_PY, fill_masked_softmax, nanogpt, run_json,
                         torch_available, tune)
from torch_bench import torch_env as tuned_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN = os.path.join(ROOT, "tests", "golden")
FRA = os.path.join(ROOT, "..", "shared", "data", "fra-eng", "fra.txt")
PAD, BOS, EOS, FIRST_WORD = 1, 2, 3, 4  # golden_translate.py's reserved ids

# d2l v1.0's settings (chapters 11.4 and 11.7: MTFraEng(batch_size=128),
# num_steps 9) and nanoGPT's shakespeare_char config. d2l v1.0 trains the
# Transformer with dropout 0.2 and lr 0.001, the Bahdanau model with dropout
# 0.2 and lr 0.005; nanoGPT's lr is 1e-3 (with AdamW; plain Adam here, as
# for the others). Vocabulary sizes of the translation models: see
# fra_vocab_sizes.
WORKLOADS = collections.OrderedDict([
    ("transformer", dict(hidden=256, ffn=64, heads=4, layers=2, dropout=0.2, batch=128,
                         src_steps=9, tgt_steps=9, lr=0.001)),
    ("seq2seq-attn", dict(embed=256, hidden=256, layers=2, dropout=0.2, batch=128, src_steps=9,
                          tgt_steps=9, lr=0.005)),
    ("gpt", dict(vocab=65, block=256, embed=384, heads=6, layers=6, dropout=0.2, batch=8,
                 lr=0.001)),
])
CLIP = 1.0


def fra_vocab_sizes(num_steps=9, examples=512 + 128):
    """len(src_vocab), len(tgt_vocab) of d2l v1.0's MTFraEng (its
    _preprocess, _tokenize and Vocab(min_freq=2) over the padded first
    num_train + num_val pairs), or d2l-like fixed sizes without the file."""
    if not os.path.exists(FRA):
        return 194, 212, "fixed (fra.txt absent)"
    with open(FRA, encoding="utf-8") as f:
        text = f.read().replace("\u202f", " ").replace("\xa0", " ").lower()
    text = "".join(" " + c if i > 0 and c in ",.!?" and text[i - 1] != " " else c
                   for i, c in enumerate(text))
    src, tgt = [], []
    for i, line in enumerate(text.split("\n")):
        if i > examples:
            break
        parts = line.split("\t")
        if len(parts) == 2:
            src.append([t for t in (parts[0] + " <eos>").split(" ") if t])
            tgt.append([t for t in (parts[1] + " <eos>").split(" ") if t])

    def vocab(sents, bos):
        toks = collections.Counter()
        for s in sents:
            s = s[:num_steps] + ["<pad>"] * (num_steps - len(s))
            toks.update((["<bos>"] if bos else []) + s)
        return len(set(["<unk>"] + [t for t, n in toks.items() if n >= 2]))

    return vocab(src, False), vocab(tgt, True), "d2l v1.0 MTFraEng on fra.txt"


# ---- the inputs (bench/bench_step.c computes the same) ----------------------

def src_len(b, steps):
    return min(3 + b % 3, steps)


def tgt_len(b, steps):
    return min(3 + b % 5, steps)


def word(b, t, n, vocab, mb, mt):
    if t < n - 1:
        if vocab <= FIRST_WORD:
            return vocab - 1
        return FIRST_WORD + (mb * b + mt * t) % (vocab - FIRST_WORD)
    return EOS if t == n - 1 else PAD


def translation_batch(torch, c):
    B, ts, tt, vs, vt = c["batch"], c["src_steps"], c["tgt_steps"], c["src_vocab"], c["tgt_vocab"]
    sl = [src_len(b, ts) for b in range(B)]
    tl = [tgt_len(b, tt) for b in range(B)]
    src = [[word(b, t, sl[b], vs, 7, 3) for t in range(ts)] for b in range(B)]
    tgt = [[word(b, t, tl[b], vt, 5, 2) for t in range(tt)] for b in range(B)]
    dec = [[BOS] + row[:-1] for row in tgt]
    L = lambda x: torch.tensor(x, dtype=torch.int64)  # noqa: E731
    return L(src), L(sl), L(dec), L(tgt), L(tl)


def gpt_char(b, t, vocab):
    return (13 * b + 7 * t + (t * t) % 5) % vocab


# ---- the torch side -----------------------------------------------------------

def torch_step_fn(torch, name, c, mask):
    """The model, its parameters and a closure computing the loss."""
    sys.path.insert(0, GOLDEN)
    if name == "gpt":
        net = nanogpt(torch, c)
        B, T, V = c["batch"], c["block"], c["vocab"]
        x = torch.tensor([[gpt_char(b, t, V) for t in range(T)] for b in range(B)])
        y = torch.tensor([[gpt_char(b, t + 1, V) for t in range(T)] for b in range(B)])
        return net, lambda: net(x, y)
    from golden_translate import MaskedSoftmaxCELoss
    if name == "transformer":
        import golden_transformer as gm
        args = (c["hidden"], c["ffn"], c["heads"], c["layers"], c["dropout"], False)
        net = gm.EncoderDecoder(gm.TransformerEncoder(c["src_vocab"], *args),
                                gm.TransformerDecoder(c["tgt_vocab"], *args))
    else:
        import golden_s2s as gm
        args = (c["embed"], c["hidden"], c["layers"], c["dropout"])
        net = gm.EncoderDecoder(gm.Seq2SeqEncoder(c["src_vocab"], *args),
                                gm.Seq2SeqAttentionDecoder(c["tgt_vocab"], *args))
        net.apply(gm.xavier_init_weights)
    if mask == "fill":
        gm.masked_softmax = fill_masked_softmax(torch)
    src, sl, dec, tgt, tl = translation_batch(torch, c)
    ce = MaskedSoftmaxCELoss()
    return net, lambda: ce(net(src, dec, sl)[0], tgt, tl).sum()


def worker(a):
    """One torch process: prints the JSON line bench_step prints."""
    try:
        import torch
    except ImportError:
        print(json.dumps({"model": a.workload, "error": "no torch in " + sys.executable}))
        return 1
    tune(torch, a.threads, a.seed)
    c = json.loads(a.config)
    net, loss_fn = torch_step_fn(torch, a.workload, c, a.torch_mask)
    net.train()
    params = [p for p in net.parameters()]
    opt = torch.optim.Adam(params, lr=c["lr"])
    ms, first, loss = [], None, None
    for i in range(a.warmup + a.reps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        dt = (time.perf_counter() - t0) * 1e3
        if first is None:
            first = loss.item()
        if i >= a.warmup:
            ms.append(dt)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"model": a.workload, "median_ms": statistics.median(ms),
                      "min_ms": min(ms), "peak_rss_mb": round(rss, 1), "threads": a.threads,
                      "warmup": a.warmup, "reps": a.reps, "first_loss": first,
                      "last_loss": loss.item(), "torch": torch.__version__,
                      "mask": a.torch_mask}))
    return 0


# ---- the driver ------------------------------------------------------------------

def kiln_cmd(a, name, c):
    cmd = [os.path.join(a.build, "bin", "bench_step"), "--model", name]
    for k, v in c.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    return cmd + ["--clip", str(CLIP), "--threads", str(a.threads), "--warmup", str(a.warmup),
                  "--reps", str(a.reps), "--seed", str(a.seed)]


def torch_cmd(a, name, c):
    return [a.python, os.path.abspath(__file__), "--worker", "--workload", name, "--config",
            json.dumps(c), "--threads", str(a.threads), "--warmup", str(a.warmup), "--reps",
            str(a.reps), "--seed", str(a.seed), "--torch-mask", a.torch_mask]


def summarise(runs):
    ok = [r for r in runs if "median_ms" in r]
    if not ok:
        errs = [r.get("error", "?") for r in runs]
        return {"error": errs[0] if errs else "not run", "runs": runs}
    s = {"median_ms": statistics.median(r["median_ms"] for r in ok),
         "peak_rss_mb": max(r["peak_rss_mb"] for r in ok), "runs": runs}
    if any("compile_s" in r for r in ok):
        s["compile_s"] = statistics.median(r["compile_s"] for r in ok if "compile_s" in r)
    return s


def fmt_ms(s):
    return "%.1f" % s["median_ms"] if "median_ms" in s else "n/a"


def table(a, results, vocab_note, torch_version):
    out = ["| workload | torch ms | kiln ms | ratio (kiln/torch) | torch peak RSS MB "
           "| kiln peak RSS MB | kiln compile s |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for name, r in results.items():
        t, k = r["torch"], r["kiln"]
        ratio = ("%.2f" % (k["median_ms"] / t["median_ms"])
                 if "median_ms" in t and "median_ms" in k else "n/a")
        rss = lambda s: "%.0f" % s["peak_rss_mb"] if "peak_rss_mb" in s else "n/a"  # noqa: E731
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt_ms(t), fmt_ms(k), ratio, rss(t), rss(k),
            "%.1f" % k["compile_s"] if "compile_s" in k else "n/a"))
        for side in ("torch", "kiln"):
            if "error" in r[side]:
                notes.append("%s %s: n/a (%s)" % (name, side, r[side]["error"]))
    out.append("")
    out.append("Full training step (forward, loss, backward, clip_grad_norm 1, Adam), "
               "%d threads; per process the median of %d steps after %d warm-up, table: "
               "median over %d process(es) per side, alternating torch/kiln. torch %s with "
               "flush-denormal, OMP_WAIT_POLICY=PASSIVE, glibc malloc thresholds, masked "
               "softmax via %s." % (a.threads, a.reps, a.warmup, a.rounds, torch_version or "n/a",
                                    "masked_fill" if a.torch_mask == "fill" else "d2l's code"))
    for name, r in results.items():
        out.append("- %s: %s" % (name, ", ".join("%s %s" % kv for kv in r["config"].items())))
    out.append("- translation vocabularies: %s" % vocab_note)
    out += ["- " + n for n in notes]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--python", default=TORCH_PY, help="the python with torch")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per process")
    ap.add_argument("--torch-mask", choices=("fill", "d2l"), default="fill")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a)

    names = [w for w in a.workloads.split(",") if w]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown or a.rounds < 1 or a.reps < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("unknown workload %s (known: %s)" % (unknown, ", ".join(WORKLOADS))
                 if unknown else "--rounds, --reps and --threads must be >= 1")
    a.build = os.path.abspath(a.build)
    sv, tv, vocab_note = fra_vocab_sizes()
    vocab_note = "src %d, tgt %d (%s)" % (sv, tv, vocab_note)
    tver = torch_available(a.python)
    if not tver:
        print("compare_torch: %s has no torch; skipping the torch side" % a.python,
              file=sys.stderr)
    bench = os.path.join(a.build, "bin", "bench_step")
    if not os.path.exists(bench):
        print("compare_torch: %s is missing (cmake --build %s --target bench_step); skipping "
              "the kiln side" % (bench, a.build), file=sys.stderr)

    torch_env = tuned_env(os.environ, a.threads)
    kiln_env = dict(os.environ)
    results = collections.OrderedDict()
    for name in names:
        c = dict(WORKLOADS[name])
        if name != "gpt":
            c = dict(src_vocab=sv, tgt_vocab=tv, **c)
        runs = {"torch": [], "kiln": []}
        for rnd in range(a.rounds):
            for side in ("torch", "kiln"):
                if side == "torch" and not tver:
                    runs[side].append({"error": "no torch in " + a.python})
                    continue
                if side == "kiln" and not os.path.exists(bench):
                    runs[side].append({"error": "bench_step not built"})
                    continue
                cmd = torch_cmd(a, name, c) if side == "torch" else kiln_cmd(a, name, c)
                t0 = time.time()
                r = run_json(cmd, torch_env if side == "torch" else kiln_env, a.timeout)
                print("compare_torch: %s %s round %d: %s (%.0f s)" % (
                    name, side, rnd + 1, "%.1f ms" % r["median_ms"] if "median_ms" in r
                    else r["error"], time.time() - t0), file=sys.stderr)
                runs[side].append(r)
        results[name] = {"config": c, "torch": summarise(runs["torch"]),
                         "kiln": summarise(runs["kiln"])}
    if a.json:
        print(json.dumps({"threads": a.threads, "warmup": a.warmup, "reps": a.reps,
                          "rounds": a.rounds, "torch": tver, "torch_env": TORCH_ENV,
                          "torch_mask": a.torch_mask, "vocab": vocab_note,
                          "workloads": results}, indent=1))
    else:
        print(table(a, results, vocab_note, tver))
    return 0


if __name__ == "__main__":
    sys.exit(main())
