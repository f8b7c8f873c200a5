"""The evaluation's summary: what ``protgen eval`` writes to summary.json and ``protgen.evaluate``
returns, as records (``to_dict()`` gives the JSON layout), and their assembly from the
per-structure results."""

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from protgen.evaluation.results import StructureResult
from protgen.evaluation.similarity import single_linkage_clusters

__all__ = ["MotifSuccess", "SetSummary", "EvalSummary", "set_summary", "rg_in_range"]


@dataclass(frozen=True)
class MotifSuccess:
    """The motif benchmark's rule over the scaffolds of a set (RFdiffusion, MotifBench):
    rmsd_below_1A: fraction with motif RMSD < 1 Å; success: fraction with that and a design that
    refolds within 2 Å (None without folds); unique_successes: clusters of the successful
    scaffolds at TM-score 0.6 (None without successes)."""

    scaffolds: int
    rmsd_below_1A: float
    success: float | None = None
    unique_successes: int | None = None

    def to_dict(self) -> dict:
        return {f"motif_{k}": v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class SetSummary:
    """One set of structures (the samples, or the real chains): how many, their mean length, the
    mean of every other numeric column of structures.csv (the quality panel, designability per
    ProteinMPNN mode, novelty, motif RMSD), their diversity and, for scaffolds, the motif rule."""

    count: int
    length_mean: float
    means: Mapping[str, float]
    pairwise_tm_mean: float | None = None
    clusters_tm05_fraction: float | None = None  # clusters at TM-score 0.5 per structure
    clusters_tm06_fraction: float | None = None
    motif: MotifSuccess | None = None

    def mean(self, column: str) -> float:
        """The mean of one column (NaN when no structure has it)."""
        return self.means.get(column, math.nan)

    def to_dict(self) -> dict:
        """The flat layout of summary.json and report.md's table."""
        out = {"count": self.count, **self.means, "length_mean": self.length_mean}
        if self.pairwise_tm_mean is not None:
            out["pairwise_tm_mean"] = self.pairwise_tm_mean
            out["clusters_tm0.5_fraction"] = self.clusters_tm05_fraction
            out["clusters_tm0.6_fraction"] = self.clusters_tm06_fraction
        return out | (self.motif.to_dict() if self.motif is not None else {})


@dataclass(frozen=True)
class EvalSummary:
    """What an evaluation found: the samples (and the real chains, with a reference set), the
    fraction of samples whose Rg/L^0.38 lies in the real chains' 5–95 % range, the files skipped
    (name, reason) and the settings; then the secondary-structure agreement of conditioned samples
    (pooled over their constrained residues: samples, residues, agreement and per requested state
    helix/strand/loop_agreement; None without conditioned samples), the notes on files used with
    a repair (name, note: a placed O, a CA trace, model 1 of several) and the folder of
    ProteinMPNN's designs (None when none were written)."""

    source: str
    samples: SetSummary
    reference: SetSummary | None
    rg_ratio_in_reference_range: float | None
    reference_set: str | None
    reference_distinct_chains: int
    skipped: tuple[tuple[str, str], ...]
    config: object  # the EvalConfig
    ss_condition: Mapping[str, float | int | None] | None = None
    notes: tuple[tuple[str, str], ...] = ()
    designs: str | None = None

    def to_dict(self) -> dict:
        """summary.json's layout."""
        return {
            "source": self.source,
            "samples": self.samples.to_dict(),
            "ss_condition": dict(self.ss_condition) if self.ss_condition is not None else None,
            "reference": self.reference.to_dict() if self.reference is not None else None,
            "rg_ratio_in_reference_range": self.rg_ratio_in_reference_range,
            "reference_set": self.reference_set,
            "reference_distinct_chains": self.reference_distinct_chains,
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "notes": [{"file": f, "note": n} for f, n in self.notes],
            "designs": self.designs,
            "config": asdict(self.config),
        }


def _mean(rows: list[dict], key: str) -> float:
    values = [
        float(r[key])
        for r in rows
        if key in r
        and r[key] is not None
        and not (isinstance(r[key], float) and math.isnan(r[key]))
    ]
    return float(np.mean(values)) if values else float("nan")


def set_summary(
    results: list["StructureResult"], tm: np.ndarray | None, motif: MotifSuccess | None = None
) -> SetSummary:
    """One set's summary from its structures' results, its TM-score matrix ``tm`` (diversity; None
    or one structure: none) and the motif rule."""
    rows = [r.row() for r in results]
    # every numeric column of any row: a first row whose designability failed must not hide it
    numeric = [
        k
        for k in dict.fromkeys(k for r in rows for k in r)
        if not k.startswith("_") and any(isinstance(r.get(k), (int, float, bool)) for r in rows)
    ]
    means = {k: _mean(rows, k) for k in numeric if k not in ("length",)}
    diversity = {}
    if tm is not None and len(tm) > 1:
        diversity = {
            "pairwise_tm_mean": float(tm[np.triu_indices(len(tm), 1)].mean()),
            "clusters_tm05_fraction": single_linkage_clusters(tm, 0.5) / len(tm),
            "clusters_tm06_fraction": single_linkage_clusters(tm, 0.6) / len(tm),
        }
    return SetSummary(len(rows), _mean(rows, "length"), means, **diversity, motif=motif)


def rg_in_range(results: list["StructureResult"], reference: list["StructureResult"]) -> float:
    """Fraction of samples whose Rg/L^0.38 lies within the real chains' 5–95 % range."""
    low, high = np.percentile([r.panel.rg_ratio for r in reference], [5, 95])
    return float(np.mean([low <= r.panel.rg_ratio <= high for r in results]))
