"""Compare models on mid-t denoising with the same chains and the same noise: validation chains
of a training set noised along each model's training path to t and denoised by the network, in
one pass and in two (the second fed the first's x̂_1, as the sampler feeds it) — x̂_1 CA RMSD,
recall of the truth's DSSP strands and helices, clashing pairs per 100 residues, CA–CA(next) in
3.65–3.95 Å.

Training runs log the one-pass figures in validation.csv, but with their own noise seed; this
script puts models trained with different seeds on the same footing.
Usage: python scripts/compare_denoising.py --set SET CKPT [CKPT ...] [--batches 4] [--times 0.5,0.7]
"""

import argparse


def main() -> None:
    import torch

    from protgen.data.dataset import TrainingSet
    from protgen.data.loader import BatchLoader
    from protgen.training.checkpoint import load_model
    from protgen.training.validation import denoising_diagnostics

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--set", required=True, help="training set whose validation clusters give the chains"
    )
    parser.add_argument(
        "checkpoints",
        nargs="+",
        help="checkpoints, run directories or weights files ('shipped' = the default model)",
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=4,
        help="validation batches of 16 chains (whole chains up to 256 residues)",
    )
    parser.add_argument("--times", default="0.5,0.7")
    parser.add_argument("--seed", type=int, default=0, help="noise seed, the same for every model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    times = tuple(float(t) for t in args.times.split(","))
    # the chains training validates on
    loader = BatchLoader(TrainingSet.load(args.set), "val", 16, 256, seed=12345)
    batches = [next(loader) for _ in range(args.batches)]
    residues = sum(int(b.mask.sum()) for b in batches)
    print(
        f"{sum(b.mask.shape[0] for b in batches)} validation chains, {residues} residues; noise "
        f"seed {args.seed}"
    )
    print(
        f"{'model':<44}{'passes':>7}{'t':>5}{'RMSD Å':>8}{'strand rec':>11}{'helix rec':>10}"
        f"{'clash/100':>10}{'CA-CA ok':>9}"
    )
    for path in args.checkpoints:
        if path == "shipped":
            from protgen.training.checkpoint import default_checkpoint

            path = str(default_checkpoint())
        trained = load_model(path)
        for passes in (1, 2):
            for d in denoising_diagnostics(
                trained.model,
                trained.process,
                batches,
                args.seed,
                times,
                self_condition=passes == 2,
            ):
                print(
                    f"{path[-44:]:<44}{passes:>7}{d.t:>5.2f}{d.rmsd:>8.2f}{d.strand_recall:>11.2f}{d.helix_recall:>10.2f}"
                    f"{d.clashes_per_100:>10.1f}{d.ca_ca_in_range:>9.1%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
