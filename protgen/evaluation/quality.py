"""The offline quality panel of one backbone: bond geometry, chain breaks, clashes, secondary
structure, compactness and Ramachandran angles — what can be measured without a folding model.

Reference values for real chains (measured on ~1,600 PDB chain segments): N–CA 1.459 Å, CA–C
1.525 Å, C–N(next) 1.329 Å, CA–CA(next) 3.805 Å; Rg/L^0.38 as in ``geometry/compactness.py``.

The Ramachandran "allowed" region is the 98 % contour of real chains' (φ, ψ) density, stored in
``ramachandran_allowed.json`` beside this module by ``scripts/ramachandran_density.py``.
"""

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources

import numpy as np
import torch

from protgen.data.segment import MAX_CA_CA, peptide_breaks
from protgen.geometry.backbone import dihedral, in_ca_ca_range
from protgen.geometry.compactness import (
    RG_RATIO_MEDIAN,
    RG_RATIO_RANGE,
    radius_of_gyration,
    rg_ratio,
)
from protgen.geometry.contacts import CLASH_CA_CA, count_clashes
from protgen.geometry.secondary import composition, dssp

__all__ = [
    "QualityPanel",
    "quality_panel",
    "ramachandran",
    "allowed_grid",
    "in_allowed_region",
    "RG_RATIO_PDB",
]

# Rg/L^0.38 of PDB chain segments, Å: 5 %, median, 95 % (the constant used without a reference set)
RG_RATIO_PDB = (RG_RATIO_RANGE[0], RG_RATIO_MEDIAN, RG_RATIO_RANGE[1])


@dataclass(frozen=True)
class QualityPanel:
    """Per-structure figures. Lengths in Å, angles in degrees, fractions in [0, 1]. A CA-only
    backbone has NaN for what needs N, C or O (bonds, DSSP, Ramachandran); its clashes and breaks
    are those of the CA atoms."""

    length: int
    n_ca: float  # median N–CA bond
    ca_c: float  # median CA–C bond
    c_n: float  # median C–N(next) bond
    c_o: float  # median C=O bond
    ca_ca: float  # median CA–CA(next)
    n_ca_c: float  # median N–CA–C angle
    ca_ca_ok: float  # fraction of CA–CA(next) within 3.65–3.95 Å
    chain_breaks: int  # CA–CA(next) > 4.2 Å or C–N(next) > 2.0 Å
    clashes: int  # residue pairs |i − j| ≥ 2 with CA–CA < 3.0 Å or any backbone atoms < 2.2 Å
    helix: float  # DSSP fractions
    strand: float
    coil: float
    rg: float  # radius of gyration of CA
    rg_ratio: float  # Rg / L^0.38 (real chains: ~2.1–3.4)
    rama_allowed: float  # fraction of (φ, ψ) inside the 98 % contour of real chains' density
    geometry_ok: bool  # no break, no clash and ≥ 95 % of CA–CA(next) in range

    def row(self) -> dict:
        return asdict(self)


def ramachandran(
    atoms: np.ndarray, chain: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """φ and ψ of every residue with a neighbour of its own chain on either side (the inner
    residues of each chain), in degrees: two arrays of equal length (L − 2 for one chain).
    atoms: Å, (L, 4, 3); chain: (L,) chain label per residue (None: one chain)."""
    n, ca, c = (torch.as_tensor(atoms[:, k], dtype=torch.float64) for k in range(3))
    phi = torch.rad2deg(dihedral(c[:-2], n[1:-1], ca[1:-1], c[1:-1])).numpy()
    psi = torch.rad2deg(dihedral(n[1:-1], ca[1:-1], c[1:-1], n[2:])).numpy()
    joined = _joined(len(atoms), chain)
    inner = joined[:-1] & joined[1:]
    return phi[inner], psi[inner]


def _joined(length: int, chain: np.ndarray | None) -> np.ndarray:
    """(L − 1,) bool: residue i and i + 1 belong to the same chain."""
    if chain is None:
        return np.ones(max(length - 1, 0), bool)
    chain = np.asarray(chain)
    return chain[1:] == chain[:-1]


@cache
def _allowed_file() -> dict:
    path = resources.files("protgen.evaluation") / "ramachandran_allowed.json"
    return json.loads(path.read_text())


def allowed_grid() -> tuple[np.ndarray, int]:
    """The allowed (φ, ψ) bins — (ψ bins, φ bins) bool, ψ from +180° down, φ from −180° — and the
    bin width in degrees."""
    stored = _allowed_file()
    grid = np.array([[c == "#" for c in row] for row in stored["grid"]])
    return grid, int(stored["bin_degrees"])


def in_allowed_region(phi: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """True where (φ, ψ), degrees, lies in the allowed region (98 % contour of real chains)."""
    grid, width = allowed_grid()
    n = grid.shape[0]
    phi, psi = np.asarray(phi, dtype=float), np.asarray(psi, dtype=float)
    i_phi = np.clip(((phi + 180) // width).astype(int), 0, n - 1)
    i_psi = np.clip(((psi + 180) // width).astype(int), 0, n - 1)
    return grid[n - 1 - i_psi, i_phi] & np.isfinite(phi) & np.isfinite(psi)


def _angle(a, b, c):
    u, w = a - b, c - b
    cos = (u * w).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else float("nan")


def quality_panel(atoms: np.ndarray, chain: np.ndarray | None = None) -> QualityPanel:
    """All figures of one backbone. atoms: Å, (L, 4, 3), N, CA, C, O; L ≥ 3. chain: (L,) chain
    label of each residue (None: one chain): bonds to the next residue, chain breaks, clashes and
    angles are taken within chains, so the junction of two chains is not a break. A backbone
    whose N, C and O are NaN (CA only) gets the CA figures only."""
    atoms = np.asarray(atoms, dtype=np.float64)
    if np.isnan(atoms[:, [0, 2, 3]]).any():
        return _ca_panel(atoms[:, 1], chain)
    n, ca, c, o = atoms[:, 0], atoms[:, 1], atoms[:, 2], atoms[:, 3]
    joined = _joined(len(atoms), chain)
    ca_ca = np.linalg.norm(ca[1:] - ca[:-1], axis=-1)[joined]
    c_n = np.linalg.norm(n[1:] - c[:-1], axis=-1)[joined]
    h, e, coil = composition(dssp(atoms))
    length = len(atoms)
    rg = radius_of_gyration(ca)
    phi, psi = ramachandran(atoms, chain)
    breaks = int((peptide_breaks(atoms) & joined).sum())
    clashes = count_clashes(atoms, chain)
    in_range = in_ca_ca_range(ca_ca)
    ok = float(in_range.mean()) if len(ca_ca) else float("nan")
    return QualityPanel(
        length=length,
        n_ca=_median(np.linalg.norm(ca - n, axis=-1)),
        ca_c=_median(np.linalg.norm(c - ca, axis=-1)),
        c_n=_median(c_n),
        c_o=_median(np.linalg.norm(o - c, axis=-1)),
        ca_ca=_median(ca_ca),
        n_ca_c=_median(_angle(n, ca, c)),
        ca_ca_ok=ok,
        chain_breaks=breaks,
        clashes=clashes,
        helix=h,
        strand=e,
        coil=coil,
        rg=rg,
        rg_ratio=rg_ratio(rg, length),
        rama_allowed=float(in_allowed_region(phi, psi).mean()) if len(phi) else float("nan"),
        geometry_ok=breaks == 0 and clashes == 0 and ok >= 0.95,
    )


def _ca_panel(ca: np.ndarray, chain: np.ndarray | None = None) -> QualityPanel:
    """The figures a CA trace allows: CA–CA(next), breaks and clashes between CA atoms, Rg (within
    chains, as in :func:`quality_panel`)."""
    joined = _joined(len(ca), chain)
    ca_ca = np.linalg.norm(ca[1:] - ca[:-1], axis=-1)[joined]
    sep = np.abs(np.arange(len(ca))[:, None] - np.arange(len(ca))[None, :]) >= 2
    if chain is not None:
        sep |= np.asarray(chain)[:, None] != np.asarray(chain)[None, :]
    close = (np.linalg.norm(ca[:, None] - ca[None], axis=-1) < CLASH_CA_CA) & sep
    breaks, clashes = int((ca_ca > MAX_CA_CA).sum()), int(np.triu(close).sum())
    in_range = in_ca_ca_range(ca_ca)
    ok = float(in_range.mean()) if len(ca_ca) else float("nan")
    rg = radius_of_gyration(ca)
    nan = float("nan")
    return QualityPanel(
        length=len(ca),
        n_ca=nan,
        ca_c=nan,
        c_n=nan,
        c_o=nan,
        ca_ca=_median(ca_ca),
        n_ca_c=nan,
        ca_ca_ok=ok,
        chain_breaks=breaks,
        clashes=clashes,
        helix=nan,
        strand=nan,
        coil=nan,
        rg=rg,
        rg_ratio=rg_ratio(rg, len(ca)),
        rama_allowed=nan,
        geometry_ok=breaks == 0 and clashes == 0 and ok >= 0.95,
    )
