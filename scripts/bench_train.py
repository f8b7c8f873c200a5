"""Benchmark: training throughput of the `small` preset at crop length 128, batch 8 — 1 and 2
threads in one process, and 2 DDP ranks (gloo, 1 thread each) — with peak resident memory.

Usage: python scripts/bench_train.py [--data runs/data] [--steps 30]. Each configuration runs in
its own process; the first 5 steps are warm-up and not counted.
"""

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

WARMUP = 5


def worker(data, out, steps):
    import torch

    from protgen.network.ipa import PRESETS
    from protgen.training.config import ModelConfig, TrainConfig
    from protgen.training.loop import train

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    train(data, out, ModelConfig(PRESETS["small"]), TrainConfig(steps=steps + WARMUP, batch_size=8, crop_length=128, log_every=1,
                                                                 val_every=10**9, checkpoint_every=10**9))
    if os.environ.get("RANK", "0") == "0":
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        Path(out, "peak_mb").write_text(f"{peak:.0f}")


def _gflop(length):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from protgen.geometry import so3
    from protgen.geometry.rigid import Rigid
    from protgen.geometry.world import WorldState
    from protgen.network.ipa import PRESETS, FrameNetwork

    net = FrameNetwork(PRESETS["small"])
    x = Rigid(so3.uniform((1, length)), 10 * torch.randn(1, length, 3))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.tensor([0.5]), WorldState.of(x), x.trans)
    return counter.get_total_flops() / 1e9


def run(label, cmd, env, out):
    subprocess.run(cmd, env={**os.environ, **env}, check=True, capture_output=True)
    with open(Path(out) / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["step"]) > WARMUP]
    steps = sum(1 for _ in rows)
    seconds = sum(1 / float(r["steps_per_s"]) for r in rows)
    residues = sum(float(r["residues_per_s"]) / float(r["steps_per_s"]) for r in rows)
    peak = Path(out, "peak_mb").read_text()
    print(f"{label:<26}{steps / seconds:>10.2f}{residues / seconds:>14.0f}{peak:>14}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="runs/data")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], args.worker[1], args.steps)
    if not Path(args.data, "dataset.json").exists():
        sys.exit(f"no training set at {args.data}; build one with `protgen data promod3 --out {args.data}` or `protgen data build PDB_DIR --out {args.data}`")
    me = [sys.executable, __file__, "--steps", str(args.steps), "--data", args.data]
    print(f"small preset, crop 128, batch 8 per process, {args.steps} timed steps; "
          f"network forward at L = 128: {_gflop(128):.2f} GFLOP per chain (a training step adds backward ≈ 2× and "
          "self-conditioning passes half the time)")
    print(f"{'configuration':<26}{'steps/s':>10}{'residues/s':>14}{'peak RSS MB':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, 2):
            out = f"{tmp}/t{threads}"
            run(f"1 process, {threads} thread(s)", [*me, "--worker", args.data, out], {"OMP_NUM_THREADS": str(threads)}, out)
        out = f"{tmp}/ddp"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", __file__, "--steps", str(args.steps), "--worker", args.data, out]
        run("2 DDP ranks × 1 thread", cmd, {"OMP_NUM_THREADS": "1"}, out)


if __name__ == "__main__":
    main()
