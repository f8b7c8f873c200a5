"""Export a training checkpoint's EMA weights, configs, data fingerprint and a training summary
into a small weights file (what protgen ships as protgen/weights/default.pt).

Usage: python scripts/export_weights.py RUN/checkpoint.pt protgen/weights/default.pt
"""

import argparse
import csv
import json
from pathlib import Path

from protgen.training import checkpoint
from protgen.training.config import model_config_from_dict


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args()
    state = checkpoint.load(args.checkpoint)
    run = Path(args.checkpoint).parent
    summary = {"steps": state["step"], "skipped_steps": state["skipped_steps"], "world_size": len(state["rng"])}
    for name in ("metrics.csv", "validation.csv"):
        if (run / name).exists():
            with open(run / name, newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= state["step"]]
            if rows:
                summary[name.removesuffix(".csv")] = rows[-1]
    metrics = run / "metrics.csv"
    if metrics.exists():  # wall-clock training time from the logged rates (includes any pause of the run)
        with open(metrics, newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= state["step"]]
        train = state["train_config"]
        summary["train_hours"] = round(sum(train["log_every"] / float(r["steps_per_s"]) for r in rows) / 3600, 2)
    payload = {key: state[key] for key in ("train_config", "data_fingerprint", "ema")}
    payload["model_config"] = model_config_from_dict(state["model_config"]).to_dict()  # today's schema
    payload["ema"] = {k: v.float().cpu() for k, v in payload["ema"].items()}
    payload["summary"] = summary
    checkpoint.save(args.out, payload)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
