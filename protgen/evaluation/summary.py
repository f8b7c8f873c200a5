"""The evaluation's summary: what ``protgen eval`` writes to summary.json and ``protgen.evaluate``
returns, as records (``to_dict()`` gives the JSON layout)."""

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

__all__ = ["MotifSuccess", "SetSummary", "EvalSummary"]


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
