#!/usr/bin/env bash
# Reproduces the model shipped in protgen/weights/default.pt: build the training set from the
# shared structures, train the `small` preset with 2 DDP ranks on 2 CPU cores, export EMA weights.
# Usage: scripts/train_default.sh [PDB_DIR] [RUN_DIR]   (defaults ../shared/data/pdb, runs/default)
set -euo pipefail
pdb="${1:-../shared/data/pdb}"
run="${2:-runs/default}"
export OMP_NUM_THREADS=1
[ -d runs/data ] || protgen data build "$pdb" --out runs/data --workers 2
resume=""; [ -f "$run/checkpoint.pt" ] && resume="--resume"
torchrun --nproc_per_node 2 -m protgen train --data runs/data --out "$run" --preset small \
  --steps 12000 --batch-size 8 --crop-length 128 --lr 4e-4 --warmup 300 \
  --checkpoint-every 200 --val-every 500 --seed 0 $resume
python scripts/export_weights.py "$run/checkpoint.pt" protgen/weights/default.pt
