"""``protgen eval``: the quality panel, designability, diversity and novelty of a set of backbones,
beside the same panel on real chains, with a per-structure CSV, a summary JSON and a cache.

The cache (``cache.jsonl`` in the output directory) keys every result by the structure's content
hash and the settings that affect it, so re-running after adding samples computes only what is new.
"""

import csv
import errno
import json
import sys
from pathlib import Path

import numpy as np

from protgen.data.dataset import TrainingSet
from protgen.errors import ConfigError, ProtgenError
from protgen.evaluation.backbones import Backbone, load_backbones, manifest_rows, reference_chains
from protgen.evaluation.cache import EvalCache, ReferenceCache, cached_map
from protgen.evaluation.conditioning import (
    motif_rmsd,
    motif_success,
    no_scaffold,
    read_motifs,
    ss_agreement,
)
from protgen.evaluation.config import EvalConfig, check_eval_config
from protgen.evaluation.designs import add_designability
from protgen.evaluation.diversity import novelty, tm_matrix
from protgen.evaluation.results import StructureResult, panel_job, panel_key
from protgen.evaluation.summary import EvalSummary, rg_in_range, set_summary
from protgen.files import atomic_path, folder_lock

__all__ = ["evaluate"]


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ProtgenError(f"--out {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ProtgenError(f"cannot create {out} ({error.strerror or error})") from None


def _tell(what: str, items: list[tuple[str, str]], limit: int = 10) -> None:
    """List skipped files or notes on the console (all of them are in report.md)."""
    if not items:
        return
    lines = [f"protgen eval: {what} {len(items)} file(s):"]
    lines += [f"  {name}: {text}" for name, text in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... {len(items) - limit} more in report.md")
    print("\n".join(lines), file=sys.stderr, flush=True)


def evaluate(source, out: str | Path, config: EvalConfig = EvalConfig()) -> EvalSummary:
    """Evaluate the backbones in ``source`` — a folder of structure files, a sample manifest.csv, or
    a list of (L, 4, 3) arrays (named structure_0000, ...); writes structures.csv, summary.json,
    report.md and plots to ``out`` and returns the summary (``to_dict()``: summary.json).
    Settings are checked first (:func:`check_eval_config`; ``--motif`` needs a manifest that
    lists scaffolds); one evaluation at a time may write to ``out``."""
    out = Path(out)
    ref_set = check_eval_config(config)
    if config.motif is not None and not any(
        r.motif_positions for r in manifest_rows(source)[1].values()
    ):
        raise ConfigError(no_scaffold(config.motif))
    _prepare_out(out)
    try:
        with folder_lock(out):
            return _evaluate(source, out, config, ref_set)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise ProtgenError(
                f"the disk is full while writing to {out}; what was computed is kept in "
                f"{out / 'cache.jsonl'}, and the same command finishes it once there is space"
            ) from None
        where = error.filename or out
        raise ProtgenError(f"cannot write {where} ({error.strerror or error})") from None


def _evaluate(source, out: Path, config: EvalConfig, ref_set: TrainingSet | None) -> EvalSummary:
    from protgen.evaluation.report import write_report

    cache = EvalCache(out / "cache.jsonl")
    if isinstance(source, (str, Path)):
        backbones, skipped, notes = load_backbones(source)
    else:
        backbones, skipped, notes = (
            [
                Backbone(f"structure_{k:04d}", np.asarray(a, dtype=np.float64))
                for k, a in enumerate(source)
            ],
            [],
            [],
        )
        source = f"{len(backbones)} arrays"
    _tell("skipped", skipped)
    if not backbones:
        raise ProtgenError(f"no usable backbone in {source} ({len(skipped)} skipped)")
    manifest = manifest_rows(source)
    motifs = read_motifs(backbones, manifest, config)
    _tell("note on", notes)
    atoms = [b.atoms for b in backbones]
    panels = cached_map(
        cache,
        [panel_key(b.atoms, b.chain) for b in backbones],
        panel_job,
        [(b.atoms, b.chain) for b in backbones],
        config.workers,
        "quality panel",
    )
    rows = [StructureResult.of(b.name, panel) for b, panel in zip(backbones, panels)]
    failed = add_designability(backbones, rows, config, cache, out)
    _tell("no designability for", failed)
    skipped += failed
    ss_condition = ss_agreement(rows, backbones, manifest[1])
    motif_notes = motif_rmsd(rows, backbones, motifs)
    _tell("note on", motif_notes)
    notes += motif_notes
    cas = [a[:, 1] for a in atoms]
    tm = tm_matrix(cas, config.workers, cache)
    reference_rows, reference_tm, reference = [], None, []
    if ref_set is not None:
        reference = reference_chains(
            ref_set,
            [len(a) for a in atoms],
            config.max_reference,
            config.seed,
            config.reference_split,
        )
        ref_atoms = [a for _, a in reference]
        shared = ReferenceCache(ref_set.meta.fingerprint)
        try:
            panels = cached_map(
                shared,
                [panel_key(a) for a in ref_atoms],
                panel_job,
                [(a, None) for a in ref_atoms],
                config.workers,
                "reference panel",
            )
            reference_tm = tm_matrix([a[:, 1] for a in ref_atoms], config.workers, shared)
        finally:
            shared.flush()
        reference_rows = [
            StructureResult.of(name, panel) for (name, _), panel in zip(reference, panels)
        ]
        novelty(rows, atoms, ref_set, config, cache)
    designs = out / "designs"
    summary = EvalSummary(
        source=str(source),
        samples=set_summary(rows, tm, motif_success(rows, tm)),
        reference=set_summary(reference_rows, reference_tm) if reference_rows else None,
        rg_ratio_in_reference_range=rg_in_range(rows, reference_rows) if reference_rows else None,
        reference_set=str(config.reference) if config.reference else None,
        reference_distinct_chains=len({name for name, _ in reference}),
        skipped=tuple(skipped),
        config=config,
        ss_condition=ss_condition,
        notes=tuple(notes),
        designs=str(designs) if designs.is_dir() else None,
    )
    _write_rows(out / "structures.csv", [r.row() for r in rows])
    if reference_rows:
        _write_rows(out / "reference.csv", [r.row() for r in reference_rows])
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary.to_dict(), indent=2, default=float) + "\n")
    write_report(out, rows, reference_rows, tm, reference_tm, summary)
    return summary


def _write_rows(path: Path, rows: list[dict]) -> None:
    fields = [k for k in dict.fromkeys(k for r in rows for k in r) if not k.startswith("_")]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    k: (f"{v:.4g}" if isinstance(v, float) else v)
                    for k, v in r.items()
                    if not k.startswith("_")
                }
            )
