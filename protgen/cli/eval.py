"""``protgen eval``: designability, secondary structure, diversity and novelty in one command."""

from protgen.cli.threads import add_threads_flag, set_threads
from protgen.evaluation.config import EvalConfig
from protgen.evaluation.evaluate import evaluate

__all__ = ["register"]


def register(sub) -> None:
    d = EvalConfig()
    p = sub.add_parser(
        "eval",
        help="evaluate backbones: quality panel, designability, diversity, novelty",
        description="Evaluate a directory of backbone files (or a sample manifest.csv). Writes "
        "structures.csv, summary.json, report.md, PNG plots and, with ProteinMPNN, "
        "designs/ (FASTA of the designs with their scores; with --fold-model the best "
        "fold as PDB) to --out; re-runs reuse cache.jsonl, and the reference chains' "
        "figures are cached per reference set in ~/.cache/protgen.",
    )
    p.add_argument(
        "source", help="directory of PDB/mmCIF files, or a manifest.csv from protgen sample"
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--reference", help="a `protgen data` directory: the real-chain column and novelty"
    )
    p.add_argument(
        "--max-reference",
        type=int,
        default=d.max_reference,
        help="real chains in the reference panel (default %(default)s)",
    )
    p.add_argument(
        "--reference-split",
        choices=("all", "train", "val", "test"),
        default=d.reference_split,
        help="reference segments: all, or the training set's train or held-out val clusters "
        "(default %(default)s)",
    )
    p.add_argument(
        "--novelty-candidates",
        type=int,
        default=d.novelty_candidates,
        help="reference chains searched per sample (default %(default)s)",
    )
    p.add_argument(
        "--mpnn",
        choices=("auto", "on", "off"),
        default=d.mpnn,
        help="ProteinMPNN designs (auto: if installed)",
    )
    p.add_argument(
        "--mpnn-mode",
        choices=("full", "ca", "both"),
        default="full",
        help="full-backbone and/or CA-only ProteinMPNN",
    )
    p.add_argument(
        "--num-seqs",
        type=int,
        default=d.num_seqs,
        help="designs per backbone (default %(default)s)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=d.temperature,
        help="ProteinMPNN temperature (default %(default)s)",
    )
    p.add_argument(
        "--fold-model",
        help="local ESMFold directory (EsmForProteinFolding weights) for scRMSD/scTM",
    )
    p.add_argument(
        "--plddt-floor",
        type=float,
        help="also require mean pLDDT ≥ this for designability (Genie 2 uses 70)",
    )
    p.add_argument(
        "--workers", type=int, default=d.workers, help="parallel processes (default %(default)s)"
    )
    p.add_argument(
        "--seed", type=int, default=d.seed, help="seed for the choice of reference chains"
    )
    p.add_argument(
        "--motif",
        metavar="FILE",
        help="motif file of scaffolds from `protgen sample --motif` (default: the one named in "
        "the manifest): per-sample motif RMSD and, with --fold-model, the benchmark's success rule",
    )
    add_threads_flag(p)
    p.set_defaults(run=_run)


def _run(args) -> None:
    set_threads(args.threads)
    modes = ("full", "ca") if args.mpnn_mode == "both" else (args.mpnn_mode,)
    config = EvalConfig(
        args.reference,
        args.max_reference,
        args.reference_split,
        args.novelty_candidates,
        args.mpnn,
        modes,
        args.num_seqs,
        args.temperature,
        args.fold_model,
        args.plddt_floor,
        args.workers,
        args.seed,
        args.motif,
    )
    s = evaluate(args.source, args.out, config).samples  # checks config before any work
    print(
        f"evaluated {s.count} structures: geometry OK {s.mean('geometry_ok'):.0%}, "
        f"helix {s.mean('helix'):.0%}, strand {s.mean('strand'):.0%}, "
        f"Rg/L^0.38 {s.mean('rg_ratio'):.2f}; report: {args.out}/report.md"
    )
