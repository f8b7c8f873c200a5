"""Checkpoints: atomic writes, and loads that refuse other versions with a clear message.

A training checkpoint holds the configs (model, process, training), the data-set fingerprint, the
model, EMA and optimiser states, RNG states and the step. A weights file (what ships in the
package) holds the configs, the EMA weights, the data fingerprint and a training summary.
"""

import hashlib
from pathlib import Path

import torch

from protgen import __version__
from protgen.errors import CheckpointError
from protgen.files import atomic_path
from protgen.model import GeneratorModel, ModelConfig
from protgen.network import NetworkConfig
from protgen.process import ProcessConfig

__all__ = ["FORMAT_VERSION", "save", "load", "model_config_from_dict", "load_model", "fingerprint"]

FORMAT_VERSION = 1


def save(path: str | Path, payload: dict) -> None:
    """torch.save through a temporary file and a rename: never half-written."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, "protgen_version": __version__, **payload}, tmp)


def load(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable protgen checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path}: not a protgen checkpoint")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload['format_version']} (protgen {payload.get('protgen_version')}); "
            f"this protgen {__version__} reads format {FORMAT_VERSION}"
        )
    return payload


# Fields added after protgen 0.1, with the value that reproduces a model saved without them.
_LEGACY_NETWORK = {"position": "absolute"}
_LEGACY_PROCESS = {"coupling": "independent"}


def model_config_from_dict(d: dict) -> ModelConfig:
    return ModelConfig(NetworkConfig(**{**_LEGACY_NETWORK, **d["network"]}), ProcessConfig(**{**_LEGACY_PROCESS, **d["process"]}))


def load_model(path: str | Path, device="cpu", ema: bool = True) -> tuple[GeneratorModel, dict]:
    """Rebuild the model of a checkpoint or weights file (EMA weights by default), in eval mode."""
    payload = load(path)
    try:
        config = model_config_from_dict(payload["model_config"])
        model = GeneratorModel(config)
        state = payload["ema"] if ema and "ema" in payload else payload["model"]
        model.network.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: incompatible with this protgen's model ({str(error).splitlines()[0]})") from None
    return model.to(device).eval(), payload


def fingerprint(path: str | Path) -> str:
    """Short content hash of a checkpoint file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

