"""Training sets: build one from structure files, store it on disk, load it back.

On disk a set is a directory:

- ``dataset.json``: format version, build options, counts and a content fingerprint;
- ``segments.csv``: one row per segment (id, source, chain, residue range, length, sequence,
  DSSP string, resolution, cluster, split, offset into the atom array) — readable by a person;
- ``atoms.npy``: all backbone atoms, Å, (total residues, 4, 3) float32, memory-mapped on load;
- ``skipped.csv``: every source file that gave no segment, with the reason.

A build writes into a hidden sibling directory and renames it into place at the end, so an
interrupted build leaves nothing a later step would trust.
"""

import csv
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from protgen import __version__
from protgen.data.cluster import MMSEQS_INSTALL, cluster_sequences, mmseqs_available
from protgen.data.promod3 import StructureDB, extract_from_deb, is_structure_db, read_structure_db
from protgen.data.segment import Segment, SegmentConfig, segments_of
from protgen.data.structure import Structure, read_structure
from protgen.errors import ConfigError, DatasetError, StructureError
from protgen.progress import Progress
from protgen.workers import threaded_worker, worker_threads

__all__ = [
    "FORMAT_VERSION",
    "BuildConfig",
    "DatasetMeta",
    "check_build_config",
    "SegmentRecord",
    "TrainingSet",
    "build",
    "find_structure_files",
]

FORMAT_VERSION = 1
_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".bcif")
_FIELDS = (
    "id",
    "source",
    "chain",
    "start",
    "end",
    "length",
    "sequence",
    "ss",
    "resolution",
    "cluster",
    "split",
    "offset",
)


@dataclass(frozen=True)
class BuildConfig:
    """Options of ``protgen data build``."""

    segments: SegmentConfig = field(default_factory=SegmentConfig)
    identity: float = 0.3  # sequence identity of a cluster (FrameDiff: 30 %)
    cluster_method: str = "auto"  # "mmseqs" (Debian's mmseqs2), "greedy" (built in) or "auto"
    # fraction of clusters held out for validation (checkpoint and recipe choice)
    val_fraction: float = 0.05
    seed: int = 0  # seed of the cluster split
    workers: int = 1  # parallel reader processes
    # fraction of further clusters held out as a second, untouched set (final tables)
    test_fraction: float = 0.0


def _fraction(value, name: str, low_open: bool, high_open: bool, high: float = 1.0) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    ok = (
        ok
        and (value > 0 if low_open else value >= 0)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        interval = f"{'(' if low_open else '['}0, {high:g}{')' if high_open else ']'}"
        hint = ", e.g. 0.3 for 30 %" if name == "--identity" else ""
        raise ConfigError(f"{name} {value}: a fraction in {interval}{hint}")


def check_build_config(config: BuildConfig) -> None:
    """Refuse build options that cannot work, before any file is read (``protgen data build``,
    ``data promod3`` and :func:`build` share it). Raises ConfigError naming the option."""
    seg = config.segments
    if not 1 <= seg.min_length <= seg.max_length:
        raise ConfigError(
            f"need 1 ≤ --min-length ≤ --max-length, got {seg.min_length} and {seg.max_length}"
        )
    _fraction(config.identity, "--identity", low_open=True, high_open=False)
    _fraction(seg.max_coil, "--max-coil", low_open=False, high_open=False)
    _fraction(config.val_fraction, "--val-fraction", low_open=False, high_open=True)
    _fraction(
        config.test_fraction,
        "--test-fraction",
        low_open=False,
        high_open=True,
        high=1 - config.val_fraction,
    )
    if not (math.isfinite(seg.max_rg_ratio) and seg.max_rg_ratio > 0):
        raise ConfigError(f"--max-rg-ratio {seg.max_rg_ratio}: need a number > 0 (default 1.5)")
    if seg.max_resolution is not None and not (
        math.isfinite(seg.max_resolution) and seg.max_resolution > 0
    ):
        raise ConfigError(f"--max-resolution {seg.max_resolution}: need Å > 0")
    if seg.multi_model not in ("first", "skip"):
        raise ConfigError(f"--multi-model {seg.multi_model!r}: use first or skip")
    if config.cluster_method not in ("auto", "mmseqs", "greedy"):
        raise ConfigError(f"--cluster-method {config.cluster_method!r}: use auto, mmseqs or greedy")
    if config.cluster_method == "mmseqs" and not mmseqs_available():
        raise ConfigError(f"--cluster-method mmseqs: MMseqs2 is not installed ({MMSEQS_INSTALL})")
    if config.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {config.workers}")


def find_structure_files(
    sources: list[str | Path], unreadable: list[tuple[str, str]] | None = None
) -> list[Path]:
    """Structure files under the sources, recursively, sorted: known suffixes (optionally .gz),
    extension-less files, ProMod3 structure databases (``.dat``) and ``promod3-data`` packages
    (``.deb``). Hidden files and directories are ignored. Folders that cannot be read are added to
    ``unreadable`` as (path, reason) when given; an unreadable source raises DatasetError."""
    found: set[Path] = set()
    for source in map(Path, sources):
        if not source.exists():
            raise DatasetError(f"{source}: no such file or directory")
        if not os.access(source, os.R_OK | (os.X_OK if source.is_dir() else 0)):
            raise DatasetError(f"{source}: permission denied (cannot read it)")
        if source.is_file():
            found.add(source)
            continue
        errors: list[OSError] = []
        for folder, dirs, names in os.walk(source, onerror=errors.append):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                path = Path(folder) / name
                lower = name.lower().removesuffix(".gz")
                if name.startswith(".") or (
                    lower.endswith(".deb") and not lower.startswith("promod3-data")
                ):
                    # hidden; in a folder, only promod3-data packages are sources (named ones always
                    # are)
                    continue
                if path.is_file() and (
                    lower.endswith(_SUFFIXES) or "." not in lower or _database_kind(path)
                ):
                    found.add(path)
        if unreadable is not None:
            unreadable += [(str(e.filename), f"cannot read folder ({e.strerror})") for e in errors]
    return sorted(found)


def _database_kind(path: Path) -> str | None:
    """'dat' for a ProMod3 structure database, 'deb' for a package holding one, else None."""
    name = path.name.lower()
    if name.endswith(".deb"):
        return "deb"
    if name.endswith(".dat") and is_structure_db(path):
        return "dat"
    return None


@dataclass(frozen=True)
class _Job:
    """One unit of reading: a structure file, or entries [lo, hi) of a structure database.
    ``origin``: the file the user named, where it differs from ``path`` (a .deb unpacked into the
    build's scratch folder): what segment sources cite, so that identical builds are identical."""

    path: str
    config: SegmentConfig
    lo: int = -1
    hi: int = -1
    origin: str = ""

    @property
    def items(self) -> int:
        return 1 if self.lo < 0 else self.hi - self.lo


_DB_CHUNK = 100  # database entries per job


def _read_job(job: _Job) -> list[tuple[str, list[Segment], str | None]]:
    """(source, segments, reason or None) of every item of a job; never raises."""
    if job.lo < 0:
        return [_read_file(job.path, job.config)]
    db = _open_db(job.path)
    out = []
    for k in range(job.lo, job.hi):
        source = f"{job.origin or job.path}#{db.name(k)}"
        try:
            structure = Structure(source, (db.chain(k),), None, None, 1)
            segments, reason = segments_of(structure, source, job.config, name=db.name(k))
        except StructureError as error:
            segments, reason = [], error.reason
        out.append((source, segments, reason))
    return out


_DBS: dict[str, StructureDB] = {}


def _open_db(path: str) -> StructureDB:
    """The memory-mapped database, opened once per process."""
    if path not in _DBS:
        _DBS[path] = read_structure_db(path)
    return _DBS[path]


def _read_file(path: str, config: SegmentConfig) -> tuple[str, list[Segment], str | None]:
    try:
        structure = read_structure(path)
    except StructureError as error:
        return path, [], error.reason
    except Exception as error:  # a reader bug must not stop a build: report it as a skip
        return path, [], f"unexpected error: {type(error).__name__}: {error}"
    segments, reason = segments_of(structure, path, config)
    return path, segments, reason


def _split(
    cluster_keys: list[str], val_fraction: float, seed: int, test_fraction: float = 0.0
) -> dict[str, str]:
    """'val', 'test' or 'train' for each cluster key, by a seeded hash: stable as the set grows
    (and a set built without a test split keeps its validation clusters when one is added)."""
    out = {}
    for key in cluster_keys:
        h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64
        out[key] = (
            "val" if h < val_fraction else "test" if h < val_fraction + test_fraction else "train"
        )
    return out


def _jobs(files: list[Path], config: SegmentConfig, scratch: Path) -> list[_Job]:
    """Jobs for every file; packages are unpacked into ``scratch`` and databases are validated
    here, so a bad one stops the build before any work with a one-line error."""
    jobs = []
    for path in files:
        kind = _database_kind(path)
        if kind is None:
            jobs.append(_Job(str(path), config))
            continue
        origin = str(path)
        if kind == "deb":
            print(f"unpacking {path} ...", file=sys.stderr, flush=True)
            path = extract_from_deb(path, scratch / f"{len(jobs)}_{path.stem}.dat")
        db = _open_db(str(path))
        jobs += [
            _Job(str(path), config, lo, min(lo + _DB_CHUNK, len(db)), origin)
            for lo in range(0, len(db), _DB_CHUNK)
        ]
    return jobs


def build(
    sources: list[str | Path],
    out: str | Path,
    config: BuildConfig = BuildConfig(),
    force: bool = False,
) -> "TrainingSet":
    """Read every structure file and structure database under ``sources`` into a clustered, split
    training set at ``out``."""
    out = Path(out)
    check_build_config(config)
    _check_output(out, force)
    unreadable: list[tuple[str, str]] = []
    files = find_structure_files(sources, unreadable)
    if not files:
        first = f" ({unreadable[0][0]}: {unreadable[0][1]})" if unreadable else ""
        raise DatasetError(f"no structure files under {', '.join(map(str, sources))}{first}")
    start = time.monotonic()
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as error:
        raise DatasetError(f"cannot write to {out.parent} ({error.strerror or error})") from None
    try:
        jobs = _jobs(files, config.segments, tmp / "scratch")
        progress = Progress(sum(j.items for j in jobs), "reading", unit="items")
        if config.workers > 1:
            with get_context("spawn").Pool(
                config.workers,
                initializer=threaded_worker,
                initargs=(worker_threads(config.workers),),
            ) as pool:
                segments, skipped = _collect(pool.imap(_read_job, jobs), progress)
        else:
            segments, skipped = _collect(map(_read_job, jobs), progress)
        progress.close()
        shutil.rmtree(tmp / "scratch", ignore_errors=True)
        skipped = unreadable + skipped
        if not segments:
            first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
            raise DatasetError(
                f"no segment passed the filters ({len(skipped)} item(s) skipped{first})"
            )
        labels = cluster_sequences(
            [s.sequence for s in segments],
            config.identity,
            method=config.cluster_method,
            threads=max(config.workers, 1),
        )
        keys = [segments[k].sequence for k in labels]  # a cluster is named by its representative
        split = _split(sorted(set(keys)), config.val_fraction, config.seed, config.test_fraction)
        if "train" not in split.values():
            print(
                f"protgen data build: warning: all {len(split)} cluster(s) went to validation; the "
                "set cannot be trained on (add structures or lower --val-fraction)",
                file=sys.stderr,
                flush=True,
            )
        _write(
            tmp,
            segments,
            labels,
            keys,
            split,
            skipped,
            config,
            sum(j.items for j in jobs),
            time.monotonic() - start,
        )
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError):
            raise DatasetError(_write_failure(out, error)) from None
        raise
    return TrainingSet.load(out)


def _write_failure(out: Path, error: OSError) -> str:
    """One line for a failed write (numpy reports a full disk as 'N requested and M written')."""
    kept = f"the partial set was removed and {out} is unchanged"
    if error.errno == errno.ENOSPC or "requested and" in str(error):
        return f"the disk is full while building the training set {out}; {kept}"
    where = error.filename or out
    return f"cannot write {where} ({error.strerror or error}); {kept}"


def _check_output(out: Path, force: bool) -> None:
    """Refuse an output that is a file, the working directory (or above it), or — without ``force``
    — anything that exists; with ``force``, anything but a training set or an empty folder."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file, not a directory")
    if not out.exists():
        return
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise DatasetError(f"--out {out} is the current directory or above it; choose a new folder")
    if not force:
        raise DatasetError(f"{out} already exists; pass --force to replace it")
    if not (out / "dataset.json").is_file() and any(out.iterdir()):
        raise DatasetError(
            f"{out} is neither a protgen training set nor empty; --force replaces only those "
            "(choose another --out)"
        )


def _collect(results, progress: Progress) -> tuple[list[Segment], list[tuple[str, str]]]:
    segments, skipped = [], []
    for job_results in results:
        for path, segs, reason in job_results:
            segments.extend(segs)
            if reason is not None:
                skipped.append((path, reason))
        progress.update(len(job_results), extra=f"{len(segments)} segments, {len(skipped)} skipped")
    return segments, skipped


def _write(
    tmp: Path,
    segments,
    labels,
    keys,
    split,
    skipped,
    config: BuildConfig,
    n_files: int,
    seconds: float,
) -> None:
    offsets = np.cumsum([0] + [len(s) for s in segments])
    atoms = np.concatenate([s.atoms for s in segments]).astype(np.float32)
    np.save(tmp / "atoms.npy", atoms)
    cluster_index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    with open(tmp / "segments.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_FIELDS)
        for seg, key, offset in zip(segments, keys, offsets):
            res = "" if seg.resolution is None else f"{seg.resolution:.2f}"
            writer.writerow(
                [
                    seg.id,
                    seg.source,
                    seg.chain_id,
                    seg.start,
                    seg.end,
                    len(seg),
                    seg.sequence,
                    seg.ss,
                    res,
                    cluster_index[key],
                    split[key],
                    offset,
                ]
            )
    with open(tmp / "skipped.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("source", "reason"))
        writer.writerows(skipped)
    content = atoms.tobytes() + (tmp / "segments.csv").read_bytes()
    meta = DatasetMeta(
        config=config,
        files=n_files,
        skipped_files=len(skipped),
        segments=len(segments),
        residues=int(len(atoms)),
        clusters=len(cluster_index),
        fingerprint=hashlib.sha256(content).hexdigest()[:16],
        build_seconds=round(seconds, 1),
    )
    (tmp / "dataset.json").write_text(json.dumps(meta.to_dict(), indent=2) + "\n")


@dataclass(frozen=True)
class DatasetMeta:
    """dataset.json: how a training set was built and what it holds. fingerprint: a content hash
    of the atoms and segments.csv (checkpoints record it, so a run resumes on the same data)."""

    config: BuildConfig  # the build's options
    files: int  # files and database entries read
    skipped_files: int  # those that gave no segment (skipped.csv)
    segments: int
    residues: int
    clusters: int  # sequence clusters
    fingerprint: str
    build_seconds: float
    format_version: int = FORMAT_VERSION
    protgen_version: str = __version__

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "DatasetMeta":
        """From dataset.json; build options a set predates take their defaults, and options this
        protgen does not know are dropped."""
        config = d.get("config", {})
        segments = _known(SegmentConfig, config.get("segments", {}))
        build = _known(BuildConfig, {**config, "segments": SegmentConfig(**segments)})
        return DatasetMeta(**{**_known(DatasetMeta, d), "config": BuildConfig(**build)})


def _known(cls, values: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


@dataclass(frozen=True)
class SegmentRecord:
    """One row of segments.csv: where a segment came from and where its atoms are.

    start/end: author residue numbers (with insertion codes); ss: three-state DSSP; resolution: Å or
    None; cluster: sequence-cluster number; split: "train", "val" or "test"; offset: first residue's
    row in atoms.npy.
    """

    id: str
    source: str
    chain: str
    start: str
    end: str
    length: int
    sequence: str
    ss: str
    resolution: float | None
    cluster: int
    split: str
    offset: int

    @staticmethod
    def from_row(row: dict) -> "SegmentRecord":
        resolution = float(row["resolution"]) if row["resolution"] else None
        ints = {k: int(row[k]) for k in ("length", "cluster", "offset")}
        return SegmentRecord(**{**row, **ints, "resolution": resolution})


@dataclass(frozen=True)
class TrainingSet:
    """A loaded training set. atoms: Å, (total residues, 4, 3) float32 (memory-mapped);
    records: one SegmentRecord per segment, as in segments.csv; meta: dataset.json."""

    path: Path
    meta: DatasetMeta
    records: list[SegmentRecord]
    atoms: np.ndarray

    @staticmethod
    def load(path: str | Path) -> "TrainingSet":
        path = Path(path)
        meta_file = path / "dataset.json"
        if path.exists() and not os.access(path, os.R_OK | os.X_OK):
            raise DatasetError(f"{path}: permission denied (cannot read the training set)")
        if not meta_file.exists():
            raise DatasetError(
                f"{path} is not a protgen training set (no dataset.json); build one with `protgen "
                "data build`"
            )
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as error:
            raise DatasetError(f"{meta_file} is corrupt ({error})") from None
        except OSError as error:
            raise DatasetError(f"{meta_file}: cannot read ({error.strerror or error})") from None
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if version != FORMAT_VERSION:
            raise DatasetError(
                f"{path} has training-set format version {version}, this protgen reads version "
                f"{FORMAT_VERSION}; rebuild it with `protgen data build`"
            )
        try:
            with open(path / "segments.csv", newline="") as handle:
                records = list(csv.DictReader(handle))
            atoms = np.load(path / "atoms.npy", mmap_mode="r")
        except (OSError, ValueError) as error:
            raise DatasetError(f"{path} is incomplete or corrupt ({error})") from None
        try:
            records = [SegmentRecord.from_row(r) for r in records]
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{path}/segments.csv is corrupt ({error}); rebuild it") from None
        try:
            meta = DatasetMeta.from_dict(meta)
        except (AttributeError, TypeError, ValueError) as error:
            raise DatasetError(f"{meta_file} is corrupt ({error}); rebuild it") from None
        if len(records) != meta.segments or (
            records and records[-1].offset + records[-1].length != len(atoms)
        ):
            raise DatasetError(
                f"{path} is inconsistent: segments.csv and atoms.npy disagree; rebuild it"
            )
        return TrainingSet(path, meta, records, atoms)

    def __len__(self) -> int:
        return len(self.records)

    def segment_atoms(self, index: int) -> np.ndarray:
        """Atoms of one segment, Å, (L, 4, 3)."""
        r = self.records[index]
        return np.asarray(self.atoms[r.offset : r.offset + r.length])

    def indices(self, split: str | None = None) -> list[int]:
        return [i for i, r in enumerate(self.records) if split is None or r.split == split]

    def skipped(self) -> list[tuple[str, str]]:
        with open(self.path / "skipped.csv", newline="") as handle:
            return [tuple(row) for row in list(csv.reader(handle))[1:]]
