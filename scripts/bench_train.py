"""Benchmark: training throughput — residues and steps per second and peak memory — of protgen
0.1's recipe (run from a git worktree of --baseline) and of this version's configurations, side by
side in one run on the same training set:

- 0.1 recipe: small preset without sequence-transformer layers, crops of 128, batch 8;
- 0.2 recipe (the shipped model's): small preset with one sequence-transformer layer per block,
  whole chains up to 256 residues batched by pair budget (max_pairs 131,072, at most 16 chains),
  auxiliary losses; also with bfloat16 autocast, with sparse pairs (k = 48), and as 2 DDP ranks.

Each configuration runs in its own process; the first 5 steps are warm-up and not counted.
``--before REV`` adds both recipes run by an earlier revision of this code (from a git worktree).
Usage: python scripts/bench_train.py --data SET [--steps 30] [--baseline ecf079e] [--before REV]
[--threads 2]
"""

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

WARMUP = 5
ROOT = Path(__file__).resolve().parents[1]
RECIPE_01 = {"network": {"node_layers": 0}, "train": {"batch_size": 8, "crop_length": 128}}
RECIPE_02 = {
    "network": {"node_layers": 1},
    "loss": {"aux_weight": 1.0},
    "train": {"batch_size": 16, "crop_length": 256, "max_pairs": 131072},
}


def worker(spec: dict) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    steps = spec["steps"] + WARMUP
    common = dict(steps=steps, log_every=1, val_every=10**9, checkpoint_every=10**9)
    if spec.get("baseline"):  # protgen 0.1's API
        from protgen.model import ModelConfig
        from protgen.train import TrainConfig, train

        from protgen.network import PRESETS

        train(
            spec["data"],
            spec["out"],
            ModelConfig(PRESETS["small"]),
            TrainConfig(**common, **RECIPE_01["train"]),
        )
    else:
        from dataclasses import replace

        from protgen.method.loss import LossConfig
        from protgen.training.config import ModelConfig, TrainConfig
        from protgen.training.loop import train

        try:
            from protgen.network.config import PRESETS
        except ImportError:  # a --before revision from before network/ipa.py was split
            from protgen.network.ipa import PRESETS

        recipe = spec["recipe"]
        network = replace(PRESETS["small"], **recipe.get("network", {}), **spec.get("network", {}))
        model = ModelConfig(network, loss=LossConfig(**recipe.get("loss", {})))
        train(
            spec["data"],
            spec["out"],
            model,
            TrainConfig(**common, **recipe["train"], bf16=spec.get("bf16", False)),
        )
    if os.environ.get("RANK", "0") == "0":
        Path(spec["out"], "peak_mb").write_text(
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
        )


def run(
    label: str, spec: dict, threads: int, ranks: int = 1, pythonpath: str | None = None
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    me = [__file__, "--worker", json.dumps(spec)]
    cmd = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(ranks),
            "--master_port",
            "29533",
            *me,
        ]
        if ranks > 1
        else [sys.executable, *me]
    )
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        print(f"{label:<34}failed: {done.stderr.strip().splitlines()[-1][:90]}", flush=True)
        return
    with open(Path(spec["out"]) / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["step"]) > WARMUP]
    seconds = sum(1 / float(r["steps_per_s"]) for r in rows)
    residues = sum(float(r["residues_per_s"]) / float(r["steps_per_s"]) for r in rows)
    peak = Path(spec["out"], "peak_mb").read_text()
    print(
        f"{label:<34}{len(rows) / seconds:>9.2f}{residues / seconds:>13.0f}"
        f"{residues / len(rows):>14.0f}{peak:>13}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", required=False, help="a training set (protgen data build / promod3)"
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--baseline", default="ecf079e", help="git revision of protgen 0.1 ('' to skip)"
    )
    parser.add_argument(
        "--before",
        default="",
        help="git revision of this code for 'before' rows of both recipes ('' to skip)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if not args.data or not Path(args.data, "dataset.json").exists():
        sys.exit(
            "give --data SET: a training set built with `protgen data promod3 --out SET` or "
            "`protgen data build PDB_DIR --out SET`"
        )
    print(
        f"training set {args.data}; {args.steps} timed steps per configuration, {args.threads} "
        "thread(s) per process"
    )
    print(
        f"{'configuration':<34}{'steps/s':>9}{'residues/s':>13}{'residues/step':>14}"
        f"{'peak RSS MB':>13}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"data": args.data, "steps": args.steps}
        if args.baseline:
            worktree = Path(tmp) / "baseline"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    str(worktree),
                    args.baseline,
                ],
                check=True,
                capture_output=True,
            )
            try:
                run(
                    "0.1 recipe, protgen 0.1 code",
                    {**spec, "baseline": True, "out": f"{tmp}/b"},
                    args.threads,
                    pythonpath=str(worktree),
                )
            finally:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    capture_output=True,
                )
        if args.before:  # an earlier revision of this code, the same recipes
            worktree = Path(tmp) / "before"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.before],
                check=True,
                capture_output=True,
            )
            try:
                run(
                    f"0.1 recipe, {args.before[:7]}",
                    {**spec, "recipe": RECIPE_01, "out": f"{tmp}/a0"},
                    args.threads,
                    pythonpath=str(worktree),
                )
                run(
                    f"0.2 recipe, {args.before[:7]}",
                    {**spec, "recipe": RECIPE_02, "out": f"{tmp}/c0"},
                    args.threads,
                    pythonpath=str(worktree),
                )
            finally:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    capture_output=True,
                )
        run("0.1 recipe, this code", {**spec, "recipe": RECIPE_01, "out": f"{tmp}/a"}, args.threads)
        run("0.2 recipe", {**spec, "recipe": RECIPE_02, "out": f"{tmp}/c"}, args.threads)
        run(
            "0.2 recipe, bf16 autocast",
            {**spec, "recipe": RECIPE_02, "bf16": True, "out": f"{tmp}/d"},
            args.threads,
        )
        run(
            "0.2 recipe, sparse pairs k=48",
            {**spec, "recipe": RECIPE_02, "network": {"neighbours": 48}, "out": f"{tmp}/e"},
            args.threads,
        )
        run(
            "0.2 recipe, 2 DDP ranks × 1 thread",
            {**spec, "recipe": RECIPE_02, "out": f"{tmp}/f"},
            1,
            ranks=2,
        )


if __name__ == "__main__":
    main()
