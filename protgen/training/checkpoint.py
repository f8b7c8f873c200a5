"""Checkpoints: atomic writes, and loads that refuse other versions with a clear message.

A training checkpoint holds the configs (model, process, loss, training), the data-set
fingerprint, the model, EMA and optimiser states, RNG states and the step. A weights file (what
ships in the package) holds the configs, the EMA weights, the data fingerprint and a training
summary. Files are read with ``weights_only=True``: a crafted file cannot run code.
"""

import errno
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from protgen import __version__
from protgen.errors import CheckpointError
from protgen.files import atomic_path
from protgen.method.process import LatentProcess, make_process
from protgen.network.model import GeneratorModel
from protgen.training.config import ModelConfig, model_config_from_dict

__all__ = [
    "FORMAT_VERSION",
    "TrainedModel",
    "save",
    "load",
    "load_model",
    "fingerprint",
    "resolve",
    "previous_path",
]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainedModel:
    """A model ready to sample: the network (eval mode), the latent process it was trained for,
    their configs and the checkpoint's payload (summary, data fingerprint, ...)."""

    model: GeneratorModel
    process: LatentProcess
    config: ModelConfig
    payload: dict


def previous_path(path: str | Path) -> Path:
    """Where ``save`` keeps the checkpoint it replaced: checkpoint.pt → checkpoint.prev.pt."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save(path: str | Path, payload: dict) -> None:
    """torch.save through a temporary file and a rename: never half-written. The checkpoint it
    replaces is kept as checkpoint.prev.pt (a second copy to go back to if the new one is ever
    damaged). A full disk (or another write error) raises CheckpointError; the previous
    checkpoint stays intact."""
    try:
        with atomic_path(path) as tmp:
            torch.save(
                {"format_version": FORMAT_VERSION, "protgen_version": __version__, **payload}, tmp
            )
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


def load(path: str | Path, map_location="cpu") -> dict:
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
            f"{payload.get('protgen_version')}); "
            f"this protgen {__version__} reads format {FORMAT_VERSION}"
        )
    return payload


def load_model(path: str | Path, device="cpu", ema: bool = True) -> TrainedModel:
    """Rebuild the model of a checkpoint or weights file (EMA weights by default), in eval mode."""
    payload = load(path)
    config = model_config_from_dict(payload.get("model_config", {}), str(path))
    try:
        model = GeneratorModel(config.network)
        state = payload["ema"] if ema and "ema" in payload else payload["model"]
        model.network.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: incompatible with this protgen's model ({str(error).splitlines()[0]})"
        ) from None
    return TrainedModel(model.to(device).eval(), make_process(config.process), config, payload)


def fingerprint(path: str | Path) -> str:
    """Short content hash of a checkpoint file."""
    return hashlib.sha256(resolve(path).read_bytes()).hexdigest()[:16]
