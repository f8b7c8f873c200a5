"""The evaluation report: Markdown tables beside PNG plots (samples against real chains)."""

import math
from pathlib import Path

import numpy as np

from protgen.evaluation.designability import MPNN_MODES, design_column
from protgen.evaluation.quality import RG_RATIO_PDB, allowed_grid
from protgen.evaluation.summary import EvalSummary
from protgen.files import atomic_path
from protgen.geometry.compactness import RG_EXPONENT, RG_RATIO_MEDIAN

__all__ = ["write_report", "figures"]

_MODE_NAMES = {"full": "full backbone", "ca": "CA-only"}
_DESIGN_ROWS = [  # (figure, label, format): one row per ProteinMPNN mode that ran
    ("mpnn_score", "ProteinMPNN score", "{:.3f}"),
    ("seq_entropy", "designed-sequence entropy, bits", "{:.2f}"),
    ("seq_top_fraction", "largest single-residue fraction", "{:.1%}"),
    ("sc_rmsd", "scRMSD, Å", "{:.2f}"),
    ("sc_tm", "scTM", "{:.3f}"),
    ("designable", "designable (scRMSD < 2 Å)", "{:.1%}"),
]
_TABLE = [  # (summary key, label, format)
    ("count", "structures", "{:.0f}"),
    ("length_mean", "mean length", "{:.1f}"),
    ("geometry_ok", "geometry OK (no break/clash, CA–CA in range)", "{:.1%}"),
    ("ca_ca", "CA–CA(next) median, Å (real 3.80)", "{:.3f}"),
    ("ca_ca_ok", "CA–CA(next) within 3.65–3.95 Å", "{:.1%}"),
    ("c_n", "C–N(next) median, Å (real 1.33)", "{:.3f}"),
    ("c_o", "C=O median, Å (ideal 1.23)", "{:.3f}"),
    ("chain_breaks", "chain breaks per structure", "{:.2f}"),
    ("clashes", "clashes per structure", "{:.2f}"),
    ("helix", "helix (DSSP)", "{:.1%}"),
    ("strand", "strand (DSSP)", "{:.1%}"),
    ("coil", "coil (DSSP)", "{:.1%}"),
    ("rg_ratio", f"Rg / L^0.38, Å (PDB chains ≈ {RG_RATIO_MEDIAN})", "{:.2f}"),
    ("rama_allowed", "Ramachandran allowed (98 % contour of real chains)", "{:.1%}"),
    *(
        (design_column(mode, figure), f"{label} ({_MODE_NAMES[mode]} MPNN)", fmt)
        for mode in MPNN_MODES
        for figure, label, fmt in _DESIGN_ROWS
    ),
    ("pairwise_tm_mean", "mean pairwise TM-score", "{:.3f}"),
    ("clusters_tm0.5_fraction", "clusters at TM 0.5 / structures", "{:.2f}"),
    ("clusters_tm0.6_fraction", "clusters at TM 0.6 / structures", "{:.2f}"),
    ("novelty_max_tm", "novelty: mean max TM to reference", "{:.3f}"),
    ("motif_rmsd", "motif RMSD, Å (N, CA, C; superposed)", "{:.3f}"),
    ("motif_rmsd_below_1A", "motif RMSD < 1 Å", "{:.1%}"),
    ("motif_success", "motif success (scRMSD < 2 Å and motif RMSD < 1 Å)", "{:.1%}"),
    ("motif_unique_successes", "unique successes (clusters at TM 0.6)", "{:.0f}"),
]


def _fmt(summary: dict | None, key: str, fmt: str) -> str:
    if (
        not summary
        or key not in summary
        or summary[key] is None
        or (isinstance(summary[key], float) and math.isnan(summary[key]))
    ):
        return "—"
    return fmt.format(summary[key])


def _legend_outside(ax, **kwargs) -> None:
    """A legend to the right of the axes, where it covers no data point."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def _rg_band(ref_rows) -> tuple[tuple[float, float, float], str]:
    """Rg/L^0.38 5 %, median and 95 % of the reference chains, or the PDB constant, and a label."""
    if ref_rows:
        ratios = [r.panel.rg_ratio for r in ref_rows]
        low, mid, high = (float(v) for v in np.percentile(ratios, [5, 50, 95]))
        return (low, mid, high), f"reference chains ({len(ratios)})"
    return RG_RATIO_PDB, "PDB chains (constant; no --reference)"


def figures(rows, ref_rows, tm, ref_tm) -> list:
    """(file name, matplotlib figure) of every plot: samples beside the reference chains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    made = []
    sets = [("samples", rows, "C0")] + ([("real chains", ref_rows, "C1")] if ref_rows else [])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / len(sets)
    for k, (label, rs, colour) in enumerate(sets):
        values = [
            np.nanmean([getattr(r.panel, key) for r in rs] or [np.nan])
            for key in ("helix", "strand", "coil")
        ]
        ax.bar(np.arange(3) + k * width, values, width, label=label, color=colour)
    ax.set_xticks(np.arange(3) + width * (len(sets) - 1) / 2, ["helix", "strand", "coil"])
    ax.set(ylabel="fraction of residues", title="secondary structure (DSSP)")
    _legend_outside(ax)
    made.append(("secondary_structure.png", fig))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, rs, colour in sets:
        ax.scatter(
            [r.panel.length for r in rs],
            [r.panel.rg for r in rs],
            s=10,
            label=label,
            color=colour,
            alpha=0.7,
        )
    length = np.linspace(
        min(r.panel.length for r in rows + ref_rows) * 0.9,
        max(r.panel.length for r in rows + ref_rows) * 1.1,
        100,
    )
    (low, mid, high), source = _rg_band(ref_rows)
    scale = length**RG_EXPONENT
    ax.plot(length, mid * scale, "k--", lw=1, label=f"{mid:.2f}·L^{RG_EXPONENT}: {source}, median")
    ax.fill_between(
        length,
        low * scale,
        high * scale,
        color="0.85",
        zorder=0,
        label=f"{source}, 5–95 %",
    )
    ax.set(xlabel="length", ylabel="Rg of CA, Å", title="compactness")
    _legend_outside(ax, fontsize=8)
    made.append(("rg_vs_length.png", fig))

    grid, bin_width = allowed_grid()
    centres = np.arange(-180 + bin_width / 2, 180, bin_width)
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets) + 2.5, 3.8), squeeze=False)
    for ax, (label, rs, _) in zip(axes[0], sets):
        phi = np.concatenate([r.phi for r in rs] or [np.zeros(0)])
        psi = np.concatenate([r.psi for r in rs] or [np.zeros(0)])
        *_, image = ax.hist2d(
            phi, psi, bins=72, range=[[-180, 180], [-180, 180]], cmap="viridis", cmin=1
        )
        fig.colorbar(image, ax=ax, label="residues per 5°×5° bin")
        ax.contour(centres, centres, grid[::-1].astype(float), levels=[0.5], colors="red")
        ax.set(
            xlabel="φ, °",
            ylabel="ψ, °",
            title=f"Ramachandran: {label}",
            xlim=(-180, 180),
            ylim=(-180, 180),
        )
    axes[0][-1].legend(
        [Line2D([], [], color="red")],
        ["allowed: 98 % contour\nof real chains' density"],
        loc="upper left",
        bbox_to_anchor=(1.35, 1.0),
        fontsize=8,
    )
    made.append(("ramachandran.png", fig))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(0, 1, 41)
    if tm is not None and len(tm) > 1:
        ax.hist(
            tm[np.triu_indices(len(tm), 1)],
            bins,
            alpha=0.6,
            density=True,
            label="samples, pairwise",
        )
    if ref_tm is not None and len(ref_tm) > 1:
        ax.hist(
            ref_tm[np.triu_indices(len(ref_tm), 1)],
            bins,
            alpha=0.6,
            density=True,
            label="real chains, pairwise",
        )
    novelty = [r.novelty_max_tm for r in rows if r.novelty_max_tm is not None]
    if novelty:
        ax.hist(novelty, bins, alpha=0.6, density=True, label="samples, max TM to reference")
    ax.set(xlabel="TM-score", ylabel="density", title="diversity and novelty")
    if ax.get_legend_handles_labels()[0]:  # one sample and no reference: nothing to label
        _legend_outside(ax, fontsize=8)
    made.append(("tm_scores.png", fig))

    sc = {
        mode: [
            (r.panel.length, d.folded.sc_rmsd)
            for r in rows
            for d in r.designs
            if d.mode == mode and d.folded is not None
        ]
        for mode in MPNN_MODES
    }
    if any(sc.values()):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for mode, points in sc.items():
            if points:
                ax.scatter(*zip(*points), s=12, label=f"{_MODE_NAMES[mode]} ProteinMPNN")
        ax.axhline(2.0, color="k", ls="--", lw=1)
        ax.set(xlabel="length", ylabel="scRMSD, Å", title="self-consistency")
        _legend_outside(ax, fontsize=8)
        made.append(("scrmsd_vs_length.png", fig))
    return made


def _plots(out: Path, rows, ref_rows, tm, ref_tm) -> list[str]:
    """Save every figure atomically; returns the file names."""
    import matplotlib.pyplot as plt

    names = []
    for name, fig in figures(rows, ref_rows, tm, ref_tm):
        try:
            with atomic_path(out / name) as tmp:
                fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        finally:
            plt.close(fig)
        names.append(name)
    return names


def write_report(out: Path, rows, ref_rows, tm, ref_tm, summary: EvalSummary) -> Path:
    """report.md with the summary table (samples | real chains) and the plots."""
    plots = _plots(out, rows, ref_rows, tm, ref_tm)
    s = summary.samples.to_dict()
    r = summary.reference.to_dict() if summary.reference is not None else None
    lines = [
        "# protgen evaluation",
        "",
        f"Samples: `{summary.source}`"
        + (
            f"; real chains: {summary.reference_distinct_chains} distinct chains from "
            f"`{summary.reference_set}`"
            if r
            else ""
        ),
        "",
        "| metric | samples | real chains |",
        "|---|---|---|",
    ]
    for key, label, fmt in _TABLE:
        if _fmt(s, key, fmt) != "—" or _fmt(r, key, fmt) != "—":
            lines.append(f"| {label} | {_fmt(s, key, fmt)} | {_fmt(r, key, fmt)} |")
    if summary.rg_ratio_in_reference_range is not None:
        lines.append(
            "| Rg/L^0.38 within the real chains' 5–95 % range | "
            f"{summary.rg_ratio_in_reference_range:.1%} | 90.0% |"
        )
    ss = summary.ss_condition
    if ss:
        pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
        lines += [
            "",
            f"Secondary-structure condition: {ss['samples']} conditioned sample(s), "
            f"{ss['residues']} constrained residues; DSSP of the sample against the request, "
            "per residue:",
            "",
            "| requested | agreement |",
            "|---|---|",
            f"| all constrained residues | {pct(ss['agreement'])} |",
            f"| helix (H) | {pct(ss['helix_agreement'])} |",
            f"| strand (E) | {pct(ss['strand_agreement'])} |",
            f"| loop (L) | {pct(ss['loop_agreement'])} |",
        ]
    if summary.skipped:
        lines += [
            "",
            f"Skipped {len(summary.skipped)} file(s): "
            + ", ".join(f"{name} ({reason})" for name, reason in summary.skipped[:20]),
        ]
    if summary.notes:
        lines += ["", "Notes:", ""] + [f"- {name}: {note}" for name, note in summary.notes]
    if summary.designs:
        lines += [
            "",
            "ProteinMPNN's designs (FASTA with scores; best folds as PDB) are in "
            f"`{summary.designs}/`.",
        ]
    ran = [m for m in MPNN_MODES if design_column(m, "mpnn_score") in s]
    if not ran:
        lines += [
            "",
            "ProteinMPNN was not run (not installed, or --mpnn off); designability needs it and a "
            "folding model.",
        ]
    elif not any(design_column(m, "sc_rmsd") in s for m in ran):
        lines += [
            "",
            "No folding model was given (--fold-model): scRMSD/scTM/designability were not "
            "computed.",
        ]
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    path = out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path
