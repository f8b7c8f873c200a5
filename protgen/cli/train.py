"""``protgen train``: flags and an optional TOML file → the fields of a RunRequest → training.

The flags override the TOML file; what a new, resumed or initialised run then is — its base, the
rules, what may change on resume — is decided in one place, ``protgen.training.resolve``.
"""

import os
import sys
import tomllib
from pathlib import Path

from protgen.cli.threads import add_threads_flag, set_threads
from protgen.errors import ConfigError
from protgen.method.registry import PROCESSES
from protgen.network.config import PRESET_PARAMETERS, PRESETS
from protgen.training.config import TrainConfig
from protgen.training.resolve import RunRequest

__all__ = ["register", "request_from"]

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
        "processes: torchrun --nproc_per_node N -m protgen train ... A run stopped by Ctrl-C or "
        "SIGTERM writes its checkpoint and exits with status 130; --resume continues it.",
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
        choices=sorted(PROCESSES),
        help="latent process: per-residue frames (1), chain ∘ residue frames (2) "
        "or insertion (3, variable length; adds the network's gap head)",
    )
    p.add_argument(
        "--neighbours",
        type=int,
        metavar="K",
        help="pair features and attention over each residue's K nearest residues (sparse; cost ∝ "
        "L·K, for long chains) instead of every pair (0 = dense, the default); the parameters are "
        "the same, so a fine-tune may switch it",
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
        "explicitly are applied where they may change (steps, lr, logging, device, time limit) "
        "and refused otherwise",
    )
    p.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start from the weights of a checkpoint, run directory or weights file ('shipped' = "
        "the model in the package): fine-tuning; the network config is taken from it unless a "
        "preset is named, [network] fields on top (more node_layers grow it)",
    )
    add_threads_flag(p)
    p.set_defaults(run=_run)


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
    for name in _TABLES[1:]:
        if not isinstance(table.get(name, {}), dict):
            raise ConfigError(f"{path} [{name}] must be a table")
    return table


def request_from(args) -> RunRequest:
    """The run the flags and the TOML file ask for: the fields they set (flags over the file)."""
    table = _read_toml(args.config)
    network = dict(table.get("network", {}))
    if args.ss_condition:  # a per-residue secondary-structure condition (zero-initialised)
        network["ss_condition"] = True
    if args.neighbours is not None:
        network["neighbours"] = args.neighbours
    process = dict(table.get("process", {}))
    if args.process:
        process["name"] = args.process
    flags = {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not None}
    if args.bf16:
        flags["bf16"] = True
    return RunRequest(
        preset=args.preset or table.get("preset"),
        network=network,
        process=process,
        loss=dict(table.get("loss", {})),
        train={**table.get("train", {}), **flags},
        resume=args.resume,
        init_from=args.init_from,
        where=args.config or "config",
    )


def _run(args) -> None:
    set_threads(args.threads)
    from protgen.training.loop import train_run

    result = train_run(args.data, args.out, request_from(args))
    if os.environ.get("RANK", "0") == "0":
        print(f"checkpoint: {result.checkpoint} (step {result.step})")
    if result.stopped:
        sys.exit(130)
