"""Figures of conditioned samples, read against the manifest's conditions: the motif RMSD of
scaffolds and the motif benchmark's success rule; the agreement of secondary-structure-conditioned
samples with their request."""

from dataclasses import replace
from pathlib import Path

import numpy as np

from protgen.errors import ConfigError
from protgen.evaluation.backbones import Backbone
from protgen.evaluation.config import EvalConfig
from protgen.evaluation.results import StructureResult
from protgen.evaluation.similarity import kabsch_rmsd, single_linkage_clusters
from protgen.evaluation.summary import MotifSuccess
from protgen.geometry.secondary import dssp
from protgen.sampling.manifest import ManifestRow

__all__ = ["read_motifs", "no_scaffold", "motif_rmsd", "ss_agreement", "motif_success"]


def read_motifs(
    backbones: list[Backbone], manifest: tuple[Path, dict[str, ManifestRow]], config: EvalConfig
) -> dict:
    """The motif of every scaffold listed with motif columns, read before any expensive work: by
    file name, (the motif's atoms (n, 4, 3) as the motif file has them, output positions). A
    relative motif path in the manifest is read relative to the manifest's folder. ``--motif``
    on samples that are not scaffolds is an error."""
    from protgen.sampling.motif import parse_contig, read_motif

    folder, rows = manifest
    motifs, out = {}, {}
    for backbone in backbones:
        info = rows.get(backbone.name)
        if info is None or not info.motif_positions:
            continue
        motif_file = Path(config.motif or info.motif_file or "")
        if not config.motif and not motif_file.is_absolute():
            motif_file = folder / motif_file
        residues = info.motif_residues or ""
        contig = parse_contig(residues.replace(";", ","))
        key = f"{motif_file}|{residues}"
        if key not in motifs:
            motif = read_motif(motif_file, contig)
            motifs[key] = np.concatenate([motif.segments[seg] for seg in contig.motif_segments])
        ranges = [tuple(map(int, r.split("-"))) for r in info.motif_positions.split(";")]
        out[backbone.name] = (motifs[key], ranges, f"{residues} of {motif_file}")
    if config.motif and not out:
        raise ConfigError(no_scaffold(config.motif))
    return out


def no_scaffold(motif: str) -> str:
    """The refusal of --motif on samples that are not scaffolds of a manifest."""
    return (
        f"--motif {motif}: none of the samples is a scaffold listed in a manifest with motif "
        "columns; motif RMSD needs the manifest.csv of `protgen sample --motif` (its "
        "motif_positions say where each scaffold holds the motif), or leave out --motif"
    )


def motif_rmsd(results: list["StructureResult"], backbones: list[Backbone], motifs: dict) -> list:
    """motif_rmsd (Å, N/CA/C after superposition; CA for a CA trace) of every scaffold against
    its motif as the file has it. Returns (file, note) where the manifest's motif positions do
    not hold as many residues as the motif (no RMSD is given then)."""
    notes = []
    for result, backbone in zip(results, backbones):
        name, atoms = backbone.name, backbone.atoms
        if name not in motifs:
            continue
        true, ranges, what = motifs[name]
        made = np.concatenate([atoms[a - 1 : b] for a, b in ranges])
        if len(made) != len(true):
            notes.append(
                (
                    name,
                    f"no motif RMSD: the manifest's motif positions hold {len(made)} residues, "
                    f"{what} has {len(true)}",
                )
            )
            continue
        columns = [1] if np.isnan(made[:, 0]).any() else [0, 1, 2]
        result.motif_rmsd = float(
            kabsch_rmsd(made[:, columns].reshape(-1, 3), true[:, columns].reshape(-1, 3))
        )
    return notes


def ss_agreement(
    results: list["StructureResult"], backbones: list[Backbone], manifest: dict[str, ManifestRow]
) -> dict | None:
    """Per-residue 3-state agreement between each conditioned sample's requested secondary
    structure (the manifest's ss column; ? unconstrained) and its DSSP: overall and per requested
    state (helix, strand, loop). Sets each result's columns; returns the pooled figures (over
    every constrained residue of every conditioned sample), or None without conditioned samples."""
    pooled = {state: [0, 0] for state in "HEL"}
    for result, backbone in zip(results, backbones):
        atoms, row = backbone.atoms, manifest.get(backbone.name)
        requested = (row.ss if row is not None else None) or ""
        if len(requested) != len(atoms) or not (set(requested) - {"?"}):
            continue
        got = "".join({"H": "H", "E": "E"}.get(c, "L") for c in dssp(atoms))
        columns = {}
        for state, label in (("H", "helix"), ("E", "strand"), ("L", "loop")):
            asked = [k for k, c in enumerate(requested) if c == state]
            hits = sum(got[k] == state for k in asked)
            pooled[state][0] += hits
            pooled[state][1] += len(asked)
            columns[f"ss_{label}_agreement"] = hits / len(asked) if asked else float("nan")
        constrained = [k for k, c in enumerate(requested) if c != "?"]
        columns["ss_agreement"] = sum(got[k] == requested[k] for k in constrained) / len(
            constrained
        )
        columns["ss_requested_strand"] = requested.count("E") / len(requested)
        result.ss_agreement = columns
    total = sum(n for _, n in pooled.values())
    if total == 0:
        return None
    return {
        "samples": sum(1 for r in results if r.ss_agreement),
        "residues": total,
        "agreement": sum(h for h, _ in pooled.values()) / total,
        **{
            f"{label}_agreement": (h / n if n else None)
            for (h, n), label in zip(pooled.values(), ("helix", "strand", "loop"))
        },
    }


def motif_success(results: list["StructureResult"], tm: np.ndarray | None) -> MotifSuccess | None:
    """The benchmark's rule (RFdiffusion, MotifBench): a scaffold succeeds when one of its designs
    refolds with scRMSD < 2 Å and its motif RMSD is < 1 Å; unique successes are the clusters of
    successful scaffolds at TM-score 0.6. Without folds only the motif-RMSD part is counted."""
    scaffolds = [k for k, r in enumerate(results) if r.motif_rmsd is not None]
    if not scaffolds:
        return None
    motif_ok = [k for k in scaffolds if results[k].motif_rmsd < 1.0]
    out = MotifSuccess(len(scaffolds), len(motif_ok) / len(scaffolds))
    # the designs of every ProteinMPNN mode that ran (full backbone, CA only) count
    folded = [k for k in scaffolds if results[k].best_sc_rmsd is not None]
    if folded:
        success = [k for k in motif_ok if (results[k].best_sc_rmsd or float("inf")) < 2.0]
        unique = None
        if success and tm is not None:
            unique = single_linkage_clusters(tm[np.ix_(success, success)], 0.6)
        out = replace(out, success=len(success) / len(scaffolds), unique_successes=unique)
    return out
