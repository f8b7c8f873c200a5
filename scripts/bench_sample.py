"""Benchmark: sampling cost of a model — seconds per backbone at lengths 50/100/200/300 for 100 and
500 Euler steps, batch 1 and 8, 1 and 2 CPU threads (or a GPU with --device cuda), peak memory, and
the network's FLOPs per forward pass (torch.utils.flop_counter) with the implied FLOP/s.

Per-step cost is constant along the path, so each configuration times --timed-steps steps and
scales to 100 and 500 steps; one full 100-step run at L = 100 checks the scaling.
Usage: python scripts/bench_sample.py [--checkpoint FILE] [--device cpu]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

LENGTHS = (50, 100, 200, 300)


def worker(spec):
    import torch

    from protgen.geometry.rigid import Rigid
    from protgen.geometry.world import WorldState
    from protgen.method.simulation import SimulationConfig
    from protgen.sampling.sample import SampleConfig, default_checkpoint, sample_backbones
    from protgen.training import checkpoint

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    trained = checkpoint.load_model(spec["checkpoint"] or default_checkpoint(), device)
    config = SampleConfig(simulation=SimulationConfig(steps=spec["steps"]))
    seeds = list(range(spec["batch"]))
    sample_backbones(trained, spec["length"], seeds, SampleConfig(simulation=SimulationConfig(steps=1)), device)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    sample_backbones(trained, spec["length"], seeds, config, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    flops = None
    if spec.get("flops"):
        from torch.utils.flop_counter import FlopCounterMode

        x = Rigid(torch.eye(3, device=device).expand(1, spec["length"], 3, 3), torch.randn(1, spec["length"], 3, device=device) * 10)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            trained.model(torch.tensor([0.5], device=device), WorldState.of(x), x.trans)
        flops = counter.get_total_flops()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps({"per_step": seconds / spec["steps"], "peak_mb": peak, "flops": flops}))


def measure(spec):
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="default: the shipped model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timed-steps", type=int, default=10)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    base = {"checkpoint": args.checkpoint, "device": args.device}
    threads = (1,) if args.device.startswith("cuda") else (1, 2)
    print(f"device {args.device}; s/backbone = time per step × steps / batch (timed over {args.timed_steps} steps)")
    print(f"{'L':>4}{'batch':>6}{'threads':>8}{'s/bb 100 st':>13}{'s/bb 500 st':>13}{'peak MB':>9}{'GFLOP/fwd':>11}{'GFLOP/s':>9}")
    for length in LENGTHS:
        flops = None
        for batch in (1, 8):
            for t in threads:
                r = measure({**base, "length": length, "batch": batch, "threads": t, "steps": args.timed_steps, "flops": flops is None})
                flops = r["flops"] if r["flops"] is not None else flops
                rate = flops * batch / r["per_step"] / 1e9
                print(f"{length:>4}{batch:>6}{t:>8}{r['per_step'] * 100 / batch:>13.3f}{r['per_step'] * 500 / batch:>13.3f}"
                      f"{r['peak_mb']:>9.0f}{flops / 1e9:>11.3f}{rate:>9.1f}", flush=True)
    check = measure({**base, "length": 100, "batch": 1, "threads": 1, "steps": 100, "flops": False})
    print(f"check: a full 100-step run at L = 100, batch 1, 1 thread took {check['per_step'] * 100:.2f} s")


if __name__ == "__main__":
    main()
