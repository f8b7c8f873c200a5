"""Compare training recipes on equal compute: learning curves against core-hours, and a small
sample panel of each run's last checkpoint beside real chains.

Each run directory's validation.csv holds the EMA model's one-pass denoising figures on the same
validation chains and noise for every run of one training set and seed (``val_chains`` chains per
batch, whatever the batch size), with the core-hours (process CPU time of the training steps)
spent to reach them. The table reads every curve at common budgets by linear interpolation; the
panel samples ``--num`` backbones at each of ``--lengths`` (100 steps, the sampler's defaults) and
scores them with the offline quality panel, beside as many distinct validation chains of the
nearest lengths.

Usage: python scripts/compare_recipes.py RUN [RUN ...] --set SET [--panel] [--plot PNG] [--budgets
0.25,0.5,0.75]
"""

import argparse
import csv
from pathlib import Path

import numpy as np

FIGURES = ("rmsd@0.5", "rmsd@0.7", "strand_recall@0.5", "strand_recall@0.7", "clashes_per_100@0.5")


def read_curve(run: Path) -> dict[str, np.ndarray]:
    """validation.csv's columns as arrays (rows without core-hours are dropped)."""
    with open(run / "validation.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("core_hours")]
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]} if rows else {}


def at_budget(curve: dict[str, np.ndarray], figure: str, hours: float) -> float:
    """The figure interpolated at ``hours`` core-hours (NaN beyond the curve's end)."""
    x = curve["core_hours"]
    return float(np.interp(hours, x, curve[figure])) if x[0] <= hours <= x[-1] else float("nan")


def panel_rows(checkpoint: Path, lengths: list[int], num: int, seed: int) -> list:
    import protgen

    model = protgen.load_model(checkpoint)
    return [
        protgen.quality(a)
        for length in lengths
        for a in protgen.sample(model, length=length, num=num, seed=seed)
    ]


def real_rows(set_path: str, lengths: list[int], num: int, split: str) -> list:
    """Distinct chains of the split's clusters, the ``num`` nearest in length to each length."""
    import protgen
    from protgen.data.dataset import TrainingSet

    ts = TrainingSet.load(set_path)
    pool = {i: ts.records[i].length for i in ts.indices(split)}
    rows = []
    for length in lengths:
        chosen = sorted(pool, key=lambda i: (abs(pool[i] - length), ts.records[i].id))[:num]
        for i in chosen:
            pool.pop(i)
            rows.append(protgen.quality(ts.segment_atoms(i)))
    return rows


def summarise(panels: list) -> str:
    ok = np.mean([p.geometry_ok for p in panels])
    clashes = np.mean([p.clashes for p in panels])
    residues = sum(p.length for p in panels)
    strand = sum(p.strand * p.length for p in panels) / residues
    helix = sum(p.helix * p.length for p in panels) / residues
    ca_ca = np.mean([p.ca_ca_ok for p in panels])
    breaks = np.mean([p.chain_breaks for p in panels])
    return (
        f"{100 * ok:>7.0f}{clashes:>9.1f}{breaks:>8.2f}{100 * strand:>8.1f}{100 * helix:>7.1f}"
        f"{100 * ca_ca:>8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of `protgen train`")
    parser.add_argument(
        "--set",
        required=True,
        help="the training set the runs validated on (real chains of the panel)",
    )
    parser.add_argument(
        "--budgets",
        default="",
        help="core-hours to read the curves at (default: quarters of the shortest run)",
    )
    parser.add_argument(
        "--panel", action="store_true", help="also sample and score each run's last checkpoint"
    )
    parser.add_argument("--lengths", default="60,80,100,120")
    parser.add_argument("--num", type=int, default=2, help="samples per length in the panel")
    parser.add_argument("--split", default="val", help="split of the panel's real chains")
    parser.add_argument("--plot", type=Path, help="PNG of the curves against core-hours")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    curves = {run: read_curve(run) for run in args.runs}
    missing = [str(run) for run, curve in curves.items() if not curve]
    if missing:
        parser.error(f"no validation rows with core-hours in {', '.join(missing)}")
    shortest = min(c["core_hours"][-1] for c in curves.values())
    budgets = (
        [float(b) for b in args.budgets.split(",")]
        if args.budgets
        else [shortest * q for q in (0.25, 0.5, 0.75, 1.0)]
    )
    width = max(len(run.name) for run in curves) + 2
    for figure in FIGURES:
        print(f"\n{figure} at core-hours " + "  ".join(f"{b:.2f}" for b in budgets))
        for run, curve in curves.items():
            values = "".join(f"{at_budget(curve, figure, b):>7.3f}" for b in budgets)
            print(
                f"  {run.name:<{width}}{values}   (last: step {int(curve['step'][-1])}, "
                f"{curve['core_hours'][-1]:.2f} core-h, {curve[figure][-1]:.3f})"
            )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 4, figsize=(17, 4))
        for ax, figure in zip(axes, FIGURES[:4]):
            for run, curve in curves.items():
                ax.plot(curve["core_hours"], curve[figure], marker=".", label=run.name)
            ax.set_xlabel("core-hours")
            ax.set_title(f"validation {figure}")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"\nplot: {args.plot}")
    if args.panel:
        lengths = [int(x) for x in args.lengths.split(",")]
        print(
            f"\npanel: {args.num} samples at each of {lengths} residues (100 steps, seed 0), last "
            "checkpoints"
        )
        print(
            f"  {'':<{width}}{'geom ok%':>7}{'clashes':>9}{'breaks':>8}{'strand%':>8}{'helix%':>7}"
            f"{'CA-CA%':>8}"
        )
        for run in curves:
            rows = panel_rows(run / "checkpoint.pt", lengths, args.num, 0)
            print(
                f"  {run.name:<{width}}{summarise(rows)}",
                flush=True,
            )
        real = summarise(real_rows(args.set, lengths, args.num, args.split))
        print(f"  {'real chains (' + args.split + ')':<{width}}{real}")


if __name__ == "__main__":
    main()
