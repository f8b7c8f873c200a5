"""Sampling backbones from a trained model into a directory of structure files and a manifest.

Every sample has its own prior draw, seeded by (seed, length, index), so a sample does not depend
on which others share its batch. Files are written atomically, the manifest after every batch;
existing outputs are never overwritten unless ``force``.
"""

import csv
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from protgen.errors import ConfigError, ProtgenError
from protgen.files import folder_lock, move_aside, writable_folder
from protgen.progress import Progress
from protgen.sampling.config import SampleConfig, check_sample_config
from protgen.sampling.jobs import Job, job_batches, plan_jobs, redraws, sample_batch
from protgen.sampling.manifest import ManifestRow
from protgen.sampling.pool import sample_in_pool
from protgen.sampling.routes import Route, model_name
from protgen.sampling.writer import Writer
from protgen.training import checkpoint
from protgen.training.checkpoint import TrainedModel

__all__ = ["sample_to_directory"]


def _previous_outputs(out: Path, jobs: list["Job"]) -> list[str]:
    """Files a forced run replaces: those of the previous run's manifest, the manifest itself, and
    any file this run would write (each with its trajectory file)."""
    try:
        with open(out / "manifest.csv", newline="") as handle:
            listed = [row.get("file") or "" for row in csv.DictReader(handle)]
    except (OSError, csv.Error, UnicodeDecodeError):
        listed = []
    names = [n for n in listed if n and Path(n).name == n] + [j.name for j in jobs]
    with_paths = [x for n in names for x in (n, _trajectory_name(n))]
    return ["manifest.csv", *with_paths]


def _trajectory_name(name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}_traj.{suffix}" if dot else f"{name}_traj"


def _refuse_overwrite(out: Path, jobs: list["Job"]) -> None:
    clash = [name for name in [*(j.name for j in jobs), "manifest.csv"] if (out / name).exists()]
    if clash:
        raise ProtgenError(
            f"{out / clash[0]} exists ({len(clash)} output(s) would be overwritten); pass --force "
            "(the earlier files are moved into a replaced-… subfolder) or choose another --out"
        )


def _prepare(out: Path, jobs: list["Job"], force: bool) -> None:
    """Check the output folder before the model runs: not a file, writable, and — without
    ``force`` — holding none of this run's outputs."""
    if out.exists() and not out.is_dir():
        raise ProtgenError(f"--out {out} is a file, not a directory")
    if not force and out.is_dir():
        _refuse_overwrite(out, jobs)
    writable_folder(out)


def _replace_previous(out: Path, jobs: list["Job"], force: bool) -> None:
    """Inside the folder's lock: refuse (without ``force``) or move aside (with it) the outputs of
    an earlier run, so that the folder and its manifest hold this run's samples only."""
    if not force:
        _refuse_overwrite(out, jobs)
        return
    moved = move_aside(out, _previous_outputs(out, jobs))
    if moved is not None:
        count = sum(1 for p in moved.iterdir() if p.name != "manifest.csv")
        print(
            f"protgen sample: --force: moved the {count} earlier backbone file(s) this folder "
            f"listed or this run writes (and their manifest.csv) to {moved}",
            file=sys.stderr,
            flush=True,
        )


def sample_to_directory(
    model: str | Path | Sequence[Route],
    out: str | Path,
    config: SampleConfig,
    device="cpu",
    force: bool = False,
    trained: TrainedModel | None = None,
    workers: int = 1,
) -> list[ManifestRow]:
    """Sample config.num backbones per length — or config.num scaffolds of a motif, or config.num
    chains of emerging length — into ``out``, with the model of a checkpoint file (``model``; the
    manifest names it by the path given, a shipped file by its name) or with several: ``model`` a
    list of routes, each sampling its lengths (``protgen.sampling.routes``: the shipped models by
    length).

    Returns this run's manifest rows, which manifest.csv lists. Existing outputs are refused
    unless ``force``; with it, the files of the previous run (those its manifest lists and those
    this run writes, with the manifest) are moved into ``out/replaced-YYYYMMDD-HHMMSS/``, so the
    folder holds one run. One run at a time may write to ``out`` (a second is refused).
    ``trained``: the checkpoint's model, if the caller has loaded it (one checkpoint only).
    ``workers`` > 1: batches run in that many processes (CPU) dividing this process's threads, rows
    in job order.
    """
    out = Path(out)
    check_sample_config(config)
    if isinstance(model, (str, Path)):
        routes = [Route(Path(model), model_name(model), None, trained=trained)]
    elif trained is not None:
        raise ConfigError("trained= is for one checkpoint; a route carries its own model")
    else:
        routes = list(model)
    routes = [
        replace(r, trained=r.trained or checkpoint.load_model(r.checkpoint, device)) for r in routes
    ]
    emerging = {r.trained.process.emerging_length for r in routes}
    if len(emerging) > 1:
        raise ConfigError("one run samples fixed lengths or emerging ones, not both")
    for route in routes:
        _check_model(route, config)
    emerging = emerging.pop()
    jobs, _ = plan_jobs(config, "cif" if config.fmt == "cif" else "pdb", emerging)
    assigned = _assign(jobs, routes)
    _prepare(out, jobs, force)
    with folder_lock(out):
        _replace_previous(out, jobs, force)
        writer = Writer(out, [j.name for j in jobs])
        configs = [replace(config, simulation=r.simulation or config.simulation) for r in routes]
        batches = sum(
            len(job_batches(js, config.batch_size)) * c.simulation.steps
            for js, c in zip(assigned, configs)
        )
        progress = Progress(batches, "sampling", unit="steps")
        for route, route_jobs, route_config in zip(routes, assigned, configs):
            if route_jobs:
                writer.use(route_config, checkpoint.fingerprint(route.checkpoint), route.name)
                _run_jobs(
                    route, route_jobs, route_config, device, workers, emerging, writer, progress
                )
        progress.close()
    return writer.rows


def _check_model(route: Route, config: SampleConfig) -> None:
    """Refuse a model that cannot make what ``config`` asks (a motif, a condition)."""
    trained, where = route.trained, route.checkpoint
    if config.contig is not None and not (
        trained.config.network.motif and trained.process.supports_motif
    ):
        raise ConfigError(
            f"{where} was not trained for motif scaffolding (its network has no motif "
            "flags, or its process keeps no motif); use a motif model (the shipped one is used "
            "when --checkpoint is not given)"
        )
    if config.ss is not None and not trained.config.network.ss_condition:
        raise ConfigError(
            f"{where} was not trained with a secondary-structure condition (its network "
            "has no ss_condition); use an ss model (the shipped one is used when --checkpoint is "
            "not given)"
        )
    if trained.process.emerging_length and (
        config.contig is not None or config.trajectory or config.ss is not None
    ):
        raise ConfigError(
            "an insertion model makes unconditional samples of emerging length: no --motif, no "
            "--ss, no --trajectory"
        )


def _assign(jobs: list[Job], routes: list[Route]) -> list[list[Job]]:
    """Each route's jobs: those of its lengths (a route without lengths: every job); a job that
    no route or several routes would sample is refused."""
    assigned: list[list[Job]] = [[] for _ in routes]
    for job in jobs:
        owners = [k for k, r in enumerate(routes) if r.lengths is None or job.length in r.lengths]
        if len(owners) != 1:
            raise ConfigError(
                f"{job.length} residues: {'no model' if not owners else 'several models'} of "
                f"the run sample this length ({', '.join(r.name for r in routes)})"
            )
        assigned[owners[0]].append(job)
    return assigned


def _run_jobs(route: Route, jobs, config, device, workers, emerging, writer, progress) -> None:
    """Simulate every job's batch with the route's model (in a pool when workers > 1) and write
    each as it ends; ``progress`` counts the steps of the whole run."""
    queue = job_batches(jobs, config.batch_size)
    attempts = {job.index: 1 for job in jobs}

    def finished(batch: list[Job], atoms, lengths, path, seconds) -> list[Job]:
        """Write a batch's samples; return the insertion samples to draw again."""
        again = redraws(batch, lengths, config, attempts) if emerging else []
        progress.total += config.simulation.steps if again else 0
        redrawn = {j.index for j in again}
        # emerged lengths
        done = [
            (k, replace(job, length=lengths[k]))
            for k, job in enumerate(batch)
            if job.index not in redrawn
        ]
        writer.write(done, atoms, path, seconds)
        progress.update(0, extra=f"{len(writer.rows)}/{len(writer.order)} written")
        return again

    if workers > 1 and len(queue) > 1:
        sample_in_pool(
            checkpoint.resolve(route.checkpoint), queue, config, device, workers, progress, finished
        )
    while queue:
        batch = queue.pop(0)
        again = finished(
            batch,
            *sample_batch(
                route.trained,
                batch,
                config,
                device,
                on_step=lambda: progress.update(
                    1, extra=f"{len(writer.rows)}/{len(writer.order)} written"
                ),
            ),
        )
        if again:
            queue.append(again)
