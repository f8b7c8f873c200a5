"""``protgen data``: download structures, build a training set, and describe one."""

import re
from collections import Counter
from pathlib import Path

import numpy as np

from protgen.data.dataset import BuildConfig, TrainingSet, build, check_build_config
from protgen.data.fetch import PROMOD3_URL, FetchConfig
from protgen.data.segment import SegmentConfig
from protgen.errors import ConfigError, ProtgenError
from protgen.geometry.secondary import composition

__all__ = ["register", "describe"]


def register(sub) -> None:
    data = sub.add_parser("data", help="get structures, build or describe a training set")
    verbs = data.add_subparsers(dest="verb", metavar="VERB", required=True)
    b = verbs.add_parser(
        "build",
        help="turn folders of PDB/mmCIF files (and ProMod3 databases) into a training set",
        description="Read every structure file under SRC (recursively; .pdb .ent .cif .mmcif "
        ".bcif, gzipped or not, extension-less files sniffed; ProMod3 structure_db.dat files and "
        "promod3-data .deb packages) into clean, clustered, split segments.",
    )
    b.add_argument(
        "sources",
        nargs="+",
        metavar="SRC",
        help="structure files, folders, structure_db.dat or promod3-data .deb",
    )
    _build_options(b)
    b.set_defaults(run=_build)
    i = verbs.add_parser("info", help="describe a training set")
    i.add_argument("path", metavar="DIR")
    i.set_defaults(run=lambda args: print(describe(TrainingSet.load(args.path))))
    f = verbs.add_parser(
        "fetch",
        help="download mmCIF files from the RCSB (or a mirror) by PDB id",
        description="Download PDB entries as ID.cif.gz into --out, in parallel, with retries; "
        "complete files are skipped, so an interrupted fetch resumes. Failures are listed in "
        "OUT/fetch_failures.csv.",
    )
    f.add_argument(
        "ids", nargs="*", metavar="ID", help="PDB ids or PDBID_CHAIN names (1ABC, 1abc_A)"
    )
    f.add_argument(
        "--ids",
        dest="id_file",
        metavar="FILE",
        help="a file of ids, one per line ('#' comments), e.g. data/promod3_chains.txt",
    )
    f.add_argument("--out", required=True, help="output directory")
    c = FetchConfig()
    f.add_argument(
        "--url",
        default=c.url,
        help="URL template with {ID} (upper) or {id} (lower case), or a base URL; "
        "PDBe: https://www.ebi.ac.uk/pdbe/entry-files/download/{id}.cif (default %(default)s)",
    )
    f.add_argument(
        "--workers", type=int, default=c.workers, help="parallel downloads (default %(default)s)"
    )
    f.add_argument(
        "--retries",
        type=int,
        default=c.retries,
        help="retries of a transient failure (default %(default)s)",
    )
    f.add_argument(
        "--timeout",
        type=float,
        default=c.timeout,
        help="seconds without data before an attempt fails (default %(default)s)",
    )
    f.set_defaults(run=_fetch)
    p = verbs.add_parser(
        "promod3",
        help="download ProMod3's 21,000-chain PDB set (Debian promod3-data) and build a training "
        "set",
        description="Download the promod3-data package (371 MB) from a Debian mirror, verify its "
        "sha256, and build a training set from its structure database (with any further SRC "
        "merged in).",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SRC",
        help="further structure files or folders to merge into the set",
    )
    p.add_argument(
        "--download-dir",
        default=".",
        help="where the .deb is kept (a re-run reuses it; default: here)",
    )
    p.add_argument(
        "--url",
        default=PROMOD3_URL,
        help="the package's URL on a Debian mirror (default %(default)s)",
    )
    _build_options(p)
    p.set_defaults(run=_promod3)


def _build_options(b) -> None:
    d, c = SegmentConfig(), BuildConfig()
    b.add_argument("--out", required=True, help="output directory of the training set")
    b.add_argument(
        "--workers",
        type=int,
        default=c.workers,
        help="parallel reader processes (default %(default)s)",
    )
    b.add_argument(
        "--min-length",
        type=int,
        default=d.min_length,
        help="shortest segment kept (default %(default)s)",
    )
    b.add_argument(
        "--max-length",
        type=int,
        default=d.max_length,
        help="longest segment kept (default %(default)s)",
    )
    b.add_argument(
        "--max-coil",
        type=float,
        default=d.max_coil,
        help="largest DSSP coil fraction kept (default %(default)s: keep all; FrameDiff uses 0.5)",
    )
    b.add_argument(
        "--max-rg-ratio",
        type=float,
        default=d.max_rg_ratio,
        help="drop segments with Rg > ratio·2.2·L^0.38 Å, extended chains cut from complexes "
        "(default %(default)s)",
    )
    b.add_argument(
        "--max-resolution",
        type=float,
        default=None,
        help="drop files whose stated resolution is worse (Å)",
    )
    b.add_argument(
        "--multi-model",
        choices=("first", "skip"),
        default=d.multi_model,
        help="NMR ensembles/trajectories: use the first model or skip the file",
    )
    b.add_argument(
        "--identity",
        type=float,
        default=c.identity,
        help="sequence identity of a cluster, a fraction in (0, 1] (default %(default)s: 30 %%)",
    )
    b.add_argument(
        "--cluster-method",
        choices=("auto", "mmseqs", "greedy"),
        default=c.cluster_method,
        help="mmseqs2 if installed (auto), or the built-in greedy clustering (slow above a few "
        "thousand sequences)",
    )
    b.add_argument(
        "--val-fraction",
        type=float,
        default=c.val_fraction,
        help="fraction of clusters for validation (default %(default)s)",
    )
    b.add_argument(
        "--test-fraction",
        type=float,
        default=c.test_fraction,
        help="fraction of further clusters held out as a second set, for final tables (default "
        "%(default)s)",
    )
    b.add_argument(
        "--seed", type=int, default=c.seed, help="seed of the cluster split (default %(default)s)"
    )
    b.add_argument(
        "--force",
        action="store_true",
        help="replace an existing training set (or an empty folder) at --out",
    )


def _build_config(args) -> BuildConfig:
    segments = SegmentConfig(
        args.min_length,
        args.max_length,
        args.max_coil,
        args.max_rg_ratio,
        args.max_resolution,
        args.multi_model,
    )
    config = BuildConfig(
        segments,
        args.identity,
        args.cluster_method,
        args.val_fraction,
        args.seed,
        args.workers,
        args.test_fraction,
    )
    check_build_config(config)
    return config


def _build(args) -> None:
    print(describe(build(args.sources, args.out, _build_config(args), force=args.force)))


def _fetch(args) -> None:
    from protgen.data.fetch import fetch_entries, parse_ids, read_id_file

    items = list(args.ids) + (read_id_file(args.id_file) if args.id_file else [])
    if not items:
        raise ConfigError("no ids: give PDB ids on the command line or --ids FILE")
    if args.workers < 1 or args.retries < 0 or args.timeout <= 0:
        raise ConfigError("need --workers ≥ 1, --retries ≥ 0 and --timeout > 0")
    ids = parse_ids(items)
    config = FetchConfig(args.url, args.workers, args.retries, timeout=args.timeout)
    result = fetch_entries(ids, args.out, config)
    print(
        f"{len(result.downloaded)} downloaded, {len(result.skipped)} already present, "
        f"{len(result.failed)} failed → {args.out}"
    )
    for pdb_id, reason in result.failed[:10]:
        print(f"  {pdb_id}: {reason}")
    if len(result.failed) > 10:
        print(f"  ... {len(result.failed) - 10} more in {args.out}/fetch_failures.csv")
    if result.failed and not (result.downloaded or result.skipped):
        raise ProtgenError(
            f"no entry could be downloaded (first: {result.failed[0][0]}: {result.failed[0][1]})"
        )


def _promod3(args) -> None:
    from protgen.data.cluster import MMSEQS_INSTALL, mmseqs_available
    from protgen.data.fetch import PROMOD3_SHA256, download, is_downloaded

    config = _build_config(args)
    if config.cluster_method == "auto" and not mmseqs_available():
        raise ConfigError(
            f"ProMod3's ~18,700 segments need MMseqs2 to cluster: {MMSEQS_INSTALL} "
            "(or --cluster-method greedy, which takes hours)"
        )
    deb = Path(args.download_dir) / args.url.rsplit("/", 1)[-1]
    if is_downloaded(deb, PROMOD3_SHA256):
        print(f"using {deb}, downloaded before (sha256 verified)", flush=True)
    else:
        print(f"downloading {args.url} → {deb} (371 MB; verified by sha256) ...", flush=True)
        download(args.url, deb, PROMOD3_SHA256, FetchConfig(timeout=60.0, max_bytes=2**30))
    print(describe(build([deb, *args.sources], args.out, config, force=args.force)))


def describe(ts: TrainingSet) -> str:
    """A human-readable summary: counts, length histogram, secondary structure, skipped files."""
    m = ts.meta
    lengths = np.array([r.length for r in ts.records])
    ss = "".join(r.ss for r in ts.records)
    splits = Counter(r.split for r in ts.records)
    helix, strand, coil = composition(ss)
    lines = [
        f"training set {ts.path} (format {m.format_version}, fingerprint {m.fingerprint})",
        f"  files read: {m.files}   skipped: {m.skipped_files}   build time: {m.build_seconds} s",
        f"  segments: {m.segments}  (train {splits.get('train', 0)}, val "
        f"{splits.get('val', 0)}{', test ' + str(splits['test']) if splits.get('test') else ''})   "
        f"residues: {m.residues}",
        f"  sequence clusters: {m.clusters} at {m.config.identity:.0%} identity",
        f"  secondary structure: helix {helix:.1%}  strand {strand:.1%}  coil {coil:.1%}",
        f"  length: min {lengths.min()}  median {int(np.median(lengths))}  max {lengths.max()}",
    ]
    edges = [40, 60, 80, 100, 150, 200, 300, 400, 513]
    counts, _ = np.histogram(lengths, bins=[0] + edges + [10**6])
    labels = (
        [f"<{edges[0]}"]
        + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:])]
        + [f">{edges[-1] - 1}"]
    )
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
    """A skip reason without what was measured on the file, the thresholds kept: 'length 30
    outside 40..512' → 'length outside 40..512', 'Rg ratio 1.72 > 1.5 (extended)' → 'Rg ratio >
    1.5 (extended)', '12 models (--multi-model skip)' → 'several models (--multi-model skip)'."""
    if "first: " in reason:
        reason = "filtered out: " + reason.split("first: ", 1)[1].removesuffix(")")
    elif not reason.startswith("resolution "):
        reason = reason.split(" (")[0] if "--multi-model" not in reason else reason
    reason = re.sub(r"\b(length|Rg ratio|coil fraction|resolution) [\d.]+( Å)? ", r"\1 ", reason)
    return re.sub(r"^\d+ models", "several models", reason)
