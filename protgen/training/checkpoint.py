"""Checkpoints: atomic writes, and loads that refuse other versions with a clear message.

A training checkpoint holds the configs (model, process, loss, training), the data-set
fingerprint, the model, EMA and optimiser states, RNG states and the step. A weights file (what
ships in the package) holds the configs, the EMA weights, the data fingerprint and a training
summary. Files are read with ``weights_only=True``: a crafted file cannot run code.
"""

import errno
import hashlib
import math
import os
import shutil
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import torch

from protgen import __version__
from protgen.errors import CheckpointError, ProtgenError
from protgen.files import atomic_path
from protgen.method.process import LatentProcess
from protgen.method.registry import make_process
from protgen.network.model import GeneratorModel
from protgen.training.config import (
    ModelConfig,
    TrainConfig,
    model_config_from_dict,
    train_config_from_dict,
)

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "RngState",
    "Serving",
    "TrainedModel",
    "save",
    "load",
    "load_model",
    "fingerprint",
    "resolve",
    "previous_path",
    "default_checkpoint",
]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class RngState:
    """One training process's random streams: the loader's position, the noise generator (and
    the kind of device it ran on; None in runs saved before this was recorded), the coin of
    random motifs and self-conditioning, and torch's global CPU generator."""

    loader: dict
    noise: torch.Tensor
    coin: torch.Tensor
    torch: torch.Tensor
    device: str | None = None


@dataclass(frozen=True)
class Serving:
    """How a shipped weights file is meant to be sampled (``scripts/export_weights.py
    --serve-lengths --rot-rate``): the lengths it serves when ``protgen sample`` picks the model,
    and the rotation schedule chosen for it on the short-chain panel."""

    # (shortest, longest) residues, inclusive, that this model samples when none is named; None:
    # any length
    lengths: tuple[int, int] | None = None
    # c of the rotation schedule (SimulationConfig.rot_rate; 0.0 = the learned rate); None: the
    # process's default (sampling.config.default_rot_rate)
    rot_rate: float | None = None

    def covers(self, length: int) -> bool:
        """Whether ``length`` residues are within the lengths served."""
        return self.lengths is None or self.lengths[0] <= length <= self.lengths[1]


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds. A training checkpoint has every field; a weights file (what
    ships in the package) the configs, the EMA weights, the data fingerprint and a training
    summary. On disk it is a dict of plain values and tensors (:meth:`to_payload`), the format of
    every protgen checkpoint so far; fields a file lacks read as None."""

    model_config: ModelConfig
    ema: dict[str, torch.Tensor]  # the EMA weights: what sampling uses
    data_fingerprint: str | None = None  # the training set's (TrainingSet.meta.fingerprint)
    train_config: TrainConfig | None = None
    model: dict[str, torch.Tensor] | None = None  # the raw weights
    optimizer: dict | None = None  # AdamW's state_dict
    step: int | None = None  # optimiser steps done
    skipped_steps: int | None = None  # steps skipped for a non-finite loss or gradient
    rng: tuple[RngState, ...] | None = None  # one per training process (rank)
    train_seconds: float | None = None  # training wall time, steps only, across resumes
    cpu_seconds: float | None = None  # CPU time of the training steps (one process)
    summary: dict | None = None  # a weights file's training summary (scripts/export_weights.py)
    serving: Serving | None = None  # a weights file's lengths and sampler settings
    protgen_version: str = __version__

    def to_payload(self) -> dict:
        """The dict torch.save writes (configs as dicts; absent fields left out)."""
        out = {"format_version": FORMAT_VERSION, "protgen_version": self.protgen_version}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "protgen_version":
                continue
            if f.name == "model_config":
                value = value.to_dict()
            elif f.name in ("train_config", "serving"):
                value = asdict(value)
            elif f.name == "rng":
                value = [asdict(r) for r in value]
            out[f.name] = value
        return out

    @staticmethod
    def from_payload(payload: dict, where: str = "checkpoint") -> "Checkpoint":
        """The record of a loaded file's dict; a field it cannot read raises CheckpointError."""
        try:
            rng = payload.get("rng")
            train = payload.get("train_config")
            serving = payload.get("serving")
            return Checkpoint(
                model_config=model_config_from_dict(payload.get("model_config", {}), where),
                ema=payload.get("ema") or payload["model"],
                data_fingerprint=payload.get("data_fingerprint"),
                train_config=None if train is None else train_config_from_dict(train),
                model=payload.get("model"),
                optimizer=payload.get("optimizer"),
                step=payload.get("step"),
                skipped_steps=payload.get("skipped_steps"),
                rng=None if rng is None else tuple(RngState(**r) for r in rng),
                train_seconds=payload.get("train_seconds"),
                cpu_seconds=payload.get("cpu_seconds"),
                summary=payload.get("summary"),
                serving=None if serving is None else _serving(serving),
                protgen_version=payload.get("protgen_version", "unknown"),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise CheckpointError(f"{where}: not a complete protgen checkpoint ({error})") from None


def _serving(stored) -> Serving:
    """A stored Serving record; one that could not have been written raises ValueError."""
    if not isinstance(stored, dict):
        raise ValueError(f"serving is {type(stored).__name__}, not a record")
    lengths, rate = stored.get("lengths"), stored.get("rot_rate")
    if lengths is not None:
        lengths = (int(lengths[0]), int(lengths[1]))
        if not 1 <= lengths[0] <= lengths[1]:
            raise ValueError(f"served lengths {lengths} are not 1 ≤ min ≤ max")
    if rate is not None:
        rate = float(rate)
        if not rate >= 0 or math.isinf(rate):  # NaN fails the first test
            raise ValueError(f"stored rotation rate {rate} is not a finite c ≥ 0")
    return Serving(lengths, rate)


@dataclass(frozen=True)
class TrainedModel:
    """A model ready to sample: the network (eval mode), the latent process it was trained for,
    their configs and the checkpoint it came from (summary, data fingerprint, ...)."""

    model: GeneratorModel
    process: LatentProcess
    config: ModelConfig
    checkpoint: Checkpoint


def previous_path(path: str | Path) -> Path:
    """Where ``save`` keeps the checkpoint it replaced: checkpoint.pt → checkpoint.prev.pt."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save(path: str | Path, checkpoint: Checkpoint) -> None:
    """torch.save through a temporary file and a rename: never half-written. The checkpoint it
    replaces is kept as checkpoint.prev.pt (a second copy to go back to if the new one is ever
    damaged). A full disk (or another write error) raises CheckpointError; the previous
    checkpoint stays intact."""
    try:
        with atomic_path(path) as tmp:
            torch.save(checkpoint.to_payload(), tmp)
            _keep_previous(Path(path))
    except (OSError, RuntimeError) as error:
        # torch's zip writer reports a full disk as
        # "[enforce fail at inline_container.cc] unexpected pos"
        full = (
            getattr(error, "errno", None) == errno.ENOSPC
            or "No space left" in str(error)
            or ("enforce fail" in str(error) and shutil.disk_usage(Path(path).parent).free < 2**26)
        )
        kept = (
            "the previous checkpoint is intact"
            if Path(path).exists()
            else "no checkpoint was written"
        )
        said = str(error).splitlines()[0] if str(error) else type(error).__name__
        reason = "the disk is full" if full else f"write failed ({said})"
        raise CheckpointError(f"cannot write {path}: {reason}; {kept}") from None


def _keep_previous(path: Path) -> None:
    """Hard-link the current checkpoint as checkpoint.prev.pt (a copy where links fail) before the
    new one is renamed over it; the link is made under a temporary name and renamed into place."""
    if not path.is_file():
        return
    prev, staged = previous_path(path), path.with_name(f".{path.name}.prev.tmp")
    staged.unlink(missing_ok=True)
    try:
        os.link(path, staged)
    except OSError:
        shutil.copy2(path, staged)
    os.replace(staged, prev)


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run directory holding checkpoint.pt."""
    path = Path(path)
    if path.is_dir():
        if (path / "checkpoint.pt").is_file():
            return path / "checkpoint.pt"
        raise CheckpointError(
            f"{path} is a directory without checkpoint.pt; pass a checkpoint file or a run "
            "directory"
        )
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    return path


def load(path: str | Path, map_location="cpu") -> Checkpoint:
    """The checkpoint in a file or run directory; other formats and unreadable files raise
    CheckpointError."""
    path = resolve(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        prev = previous_path(path)
        hint = (
            f"; the checkpoint before it is kept: `mv {prev} {path}` continues from there"
            if prev.is_file()
            else ""
        )
        raise CheckpointError(
            f"{path}: not a readable protgen checkpoint ({type(error).__name__}){hint}"
        ) from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path}: not a protgen checkpoint")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload['format_version']} (protgen "
            f"{payload.get('protgen_version')}); this protgen {__version__} reads format "
            f"{FORMAT_VERSION}"
        )
    return Checkpoint.from_payload(payload, str(path))


def load_model(path: str | Path, device="cpu", ema: bool = True) -> TrainedModel:
    """Rebuild the model of a checkpoint or weights file (EMA weights by default), in eval mode."""
    stored = load(path)
    config = stored.model_config
    try:
        model = GeneratorModel(config.network)
        state = stored.ema if ema or stored.model is None else stored.model
        model.network.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: incompatible with this protgen's model ({str(error).splitlines()[0]})"
        ) from None
    return TrainedModel(model.to(device).eval(), make_process(config.process), config, stored)


def fingerprint(path: str | Path) -> str:
    """Short content hash of a checkpoint file."""
    return hashlib.sha256(resolve(path).read_bytes()).hexdigest()[:16]


def default_checkpoint(kind: str = "default") -> Path:
    """A model shipped inside the package: "default" (unconditional, fixed length), "short" (the
    same for the lengths its weights serve, 40–128 residues: the short-chain campaign), "sparse"
    (over each residue's 48 nearest residues, for long chains), "motif" (motif scaffolding), "ss"
    (secondary-structure conditioning) or "insertion" (variable length, Process 3)."""
    path = Path(str(resources.files("protgen") / "weights" / f"{kind}.pt"))
    if not path.is_file():
        raise ProtgenError(
            f"the shipped {kind} model is missing ({path}); reinstall protgen or pass --checkpoint"
        )
    return path
