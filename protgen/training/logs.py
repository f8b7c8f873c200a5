"""The run directory's logs: metrics.csv, validation.csv and loss.png (written by rank 0)."""

import csv
from pathlib import Path

import numpy as np

from protgen.files import atomic_path
from protgen.method.loss import TERM_NAMES

__all__ = ["append_csv", "truncate_csv", "read_csv", "plot", "figure"]


def append_csv(path: Path, row: dict) -> None:
    """Append one row (the header first, for a new file); floats with 6 significant digits. A file
    begun by another protgen version keeps its header: columns it lacks are left out."""
    new = not path.exists()
    names = list(row)
    if not new:
        with open(path, newline="") as handle:
            names = next(csv.reader(handle), None) or names
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def truncate_csv(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint a run resumes from (or all rows for a new run)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step] if rows else []
    if len(keep) <= 1:
        path.unlink()
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        csv.writer(handle).writerows(keep)


def read_csv(path: Path) -> dict[str, list[float]]:
    """Columns of a log as floats ({} for a missing or empty file)."""
    if not path.exists():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return (
        {
            k: [float(r[k]) if r.get(k) not in (None, "") else float("nan") for r in rows]
            for k in rows[0]
        }
        if rows
        else {}
    )


def _readable_log_axis(ax) -> None:
    """Ticks at 1, 2 and 5 times powers of ten, labelled as plain numbers (no 1.122×10¹)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot(out: Path) -> None:
    """loss.png: training loss per component, validation loss by time bin, and the denoising
    diagnostics (x̂_1 RMSD, strand recall, clashes per 100 residues at each diagnostic time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, val = read_csv(out / "metrics.csv"), read_csv(out / "validation.csv")
    if not metrics:
        return
    fig = figure(metrics, val)
    with atomic_path(out / "loss.png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def figure(metrics: dict[str, list[float]], val: dict[str, list[float]]):
    """The three panels of loss.png from the columns of metrics.csv and validation.csv: every
    loss term the run logged (TERM_NAMES), and the diagnostics at whatever times were logged."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for k, key in enumerate(key for key in ("loss", *TERM_NAMES) if key in metrics):
        values = np.asarray(metrics[key])
        window = max(1, min(25, len(values) // 10))
        label = key if window == 1 else f"{key} (running mean of {window} rows)"
        axes[0].plot(
            metrics["step"], values, color=f"C{k}", lw=0.5, alpha=0.3 if window > 1 else 1.0
        )
        if window > 1:
            axes[0].plot(
                metrics["step"][window - 1 :],
                np.convolve(values, np.ones(window) / window, mode="valid"),
                color=f"C{k}",
                lw=1.5,
                label=label,
            )
        else:
            axes[0].lines[-1].set_label(label)
    axes[0].set(xlabel="step", ylabel="training loss", yscale="log", title="training")
    axes[0].legend(fontsize=8)
    for key in (k for k in val if k.startswith("t=")):
        axes[1].plot(val["step"], val[key], label=key, marker=".")
    axes[1].set(
        xlabel="step",
        ylabel="validation loss (EMA weights)",
        yscale="log",
        title="validation by time",
    )
    for ax in axes[:2]:
        _readable_log_axis(ax)
    diag = axes[2]
    twin = diag.twinx()
    times = [key.removeprefix("rmsd@") for key in val if key.startswith("rmsd@")]
    for k, t in enumerate(times):
        style = ("-", "--", ":", "-.")[k % 4]
        diag.plot(
            val["step"],
            val[f"rmsd@{t}"],
            color="C0",
            ls=style,
            marker=".",
            label=f"x̂₁ CA RMSD, Å (t={t})",
        )
        twin.plot(
            val["step"],
            val[f"strand_recall@{t}"],
            color="C2",
            ls=style,
            label=f"strand recall (t={t})",
        )
        twin.plot(
            val["step"],
            np.asarray(val[f"clashes_per_100@{t}"]) / 100,
            color="C3",
            ls=style,
            label=f"clashes per residue (t={t})",
        )
    diag.set(xlabel="step", ylabel="Å", title="one-pass denoising of validation chains")
    twin.set_ylabel("fraction")
    if val:
        axes[1].legend(fontsize=8)
        lines = diag.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        if lines:
            diag.legend(lines, [line.get_label() for line in lines], fontsize=7)
    fig.tight_layout()
    return fig
