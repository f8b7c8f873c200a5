"""Benchmark: sampling cost — seconds per backbone (100 Euler steps) and peak memory at
L = 100, 300, 500, 1000, for the shipped model (dense pairs), the shipped sparse model (pairs over
each residue's 48 nearest residues; `protgen sample --sparse`), with bfloat16 autocast, and
for protgen 0.1's code and model (``--baseline REV``, run from a git worktree), for an earlier
revision of this code (``--before REV``: the dense rows run from a worktree of REV, e.g. before a
speed-up) and with the CPU's slab-by-slab pair track turned off ("whole tensors") — all in one
run, beside the dense-matmul GFLOP/s these cores reach, so the network's arithmetic rate reads as
a fraction of it.

Per-step cost is constant along the path, so each configuration times --timed-steps steps
(after one warm-up step) and scales to 100 steps. Each configuration runs in its own process. A
second table times whole `protgen sample --lengths 60:200:20` runs (100 steps, wall clock, start-up
included): one process with all the threads against --workers processes of one thread. Usage: python
scripts/bench_sample.py [--checkpoint FILE] [--device cpu] [--baseline ecf079e] [--before REV]
[--runs-num 2]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LENGTHS = (100, 300, 500, 1000)
ROOT = Path(__file__).resolve().parents[1]


def worker(spec):
    import torch

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    if spec.get("baseline"):  # protgen 0.1's API
        from protgen.sample import SampleConfig, default_checkpoint, sample_backbones
        from protgen.sampler import SamplerConfig

        from protgen import checkpoint

        model, _ = checkpoint.load_model(default_checkpoint(), device)
        # noqa: E731
        run = lambda steps: sample_backbones(
            model,
            spec["length"],
            list(range(spec["batch"])),
            SampleConfig(sampler=SamplerConfig(steps=steps)),
            device,
        )
        net_call = None
    else:
        from dataclasses import replace

        from protgen.geometry.rigid import Rigid
        from protgen.geometry.world import WorldState
        from protgen.method.simulation import SimulationConfig
        from protgen.network.model import GeneratorModel
        from protgen.training import checkpoint
        from protgen.training.checkpoint import TrainedModel, default_checkpoint

        try:
            from protgen.sampling.config import SampleConfig
            from protgen.sampling.sampler import sample_backbones
        except ImportError:  # a --before revision from before sampling/sample.py was split
            from protgen.sampling.sample import SampleConfig, sample_backbones

        if spec.get("whole"):  # the dense pair track as whole tensors, as on a GPU or with autograd
            import protgen.network.pairs

            protgen.network.pairs.SLAB_FLOATS = 0
        trained = checkpoint.load_model(
            spec["checkpoint"] or default_checkpoint("sparse" if spec["neighbours"] else "default"),
            device,
        )
        # a dense --checkpoint run sparse: cost only
        if spec["neighbours"] and spec["neighbours"] != trained.config.network.neighbours:
            network = replace(trained.config.network, neighbours=spec["neighbours"])
            model = GeneratorModel(network).to(device).eval()
            model.network.load_state_dict(trained.model.network.state_dict())
            trained = TrainedModel(
                model, trained.process, replace(trained.config, network=network), trained.checkpoint
            )

        def run(steps):
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=spec["bf16"]):
                return sample_backbones(
                    trained,
                    spec["length"],
                    list(range(spec["batch"])),
                    SampleConfig(simulation=SimulationConfig(steps=steps)),
                    device,
                )

        def net_call():
            x = Rigid(
                torch.eye(3, device=device).expand(1, spec["length"], 3, 3),
                torch.randn(1, spec["length"], 3, device=device) * 10,
            )
            trained.model(torch.tensor([0.5], device=device), WorldState.of(x), x.trans)

    run(1)  # warm-up
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    run(spec["steps"])
    sync()
    seconds = time.perf_counter() - start
    flops = None
    if spec.get("flops") and net_call is not None:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net_call()
        flops = counter.get_total_flops()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps({"per_step": seconds / spec["steps"], "peak_mb": peak, "flops": flops}))


def matmul_rate(threads: int) -> float:
    """GFLOP/s of a 2048² float32 matrix product on this machine (the reference ceiling)."""
    code = (
        "import time, torch; torch.set_num_threads(%d); a = torch.randn(2048, 2048); a @ a; t = "
        "time.perf_counter(); [a @ a for _ in range(10)]; print(10 * 2 * 2048**3 / "
        "(time.perf_counter() - t) / 1e9)"
    ) % threads
    return float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )


def measure(spec, pythonpath=None):
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1][:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def lengths_runs(threads: int, num: int, checkpoint: str | None) -> None:
    """Wall time of `protgen sample --lengths 60:200:20 --num NUM` with 1 process × threads and
    with threads processes × 1 thread (--workers), batch 1 and batch 8."""
    print(
        f"\nprotgen sample --lengths 60:200:20 --num {num} (100 steps; {8 * num} backbones; wall "
        "clock, start-up included)"
    )
    print(f"{'configuration':<34}{'wall s':>8}{'backbones/min':>15}")
    for batch in (1, 8):
        for label, flags in (
            (f"1 process × {threads} threads", ["--threads", str(threads)]),
            (f"{threads} workers × 1 thread", ["--threads", "1", "--workers", str(threads)]),
        ):
            with tempfile.TemporaryDirectory() as out:
                command = [
                    sys.executable,
                    "-m",
                    "protgen",
                    "sample",
                    "--lengths",
                    "60:200:20",
                    "--num",
                    str(num),
                    "--batch-size",
                    str(batch),
                    "--out",
                    out,
                    *flags,
                    *(["--checkpoint", checkpoint] if checkpoint else []),
                ]
                start = time.perf_counter()
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "OMP_NUM_THREADS": "1"},
                )
                wall = time.perf_counter() - start
            if done.returncode:
                print(
                    f"{label + f', batch {batch}':<34}  failed: "
                    f"{done.stderr.strip().splitlines()[-1][:80]}",
                    flush=True,
                )
                continue
            print(
                f"{label + f', batch {batch}':<34}{wall:>8.1f}{8 * num / wall * 60:>15.1f}",
                flush=True,
            )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", help="default: the shipped model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timed-steps", type=int, default=3)
    parser.add_argument(
        "--baseline",
        default="ecf079e",
        help="git revision of protgen 0.1 for the 'before' rows ('' to skip)",
    )
    parser.add_argument(
        "--before",
        default="",
        help="git revision of this code for the dense 'before' rows ('' to skip)",
    )
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument(
        "--runs-num",
        type=int,
        default=2,
        help="samples per length of the --lengths runs table (0 to skip)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    lengths = [int(n) for n in args.lengths.split(",") if n]  # "" skips the per-step table
    base = {
        "checkpoint": args.checkpoint,
        "device": args.device,
        "threads": args.threads,
        "steps": args.timed_steps,
        "neighbours": 0,
        "bf16": False,
    }
    ceiling = matmul_rate(args.threads)
    print(
        f"device {args.device}, {args.threads} thread(s); s/bb = seconds per backbone for 100 "
        f"steps (timed over {args.timed_steps} steps); dense float32 matmul here: {ceiling:.0f} "
        "GFLOP/s"
    )
    before = f"dense ({args.before[:7]})"
    configs = [
        ("protgen 0.1 (before)", {"baseline": True}, 1),
        (before, {"before": True}, 1),
        ("dense", {}, 1),
        ("dense, whole tensors", {"whole": True}, 1),
        (before + ", batch 8", {"before": True}, 8),
        ("dense, batch 8", {}, 8),
        ("dense, batch 8, whole", {"whole": True}, 8),
        ("dense, bf16 autocast", {"bf16": True}, 1),
        ("sparse k=48", {"neighbours": 48}, 1),
    ]
    worktrees = {}
    for key, rev in (("baseline", args.baseline), ("before", args.before)):
        if rev:
            worktrees[key] = Path(tempfile.mkdtemp()) / key
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktrees[key]), rev],
                check=True,
                capture_output=True,
            )
    print(
        f"{'configuration':<28}{'L':>6}{'s/bb':>9}{'peak MB':>9}{'GFLOP/fwd':>11}{'GFLOP/s':>9}"
        f"{'% matmul':>10}"
    )
    dense_flops: dict[int, float] = {}
    try:
        for length in lengths:
            for label, extra, batch in configs:
                tree = next(
                    (worktrees.get(key) for key in ("baseline", "before") if extra.get(key)), ROOT
                )
                if tree is None or (batch > 1 and length > 500):
                    continue
                spec = {**base, **extra, "length": length, "batch": batch, "flops": batch == 1}
                r = measure(spec, str(tree) if tree != ROOT else None)
                if "error" in r:
                    print(f"{label:<28}{length:>6}  failed: {r['error']}", flush=True)
                    continue
                per_bb = r["per_step"] * 100 / batch
                if r["flops"] and not extra:
                    dense_flops[length] = r["flops"]
                flops = r["flops"] or (
                    dense_flops.get(length, 0)
                    if not extra.get("neighbours") and not extra.get("baseline")
                    else 0
                )
                rate = flops * batch / r["per_step"] / 1e9 if flops else float("nan")
                print(
                    f"{label:<28}{length:>6}{per_bb:>9.2f}{r['peak_mb']:>9.0f}"
                    f"{flops / 1e9:>11.2f}{rate:>9.1f}{100 * rate / ceiling:>9.0f}%",
                    flush=True,
                )
    finally:
        for tree in worktrees.values():
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                capture_output=True,
            )
    if args.runs_num > 0 and args.device == "cpu":
        lengths_runs(args.threads, args.runs_num, args.checkpoint)


if __name__ == "__main__":
    main()
