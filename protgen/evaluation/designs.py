"""Designability: ProteinMPNN's designs (and, with a folding model, their folds) of every backbone,
written to ``out/designs`` and cached."""

from pathlib import Path

import numpy as np

from protgen.errors import ProtgenError
from protgen.evaluation.backbones import Backbone
from protgen.evaluation.cache import EvalCache, content_key
from protgen.evaluation.config import EvalConfig
from protgen.evaluation.designability import DesignFigures
from protgen.evaluation.results import StructureResult
from protgen.files import atomic_path
from protgen.progress import Progress

__all__ = ["add_designability"]


def add_designability(
    backbones: list[Backbone],
    results: list["StructureResult"],
    config: EvalConfig,
    cache: EvalCache,
    out: Path,
) -> list[tuple[str, str]]:
    """ProteinMPNN designs (and folds, with a folding model) per backbone, written to
    ``out/designs``: the backbone as designed (NAME.pdb), the designs with their scores
    (NAME_MODE.fa) and the best design's fold superposed on the backbone (NAME_MODE_fold.pdb,
    pLDDT as B-factor). Returns the (file, reason) of backbones whose designability could not be
    computed — they are skipped, not fatal."""
    from protgen.evaluation.designability import ESMFold, ProteinMPNN

    failures: list[tuple[str, str]] = []
    if config.mpnn == "off" or (config.mpnn == "auto" and not ProteinMPNN.available()):
        return failures
    folder = ESMFold(config.fold_model) if config.fold_model else None
    for mode in config.mpnn_modes:
        mpnn = ProteinMPNN(mode)
        progress = Progress(len(backbones), f"designability ({mode})", unit="structures")
        for backbone, result in zip(backbones, results):
            name, atoms = backbone.name, backbone.atoms
            ca_only = bool(np.isnan(atoms[:, 0]).any())
            if ca_only and mode == "full":
                failures.append(
                    (name, "designability (full): a CA trace; --mpnn-mode ca designs from CA")
                )
                progress.update()
                continue
            paths = _design_paths(out, name, mode, folder is not None)
            key = content_key(
                atoms,
                "mpnn",
                mode,
                config.num_seqs,
                config.temperature,
                config.fold_model,
                config.plddt_floor,
            )
            value = cache.get(key)
            if value is None or not all(p.exists() for p in paths[1:]):
                try:
                    value = _design_one(name, atoms, mode, mpnn, folder, config, paths, ca_only)
                except ProtgenError as error:
                    failures.append((name, f"designability ({mode}): {error}"))
                    progress.update()
                    continue
                cache.put(key, value)
            result.designs.append(DesignFigures.from_columns(mode, value))
            progress.update()
        progress.close()
    return failures


def _design_paths(out: Path, name: str, mode: str, folded: bool) -> list[Path]:
    """The backbone as designed, the FASTA of the designs and (with folds) the best fold."""
    stem = out / "designs" / Path(name).stem
    paths = [stem.with_name(f"{stem.name}.pdb"), stem.with_name(f"{stem.name}_{mode}.fa")]
    return paths + ([stem.with_name(f"{stem.name}_{mode}_fold.pdb")] if folded else [])


def _design_one(name, atoms, mode, mpnn, folder, config, paths, ca_only) -> dict:
    """Design (and fold) one backbone, write its files, return its figures."""
    import torch

    from protgen.data.structure import write_backbone
    from protgen.evaluation.designability import designs_fasta, self_consistency, sequence_sanity
    from protgen.geometry.superposition import kabsch_rotation

    pdb = write_backbone(paths[0], atoms.astype(np.float32), ca_only=ca_only)
    designs = mpnn.design(pdb, config.num_seqs, config.temperature, seed=1)
    sc = None
    if folder is not None:
        sc = self_consistency(atoms[:, 1], designs, folder, config.plddt_floor)
        fold = sc.best_fold
        if fold is not None and fold.atoms is not None:
            moving, target = torch.tensor(fold.ca, dtype=torch.float64), torch.tensor(atoms[:, 1])
            centre, goal = moving.mean(0), target.mean(0)
            rotation = kabsch_rotation(moving - centre, target - goal)
            placed = (torch.tensor(fold.atoms, dtype=torch.float64) - centre) @ rotation.T + goal
            write_backbone(paths[2], placed.numpy(), fold.plddt, sequence=sc.best_sequence.upper())
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(designs_fasta(Path(name).stem, designs, sc, mode))
    return DesignFigures(mode, sequence_sanity(designs), sc).columns()
