"""``protgen data``: build a training set from structure files, and describe one."""

from collections import Counter

import numpy as np

from protgen.data.dataset import BuildConfig, TrainingSet, build
from protgen.data.segment import SegmentConfig

__all__ = ["register", "describe"]


def register(sub) -> None:
    data = sub.add_parser("data", help="build or describe a training set")
    verbs = data.add_subparsers(dest="verb", metavar="VERB", required=True)
    b = verbs.add_parser("build", help="turn folders of PDB/mmCIF files into a training set",
                         description="Read every structure file under SRC (recursively; .pdb .ent .cif .bcif, "
                         "gzipped or not, extension-less files sniffed) into clean, clustered, split segments.")
    b.add_argument("sources", nargs="+", metavar="SRC", help="structure files or folders")
    b.add_argument("--out", required=True, help="output directory of the training set")
    d = SegmentConfig()
    c = BuildConfig()
    b.add_argument("--workers", type=int, default=c.workers, help="parallel reader processes (default %(default)s)")
    b.add_argument("--min-length", type=int, default=d.min_length, help="shortest segment kept (default %(default)s)")
    b.add_argument("--max-length", type=int, default=d.max_length, help="longest segment kept (default %(default)s)")
    b.add_argument("--max-coil", type=float, default=d.max_coil, help="largest DSSP coil fraction kept (default %(default)s: keep all; FrameDiff uses 0.5)")
    b.add_argument("--max-rg-ratio", type=float, default=d.max_rg_ratio, help="drop segments with Rg > ratio·2.2·L^0.38 Å (default %(default)s)")
    b.add_argument("--max-resolution", type=float, default=None, help="drop files whose stated resolution is worse (Å)")
    b.add_argument("--multi-model", choices=("first", "skip"), default=d.multi_model, help="NMR ensembles/trajectories: use the first model or skip the file")
    b.add_argument("--identity", type=float, default=c.identity, help="sequence identity of a cluster (default %(default)s)")
    b.add_argument("--cluster-method", choices=("auto", "mmseqs", "greedy"), default=c.cluster_method, help="mmseqs2 if installed (auto), or the built-in greedy clustering")
    b.add_argument("--val-fraction", type=float, default=c.val_fraction, help="fraction of clusters for validation (default %(default)s)")
    b.add_argument("--seed", type=int, default=c.seed, help="seed of the cluster split (default %(default)s)")
    b.add_argument("--force", action="store_true", help="replace an existing output directory")
    b.set_defaults(run=_build)
    i = verbs.add_parser("info", help="describe a training set")
    i.add_argument("path", metavar="DIR")
    i.set_defaults(run=lambda args: print(describe(TrainingSet.load(args.path))))


def _build(args) -> None:
    from protgen.errors import ConfigError

    if args.min_length < 1 or args.max_length < args.min_length:
        raise ConfigError(f"need 1 ≤ --min-length ≤ --max-length, got {args.min_length} and {args.max_length}")
    if not 0 <= args.val_fraction < 1:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    segments = SegmentConfig(args.min_length, args.max_length, args.max_coil, args.max_rg_ratio, args.max_resolution, args.multi_model)
    config = BuildConfig(segments, args.identity, args.cluster_method, args.val_fraction, args.seed, args.workers)
    print(describe(build(args.sources, args.out, config, force=args.force)))


def describe(ts: TrainingSet) -> str:
    """A human-readable summary: counts, length histogram, secondary structure, skipped files."""
    m = ts.meta
    lengths = np.array([r["length"] for r in ts.records])
    ss = "".join(r["ss"] for r in ts.records)
    splits = Counter(r["split"] for r in ts.records)
    lines = [
        f"training set {ts.path} (format {m['format_version']}, fingerprint {m['fingerprint']})",
        f"  files read: {m['files']}   skipped: {m['skipped_files']}   build time: {m['build_seconds']} s",
        f"  segments: {m['segments']}  (train {splits.get('train', 0)}, val {splits.get('val', 0)})   residues: {m['residues']}",
        f"  sequence clusters: {m['clusters']} at {m['config']['identity']:.0%} identity",
        f"  secondary structure: helix {ss.count('H') / len(ss):.1%}  strand {ss.count('E') / len(ss):.1%}  "
        f"coil {1 - (ss.count('H') + ss.count('E')) / len(ss):.1%}",
        f"  length: min {lengths.min()}  median {int(np.median(lengths))}  max {lengths.max()}",
    ]
    edges = [40, 60, 80, 100, 150, 200, 300, 400, 513]
    counts, _ = np.histogram(lengths, bins=[0] + edges + [10**6])
    labels = [f"<{edges[0]}"] + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:])] + [f">{edges[-1] - 1}"]
    scale = max(counts.max(), 1)
    for label, count in zip(labels, counts):
        if count:
            lines.append(f"  {label:>9} {count:6d} {'#' * int(40 * count / scale)}")
    reasons = Counter(_reason_kind(r) for _, r in ts.skipped())
    if reasons:
        lines.append("  skipped files by reason:")
        lines += [f"    {n:5d}  {r}" for r, n in reasons.most_common()]
    return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]
