"""``protgen train``: flags and an optional TOML file → ModelConfig and TrainConfig → train().

A new run starts from the defaults, then the TOML file, then the flags. A resumed run starts from
its checkpoint's settings and applies only what the TOML file and the flags say explicitly.
"""

import dataclasses
import math
import os
import sys
import tomllib
import types
import typing
from pathlib import Path

from protgen.cli.threads import add_threads_flag, set_threads
from protgen.errors import ConfigError
from protgen.files import writable_folder
from protgen.method.loss import LossConfig
from protgen.method.process import PROCESSES, ProcessConfig
from protgen.network.ipa import PRESET_PARAMETERS, PRESETS
from protgen.training.config import ModelConfig, TrainConfig

__all__ = ["register", "configs_from"]

_FLAGS = {  # TrainConfig field → type
    "steps": int,
    "batch_size": int,
    "crop_length": int,
    "max_pairs": int,
    "lr": float,
    "warmup": int,
    "ema_decay": float,
    "checkpoint_every": int,
    "val_every": int,
    "log_every": int,
    "seed": int,
    "device": str,
    "motif_prob": float,
    "time_limit": float,
    "grad_clip": float,
    "ss_drop": float,
    "ss_partial": float,
}
_HELP = {
    "time_limit": "minutes this invocation may train; it then writes its checkpoint and exits 0 "
    "(--resume continues; the learning-rate schedule still spans --steps). Default 0: no limit"
}
_TABLES = ("preset", "network", "process", "loss", "train")


def register(sub) -> None:
    counts = ", ".join(f"{name} {PRESET_PARAMETERS[name]:,}" for name in PRESETS)
    p = sub.add_parser(
        "train",
        help="train a model on a training set",
        description=f"Train an LPGM model. Network presets (parameters): {counts}. Several "
        "processes: torchrun --nproc_per_node N -m protgen train ... A run stopped "
        "by Ctrl-C or SIGTERM writes its checkpoint and exits with status 130; "
        "--resume continues it.",
    )
    p.add_argument("--data", required=True, help="training-set directory from `protgen data build`")
    p.add_argument(
        "--out",
        required=True,
        help="run directory (checkpoint.pt, metrics.csv, validation.csv, loss.png)",
    )
    p.add_argument(
        "--config",
        help="TOML file with preset and [network], [process], [loss], [train] tables (flags "
        "override it)",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), help="network size (default small)")
    p.add_argument(
        "--process",
        choices=PROCESSES,
        help="latent process: per-residue frames (1), chain ∘ residue frames (2) "
        "or insertion (3, variable length; adds the network's gap head)",
    )
    p.add_argument(
        "--neighbours",
        type=int,
        metavar="K",
        help="pair features and attention over each residue's K nearest residues (sparse; cost ∝ "
        "L·K, for long chains) instead of every pair (0 = dense, the default); the "
        "parameters are the same, so a fine-tune may switch it",
    )
    t = TrainConfig()
    for name, kind in _FLAGS.items():
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            help=_HELP.get(name, f"default {getattr(t, name)}"),
        )
    p.add_argument(
        "--ss-condition",
        action="store_true",
        help="condition on each residue's secondary structure (helix/strand/loop, from the set's "
        "DSSP; a zero-initialised embedding, so --init-from an unconditional model starts equal "
        "to it); --ss-drop and --ss-partial set how often training chains get no condition or a "
        "partial one",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        default=None,
        help="bfloat16 autocast of the network (for GPUs; on CPUs measure first: slower on 2 "
        "AVX-512 cores)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint with its own settings; flags given "
        "explicitly are applied where they may change (steps, lr, logging, device, time "
        "limit) and refused otherwise",
    )
    p.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start from the weights of a checkpoint, run directory or weights file ('shipped' = "
        "the model in the package): fine-tuning; the network config is taken from it, unless "
        "--config/--preset gives one (it may add sequence-transformer layers: node_layers)",
    )
    add_threads_flag(p)
    p.set_defaults(run=_run)


def _check_type(name: str, value, kind, where: str) -> None:
    """Refuse a TOML value whose type does not fit the field (ints are accepted for floats)."""
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


def _replace(obj, values: dict, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f.type for f in dataclasses.fields(obj)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(known))}"
        )
    for name, value in values.items():
        _check_type(name, value, known[name], where)
    try:
        return dataclasses.replace(obj, **values)
    except ValueError as error:  # a config's own check (an unknown choice)
        raise ConfigError(f"{where}: {error}") from None


def _read_toml(path: str | None) -> dict:
    if not path:
        return {}
    try:
        table = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file ({type(error).__name__})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    unknown = sorted(set(table) - set(_TABLES))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in {path}; known: {', '.join(_TABLES)}"
        )
    return table


def configs_from(
    args, base: tuple[ModelConfig, TrainConfig] | None = None
) -> tuple[ModelConfig | None, TrainConfig]:
    """Configs from ``base`` (defaults, or a resumed run's) with the TOML file and the flags on top.
    The model config is None when nothing changes it and ``base`` is given (resume keeps it)."""
    table = _read_toml(args.config)
    model_base, train_base = base or (ModelConfig(), TrainConfig())
    model_given = bool(
        args.preset or args.process or {"preset", "network", "process", "loss"} & set(table)
    )
    preset = args.preset or table.get("preset")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    where = args.config or "config"
    network = _replace(
        PRESETS[preset] if preset else model_base.network,
        table.get("network", {}),
        f"{where} [network]",
    )
    process = _replace(
        model_base.process if base else ProcessConfig(),
        table.get("process", {}),
        f"{where} [process]",
    )
    loss = _replace(
        model_base.loss if base else LossConfig(), table.get("loss", {}), f"{where} [loss]"
    )
    if args.process:
        process = dataclasses.replace(process, name=args.process)
    if (
        args.ss_condition
    ):  # a per-residue secondary-structure condition (zero-initialised embedding)
        network, model_given = dataclasses.replace(network, ss_condition=True), True
    if args.neighbours is not None:
        if args.neighbours < 0:
            raise ConfigError(f"--neighbours {args.neighbours}: need K ≥ 0 (0 = every pair)")
        network, model_given = dataclasses.replace(network, neighbours=args.neighbours), True
    train_config = _replace(train_base, table.get("train", {}), f"{where} [train]")
    flags = {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not None}
    if args.bf16:
        flags["bf16"] = True
    train_config = dataclasses.replace(train_config, **flags)
    if train_config.time_limit < 0:
        raise ConfigError(
            f"--time-limit {train_config.time_limit:g}: need minutes ≥ 0 (0 = no limit)"
        )
    for f in dataclasses.fields(train_config):
        value = getattr(train_config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--{f.name.replace('_', '-')} {value}: need a finite number")
    if (
        train_config.steps < 1
        or train_config.batch_size < 1
        or train_config.crop_length < 8
        or train_config.lr <= 0
    ):
        raise ConfigError("need --steps ≥ 1, --batch-size ≥ 1, --crop-length ≥ 8 and --lr > 0")
    # conditional training needs the flag embedding
    if train_config.motif_prob > 0 and not network.motif:
        network, model_given = dataclasses.replace(network, motif=True), True
    # Process 3 needs the gap head; new runs give it the insertion clock and the birth clock
    if process.name == "insertion" and not network.insertion:
        network = dataclasses.replace(
            network, insertion=True, insertion_end=process.insertion_end, birth_clock=True
        )
        model_given = True
    model = ModelConfig(network, process, loss)
    return (model if model_given or base is None else None), train_config


def _run(args) -> None:
    set_threads(args.threads)
    from protgen.training import checkpoint
    from protgen.training.config import model_config_from_dict, train_config_from_dict
    from protgen.training.loop import train

    init_from = args.init_from
    if args.resume and init_from is not None:
        raise ConfigError("--init-from starts a new run; it cannot be combined with --resume")
    if args.resume:
        state = checkpoint.load(Path(args.out) / "checkpoint.pt")
        model, config = configs_from(
            args,
            (
                model_config_from_dict(state["model_config"]),
                train_config_from_dict(state["train_config"]),
            ),
        )
        if config.steps < state["step"]:
            raise ConfigError(
                f"--steps {config.steps} is below the run's step {state['step']}: a resumed run "
                "continues to a later target (start a new run, or --init-from it, to train less)"
            )
    else:
        model, config = configs_from(args)
    writable_folder(args.out, create=False)
    if init_from is not None:
        from protgen.sampling.sample import default_checkpoint

        init_from = (
            default_checkpoint() if init_from == "shipped" else checkpoint.resolve(init_from)
        )
        table = _read_toml(args.config)
        if not (args.preset or "network" in table or "preset" in table):
            source = model_config_from_dict(checkpoint.load(init_from)["model_config"])
            network = dataclasses.replace(
                source.network,
                motif=model.network.motif or source.network.motif,
                insertion=model.network.insertion or source.network.insertion,
                insertion_end=model.network.insertion_end or source.network.insertion_end,
                birth_clock=model.network.birth_clock or source.network.birth_clock,
                ss_condition=model.network.ss_condition or source.network.ss_condition,
            )
            if args.neighbours is not None:
                network = dataclasses.replace(network, neighbours=args.neighbours)
            model = dataclasses.replace(model, network=network)
    result = train(args.data, args.out, model, config, resume=args.resume, init_from=init_from)
    if os.environ.get("RANK", "0") == "0":
        print(f"checkpoint: {result.checkpoint} (step {result.step})")
    if result.stopped:
        sys.exit(130)
