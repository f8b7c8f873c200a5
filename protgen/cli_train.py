"""``protgen train``: flags and an optional TOML file → ModelConfig and TrainConfig → train()."""

import dataclasses
import os
import tomllib
from pathlib import Path

from protgen.errors import ConfigError
from protgen.model import ModelConfig
from protgen.network import PRESETS
from protgen.process import ProcessConfig
from protgen.train import TrainConfig, train

__all__ = ["register", "configs_from"]

_FLAGS = {  # flag → (TrainConfig field, type)
    "steps": int, "batch_size": int, "crop_length": int, "max_pairs": int, "lr": float, "warmup": int, "ema_decay": float,
    "checkpoint_every": int, "val_every": int, "log_every": int, "seed": int, "device": str,
}  # fmt: skip


def register(sub) -> None:
    counts = ", ".join(f"{name} {_count(name):,}" for name in PRESETS)
    p = sub.add_parser("train", help="train a model on a training set",
                       description=f"Train an LPGM model. Network presets (parameters): {counts}. "
                       "Several processes: torchrun --nproc_per_node N -m protgen train ...")
    p.add_argument("--data", required=True, help="training-set directory from `protgen data build`")
    p.add_argument("--out", required=True, help="run directory (checkpoint.pt, metrics.csv, loss.png)")
    p.add_argument("--config", help="TOML file with [network], [process] and [train] tables (flags override it)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="network size (default small)")
    p.add_argument("--process", choices=("frames", "chain"), help="latent process: per-residue frames (1) or chain ∘ residue frames (2)")
    t = TrainConfig()
    for name, kind in _FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, help=f"default {getattr(t, name)}")
    p.add_argument("--bf16", action="store_true", default=None, help="bfloat16 autocast (GPU)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--init-from", metavar="CKPT", help="start from the weights of a checkpoint or weights file "
                   "('shipped' = the model in the package): fine-tuning; the network config is taken from it")
    p.set_defaults(run=_run)


def _count(name: str) -> int:
    import torch

    from protgen.network import FrameNetwork

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return FrameNetwork(PRESETS[name]).parameter_count()


def _replace(obj, values: dict, where: str):
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(names))}")
    try:
        return dataclasses.replace(obj, **values)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def configs_from(args) -> tuple[ModelConfig, TrainConfig]:
    table: dict = {}
    if args.config:
        try:
            table = tomllib.loads(Path(args.config).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{args.config}: no such config file") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{args.config}: not valid TOML ({error})") from None
        unknown = sorted(set(table) - {"preset", "network", "process", "train"})
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {args.config}; known: preset, network, process, train")
    preset = args.preset or table.get("preset", "small")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    network = _replace(PRESETS[preset], table.get("network", {}), f"{args.config} [network]")
    process = _replace(ProcessConfig(), table.get("process", {}), f"{args.config} [process]")
    if args.process:
        process = dataclasses.replace(process, name=args.process)
    train_config = _replace(TrainConfig(), table.get("train", {}), f"{args.config} [train]")
    flags = {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not None}
    if args.bf16:
        flags["bf16"] = True
    train_config = dataclasses.replace(train_config, **flags)
    if train_config.steps < 1 or train_config.batch_size < 1 or train_config.crop_length < 8:
        raise ConfigError("need --steps ≥ 1, --batch-size ≥ 1 and --crop-length ≥ 8")
    return ModelConfig(network, process), train_config


def _run(args) -> None:
    model, config = configs_from(args)
    init_from = args.init_from
    if init_from is not None:
        from protgen import checkpoint
        from protgen.sample import default_checkpoint

        init_from = default_checkpoint() if init_from == "shipped" else Path(init_from)
        if not (args.preset or (args.config and "network" in tomllib.loads(Path(args.config).read_text()))):
            source = checkpoint.model_config_from_dict(checkpoint.load(init_from)["model_config"])
            model = dataclasses.replace(model, network=source.network)
    result = train(args.data, args.out, model, config, resume=args.resume, init_from=init_from)
    if os.environ.get("RANK", "0") == "0":
        print(f"checkpoint: {result.checkpoint} (step {result.step})")
