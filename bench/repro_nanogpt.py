#!/usr/bin/python3
"""Runs nanoGPT's CPU recipe (its README: shakespeare_char, block 64, batch
12, 4 layers, 4 heads, embed 128, 2000 iterations, dropout 0) in kiln and in
PyTorch on the same machine, and prints the val loss at the end, the time to
result and tokens/s as one markdown table (or --json).

    /usr/bin/python3 bench/repro_nanogpt.py [--rounds 1] [--steps 2000]
        [--build build] [--threads 2] [--seed 1337] [--eval-iters 200]
        [--kiln-set KEYS] [--dry-run] [--json]

The recipe is config/train_shakespeare_char.py plus train.py's defaults:
AdamW (beta2 0.99, weight decay 0.1 on the parameters of rank >= 2 only, as
configure_optimizers groups them), lr 1e-3 with get_lr's linear warm-up
over 100 iterations and cosine decay to 1e-4 at lr_decay_iters (= --steps),
clip_grad_norm_ 1, bias=False; the vocabulary is sorted(set(text)), the
first 90% of ../shared/data/tinyshakespeare/input.txt trains, the rest
validates.

The PyTorch side is nanoGPT's model.py (bench/torch_bench.py's nanogpt()) and
train.py's loop (get_batch's random windows from torch.randint, AdamW, get_lr,
clip_grad_norm_, zero_grad(set_to_none=True)), tuned as compare_torch.py
tunes PyTorch. It evaluates only at the end (nanoGPT's eval_interval evals
would be work kiln's command does not do): estimate_loss on --eval-iters
random val batches after --steps updates. Its final_loss is the mean
training loss of the last 100 iterations. nanogpt() draws model.py's
initial distributions in its own order, so seed 1337 does not give
nanoGPT's exact initial weights.

Each side is a fresh process (`kiln train gpt ... --json`, this script in
--worker mode under /usr/bin/python3), alternating torch, kiln for --rounds
rounds. The parent times each process from launch to exit (wall s, the
time to result); train s is the side's own training-loop time. The table
shows the medians over the rounds. Skips (exit 0) when the data or torch is
absent.
"""
import argparse
import json
import math
import os
import shlex
import statistics
import sys
import time

from torch_bench import (TORCH_ENV, TORCH_PY, machine, nanogpt, run_json, torch_available,
                         tuned_torch)
from torch_bench import torch_env as tuned_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare", "input.txt")
SIDES = ("torch", "kiln")

# nanoGPT's README CPU command over config/train_shakespeare_char.py and
# train.py's defaults.
RECIPE = dict(layers=4, heads=4, embed=128, block=64, batch=12, dropout=0.0, bias=False,
              lr=1e-3, min_lr=1e-4, warmup=100, beta1=0.9, beta2=0.99, weight_decay=0.1,
              clip=1.0)
LAST_LOSSES = 100  # iterations averaged into the torch side's final_loss


def get_lr(it, r, decay_iters):
    """nanoGPT's train.py get_lr, as it stands."""
    if it < r["warmup"]:
        return r["lr"] * (it + 1) / (r["warmup"] + 1)
    if it > decay_iters:
        return r["min_lr"]
    decay_ratio = (it - r["warmup"]) / (decay_iters - r["warmup"])
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return r["min_lr"] + coeff * (r["lr"] - r["min_lr"])


def worker(a):
    """One torch process: trains, evaluates, prints one JSON line."""
    torch = tuned_torch(a.threads, a.seed)
    if not torch:
        return 1
    r = RECIPE
    with open(a.data, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = torch.tensor([stoi[ch] for ch in text], dtype=torch.int64)
    n = len(ids)
    split = {"train": ids[:int(n * 0.9)], "val": ids[int(n * 0.9):]}
    B, T = r["batch"], r["block"]

    def get_batch(name):
        d = split[name]
        ix = torch.randint(len(d) - T, (B,))
        x = torch.stack([d[i:i + T] for i in ix])
        y = torch.stack([d[i + 1:i + 1 + T] for i in ix])
        return x, y

    net = nanogpt(torch, dict(r, vocab=len(chars)))
    params = list(net.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": r["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=r["lr"], betas=(r["beta1"], r["beta2"]))

    @torch.no_grad()
    def estimate_loss(name):
        net.eval()
        losses = torch.zeros(a.eval_iters)
        for k in range(a.eval_iters):
            losses[k] = net(*get_batch(name)).item()
        net.train()
        return losses.mean().item()

    net.train()
    losses = []
    X, Y = get_batch("train")
    t0 = time.perf_counter()
    for it in range(a.steps):
        lr = get_lr(it, r, a.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = net(X, Y)
        X, Y = get_batch("train")  # as train.py: the next batch before backward
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, r["clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (it + 1) % a.log_every == 0:
            print("torch: iter %d  loss %.4f  lr %.2e  %.1f s" % (
                it + 1, losses[-1], lr, time.perf_counter() - t0), file=sys.stderr, flush=True)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    val = estimate_loss("val")
    tail = losses[-LAST_LOSSES:]
    print(json.dumps({"model": "nanogpt", "steps": a.steps, "val_loss": val,
                      "final_loss": sum(tail) / len(tail), "last_loss": losses[-1],
                      "train_s": train_s, "eval_s": time.perf_counter() - t1,
                      "tokens_per_s": a.steps * B * T / train_s, "vocab": len(chars),
                      "params": sum(p.numel() for p in params), "threads": a.threads,
                      "seed": a.seed, "torch": torch.__version__}))
    return 0


# ---- the driver ------------------------------------------------------------------

def kiln_set(a):
    r = RECIPE
    return ("layers=%d,heads=%d,embed=%d,block=%d,dropout=0,bias=0,optim=adamw,beta1=%g,"
            "beta2=%g,weight_decay=%g,warmup=%d,decay=cosine,decay_iters=%d,min_lr=%g,clip=%g,"
            "eval_iters=%d,samples=0" % (
                r["layers"], r["heads"], r["embed"], r["block"], r["beta1"], r["beta2"],
                r["weight_decay"], r["warmup"], a.steps, r["min_lr"], r["clip"], a.eval_iters))


def kiln_cmd(a):
    return [os.path.join(a.build, "bin", "kiln"), "train", "gpt", "--data", a.data, "--set",
            a.kiln_set if a.kiln_set is not None else kiln_set(a), "--batch",
            str(RECIPE["batch"]), "--steps", str(a.steps), "--lr", "%g" % RECIPE["lr"],
            "--seed", str(a.seed), "--threads", str(a.threads), "--json"]


def torch_cmd(a):
    return [a.python, os.path.abspath(__file__), "--worker", "--data", a.data, "--steps",
            str(a.steps), "--threads", str(a.threads), "--seed", str(a.seed), "--eval-iters",
            str(a.eval_iters), "--log-every", str(a.log_every)]


def summarise(runs):
    ok = [r for r in runs if "val_loss" in r]
    if not ok:
        return {"error": runs[0].get("error", "?") if runs else "not run", "runs": runs}
    s = {"runs": runs}
    for k in ("val_loss", "wall_s", "train_s", "tokens_per_s", "compile_s"):
        v = [r[k] for r in ok if isinstance(r.get(k), (int, float))]
        if v:
            s[k] = statistics.median(v)
    return s


def table(a, res, tver, load):
    f = lambda s, k, p: p % s[k] if k in s else "n/a"  # noqa: E731
    names = {"torch": "PyTorch %s (nanoGPT's model.py, train.py's loop)" % (tver or "n/a"),
             "kiln": "kiln (`kiln train gpt`)"}
    out = ["| framework | val loss @%d | wall s (launch to result) | train s | tokens/s |"
           % a.steps, "|---|---:|---:|---:|---:|"]
    for side in SIDES:
        s = res[side]
        out.append("| %s | %s | %s | %s | %s |" % (
            names[side], f(s, "val_loss", "%.4f"), f(s, "wall_s", "%.1f"),
            f(s, "train_s", "%.1f"), f(s, "tokens_per_s", "%.0f")))
    t, k = res["torch"], res["kiln"]
    out.append("")
    out.append("kiln wall / PyTorch wall: %s" % (
        "%.2f" % (k["wall_s"] / t["wall_s"]) if "wall_s" in t and "wall_s" in k else "n/a"))
    out.append("")
    out.append("%s, %d threads, torch %s (flush-denormal, OMP_WAIT_POLICY=PASSIVE, glibc malloc "
               "thresholds); medians over %d round(s), alternating torch/kiln; seed %d; "
               "PyTorch val loss over %d random val batches; load average %s before, %s after."
               % (machine(), a.threads, tver or "n/a", a.rounds, a.seed, a.eval_iters,
                  load[0], load[1]))
    if "compile_s" in k:
        out.append("- kiln compile s: %.1f (inside its wall time)" % k["compile_s"])
    for side in SIDES:
        if "error" in res[side]:
            out.append("- %s: n/a (%s)" % (side, res[side]["error"]))
    return "\n".join(out)


def loadavg():
    return "%.2f" % os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2000, help="iterations (and lr_decay_iters)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--eval-iters", type=int, default=200, help="val batches in the estimate")
    ap.add_argument("--log-every", type=int, default=100, help="torch progress lines")
    ap.add_argument("--kiln-set", help="the --set string for kiln instead of the recipe's")
    ap.add_argument("--python", default=TORCH_PY, help="the python with torch")
    ap.add_argument("--timeout", type=int, default=7200, help="seconds per process")
    ap.add_argument("--dry-run", action="store_true", help="print the two commands only")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if min(a.rounds, a.steps, a.threads, a.eval_iters, a.log_every) < 1:
        ap.error("--rounds, --steps, --threads, --eval-iters and --log-every must be >= 1")
    a.data = os.path.abspath(a.data)
    if a.worker:
        return worker(a)
    a.build = os.path.abspath(a.build)
    env = {"torch": tuned_env(os.environ, a.threads), "kiln": dict(os.environ)}
    cmds = {"torch": torch_cmd(a), "kiln": kiln_cmd(a)}
    if a.dry_run:
        tenv = " ".join("%s=%s" % (k, env["torch"][k]) for k in
                        ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"] + list(TORCH_ENV))
        print("%s %s" % (tenv, shlex.join(cmds["torch"])))
        print(shlex.join(cmds["kiln"]))
        return 0
    if not os.path.exists(a.data):
        print("repro_nanogpt: %s is absent; skipping" % a.data)
        return 0
    tver = torch_available(a.python)
    if not tver:
        print("repro_nanogpt: %s cannot import torch; skipping" % a.python)
        return 0
    kiln_ok = os.path.exists(cmds["kiln"][0])
    if not kiln_ok:
        print("repro_nanogpt: %s is missing (make build); skipping the kiln side"
              % cmds["kiln"][0], file=sys.stderr)
    load = [loadavg(), None]
    runs = {side: [] for side in SIDES}
    for rnd in range(a.rounds):
        for side in SIDES:
            if side == "kiln" and not kiln_ok:
                runs[side].append({"error": "kiln not built"})
                continue
            t0 = time.monotonic()
            r = run_json(cmds[side], env[side], a.timeout, need="val_loss", stream_stderr=True)
            if "val_loss" in r:
                r["wall_s"] = time.monotonic() - t0
            print("repro_nanogpt: %s round %d: %s" % (
                side, rnd + 1, "val loss %.4f, wall %.1f s" % (r["val_loss"], r["wall_s"])
                if "val_loss" in r else r["error"]), file=sys.stderr)
            runs[side].append(r)
    load[1] = loadavg()
    res = {side: summarise(runs[side]) for side in SIDES}
    if a.json:
        print(json.dumps({"steps": a.steps, "threads": a.threads, "seed": a.seed,
                          "eval_iters": a.eval_iters, "rounds": a.rounds, "torch": tver,
                          "torch_env": TORCH_ENV, "cpu": machine(), "loadavg": load,
                          "recipe": RECIPE, "kiln_cmd": cmds["kiln"], "results": res}, indent=1))
    else:
        print(table(a, res, tver, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
