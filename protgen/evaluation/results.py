"""Everything measured on one structure (:class:`StructureResult`) and its quality-panel job with
that job's cache key."""

from dataclasses import dataclass, field

import numpy as np

from protgen.evaluation.cache import content_key
from protgen.evaluation.designability import DesignFigures
from protgen.evaluation.quality import QualityPanel, quality_panel, ramachandran

__all__ = ["PANEL_VERSION", "StructureResult", "panel_key", "panel_job"]


PANEL_VERSION = 2  # bump when the quality panel's figures change, so cached rows are recomputed


@dataclass
class StructureResult:
    """Everything measured on one structure: the quality panel and its (φ, ψ) angles (degrees),
    then what later stages add — ProteinMPNN/ESMFold figures per ProteinMPNN mode (``designs``),
    novelty (max TM-score to the reference) and motif RMSD (Å)."""

    file: str
    panel: QualityPanel
    phi: list[float]
    psi: list[float]
    designs: list[DesignFigures] = field(default_factory=list)
    novelty_max_tm: float | None = None
    motif_rmsd: float | None = None
    # for secondary-structure-conditioned samples: agreement of the sample's DSSP with the request
    ss_agreement: dict = field(default_factory=dict)

    @property
    def best_sc_rmsd(self) -> float | None:
        """The lowest scRMSD (Å) of any mode's folded designs, or None without folds."""
        folded = [d.folded.sc_rmsd for d in self.designs if d.folded is not None]
        return min(folded) if folded else None

    @staticmethod
    def of(file: str, cached: dict) -> "StructureResult":
        """From a cached panel job: the panel's fields and the angles."""
        panel = QualityPanel(**{k: v for k, v in cached.items() if not k.startswith("_")})
        return StructureResult(file, panel, cached["_phi"], cached["_psi"])

    def row(self) -> dict:
        """One flat row (structures.csv, summary means)."""
        out = {"file": self.file, **self.panel.row()}
        for design in self.designs:
            out.update(design.columns())
        if self.novelty_max_tm is not None:
            out["novelty_max_tm"] = self.novelty_max_tm
        if self.motif_rmsd is not None:
            out["motif_rmsd"] = self.motif_rmsd
        return {**out, **self.ss_agreement}


def panel_key(atoms: np.ndarray, chain: np.ndarray | None = None) -> str:
    """The cache key of a panel: the atoms, the panel's version and the chains of a multi-chain
    structure (a single chain's key has no chain part)."""
    parts = () if chain is None else ("chains", *np.asarray(chain).tolist())
    return content_key(atoms, "panel", PANEL_VERSION, *parts)


def panel_job(job: tuple[np.ndarray, np.ndarray | None]) -> dict:
    atoms, chain = job
    row = quality_panel(atoms, chain).row()
    phi, psi = ramachandran(atoms, chain)
    finite = np.isfinite(phi) & np.isfinite(psi)  # a CA trace has no angles
    row["_phi"], row["_psi"] = phi[finite].round(1).tolist(), psi[finite].round(1).tolist()
    return row
