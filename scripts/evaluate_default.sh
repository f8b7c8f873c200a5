#!/usr/bin/env bash
# Figures of the shipped model against real chains of the same lengths: sample 8 backbones at each
# of 60, 100, 140 and 180 residues, then evaluate them beside real segments from the training set.
# Usage: scripts/evaluate_default.sh [RUN_DIR] [DATA_DIR]  (defaults runs/default_eval, runs/data)
set -euo pipefail
out="${1:-runs/default_eval}"
data="${2:-runs/data}"
export OMP_NUM_THREADS=1
protgen sample --lengths 60:180:40 --num 8 --steps 100 --seed 0 --out "$out/samples" --force
protgen eval "$out/samples" --out "$out/eval" --reference "$data" --max-reference 64 --workers 2
cat "$out/eval/report.md"
