"""``protgen inspect``: what a checkpoint or weights file holds (configs, data, training summary)
and, for a run directory, what its logs say."""

import json
import math
from pathlib import Path

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
    """Everything a file holds except tensors: versions, configs, data, step and summary; for a
    run's checkpoint also what its logs say (``run_log``)."""
    stored = checkpoint.load(path)
    tensors = ("model", "ema", "optimizer", "rng")
    info = {k: v for k, v in stored.to_payload().items() if k not in tensors}
    info["file"] = str(checkpoint.resolve(path))
    info["file_fingerprint"] = checkpoint.fingerprint(path)
    floats = [v for v in stored.ema.values() if v.dtype.is_floating_point]
    info["parameters"] = int(sum(v.numel() for v in floats))
    log = run_log(checkpoint.resolve(path).parent)
    if log:
        info["run_log"] = log
    return info


def run_log(folder: Path) -> dict:
    """The last training row and the validation losses of a run directory's logs ({} without
    them): step, loss and its terms, steps/s; last and best validation mean loss and their steps."""
    from protgen.training.logs import read_csv

    metrics, val = read_csv(folder / "metrics.csv"), read_csv(folder / "validation.csv")
    out = {}
    if metrics.get("step"):
        last = {k: v[-1] for k, v in metrics.items()}
        skip = {"step", "lr", "grad_norm", "skipped", "residues_per_s", "clipped"}
        out["training"] = {"step": int(last["step"]), **{k: last[k] for k in last if k not in skip}}
    if val.get("step") and val.get("mean"):
        means = val["mean"]
        best = min(range(len(means)), key=lambda k: (math.isnan(means[k]), means[k]))
        out["validation"] = {
            "step": int(val["step"][-1]),
            "mean": means[-1],
            "best_step": int(val["step"][best]),
            "best_mean": means[best],
        }
        if val.get("hours"):
            out["validation"]["hours"] = val["hours"][-1]
    return out


_NOT_TERMS = {"step", "loss", "steps_per_s"}


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
    serving = info.get("serving")
    if serving:  # a shipped weights file: what protgen sample uses it for
        lengths, rate = serving.get("lengths"), serving.get("rot_rate")
        served = f"{lengths[0]}–{lengths[1]} residues" if lengths else "any length"
        if rate is not None:
            served += f", rotation rate {rate:g}" + (" (the learned rate)" if rate == 0 else "")
        print(f"  serves: {served}")
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
    log = info.get("run_log", {})
    if "training" in log:
        t = log["training"]
        terms = ", ".join(f"{k} {v:.4g}" for k, v in t.items() if k not in _NOT_TERMS)
        rate = f"; {t['steps_per_s']:.2f} steps/s" if "steps_per_s" in t else ""
        print(f"  last logged step {t['step']}: loss {t['loss']:.4g} ({terms}){rate}")
    if "validation" in log:
        v = log["validation"]
        hours = f" after {v['hours']:.2f} h of training" if "hours" in v else ""
        print(
            f"  validation loss {v['mean']:.4g} at step {v['step']}{hours} "
            f"(best {v['best_mean']:.4g} at step {v['best_step']})"
        )
    elif "training" in log:
        print("  validation: none logged (the set has no validation segments, or none ran yet)")
