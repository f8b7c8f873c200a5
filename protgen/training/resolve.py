"""What a training run is: the one place that decides the configs of a new, resumed or
initialised run.

A caller — ``protgen train`` mapping its flags and TOML tables, or the Python API's ``train()`` —
describes a run as a :class:`RunRequest`: the settings given explicitly. :func:`resolve_run`
turns it into the configs the run uses, starting from the run's base:

- a new run: the defaults, the preset if one is named, else the ``--init-from`` source's network;
- a resumed run: the checkpoint's configs; the model may not change, and the training settings
  only where :data:`RESUMABLE` allows.

The request's fields go on top, then what the choices imply for fields the request leaves open (a
motif probability needs the motif flags; a process whose length emerges needs the gap head).
The checkpoint (resume) or the source model (``--init-from``) is loaded once, here.
"""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from protgen.errors import CheckpointError, ConfigError, ProtgenError
from protgen.method.loss import LossConfig
from protgen.method.process import ProcessConfig
from protgen.method.registry import make_process
from protgen.network.config import PRESETS, NetworkConfig
from protgen.training import checkpoint
from protgen.training.checkpoint import Checkpoint, TrainedModel
from protgen.training.config import ModelConfig, TrainConfig, replace_fields

__all__ = ["RESUMABLE", "RunRequest", "ResolvedRun", "resolve_run"]

# Settings a resumed run may change; the others define the run (data order, model) and are refused.
RESUMABLE = frozenset(
    {
        "steps",
        "lr",
        "warmup",
        "weight_decay",
        "grad_clip",
        "ema_decay",
        "self_condition_prob",
        "checkpoint_every",
        "val_every",
        "val_batches",
        "log_every",
        "bf16",
        "max_nonfinite",
        "device",
        "time_limit",
    }
)


@dataclass(frozen=True)
class RunRequest:
    """The settings a caller gave explicitly, as field → value of NetworkConfig, ProcessConfig,
    LossConfig and TrainConfig; every other field comes from the run's base."""

    preset: str | None = None  # a network preset (tiny, small, base)
    network: Mapping[str, object] = field(default_factory=dict)
    process: Mapping[str, object] = field(default_factory=dict)
    loss: Mapping[str, object] = field(default_factory=dict)
    train: Mapping[str, object] = field(default_factory=dict)
    resume: bool = False  # continue the run in the output directory
    # start from the (EMA) weights of a checkpoint, run directory or weights file; "shipped": the
    # model in the package
    init_from: str | Path | None = None
    where: str = "config"  # where the settings came from, for messages (the TOML file)

    @staticmethod
    def of(
        model: ModelConfig | None,
        train: TrainConfig | None,
        resume: bool = False,
        init_from: str | Path | None = None,
    ) -> "RunRequest":
        """A request that sets every field of the configs given (None: as stored, or defaults)."""
        parts = asdict(model) if model is not None else {}
        return RunRequest(
            network=parts.get("network", {}),
            process=parts.get("process", {}),
            loss=parts.get("loss", {}),
            train=asdict(train) if train is not None else {},
            resume=resume,
            init_from=init_from,
        )


@dataclass(frozen=True)
class ResolvedRun:
    """The configs a run uses; on resume the checkpoint's payload (``state``) and one line per
    training setting changed (``applied``); with --init-from the source file and its model."""

    model: ModelConfig
    train: TrainConfig
    state: Checkpoint | None = None
    applied: tuple[str, ...] = ()
    init_from: Path | None = None
    source: TrainedModel | None = None


def resolve_run(request: RunRequest, out: str | Path, data_fingerprint: str) -> ResolvedRun:
    """The configs of the run ``request`` describes in the run directory ``out``, on the data set
    with ``data_fingerprint``. Raises a one-line ProtgenError for a request that does not fit."""
    path = Path(out) / "checkpoint.pt"
    if request.resume and request.init_from is not None:
        raise ConfigError("--init-from starts a new run; it cannot be combined with --resume")
    if not request.resume:
        if path.exists():
            raise ProtgenError(
                f"{out} already holds a run; pass --resume to continue it or choose another --out"
            )
        return _new_run(request)
    if not path.exists():
        raise CheckpointError(
            f"{out} holds no checkpoint.pt to resume; start the run without --resume"
        )
    state = checkpoint.load(path, map_location="cpu")
    if state.data_fingerprint != data_fingerprint:
        raise CheckpointError(
            f"{path} was trained on data {state.data_fingerprint}, but the training set is "
            f"{data_fingerprint}"
        )
    if state.train_config is None or state.rng is None:
        raise CheckpointError(f"{path} is a weights file, not a run to resume; use --init-from")
    stored, stored_train = state.model_config, state.train_config
    model = _model(request, stored.network, stored.process, stored.loss, new=False)
    config = _train(request, stored_train)
    _check(model, config)
    if config.steps < state.step:
        raise ConfigError(
            f"--steps {config.steps} is below the run's step {state.step}: a resumed run "
            "continues to a later target (start a new run, or --init-from it, to train less)"
        )
    if model != stored:
        raise ConfigError(
            "--resume continues the stored model; --preset, --process and the "
            "[network]/[process]/[loss] tables cannot change it (start a new run, or use "
            "--init-from to start from its weights)"
        )
    applied = []
    for f in fields(TrainConfig):
        old, new = getattr(stored_train, f.name), getattr(config, f.name)
        if old == new:
            continue
        if f.name not in RESUMABLE:
            raise ConfigError(
                f"--{f.name.replace('_', '-')} cannot change on --resume (the run uses {old!r}, "
                f"asked {new!r}); start a new run or use --init-from"
            )
        applied.append(f"{f.name} {old!r} → {new!r}")
    return ResolvedRun(model, config, state, tuple(applied))


def _new_run(request: RunRequest) -> ResolvedRun:
    init_from, source = None, None
    if request.init_from is not None:
        init_from = (
            checkpoint.default_checkpoint()
            if str(request.init_from) == "shipped"
            else checkpoint.resolve(request.init_from)
        )
        source = checkpoint.load_model(init_from)
    network = source.config.network if source is not None else ModelConfig().network
    model = _model(request, network, ProcessConfig(), LossConfig(), new=True)
    config = _train(request, TrainConfig())
    _check(model, config)
    return ResolvedRun(model, config, init_from=init_from, source=source)


def _model(
    request: RunRequest,
    network: NetworkConfig,
    process: ProcessConfig,
    loss: LossConfig,
    new: bool,
) -> ModelConfig:
    """The base configs with the preset, the request's fields, and the capabilities the run's
    choices need where the request leaves them open. A ``new`` run (or fine-tune) of a process
    whose length emerges also gets the gap head's insertion clock and each residue's birth clock
    (zero-initialised, so a fine-tune starts as its source); a resumed run keeps its network."""
    if request.preset is not None:
        if request.preset not in PRESETS:
            raise ConfigError(
                f"unknown preset {request.preset!r}; choose one of {', '.join(PRESETS)}"
            )
        network = PRESETS[request.preset]
    where = request.where
    network = replace_fields(network, request.network, f"{where} [network]")
    process = replace_fields(process, request.process, f"{where} [process]")
    loss = replace_fields(loss, request.loss, f"{where} [loss]")
    motif_prob = request.train.get("motif_prob", 0.0)
    if isinstance(motif_prob, (int, float)) and motif_prob > 0 and "motif" not in request.network:
        network = dataclasses.replace(network, motif=True)  # conditional training sees the flags
    if make_process(process).emerging_length and "insertion" not in request.network:
        clocks = {"insertion_end": process.insertion_end, "birth_clock": True} if new else {}
        clocks = {k: v for k, v in clocks.items() if k not in request.network}
        network = dataclasses.replace(network, insertion=True, **clocks)  # the gap head
    return ModelConfig(network, process, loss)


def _train(request: RunRequest, base: TrainConfig) -> TrainConfig:
    return replace_fields(base, request.train, f"{request.where} [train]")


def _check(model: ModelConfig, config: TrainConfig) -> None:
    """Refuse settings no run can use, naming the flag."""
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--{f.name.replace('_', '-')} {value}: need a finite number")
    if model.network.neighbours < 0:
        raise ConfigError(f"--neighbours {model.network.neighbours}: need K ≥ 0 (0 = every pair)")
    if config.time_limit < 0:
        raise ConfigError(f"--time-limit {config.time_limit:g}: need minutes ≥ 0 (0 = no limit)")
    if config.steps < 1 or config.batch_size < 1 or config.crop_length < 8 or config.lr <= 0:
        raise ConfigError("need --steps ≥ 1, --batch-size ≥ 1, --crop-length ≥ 8 and --lr > 0")
    if min(config.log_every, config.checkpoint_every, config.val_every) < 1:
        raise ConfigError(
            "need --log-every, --checkpoint-every and --val-every ≥ 1 (steps between rows, "
            f"checkpoints and validations), got {config.log_every}, {config.checkpoint_every} "
            f"and {config.val_every}"
        )
    process = make_process(model.process)
    if config.motif_prob > 0 and not model.network.motif:
        raise ConfigError(
            "motif_prob > 0 needs a network with motif = true ([network] table), which sees the "
            "fixed flags"
        )
    if config.motif_prob > 0 and not process.supports_motif:
        raise ConfigError(
            f"--motif-prob needs a process that keeps motif residues; {model.process.name!r} "
            "does not (use --process frames)"
        )
    if process.emerging_length and not model.network.insertion:
        raise ConfigError(
            f"the {model.process.name!r} process lets the length emerge: its network needs the gap "
            "head (insertion = true in the [network] table)"
        )
