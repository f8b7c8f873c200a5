"""What a training run is made of: the model's configs and the optimisation settings.

Both are stored in every checkpoint as plain dicts, so a checkpoint rebuilds its model without
pickled classes; fields added since protgen 0.1 take the value that reproduces older models.
"""

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from protgen.errors import CheckpointError, ConfigError
from protgen.method.loss import LossConfig
from protgen.method.process import ProcessConfig
from protgen.network.config import PRESETS, NetworkConfig

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "model_config_from_dict",
    "train_config_from_dict",
    "replace_fields",
]


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes, the latent process it generates, and the loss it was trained with."""

    network: NetworkConfig = field(default_factory=lambda: PRESETS["small"])
    process: ProcessConfig = field(default_factory=ProcessConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of a training run (stored in checkpoints)."""

    steps: int = 20000  # optimiser steps in total
    # segments per optimiser step per process (with whole_steps; else the most per batch)
    batch_size: int = 8
    crop_length: int = 128  # residues; longer segments are cropped at random
    # if > 0, (micro-)batches hold at most max_pairs // L² chains of padded length L
    max_pairs: int = 0
    # every step holds exactly batch_size chains, its pair-budget micro-batches' gradients
    # accumulated before clipping, so every chain weighs the same (protgen/THEORY.md §6); False: one
    # pair-budget batch per step (runs saved before protgen 0.3)
    whole_steps: bool = True
    lr: float = 2e-4  # peak AdamW learning rate
    warmup: int = 500  # steps of linear warm-up
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    # max global gradient norm of a step (metrics.csv's clipped column says how often it acts)
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # EMA of the weights (sampling uses the EMA)
    # probability of a self-conditioning pass (if the network has it)
    self_condition_prob: float = 0.5
    # probability that a training chain gets a random motif (needs a network with motif = true)
    motif_prob: float = 0.0
    # networks with ss_condition: probability that a training chain's secondary-structure condition
    # is dropped (all unknown: the unconditional mode guidance needs), and that the rest have
    # random spans made unknown (partial strings)
    ss_drop: float = 0.2
    ss_partial: float = 0.3
    checkpoint_every: int = 250  # steps between checkpoints
    val_every: int = 250  # steps between validation passes
    val_batches: int = 2  # validation batches per time bin
    # chains per validation batch (the same chains whatever batch_size; 0 = batch_size, as runs
    # saved before protgen 0.3 did)
    val_chains: int = 16
    log_every: int = 10  # steps between metrics.csv rows
    seed: int = 0  # seeds model init, data order and noise
    # bfloat16 autocast of the network (for GPUs; slower than float32 on 2 AVX-512 CPU cores)
    bf16: bool = False
    max_nonfinite: int = 20  # consecutive skipped (non-finite) steps that stop the run
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    # minutes of wall time one invocation may train; it then checkpoints and stops (--resume
    # continues; the learning-rate schedule still runs over ``steps``); 0 = none
    time_limit: float = 0.0


# Values that reproduce a protgen 0.1 model saved before these fields existed.
_LEGACY_NETWORK = {"position": "absolute"}
_LEGACY_PROCESS = {"coupling": "independent"}
_LEGACY_TRAIN = {"whole_steps": False, "val_chains": 0}
_LOSS_FIELDS = {f.name for f in fields(LossConfig)}


def model_config_from_dict(d: dict, where: str = "checkpoint") -> ModelConfig:
    """A ModelConfig from a checkpoint's dict (loss settings stored inside the process by
    protgen 0.1 are moved to the loss). Raises CheckpointError for fields this protgen lacks."""
    try:
        process = {**_LEGACY_PROCESS, **d["process"]}
        loss = {
            **{k: process.pop(k) for k in list(process) if k in _LOSS_FIELDS},
            **d.get("loss", {}),
        }
        return ModelConfig(
            NetworkConfig(**{**_LEGACY_NETWORK, **d["network"]}),
            ProcessConfig(**process),
            LossConfig(**loss),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{where}: model configuration not readable by this protgen ({error})"
        ) from None


def train_config_from_dict(d: dict) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in {**_LEGACY_TRAIN, **d}.items() if k in known})


def _check_type(name: str, value, kind, where: str) -> None:
    """Refuse a value whose type does not fit the field (ints are accepted for floats)."""
    kinds = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    for k in kinds:
        if k is type(None) and value is None:
            return
        if k is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if k in (int, str) and isinstance(value, k) and not isinstance(value, bool):
            return
        if k is bool and isinstance(value, bool):
            return
    expected = " or ".join(getattr(k, "__name__", str(k)) for k in kinds)
    raise ConfigError(f"{where}: {name} = {value!r} is not of type {expected}")


def replace_fields(config, values: Mapping[str, object], where: str):
    """A config dataclass with the given fields replaced; unknown fields, values of the wrong type
    and the config's own checks (an unknown choice) raise ConfigError naming ``where``."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f.type for f in fields(config)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(known))}"
        )
    for name, value in values.items():
        _check_type(name, value, known[name], where)
    try:
        return dataclasses.replace(config, **values)
    except ValueError as error:  # a config's own check (an unknown choice)
        raise ConfigError(f"{where}: {error}") from None
