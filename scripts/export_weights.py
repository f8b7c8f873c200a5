"""Export a training checkpoint's EMA weights, configs, data fingerprint and a training summary
into a small weights file (what protgen ships as protgen/weights/default.pt).

Usage: python scripts/export_weights.py RUN/checkpoint.pt protgen/weights/default.pt
       [--serve-lengths 40-128] [--rot-rate C]

--serve-lengths: the lengths this model samples when ``protgen sample`` picks a shipped model
(protgen/sampling/routes.py); --rot-rate: its rotation rate when the user names none (0 = the
learned rate), chosen for it with scripts/choose_sampler.py and the short-chain panel.
"""

import argparse
import csv
import json
from pathlib import Path

from protgen.training import checkpoint


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--serve-lengths", help="MIN-MAX residues, e.g. 40-128")
    parser.add_argument("--rot-rate", type=float, help="c ≥ 0 (0 = the learned rate)")
    args = parser.parse_args()
    lengths = None
    if args.serve_lengths is not None:
        low, _, high = args.serve_lengths.partition("-")
        try:
            lengths = (int(low), int(high))
        except ValueError:
            lengths = None
        if lengths is None or not 1 <= lengths[0] <= lengths[1]:
            parser.error(f"--serve-lengths {args.serve_lengths}: need 1 ≤ MIN ≤ MAX")
    if args.rot_rate is not None and not 0 <= args.rot_rate < float("inf"):
        parser.error(f"--rot-rate {args.rot_rate}: need a finite c ≥ 0")
    state = checkpoint.load(args.checkpoint)
    run = Path(args.checkpoint).parent
    summary = {
        "steps": state.step,
        "skipped_steps": state.skipped_steps,
        "world_size": len(state.rng),
    }
    logged = {}
    for name in ("metrics", "validation"):
        if (run / f"{name}.csv").exists():
            with open(run / f"{name}.csv", newline="") as handle:
                logged[name] = [r for r in csv.DictReader(handle) if int(r["step"]) <= state.step]
            if logged[name]:
                summary[name] = logged[name][-1]
    # wall-clock training time from the logged rates (includes any pause of the run)
    if "metrics" in logged:
        every = state.train_config.log_every
        summary["train_hours"] = round(
            sum(every / float(r["steps_per_s"]) for r in logged["metrics"]) / 3600, 2
        )
    weights = checkpoint.Checkpoint(
        model_config=state.model_config,
        ema={k: v.float().cpu() for k, v in state.ema.items()},
        data_fingerprint=state.data_fingerprint,
        train_config=state.train_config,
        summary=summary,
        serving=None
        if lengths is None and args.rot_rate is None
        else checkpoint.Serving(lengths, args.rot_rate),
    )
    checkpoint.save(args.out, weights)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
