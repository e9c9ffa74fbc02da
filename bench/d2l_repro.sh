#!/bin/sh
# Reproduces d2l's results for the attention seq2seq (Bahdanau) and the
# Transformer (v0.17 settings) on the Tatoeba English-French pairs: the
# first 600 pairs, three seeds (250 and 200 epochs); then corpus BLEU-4 on
# 1,000 held-out pairs after training on the first 20,000. Prints markdown
# tables for README. Skips (exit 0) when ../shared/data/fra-eng/fra.txt is
# absent.
#   usage: bench/d2l_repro.sh [BUILD_DIR] [SEEDS] [EPOCHS_20K] [MODELS]
#   MODELS: "seq2seq-attn transformer" (default), or either one
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
seeds=${2:-"0 1 2"}
epochs20k=${3:-20}
models=${4:-"seq2seq-attn transformer"}
data=$here/../shared/data/fra-eng/fra.txt
kiln=$build/bin/kiln
if [ ! -f "$data" ]; then
  echo "d2l_repro: $data is absent; skipping"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# d2l v0.17: embed/hidden 32, 2 layers (blocks), dropout 0.1, batch 64,
# num_steps 10, Adam lr 0.005, clip 1; the Transformer with 4 heads, FFN 64.
common="dropout=0.1,num_steps=10,heatmap="
for m in $models; do
  case $m in
    seq2seq-attn) set_m="embed=32,hidden=32,layers=2,$common" epochs=250 ;;
    transformer) set_m="hidden=32,layers=2,heads=4,ffn=64,$common" epochs=200 ;;
    *) echo "d2l_repro: unknown model $m" >&2; exit 2 ;;
  esac
  for s in $seeds; do
    "$kiln" train "$m" --data "$data" --set "max_examples=600,$set_m" --batch 64 --lr 0.005 \
      --epochs "$epochs" --seed "$s" --threads 1 --json 2>/dev/null | tail -n 1 >"$out/${m}_$s.json"
  done
  "$kiln" train "$m" --data "$data" --set "max_examples=20000,n_test=1000,$set_m" \
    --batch 64 --lr 0.005 --epochs "$epochs20k" --seed 0 --threads 1 --json 2>/dev/null |
    tail -n 1 >"$out/${m}_20k.json"
done
/usr/bin/python3 - "$out" "$seeds" "$epochs20k" "$models" <<'PY'
import json, sys
out, seeds, ep, models = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4].split()
d2l = {"seq2seq-attn": ("0.020", "1.000 / 1.000 / 0.658 / 1.000"),
       "transformer": ("0.033", "1.000 / 0.000 / 0.658 / 1.000")}
print("| model | seed | final loss | BLEU go . / i lost . / he's calm . / i'm home . | train s |")
print("|---|---|---|---|---|")
for m in models:
    print(f"| d2l {m} (v0.17, reported) | | {d2l[m][0]} | {d2l[m][1]} | |")
    for s in seeds:
        j = json.load(open(f"{out}/{m}_{s}.json"))
        b = " / ".join(f"{x:.3f}" for x in j["d2l_bleu"])
        print(f"| kiln {m} | {s} | {j['final_loss']:.4f} | {b} | {j['train_s']:.1f} |")
print()
for m in models:
    j = json.load(open(f"{out}/{m}_20k.json"))
    print(f"{m}, first 20,000 pairs, {ep} epochs: final loss {j['final_loss']:.4f}, "
          f"corpus BLEU-4 on the next 1,000 pairs {j['bleu']:.3f}, train {j['train_s']:.0f} s")
PY
