"""Choose the sampler's settings on secondary-structure composition and geometry: sample the same
seeds under every combination of rotation rate (--rot-rate c), Langevin strength (--langevin κ)
and noise scale (--noise-scale η), run the quality panel, and print helix/strand/coil beside
held-out real chains of the same lengths, with the geometry figures the settings also move.

Usage: python scripts/choose_sampler.py --set SET [--checkpoint CKPT] [--rates 0,5,10,15]
       [--langevin 0] [--noise-scales 1] [--num 4]
"""

import argparse
import itertools

import numpy as np


def main() -> None:
    import torch

    import protgen
    from protgen.data.dataset import TrainingSet
    from protgen.evaluation.quality import quality_panel

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--set", required=True, help="training set whose validation clusters give the real chains"
    )
    parser.add_argument("--checkpoint")
    parser.add_argument("--rates", default="0,5,10,15")
    parser.add_argument("--langevin", default="0", help="κ values (0 = the ODE)")
    parser.add_argument("--noise-scales", default="1", help="η values (used where κ > 0)")
    parser.add_argument("--lengths", default="60,100,140,180")
    parser.add_argument("--num", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(n) for n in args.lengths.split(",")]
    model = protgen.load_model(args.checkpoint)
    ts = TrainingSet.load(args.set)
    rng = np.random.default_rng(0)
    real = []
    for n in lengths:
        pool = [i for i in ts.indices("val") if 0.8 * n <= ts.records[i].length <= 1.25 * n]
        real += [
            quality_panel(ts.segment_atoms(int(i)))
            for i in rng.choice(pool, min(len(pool), 3 * args.num), replace=False)
        ]
    keys = (
        "helix",
        "strand",
        "coil",
        "geometry_ok",
        "clashes",
        "ca_ca_ok",
        "rama_allowed",
        "rg_ratio",
    )
    print(f"{'c, κ, η':>14}" + "".join(f"{k:>13}" for k in keys) + f"{'|Δhelix|+|Δstrand|':>20}")
    reference = {k: float(np.mean([getattr(p, k) for p in real])) for k in keys}
    print(f"{'real':>14}" + "".join(f"{reference[k]:>13.3f}" for k in keys))
    settings = itertools.product(
        *(
            sorted({float(v) for v in a.split(",")})
            for a in (args.rates, args.langevin, args.noise_scales)
        )
    )
    # η acts only where κ > 0
    for rate, kappa, eta in sorted({(c, k, e if k > 0 else 1.0) for c, k, e in settings}):
        panels = []
        for n in lengths:
            atoms = protgen.sample(
                model,
                length=n,
                num=args.num,
                seed=0,
                steps=args.steps,
                rot_rate=rate or None,
                langevin=kappa,
                noise_scale=eta,
            )
            panels += [quality_panel(a) for a in atoms]
        means = {k: float(np.mean([getattr(p, k) for p in panels])) for k in keys}
        gap = abs(means["helix"] - reference["helix"]) + abs(means["strand"] - reference["strand"])
        print(
            f"{f'{rate:g}, {kappa:g}, {eta:g}':>14}"
            + "".join(f"{means[k]:>13.3f}" for k in keys)
            + f"{gap:>20.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
