"""The evaluation report: Markdown tables beside PNG plots (samples against real chains)."""

import math
from pathlib import Path

import numpy as np

from protgen.evaluation.designability import MPNN_MODES, design_column
from protgen.evaluation.quality import ALLOWED_REGIONS
from protgen.evaluation.summary import EvalSummary
from protgen.files import atomic_path
from protgen.geometry.compactness import RG_EXPONENT, RG_RATIO_MEDIAN, RG_RATIO_RANGE

__all__ = ["write_report"]

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
    ("rg_ratio", f"Rg / L^0.38, Å (real ≈ {RG_RATIO_MEDIAN})", "{:.2f}"),
    ("rama_allowed", "Ramachandran allowed", "{:.1%}"),
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


def _plots(out: Path, rows, ref_rows, tm, ref_tm) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt

    made = []

    def save(fig, name):
        fig.tight_layout()
        try:
            with atomic_path(out / name) as tmp:
                fig.savefig(tmp, dpi=100, format="png")
        finally:
            plt.close(fig)
        made.append(name)

    sets = [("samples", rows, "C0")] + ([("real chains", ref_rows, "C1")] if ref_rows else [])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    width = 0.8 / len(sets)
    for k, (label, rs, colour) in enumerate(sets):
        values = [
            np.mean([getattr(r.panel, key) for r in rs]) for key in ("helix", "strand", "coil")
        ]
        ax.bar(np.arange(3) + k * width, values, width, label=label, color=colour)
    ax.set_xticks(np.arange(3) + width * (len(sets) - 1) / 2, ["helix", "strand", "coil"])
    ax.set(ylabel="fraction of residues", title="secondary structure (DSSP)")
    ax.legend()
    save(fig, "secondary_structure.png")

    fig, ax = plt.subplots(figsize=(5, 3.5))
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
    scale = length**RG_EXPONENT
    ax.plot(
        length,
        RG_RATIO_MEDIAN * scale,
        "k--",
        lw=1,
        label=f"{RG_RATIO_MEDIAN}·L^{RG_EXPONENT} (real chains, median)",
    )
    ax.fill_between(
        length,
        RG_RATIO_RANGE[0] * scale,
        RG_RATIO_RANGE[1] * scale,
        color="0.85",
        zorder=0,
        label="real chains, 5–95 %",
    )
    ax.set(xlabel="length", ylabel="Rg of CA, Å", title="compactness")
    ax.legend()
    save(fig, "rg_vs_length.png")

    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.8), squeeze=False)
    for ax, (label, rs, _) in zip(axes[0], sets):
        phi = np.concatenate([r.phi for r in rs] or [np.zeros(0)])
        psi = np.concatenate([r.psi for r in rs] or [np.zeros(0)])
        *_, image = ax.hist2d(
            phi, psi, bins=72, range=[[-180, 180], [-180, 180]], cmap="viridis", cmin=1
        )
        fig.colorbar(image, ax=ax, label="residues per 5°×5° bin")
        for (x0, x1), (y0, y1) in ALLOWED_REGIONS:  # the panel's "allowed" rectangles
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (x0, y0), x1 - x0, y1 - y0, fill=False, ec="red", lw=0.8, ls="--"
                )
            )
        ax.set(
            xlabel="φ, °",
            ylabel="ψ, °",
            title=f"Ramachandran: {label}",
            xlim=(-180, 180),
            ylim=(-180, 180),
        )
    save(fig, "ramachandran.png")

    fig, ax = plt.subplots(figsize=(5, 3.5))
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
        ax.legend(fontsize=8)
    save(fig, "tm_scores.png")

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
        ax.legend(fontsize=8)
        save(fig, "scrmsd_vs_length.png")
    return made


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
    if summary.skipped:
        lines += [
            "",
            f"Skipped {len(summary.skipped)} file(s): "
            + ", ".join(f"{name} ({reason})" for name, reason in summary.skipped[:20]),
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
