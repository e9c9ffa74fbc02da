#!/bin/sh
# Reproduces d2l's attention-seq2seq results (v0.17 settings) on the
# Tatoeba English-French pairs: the first 600 pairs, 250 epochs, three
# seeds; then corpus BLEU-4 on 1,000 held-out pairs after training on the
# first 20,000. Prints markdown tables for README. Skips (exit 0) when
# ../shared/data/fra-eng/fra.txt is absent.
#   usage: bench/d2l_repro.sh [BUILD_DIR] [SEEDS] [EPOCHS_20K]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
seeds=${2:-"0 1 2"}
epochs20k=${3:-20}
data=$here/../shared/data/fra-eng/fra.txt
kiln=$build/bin/kiln
if [ ! -f "$data" ]; then
  echo "d2l_repro: $data is absent; skipping"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
d2l="--set max_examples=600,embed=32,hidden=32,layers=2,dropout=0.1,num_steps=10,heatmap="
for s in $seeds; do
  "$kiln" train seq2seq-attn --data "$data" $d2l --batch 64 --lr 0.005 --epochs 250 \
    --seed "$s" --threads 1 --json 2>/dev/null | tail -n 1 >"$out/bahdanau_$s.json"
done
"$kiln" train seq2seq-attn --data "$data" \
  --set max_examples=20000,n_test=1000,embed=32,hidden=32,layers=2,dropout=0.1,num_steps=10,heatmap= \
  --batch 64 --lr 0.005 --epochs "$epochs20k" --seed 0 --threads 1 --json 2>/dev/null |
  tail -n 1 >"$out/bahdanau_20k.json"
/usr/bin/python3 - "$out" "$seeds" "$epochs20k" <<'PY'
import json, sys
out, seeds, ep = sys.argv[1], sys.argv[2].split(), sys.argv[3]
print("| model | seed | final loss | BLEU go . / i lost . / he's calm . / i'm home . | train s |")
print("|---|---|---|---|---|")
print("| d2l (v0.17, reported) | | 0.020 | 1.000 / 1.000 / 0.658 / 1.000 | |")
for s in seeds:
    j = json.load(open(f"{out}/bahdanau_{s}.json"))
    b = " / ".join(f"{x:.3f}" for x in j["d2l_bleu"])
    print(f"| kiln seq2seq-attn | {s} | {j['final_loss']:.4f} | {b} | {j['train_s']:.1f} |")
j = json.load(open(f"{out}/bahdanau_20k.json"))
print()
print(f"seq2seq-attn, first 20,000 pairs, {ep} epochs: final loss {j['final_loss']:.4f}, "
      f"corpus BLEU-4 on the next 1,000 pairs {j['bleu']:.3f}, train {j['train_s']:.0f} s")
PY
