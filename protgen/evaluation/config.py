"""What ``protgen eval`` measures (:class:`EvalConfig`) and the check of its settings before any
work is done."""

import math
from dataclasses import dataclass
from pathlib import Path

from protgen.data.dataset import TrainingSet
from protgen.errors import ConfigError

__all__ = ["EvalConfig", "check_eval_config"]


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


def check_eval_config(config: EvalConfig) -> TrainingSet | None:
    """Refuse settings that cannot work before any work is done; returns the reference set (or
    None). Shared by ``protgen eval`` and :func:`protgen.evaluation.evaluate.evaluate`."""
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
