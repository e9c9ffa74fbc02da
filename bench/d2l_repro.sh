#!/bin/sh
# Reproduces d2l's results for the attention seq2seq (Bahdanau) and the
# Transformer (v0.17 settings) on the Tatoeba English-French pairs: the
# first 600 pairs, three seeds (250 and 200 epochs), each seed also trained
# by d2l v0.17's PyTorch code (bench/d2l_torch.py) right after kiln, for the
# time to the same result; then corpus BLEU-4 on 1,000 held-out pairs after
# training on the first 20,000 (kiln only). Prints markdown tables for
# README. Skips (exit 0) when ../shared/data/fra-eng/fra.txt is absent, and
# the PyTorch side when /usr/bin/python3 cannot import torch.
#   usage: bench/d2l_repro.sh [BUILD_DIR] [SEEDS] [EPOCHS_20K] [MODELS]
#   MODELS: "seq2seq-attn transformer" (default), or either one
#   D2L_TORCH=0: no PyTorch runs; D2L_SKIP_20K=1: no 20,000-pair runs;
#   D2L_EPOCHS=N: N epochs instead of d2l's 250 / 200 (a smoke test)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
seeds=${2:-"0 1 2"}
epochs20k=${3:-20}
models=${4:-"seq2seq-attn transformer"}
torch=${D2L_TORCH:-1}
skip20k=${D2L_SKIP_20K:-0}
data=$here/../shared/data/fra-eng/fra.txt
kiln=$build/bin/kiln
if [ ! -f "$data" ]; then
  echo "d2l_repro: $data is absent; skipping"
  exit 0
fi
if [ "$torch" != 0 ] && ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "d2l_repro: /usr/bin/python3 cannot import torch; skipping the PyTorch side" >&2
  torch=0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# d2l v0.17: embed/hidden 32, 2 layers (blocks), dropout 0.1, batch 64,
# num_steps 10, Adam lr 0.005, clip 1; the Transformer with 4 heads, FFN 64.
# bench/d2l_torch.py holds the same settings for the PyTorch side.
common="dropout=0.1,num_steps=10,heatmap="
for m in $models; do
  case $m in
    seq2seq-attn) set_m="embed=32,hidden=32,layers=2,$common" epochs=${D2L_EPOCHS:-250} ;;
    transformer) set_m="hidden=32,layers=2,heads=4,ffn=64,$common" epochs=${D2L_EPOCHS:-200} ;;
    *) echo "d2l_repro: unknown model $m" >&2; exit 2 ;;
  esac
  for s in $seeds; do
    "$kiln" train "$m" --data "$data" --set "max_examples=600,$set_m" --batch 64 --lr 0.005 \
      --epochs "$epochs" --seed "$s" --threads 1 --json 2>/dev/null | tail -n 1 >"$out/${m}_$s.json"
    if [ "$torch" != 0 ]; then
      /usr/bin/python3 "$here/bench/d2l_torch.py" --model "$m" --data "$data" --epochs "$epochs" \
        --seed "$s" --threads 1 2>/dev/null | tail -n 1 >"$out/${m}_${s}_torch.json"
    fi
  done
  if [ "$skip20k" = 0 ]; then
    "$kiln" train "$m" --data "$data" --set "max_examples=20000,n_test=1000,$set_m" \
      --batch 64 --lr 0.005 --epochs "$epochs20k" --seed 0 --threads 1 --json 2>/dev/null |
      tail -n 1 >"$out/${m}_20k.json"
  fi
done
/usr/bin/python3 - "$out" "$seeds" "$epochs20k" "$models" "$torch" "$skip20k" <<'PY'
import json, statistics, sys
out, seeds, ep, models = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4].split()
torch, skip20k = sys.argv[5] != "0", sys.argv[6] != "0"
d2l = {"seq2seq-attn": ("0.020", "1.000 / 1.000 / 0.658 / 1.000"),
       "transformer": ("0.033", "1.000 / 0.000 / 0.658 / 1.000")}

def load(path):
    """The run's JSON line, or {"error": ...} when it failed."""
    try:
        with open(path) as f:
            j = json.load(f)
        return j if isinstance(j, dict) else {"error": "not a JSON object"}
    except (OSError, ValueError):
        return {"error": "no JSON result (rerun the command to see its error)"}

def cells(j):
    if "final_loss" not in j:
        return ["n/a (%s)" % j.get("error", "failed"), "n/a", "n/a"]
    return [f"{j['final_loss']:.4f}", " / ".join(f"{x:.3f}" for x in j.get("d2l_bleu", [])),
            f"{j['train_s']:.1f}"]

th = " PyTorch final loss | PyTorch BLEU | PyTorch train s |" if torch else ""
print("| model | seed | final loss | BLEU go . / i lost . / he's calm . / i'm home . | train s "
      "|" + th)
print("|---|---|---|---|---|" + ("---|---|---|" if torch else ""))
ratios = []
for m in models:
    print(f"| d2l {m} (v0.17, reported) | | {d2l[m][0]} | {d2l[m][1]} | |" +
          (" | | |" if torch else ""))
    ks, ts = [], []
    for s in seeds:
        k = load(f"{out}/{m}_{s}.json")
        row = cells(k)
        if torch:
            t = load(f"{out}/{m}_{s}_torch.json")
            row += cells(t)
            if "train_s" in k and "train_s" in t:
                ks.append(k["train_s"])
                ts.append(t["train_s"])
        print(f"| kiln {m} | {s} | " + " | ".join(row) + " |")
    if ks:
        k, t = statistics.median(ks), statistics.median(ts)
        ratios.append(f"{m}: kiln train s / PyTorch train s {k / t:.2f} (medians over "
                      f"{len(ks)} seed(s): kiln {k:.1f} s, PyTorch {t:.1f} s; 1 thread each)")
print()
for r in ratios:
    print(r)
if ratios:
    print()
for m in ([] if skip20k else models):
    j = load(f"{out}/{m}_20k.json")
    if "final_loss" not in j:
        print(f"{m}, first 20,000 pairs: n/a ({j.get('error', 'failed')})")
        continue
    print(f"{m}, first 20,000 pairs, {ep} epochs: final loss {j['final_loss']:.4f}, "
          f"corpus BLEU-4 on the next 1,000 pairs {j['bleu']:.3f}, train {j['train_s']:.0f} s")
PY
