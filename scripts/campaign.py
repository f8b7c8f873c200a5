"""The training campaign's ledger: one row per stretch of training, and its plot.

``record`` appends a row for the stretch of RUN since that run's previous row in the ledger (or
since its start): steps, epochs (chains seen over the training split's chains), core-hours (the
run's validation.csv, process CPU time of the training steps; estimated from metrics.csv for runs
that predate it) and the cumulative core-hours of the ledger, the last validation figures
(one-pass x̂_1 RMSD and strand recall at t = 0.5 and 0.7), and, with ``--panel EVAL``, the pooled
figures of a `protgen eval` folder (samples and, beside them, its real chains). ``plot`` draws
the ledger against cumulative core-hours: the campaign's stretches (stages named campaign-… and
warm-start) as lines, its cool-down branches (cool-…: the campaign's weights fine-tuned with a
decaying learning rate, what ships) as stars, and conditional models fine-tuned from a shipped one
(motif-…, ss-…: their validation chains carry no condition) as crosses; fine-tunes of another
process (insertion-…: Process 3 on the 40–256 set) count in the core-hours but are not drawn,
their validation being on another path and set. The cumulative core-hours
are the ledger's, every row in the order it ran: a fine-tune sits where it ran, not beside its
parent.

Usage:
  python scripts/campaign.py record RUN --stage NAME [--panel EVAL_DIR] [--note TEXT]
  python scripts/campaign.py plot
"""

import argparse
import csv
import datetime
import json
from pathlib import Path

LEDGER = Path(__file__).parent / "results" / "campaign.csv"
_VALIDATION = ("rmsd@0.5", "rmsd@0.7", "strand_recall@0.5", "strand_recall@0.7")
FIELDS = (
    "date",
    "run",
    "stage",
    "init_from",
    "step",
    "steps",
    "epochs",
    "core_hours",
    "cumulative_core_hours",
    "rmsd@0.5",
    "rmsd@0.7",
    "strand_recall@0.5",
    "strand_recall@0.7",
    "panel_samples",
    "geometry_ok",
    "strand",
    "helix",
    "clashes",
    "ca_ca_ok",
    "real_geometry_ok",
    "real_strand",
    "real_helix",
    "note",
)


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _core_hours(run: Path) -> tuple[int, float]:
    """(last validated step, core-hours to reach it): validation.csv's, or for runs without that
    column the training time summed from metrics.csv (one thread: wall ≈ core time)."""
    val = _rows(run / "validation.csv")
    if val and val[-1].get("core_hours"):
        return int(val[-1]["step"]), float(val[-1]["core_hours"])
    metrics = _rows(run / "metrics.csv")
    seconds, previous = 0.0, 0
    for row in metrics:
        step = int(row["step"])
        seconds += (step - previous) / float(row["steps_per_s"])
        previous = step
    return previous, seconds / 3600


def _panel(folder: Path) -> dict:
    """Pooled DSSP fractions and rates of an eval folder's samples and real chains."""

    def pooled(rows: list[dict]) -> dict:
        residues = sum(int(r["length"]) for r in rows)
        weighted = lambda k: sum(float(r[k]) * int(r["length"]) for r in rows) / residues
        return {
            "n": len(rows),
            "geometry_ok": sum(r["geometry_ok"] == "True" for r in rows) / len(rows),
            "strand": weighted("strand"),
            "helix": weighted("helix"),
            "clashes": sum(float(r["clashes"]) for r in rows) / len(rows),
            "ca_ca_ok": sum(float(r["ca_ca_ok"]) for r in rows) / len(rows),
        }

    samples = pooled(_rows(folder / "structures.csv"))
    real = pooled(_rows(folder / "reference.csv")) if (folder / "reference.csv").exists() else {}
    return {
        "panel_samples": samples["n"],
        **{
            k: f"{samples[k]:.4g}"
            for k in ("geometry_ok", "strand", "helix", "clashes", "ca_ca_ok")
        },
        **{f"real_{k}": f"{real[k]:.4g}" for k in ("geometry_ok", "strand", "helix") if real},
    }


def record(args) -> None:
    branch(args.stage)  # a stage the plot can place, before anything is written
    run = args.run
    ledger = _rows(args.ledger)
    config = json.loads((run / "config.json").read_text())
    step, hours = _core_hours(run)
    before = [r for r in ledger if r["run"] == str(run)]
    done_steps = int(before[-1]["step"]) if before else 0
    done_hours = sum(float(r["core_hours"]) for r in before)
    steps, stretch = step - done_steps, hours - done_hours
    from protgen.data.dataset import TrainingSet

    chains = len(TrainingSet.load(config["data"]).indices("train"))
    per_step = config["train"]["batch_size"]  # whole steps: exactly; older runs: at most
    val = _rows(run / "validation.csv")
    last = val[-1] if val else {}
    before_hours = float(ledger[-1]["cumulative_core_hours"]) if ledger else 0
    row = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "run": str(run),
        "stage": args.stage,
        "init_from": config.get("init_from") or "",
        "step": step,
        "steps": steps,
        "epochs": f"{steps * per_step / chains:.2f}",
        "core_hours": f"{stretch:.3f}",
        "cumulative_core_hours": f"{before_hours + stretch:.3f}",
        **{k: last.get(k, "") for k in _VALIDATION},
        **(_panel(args.panel) if args.panel else {}),
        "note": args.note,
    }
    args.ledger.parent.mkdir(parents=True, exist_ok=True)
    new = not args.ledger.exists()
    with open(args.ledger, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(", ".join(f"{k} {row.get(k, '')}" for k in FIELDS if row.get(k, "") != ""))


BRANCHES = {
    "campaign": "",
    "warm-start": "",
    "cool": "cool-down",
    "motif": "fine-tune",
    "ss": "fine-tune",
    # another process's model (Process 3 on the 40–256 set): its validation figures are on
    # another path and set, so the plot leaves them out; its core-hours count
    "insertion": "other process",
}


def branch(stage: str) -> str:
    """Which line of the plot a ledger row belongs to: "" (the campaign), "cool-down" or
    "fine-tune" (a conditional model fine-tuned from a shipped one) or "other process" (not
    drawn), by the name before the stage's number (campaign-5, cool-2, motif-1; warm-start has
    none)."""
    for prefix, kind in BRANCHES.items():
        if stage == prefix or stage.startswith(prefix + "-"):
            return kind
    raise SystemExit(
        f"stage {stage!r}: name it warm-start, campaign-N, cool-N, motif-N, ss-N or insertion-N"
    )


def plot(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(args.ledger)
    x = [float(r["cumulative_core_hours"]) for r in rows]
    kinds = [branch(r["stage"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, keys, label in (
        (axes[0], ("rmsd@0.5", "rmsd@0.7"), "x̂₁ RMSD {}"),
        (axes[1], ("strand_recall@0.5", "strand_recall@0.7"), "strand recall {}"),
    ):
        for key, style, colour in zip(keys, "os", ("C0", "C1")):
            t = key.split("@")[1]
            for kind, mark in (("", f"{style}-"), ("cool-down", "*"), ("fine-tune", "x")):
                xs = [xi for xi, k in zip(x, kinds) if k == kind]
                ys = [float(r[key] or "nan") for r, k in zip(rows, kinds) if k == kind]
                if xs:
                    ax.plot(
                        xs,
                        ys,
                        mark,
                        color=colour,
                        markersize=6 if kind == "" else 10,
                        label=label.format(t) + (f", {kind}" if kind else ""),
                    )
    axes[0].set_ylabel("Å (validation, one pass)")
    axes[1].set_ylabel("strand recall (validation)")
    panel = [(xi, r) for xi, r in zip(x, rows) if r.get("geometry_ok")]
    for key, style in (("geometry_ok", "o"), ("strand", "s"), ("helix", "^")):
        axes[2].plot([p[0] for p in panel], [float(p[1][key]) for p in panel], style, label=key)
        real = [(p[0], float(p[1][f"real_{key}"])) for p in panel if p[1].get(f"real_{key}")]
        if real:
            axes[2].plot(*zip(*real), "_", markersize=14, label=f"real chains: {key}")
    axes[2].set_ylabel("panel fraction")
    for ax in axes:
        ax.set_xlabel("cumulative core-hours")
        ax.legend(fontsize=8)
    fig.suptitle("protgen training campaign (scripts/results/campaign.csv)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot: {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ledger", type=Path, default=LEDGER)
    verbs = parser.add_subparsers(dest="verb", required=True)
    r = verbs.add_parser("record", help="append the stretch of a run since its last row")
    r.add_argument("run", type=Path)
    r.add_argument("--stage", required=True, help="a name for this stretch (e.g. campaign-1)")
    r.add_argument(
        "--panel", type=Path, help="a `protgen eval` folder of this checkpoint's samples"
    )
    r.add_argument("--note", default="")
    r.set_defaults(run_verb=record)
    p = verbs.add_parser("plot", help="draw the ledger")
    p.add_argument("--out", type=Path, default=LEDGER.with_suffix(".png"))
    p.set_defaults(run_verb=plot)
    args = parser.parse_args()
    args.run_verb(args)


if __name__ == "__main__":
    main()
