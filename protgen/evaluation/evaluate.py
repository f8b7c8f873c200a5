"""``protgen eval``: the quality panel, designability, diversity and novelty of a set of backbones,
beside the same panel on real chains, with a per-structure CSV, a summary JSON and a cache.

The cache (``cache.jsonl`` in the output directory) keys every result by the structure's content
hash and the settings that affect it, so re-running after adding samples computes only what is new.
"""

import csv
import errno
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from protgen.data.dataset import TrainingSet
from protgen.data.structure import read_structure
from protgen.errors import ConfigError, ProtgenError, StructureError
from protgen.evaluation.cache import ReferenceCache
from protgen.evaluation.designability import DesignFigures
from protgen.evaluation.quality import QualityPanel, quality_panel, ramachandran
from protgen.evaluation.similarity import kabsch_rmsd, single_linkage_clusters, tm_align
from protgen.evaluation.summary import EvalSummary, MotifSuccess, SetSummary
from protgen.files import atomic_path, folder_lock
from protgen.geometry.secondary import dssp
from protgen.progress import Progress
from protgen.sampling.manifest import ManifestRow, read_manifest
from protgen.workers import threaded_worker, worker_threads

__all__ = [
    "EvalConfig",
    "Backbone",
    "StructureResult",
    "evaluate",
    "load_backbones",
    "check_eval_config",
]


@dataclass(frozen=True)
class EvalConfig:
    """What ``protgen eval`` measures."""

    reference: str | None = None  # a `protgen data` directory: real-chain column and novelty
    max_reference: int = 200  # real chains in the reference panel
    # which segments of the reference set: "all", "train", "val" or "test" (held-out clusters)
    reference_split: str = "all"
    # reference chains (length 0.5–2× the sample's) per novelty search
    novelty_candidates: int = 300
    mpnn: str = "auto"  # ProteinMPNN designs + sequence sanity: "auto" (if installed), "on", "off"
    mpnn_modes: tuple[str, ...] = ("full",)  # "full" and/or "ca" (CA-only model)
    num_seqs: int = 8  # designs per backbone
    temperature: float = 0.1  # ProteinMPNN sampling temperature
    fold_model: str | None = None  # local ESMFold directory: enables scRMSD/scTM/designability
    # also require mean pLDDT ≥ this to call a backbone designable (Genie 2: 70)
    plddt_floor: float | None = None
    workers: int = 1  # processes for the panel, TM-scores and novelty
    seed: int = 0  # choice of reference chains
    # motif file of scaffolds (default: the manifest's motif_file column): motif RMSD, success rule
    motif: str | None = None


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


def _manifest_rows(source) -> tuple[Path, dict[str, ManifestRow]]:
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


def _read_motifs(
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
        raise ConfigError(_no_scaffold(config.motif))
    return out


def _no_scaffold(motif: str) -> str:
    """The refusal of --motif on samples that are not scaffolds of a manifest."""
    return (
        f"--motif {motif}: none of the samples is a scaffold listed in a manifest with motif "
        "columns; motif RMSD needs the manifest.csv of `protgen sample --motif` (its "
        "motif_positions say where each scaffold holds the motif), or leave out --motif"
    )


def _motif_rmsd(results: list["StructureResult"], backbones: list[Backbone], motifs: dict) -> list:
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


def _ss_agreement(
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


def _motif_success(results: list["StructureResult"], tm: np.ndarray | None) -> MotifSuccess | None:
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


class _Cache:
    def __init__(self, path: Path):
        self.path, self.data = path, {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.data[entry["key"]] = entry["value"]
                except (json.JSONDecodeError, KeyError):
                    continue  # a line cut by an interruption

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = value
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"key": key, "value": value}) + "\n")


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


def _key(atoms: np.ndarray, *parts) -> str:
    return hashlib.sha1(
        np.ascontiguousarray(atoms, dtype=np.float32).tobytes() + "|".join(map(str, parts)).encode()
    ).hexdigest()


def _panel_key(atoms: np.ndarray, chain: np.ndarray | None = None) -> str:
    """The cache key of a panel: the atoms, the panel's version and the chains of a multi-chain
    structure (a single chain's key has no chain part)."""
    parts = () if chain is None else ("chains", *np.asarray(chain).tolist())
    return _key(atoms, "panel", PANEL_VERSION, *parts)


def _panel_job(job: tuple[np.ndarray, np.ndarray | None]) -> dict:
    atoms, chain = job
    row = quality_panel(atoms, chain).row()
    phi, psi = ramachandran(atoms, chain)
    finite = np.isfinite(phi) & np.isfinite(psi)  # a CA trace has no angles
    row["_phi"], row["_psi"] = phi[finite].round(1).tolist(), psi[finite].round(1).tolist()
    return row


def _novelty_job(args) -> float:
    ca, candidates = args
    return max((tm_align(ca, ref)[0] for ref in candidates), default=float("nan"))


def _pool_map(fn, jobs, workers: int, label: str, unit: str):
    """fn over jobs, in order, in a process pool when workers > 1; yields each result as it
    comes."""
    progress = Progress(len(jobs), label, unit=unit)
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(
            workers, initializer=threaded_worker, initargs=(worker_threads(workers),)
        ) as pool:
            for result in pool.imap(fn, jobs):
                progress.update()
                yield result
    else:
        for job in jobs:
            result = fn(job)
            progress.update()
            yield result
    progress.close()


def _cached_map(
    cache: _Cache,
    keys: list[str],
    fn,
    jobs: list,
    workers: int,
    label: str,
    unit: str = "structures",
) -> list:
    todo = [k for k, key in enumerate(keys) if cache.get(key) is None]
    if todo:  # each result is cached as it arrives, so an interrupted run keeps what it computed
        for k, value in zip(todo, _pool_map(fn, [jobs[k] for k in todo], workers, label, unit)):
            cache.put(keys[k], value)
    return [cache.get(key) for key in keys]


def _reference_chains(
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


def _designability(
    backbones: list[Backbone],
    results: list["StructureResult"],
    config: EvalConfig,
    cache: _Cache,
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
            key = _key(
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


def _mean(rows: list[dict], key: str) -> float:
    values = [
        float(r[key])
        for r in rows
        if key in r
        and r[key] is not None
        and not (isinstance(r[key], float) and math.isnan(r[key]))
    ]
    return float(np.mean(values)) if values else float("nan")


def _summary(
    results: list["StructureResult"], tm: np.ndarray | None, motif: MotifSuccess | None = None
) -> SetSummary:
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


def check_eval_config(config: EvalConfig) -> TrainingSet | None:
    """Refuse settings that cannot work before any work is done; returns the reference set (or
    None). Shared by ``protgen eval`` and :func:`evaluate`."""
    for name in ("max_reference", "novelty_candidates", "num_seqs", "workers"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"--{name.replace('_', '-')} must be a positive integer, got {value!r}"
            )
    if not (math.isfinite(config.temperature) and config.temperature > 0):
        raise ConfigError(f"--temperature must be a finite number > 0, got {config.temperature}")
    floor = config.plddt_floor
    if floor is not None and not (math.isfinite(floor) and 0 <= floor <= 100):
        raise ConfigError(f"--plddt-floor is a pLDDT on 0–100, got {floor}")
    if config.mpnn not in ("auto", "on", "off"):
        raise ConfigError(f"--mpnn {config.mpnn!r}: choose auto, on or off")
    if not config.mpnn_modes or set(config.mpnn_modes) - {"full", "ca"}:
        raise ConfigError(f"--mpnn-mode {config.mpnn_modes!r}: use full, ca or both")
    if config.reference_split not in ("all", "train", "val", "test"):
        raise ConfigError(
            f"--reference-split {config.reference_split!r}: use all, train, val or test"
        )
    from protgen.evaluation.designability import ProteinMPNN

    if config.mpnn == "on":
        ProteinMPNN()  # fails now, with install instructions, if it is missing
    if config.fold_model is not None:
        if config.mpnn == "off" or (config.mpnn == "auto" and not ProteinMPNN.available()):
            raise ConfigError(
                "--fold-model folds ProteinMPNN's designs, but ProteinMPNN is "
                + ("off (--mpnn off)" if config.mpnn == "off" else "not installed")
            )
        if not (Path(config.fold_model) / "config.json").is_file():
            raise ConfigError(
                f"--fold-model {config.fold_model}: no ESMFold weights there (expected config.json "
                "and weights from EsmForProteinFolding.save_pretrained, e.g. facebook/esmfold_v1)"
            )
    if config.motif is not None and not Path(config.motif).is_file():
        raise ConfigError(f"--motif {config.motif}: no such file")
    if not config.reference:
        return None
    ref_set = TrainingSet.load(config.reference)
    if not ref_set.indices(None if config.reference_split == "all" else config.reference_split):
        raise ConfigError(
            f"--reference {config.reference} has no {config.reference_split!r} segments; "
            "choose another --reference-split"
        )
    return ref_set


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ProtgenError(f"--out {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ProtgenError(f"cannot create {out} ({error.strerror or error})") from None


def _tell(what: str, items: list[tuple[str, str]], limit: int = 10) -> None:
    """List skipped files or notes on the console (all of them are in report.md)."""
    if not items:
        return
    lines = [f"protgen eval: {what} {len(items)} file(s):"]
    lines += [f"  {name}: {text}" for name, text in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... {len(items) - limit} more in report.md")
    print("\n".join(lines), file=sys.stderr, flush=True)


def evaluate(source, out: str | Path, config: EvalConfig = EvalConfig()) -> EvalSummary:
    """Evaluate the backbones in ``source`` — a folder of structure files, a sample manifest.csv, or
    a list of (L, 4, 3) arrays (named structure_0000, ...); writes structures.csv, summary.json,
    report.md and plots to ``out`` and returns the summary (``to_dict()``: summary.json).
    Settings are checked first (:func:`check_eval_config`; ``--motif`` needs a manifest that
    lists scaffolds); one evaluation at a time may write to ``out``."""
    out = Path(out)
    ref_set = check_eval_config(config)
    if config.motif is not None and not any(
        r.motif_positions for r in _manifest_rows(source)[1].values()
    ):
        raise ConfigError(_no_scaffold(config.motif))
    _prepare_out(out)
    try:
        with folder_lock(out):
            return _evaluate(source, out, config, ref_set)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise ProtgenError(
                f"the disk is full while writing to {out}; what was computed is kept in "
                f"{out / 'cache.jsonl'}, and the same command finishes it once there is space"
            ) from None
        where = error.filename or out
        raise ProtgenError(f"cannot write {where} ({error.strerror or error})") from None


def _evaluate(source, out: Path, config: EvalConfig, ref_set: TrainingSet | None) -> EvalSummary:
    from protgen.evaluation.report import write_report

    cache = _Cache(out / "cache.jsonl")
    if isinstance(source, (str, Path)):
        backbones, skipped, notes = load_backbones(source)
    else:
        backbones, skipped, notes = (
            [
                Backbone(f"structure_{k:04d}", np.asarray(a, dtype=np.float64))
                for k, a in enumerate(source)
            ],
            [],
            [],
        )
        source = f"{len(backbones)} arrays"
    _tell("skipped", skipped)
    if not backbones:
        raise ProtgenError(f"no usable backbone in {source} ({len(skipped)} skipped)")
    manifest = _manifest_rows(source)
    motifs = _read_motifs(backbones, manifest, config)
    _tell("note on", notes)
    atoms = [b.atoms for b in backbones]
    panels = _cached_map(
        cache,
        [_panel_key(b.atoms, b.chain) for b in backbones],
        _panel_job,
        [(b.atoms, b.chain) for b in backbones],
        config.workers,
        "quality panel",
    )
    rows = [StructureResult.of(b.name, panel) for b, panel in zip(backbones, panels)]
    failed = _designability(backbones, rows, config, cache, out)
    _tell("no designability for", failed)
    skipped += failed
    ss_condition = _ss_agreement(rows, backbones, manifest[1])
    motif_notes = _motif_rmsd(rows, backbones, motifs)
    _tell("note on", motif_notes)
    notes += motif_notes
    cas = [a[:, 1] for a in atoms]
    tm = _tm_matrix(cas, config.workers, cache)
    reference_rows, reference_tm, reference = [], None, []
    if ref_set is not None:
        reference = _reference_chains(
            ref_set,
            [len(a) for a in atoms],
            config.max_reference,
            config.seed,
            config.reference_split,
        )
        ref_atoms = [a for _, a in reference]
        shared = ReferenceCache(ref_set.meta.fingerprint)
        try:
            panels = _cached_map(
                shared,
                [_panel_key(a) for a in ref_atoms],
                _panel_job,
                [(a, None) for a in ref_atoms],
                config.workers,
                "reference panel",
            )
            reference_tm = _tm_matrix([a[:, 1] for a in ref_atoms], config.workers, shared)
        finally:
            shared.flush()
        reference_rows = [
            StructureResult.of(name, panel) for (name, _), panel in zip(reference, panels)
        ]
        _novelty(rows, atoms, ref_set, config, cache)
    designs = out / "designs"
    summary = EvalSummary(
        source=str(source),
        samples=_summary(rows, tm, _motif_success(rows, tm)),
        reference=_summary(reference_rows, reference_tm) if reference_rows else None,
        rg_ratio_in_reference_range=_in_range(rows, reference_rows) if reference_rows else None,
        reference_set=str(config.reference) if config.reference else None,
        reference_distinct_chains=len({name for name, _ in reference}),
        skipped=tuple(skipped),
        config=config,
        ss_condition=ss_condition,
        notes=tuple(notes),
        designs=str(designs) if designs.is_dir() else None,
    )
    _write_rows(out / "structures.csv", [r.row() for r in rows])
    if reference_rows:
        _write_rows(out / "reference.csv", [r.row() for r in reference_rows])
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary.to_dict(), indent=2, default=float) + "\n")
    write_report(out, rows, reference_rows, tm, reference_tm, summary)
    return summary


def _pair_job(pair: tuple[np.ndarray, np.ndarray]) -> float:
    return float(np.mean(tm_align(*pair)))


def _tm_matrix(cas: list[np.ndarray], workers: int, cache: _Cache) -> np.ndarray:
    """Symmetric matrix of mean TM-scores; each pair is cached, so adding a structure computes
    only its own row."""
    keys = [_key(ca, "ca") for ca in cas]
    pairs = [(i, j) for i in range(len(cas)) for j in range(i + 1, len(cas))]
    pair_keys = [
        hashlib.sha1(f"tm|{min(keys[i], keys[j])}|{max(keys[i], keys[j])}".encode()).hexdigest()
        for i, j in pairs
    ]
    values = _cached_map(
        cache,
        pair_keys,
        _pair_job,
        [(cas[i], cas[j]) for i, j in pairs],
        workers,
        "pairwise TM-score",
        "pairs",
    )
    tm = np.eye(len(cas))
    for (i, j), value in zip(pairs, values):
        tm[i, j] = tm[j, i] = value
    return tm


def _novelty(rows, atoms, ref_set: TrainingSet, config: EvalConfig, cache: _Cache) -> None:
    """Max TM-score of each structure to reference chains of 0.5–2× its length from the set's
    training split (what a model trained on it has seen; the whole set when it has none). The
    candidates are drawn with a generator seeded by the structure itself, so they do not depend on
    which other structures are evaluated or in which order."""
    pool = ref_set.indices("train") or ref_set.indices()
    seg_lengths = np.array([ref_set.records[i].length for i in pool])
    jobs, keys = [], []
    for a in atoms:
        length = len(a)
        ok = np.nonzero((seg_lengths >= 0.5 * length) & (seg_lengths <= 2 * length))[0]
        if len(ok) > config.novelty_candidates:
            rng = np.random.default_rng([config.seed, int(_key(a, "novelty-draw")[:8], 16)])
            ok = rng.choice(ok, config.novelty_candidates, replace=False)
        jobs.append(
            (
                a[:, 1],
                [ref_set.segment_atoms(pool[int(i)])[:, 1].astype(np.float64) for i in sorted(ok)],
            )
        )
        keys.append(
            _key(a, "novelty", ref_set.meta.fingerprint, config.novelty_candidates, config.seed, 2)
        )
    values = _cached_map(cache, keys, _novelty_job, jobs, config.workers, "novelty")
    for result, value in zip(rows, values):
        result.novelty_max_tm = value


def _in_range(results: list["StructureResult"], reference: list["StructureResult"]) -> float:
    """Fraction of samples whose Rg/L^0.38 lies within the real chains' 5–95 % range."""
    low, high = np.percentile([r.panel.rg_ratio for r in reference], [5, 95])
    return float(np.mean([low <= r.panel.rg_ratio <= high for r in results]))


def _write_rows(path: Path, rows: list[dict]) -> None:
    fields = [k for k in dict.fromkeys(k for r in rows for k in r) if not k.startswith("_")]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    k: (f"{v:.4g}" if isinstance(v, float) else v)
                    for k, v in r.items()
                    if not k.startswith("_")
                }
            )
