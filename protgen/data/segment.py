"""Chains → clean segments: split at missing atoms and chain breaks, then filter.

A segment is a run of consecutive residues with all four backbone atoms and no break: a break is
C(i)–N(i+1) > 2.0 Å *or* CA(i)–CA(i+1) > 4.2 Å (a CA–CA test alone misses some C–N gaps).
"""

import hashlib
from dataclasses import dataclass

import numpy as np

from protgen.data.structure import Structure
from protgen.geometry.compactness import RG_EXPONENT, RG_FILTER_SCALE, radius_of_gyration
from protgen.geometry.secondary import composition, dssp

__all__ = [
    "SegmentConfig",
    "Segment",
    "split_chain",
    "segments_of",
    "peptide_breaks",
    "MAX_C_N",
    "MAX_CA_CA",
]

MAX_C_N = 2.0  # Å; peptide bond 1.33 Å
MAX_CA_CA = 4.2  # Å; trans peptide 3.8 Å


@dataclass(frozen=True)
class SegmentConfig:
    """Which segments enter a training set."""

    min_length: int = 40  # residues; shorter segments are dropped
    max_length: int = 512  # residues; longer segments are dropped (training crops the rest)
    # largest allowed fraction of DSSP coil ('-'); 1.0 keeps all (FrameDiff: 0.5)
    max_coil: float = 1.0
    # drop if Rg > ratio · 2.2·L^0.38 Å: extended chains cut from complexes (real domains: 5–95 % at
    # 0.94–1.49)
    max_rg_ratio: float = 1.5
    max_resolution: float | None = None  # Å; drop files stating a worse resolution
    multi_model: str = "first"  # NMR ensembles and trajectories: "first" model, or "skip" the file


@dataclass(frozen=True)
class Segment:
    """A clean backbone segment and where it came from.

    atoms: Å, (L, 4, 3) float32, N, CA, C, O; start/end: author residue numbers with insertion
    codes; ss: three-state DSSP string; resolution: Å or None.
    """

    id: str
    source: str
    chain_id: str
    start: str
    end: str
    sequence: str
    ss: str
    resolution: float | None
    atoms: np.ndarray

    def __len__(self) -> int:
        return len(self.sequence)


def peptide_breaks(atoms: np.ndarray) -> np.ndarray:
    """(L − 1,) bool: residue i and i + 1 are not joined (C–N(next) > 2.0 Å or CA–CA(next) > 4.2 Å).
    atoms: Å, (L, 4, 3)."""
    c_n = np.linalg.norm(atoms[1:, 0] - atoms[:-1, 2], axis=-1)
    ca_ca = np.linalg.norm(atoms[1:, 1] - atoms[:-1, 1], axis=-1)
    return (c_n > MAX_C_N) | (ca_ca > MAX_CA_CA)


def split_chain(atoms: np.ndarray, atom_mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open residue ranges [i, j) with all backbone atoms and no break inside.

    atoms: Å, (L, 4, 3); atom_mask: (L, 4) bool.
    """
    complete = atom_mask.all(-1)
    joined = complete[:-1] & complete[1:] & ~peptide_breaks(atoms)
    ranges, start = [], None
    for i in range(len(complete)):
        if complete[i] and start is None:
            start = i
        if start is not None and (i == len(complete) - 1 or not joined[i]):
            if complete[i]:
                ranges.append((start, i + 1))
            start = None
    return ranges


def _label(res_id: int, ins_code: str) -> str:
    return f"{res_id}{ins_code}"


def segments_of(
    structure: Structure, source: str, config: SegmentConfig, name: str | None = None
) -> tuple[list[Segment], str | None]:
    """Clean segments of a structure, or ([], reason) when the whole file is filtered out.

    Segments are named ``name`` (e.g. ``PDBID_CHAIN`` of a database entry) when given and the
    segment is the whole chain, ``name_START-END`` when it is part of it; otherwise after the file.
    """
    if config.max_resolution is not None and structure.resolution is not None:
        if structure.resolution > config.max_resolution:
            return [], f"resolution {structure.resolution:.2f} Å > {config.max_resolution} Å"
    if config.multi_model == "skip" and structure.model_count > 1:
        return [], f"{structure.model_count} models (--multi-model skip)"
    out: list[Segment] = []
    rejected: list[str] = []
    for chain in structure.chains:
        for i, j in split_chain(chain.atoms, chain.atom_mask):
            length = j - i
            if not config.min_length <= length <= config.max_length:
                rejected.append(f"length {length} outside {config.min_length}..{config.max_length}")
                continue
            atoms = chain.atoms[i:j].astype(np.float32)
            ratio = radius_of_gyration(atoms[:, 1]) / (RG_FILTER_SCALE * length**RG_EXPONENT)
            if ratio > config.max_rg_ratio:
                rejected.append(f"Rg ratio {ratio:.2f} > {config.max_rg_ratio} (extended)")
                continue
            ss = dssp(atoms)
            coil = composition(ss)[2]
            if coil > config.max_coil:
                rejected.append(f"coil fraction {coil:.2f} > {config.max_coil}")
                continue
            start, end = (
                _label(chain.res_ids[i], chain.ins_codes[i]),
                _label(chain.res_ids[j - 1], chain.ins_codes[j - 1]),
            )
            if name is not None:
                seg_id = name if (i, j) == (0, len(chain)) else f"{name}_{start}-{end}"
            else:
                key = f"{source}|{chain.chain_id}|{start}|{end}"
                stem = source.rsplit("/", 1)[-1].split(".")[0]
                digest = hashlib.sha1(key.encode()).hexdigest()[:6]
                seg_id = f"{stem}_{chain.chain_id}_{start}-{end}_{digest}"
            out.append(
                Segment(
                    seg_id,
                    source,
                    chain.chain_id,
                    start,
                    end,
                    chain.sequence[i:j],
                    ss,
                    structure.resolution,
                    atoms,
                )
            )
    if not out:
        if not rejected:
            return [], "no complete backbone segment (missing atoms or breaks everywhere)"
        return [], f"no segment passes the filters ({len(rejected)} rejected; first: {rejected[0]})"
    return out, None
