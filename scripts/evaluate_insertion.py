"""The variable-length model on real data: the length law of --num samples against the training
set's (as the training loader draws it: a cluster uniformly, then a member), with a histogram plot
and the two-sample Kolmogorov–Smirnov statistic, the network's count of hidden residues around
the lone seed at t = 0 against its exact value, and the quality panel of the samples beside
fixed-length samples of the same lengths from a fixed-length model (default: the shipped default
model; pass one of the same size and training cost with --fixed-checkpoint).

Usage: python scripts/evaluate_insertion.py --set SET --out DIR [--checkpoint CKPT]
[--fixed-checkpoint CKPT]
                                            [--num 200] [--fixed-num 100] [--rot-rate C]
"""

import argparse
import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np


def training_lengths(ts, rng, count: int) -> np.ndarray:
    """Lengths drawn as the loader draws training chains (cluster, then member) — the law the
    model learns."""
    clusters: dict[int, list[int]] = {}
    for i in ts.indices("train"):
        clusters.setdefault(ts.records[i].cluster, []).append(ts.records[i].length)
    keys = list(clusters)
    return np.array([rng.choice(clusters[keys[rng.integers(len(keys))]]) for _ in range(count)])


def ks(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.concatenate([a, b])
    cdf = lambda x: np.searchsorted(np.sort(x), grid, side="right") / len(x)  # noqa: E731
    return float(np.abs(cdf(a) - cdf(b)).max())


def seed_count(trained, seeds: int = 16) -> float:
    """The network's expected hidden residues around the lone seed at t = 0 (mean over seeds'
    prior draws). Every chain's residues but the seed are hidden then, so the exact value is the
    training law's mean length − 1 (per-chain weights equal); the count sets how fast the chain
    grows on the first steps (later counts can make up for it)."""
    import torch

    from protgen.sampling.sampler import unconditioned_state

    template, counts = unconditioned_state(1, 1), []
    with torch.no_grad():
        for s in range(seeds):
            x = trained.process.world_prior(template, torch.Generator().manual_seed(s))
            counts.append(float(trained.model(torch.zeros(1), x).velocity.gap_counts.sum()))
    return float(np.mean(counts))


def main() -> None:
    import torch

    from protgen.data.dataset import TrainingSet
    from protgen.evaluation.config import EvalConfig
    from protgen.evaluation.evaluate import evaluate
    from protgen.method.simulation import SimulationConfig
    from protgen.sampling.config import SampleConfig, default_rot_rate
    from protgen.sampling.directory import sample_to_directory
    from protgen.training import checkpoint
    from protgen.training.checkpoint import default_checkpoint

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--checkpoint", help="the insertion model (default: the shipped one)")
    parser.add_argument(
        "--fixed-checkpoint",
        help="the fixed-length model to compare with (default: the shipped default model)",
    )
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument(
        "--fixed-num",
        type=int,
        default=100,
        help="fixed-length samples, at the lengths of the first FIXED_NUM "
        "insertion samples (default 100; 0: no fixed-length side)",
    )
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument(
        "--rot-rate",
        type=float,
        help="the insertion samples' rotation schedule (0 = the learned rate; default: protgen "
        "sample's for the model); the fixed-length samples use their model's default (default.pt: "
        "c = 5)",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    model_path = args.checkpoint or default_checkpoint("insertion")
    if args.rot_rate is None:
        rot_rate = default_rot_rate(checkpoint.load_model(model_path))
    else:
        rot_rate = args.rot_rate or None
    sample_to_directory(
        model_path,
        out / "insertion",
        SampleConfig(
            num=args.num,
            simulation=SimulationConfig(args.steps, rot_rate),
            min_length=40,
            max_length=256,
        ),
        force=True,
    )
    with open(out / "insertion" / "manifest.csv", newline="") as handle:
        lengths = np.array([int(r["length"]) for r in csv.DictReader(handle)])
    ts = TrainingSet.load(args.set)
    data = training_lengths(ts, np.random.default_rng(0), 20000)
    statistic = ks(lengths, data)
    critical = 1.36 * np.sqrt((len(lengths) + len(data)) / (len(lengths) * len(data)))  # α = 0.05
    # fixed-length samples at the lengths of the first --fixed-num insertion samples (for the panel)
    subset = sorted(Counter(lengths[: args.fixed_num]).items())
    fixed_path = args.fixed_checkpoint or default_checkpoint()
    if subset:
        fixed_model = checkpoint.load_model(fixed_path)
        for length, count in subset:
            sample_to_directory(
                fixed_path,
                out / "fixed",
                SampleConfig(
                    lengths=(int(length),), num=count, simulation=SimulationConfig(args.steps)
                ),
                force=True,
                trained=fixed_model,
            )
    ins = evaluate(
        out / "insertion" / "manifest.csv", out / "insertion_eval", EvalConfig(mpnn="off")
    ).samples.to_dict()
    fix = (
        evaluate(
            out / "fixed" / "manifest.csv", out / "fixed_eval", EvalConfig(mpnn="off")
        ).samples.to_dict()
        if subset
        else None
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    bins = np.arange(40, 262, 8)
    ax.hist(data, bins, density=True, alpha=0.5, label="training set (cluster-then-member law)")
    ax.hist(lengths, bins, density=True, alpha=0.6, label=f"{len(lengths)} samples (Process 3)")
    ax.set(
        xlabel="length, residues",
        ylabel="density",
        title=f"emerging lengths: KS = {statistic:.3f} (5 % critical {critical:.3f})",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "length_distribution.png", dpi=100)
    result = {
        "insertion_model": str(model_path),
        "fixed_model": str(fixed_path) if subset else None,
        "rot_rate": rot_rate,
        "samples": len(lengths),
        "mean_length": float(lengths.mean()),
        "training_mean_length": float(data.mean()),
        "ks": statistic,
        "ks_critical_0.05": float(critical),
        "seed_count": seed_count(checkpoint.load_model(model_path)),
        "fixed_samples": len(lengths[: args.fixed_num]),
        "panel_insertion": ins,
        "panel_fixed_length": fix,
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=float))
    keys = (
        "count",
        "geometry_ok",
        "clashes",
        "chain_breaks",
        "helix",
        "strand",
        "coil",
        "rg_ratio",
        "rama_allowed",
        "ca_ca_ok",
    )
    print(
        f"lengths: mean {lengths.mean():.1f} (training {data.mean():.1f}); KS {statistic:.3f} (5 % "
        f"critical {critical:.3f}); the lone seed's hidden-residue count at t = 0: "
        f"{result['seed_count']:.1f} (exact {data.mean() - 1:.1f})"
    )
    print(
        "| figure | insertion model (emerging length) | fixed-length model (same lengths) "
        "|\n|---|---|---|"
    )
    for k in keys:
        print(f"| {k} | {ins[k]:.3f} | {fix[k]:.3f} |" if fix else f"| {k} | {ins[k]:.3f} | — |")


if __name__ == "__main__":
    main()
