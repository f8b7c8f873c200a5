"""What an evaluation measures: backbones read from a folder of structure files or a sample
manifest (with repairs noted, unusable files named), the manifest's rows, and the real chains of a
reference set matched to the samples' lengths."""

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protgen.data.dataset import TrainingSet
from protgen.data.structure import read_structure
from protgen.errors import ProtgenError, StructureError
from protgen.sampling.manifest import ManifestRow, read_manifest

__all__ = ["Backbone", "load_backbones", "manifest_rows", "reference_chains"]


@dataclass(frozen=True)
class Backbone:
    """One structure to evaluate: its name, atoms (Å, (L, 4, 3), N, CA, C, O; a CA trace has N, C
    and O as NaN) and, for a file of several chains (a scaffold with /0 breaks), the chain of each
    residue ((L,) int, in file order; None for one chain)."""

    name: str
    atoms: np.ndarray
    chain: np.ndarray | None = None


def load_backbones(
    source: str | Path,
) -> tuple[list[Backbone], list[tuple[str, str]], list[tuple[str, str]]]:
    """Backbones from a directory of structure files or a sample manifest.csv, the (name, reason)
    of files that could not be used, and (name, note) of what was done to the others: a missing O
    placed from N, CA and C; a CA trace kept with N, C and O as NaN (CA figures only); model 1 of
    a multi-model file. A file's chains are kept in file order, each residue labelled with its
    chain."""
    source = Path(source)
    if source.exists() and not os.access(source, os.R_OK | (os.X_OK if source.is_dir() else 0)):
        raise ProtgenError(f"{source}: permission denied (cannot read it)")
    if source.is_file() and source.name.endswith(".csv"):
        try:
            files = [source.parent / row.file for row in read_manifest(source)]
        except (KeyError, csv.Error, UnicodeDecodeError):
            raise ProtgenError(f"{source}: not a sample manifest (no 'file' column)") from None
    elif source.is_dir():
        files = sorted(
            p
            for p in source.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and p.name != "manifest.csv"
            and "_traj." not in p.name
            and not p.name.endswith((".csv", ".json", ".md", ".png", ".jsonl", ".fa"))
        )
    else:
        raise ProtgenError(f"{source}: not a directory of structures or a manifest.csv")
    backbones, skipped, notes = [], [], []
    for path in files:
        try:
            structure = read_structure(path)
        except StructureError as error:
            skipped.append((path.name, error.reason))
            continue
        chains = structure.chains
        if sum(len(c) for c in chains) < 3:
            skipped.append((path.name, "fewer than 3 residues"))
            continue
        # each chain on its own: a missing O is placed from its own chain's next N
        usable = [_usable_backbone(c) for c in chains]
        failed = [reason for atoms, reason in usable if atoms is None]
        if failed:
            skipped.append((path.name, failed[0]))
            continue
        kinds = {bool(np.isnan(atoms[:, 0]).any()) for atoms, _ in usable}
        if len(kinds) > 1:
            skipped.append((path.name, "some chains are CA traces and others full backbones"))
            continue
        # one note per kind of repair, however many chains needed it
        notes += [(path.name, reason) for reason in dict.fromkeys(r for _, r in usable if r)]
        if structure.model_count > 1:
            notes.append((path.name, f"model 1 of {structure.model_count} used"))
        label = None
        if len(chains) > 1:
            label = np.repeat(np.arange(len(chains)), [len(c) for c in chains])
        backbones.append(Backbone(path.name, np.concatenate([a for a, _ in usable]), label))
    return backbones, skipped, notes


def _usable_backbone(chain) -> tuple[np.ndarray | None, str | None]:
    """A chain's atoms (L, 4, 3) float64 as evaluation uses them, and a note (or, without atoms,
    the reason): complete backbones as they are; N, CA, C with O missing (what some generators
    write) with O placed from the frames; CA traces with N, C, O as NaN; anything else named."""
    import torch

    from protgen.geometry.backbone import add_oxygen

    mask, atoms = chain.atom_mask, chain.atoms.astype(np.float64)
    length = len(mask)
    if mask.all():
        return atoms, None
    if mask[:, :3].all():
        placed = add_oxygen(torch.from_numpy(atoms[:, :3].copy())).numpy()
        atoms[~mask[:, 3], 3] = placed[~mask[:, 3], 3]
        return (
            atoms,
            f"O missing at {int((~mask[:, 3]).sum())} of {length} residues: placed from N, CA, C",
        )
    if mask[:, 1].all() and not mask[:, [0, 2, 3]].any():
        atoms[:, [0, 2, 3]] = np.nan
        return atoms, "CA only: CA-based figures (no bonds, DSSP or Ramachandran)"
    missing = []
    for j, atom in enumerate(("N", "CA", "C", "O")):
        where = np.nonzero(~mask[:, j])[0]
        if len(where):
            labels = ", ".join(f"{chain.res_ids[k]}{chain.ins_codes[k]}" for k in where[:5])
            more = f" and {len(where) - 5} more" if len(where) > 5 else ""
            missing.append(f"{atom} at residue(s) {labels}{more}")
    return None, "missing backbone atoms: " + "; ".join(missing)


def manifest_rows(source) -> tuple[Path, dict[str, ManifestRow]]:
    """The manifest's folder and its rows by file name: a manifest.csv, or the one inside a folder
    of samples (no rows for a folder without one, or arrays)."""
    path = Path(source) if isinstance(source, (str, Path)) else None
    if path is not None and path.is_dir() and (path / "manifest.csv").is_file():
        path = path / "manifest.csv"
    if path is None or not (path.is_file() and path.name.endswith(".csv")):
        return Path("."), {}
    try:
        return path.parent, {row.file: row for row in read_manifest(path)}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError):
        return path.parent, {}


def reference_chains(
    ts: TrainingSet, lengths: list[int], count: int, seed: int, split: str = "all"
) -> list[tuple[str, np.ndarray]]:
    """Distinct real segments (sampled without replacement) of a split, matched to the sample
    lengths: within 0.8–1.25× of a sample's length, else the nearest unused length. Warns when
    the split has fewer segments than asked."""
    rng = np.random.default_rng(seed)
    pool = ts.indices(None if split == "all" else split)
    seg_lengths = np.array([ts.records[i].length for i in pool])
    if len(seg_lengths) < count:
        print(
            f"protgen eval: warning: the reference set has only {len(seg_lengths)} segments; the "
            f"real-chain column uses {len(seg_lengths)} distinct chains instead of {count}",
            file=sys.stderr,
            flush=True,
        )
    free = np.ones(len(seg_lengths), bool)
    chosen = []
    for length in (lengths * (count // max(len(lengths), 1) + 1))[: min(count, len(seg_lengths))]:
        ok = np.nonzero(free & (seg_lengths >= 0.8 * length) & (seg_lengths <= 1.25 * length))[0]
        if len(ok):
            i = int(rng.choice(ok))
        else:
            i = int(np.argmin(np.where(free, np.abs(seg_lengths - length), np.inf)))
        free[i] = False
        chosen.append((ts.records[pool[i]].id, ts.segment_atoms(pool[i]).astype(np.float64)))
    return chosen
