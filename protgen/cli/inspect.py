"""``protgen inspect``: what a checkpoint or weights file holds (configs, data, summary)."""

import json

from protgen.training import checkpoint

__all__ = ["register", "describe_checkpoint"]


def register(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="show a checkpoint's configs, data fingerprint and training summary",
        description="Print what a checkpoint, run directory or weights file holds; without an "
        "argument, the model shipped in the package.",
    )
    p.add_argument(
        "checkpoint",
        nargs="?",
        help="checkpoint, run directory or weights file (default: the shipped model)",
    )
    p.add_argument("--json", action="store_true", help="print everything but the weights as JSON")
    p.set_defaults(run=_run)


def describe_checkpoint(path) -> dict:
    """Everything a file holds except tensors: versions, configs, data, step and summary."""
    stored = checkpoint.load(path)
    tensors = ("model", "ema", "optimizer", "rng")
    info = {k: v for k, v in stored.to_payload().items() if k not in tensors}
    info["file"] = str(checkpoint.resolve(path))
    info["file_fingerprint"] = checkpoint.fingerprint(path)
    floats = [v for v in stored.ema.values() if v.dtype.is_floating_point]
    info["parameters"] = int(sum(v.numel() for v in floats))
    return info


def _run(args) -> None:
    info = describe_checkpoint(args.checkpoint or checkpoint.default_checkpoint())
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return
    net, proc = info["model_config"]["network"], info["model_config"]["process"]
    print(
        f"{info['file']} (fingerprint {info['file_fingerprint']}; format {info['format_version']}, "
        f"protgen {info['protgen_version']})"
    )
    print(
        f"  network: {info['parameters']:,} parameters — "
        + ", ".join(f"{k} {v}" for k, v in net.items())
    )
    print("  process: " + ", ".join(f"{k} {v}" for k, v in proc.items()))
    if "loss" in info["model_config"]:
        print("  loss: " + ", ".join(f"{k} {v}" for k, v in info["model_config"]["loss"].items()))
    print(f"  data fingerprint: {info.get('data_fingerprint')}")
    train = info.get("train_config", {})
    print(
        "  training: "
        + ", ".join(
            f"{k} {train[k]}"
            for k in ("steps", "batch_size", "crop_length", "max_pairs", "lr", "seed")
            if k in train
        )
    )
    if "step" in info:
        print(f"  checkpoint at step {info['step']} ({info.get('skipped_steps', 0)} skipped)")
    for key, value in (info.get("summary") or {}).items():
        print(f"  {key}: {json.dumps(value, default=str)}")
