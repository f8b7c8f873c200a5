"""Sampling backbones from a trained model into a directory of structure files and a manifest.

Every sample has its own prior draw, seeded by (seed, length, index), so a sample does not depend
on which others share its batch. Files are written atomically, the manifest after every batch;
existing outputs are never overwritten unless ``force``.
"""

import csv
import errno
import hashlib
import math
import numbers
import os
import sys
import time
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from queue import SimpleQueue
from typing import Callable

import numpy as np
import torch

from protgen.data.structure import write_backbone
from protgen.errors import ConfigError, ProtgenError
from protgen.files import folder_lock, move_aside, writable_folder
from protgen.geometry.backbone import frames_to_backbone
from protgen.geometry.rigid import Rigid
from protgen.geometry.secondary import codes_to_ss
from protgen.geometry.world import WorldState
from protgen.method.process import LatentProcess
from protgen.method.simulation import SimulationConfig, simulate
from protgen.progress import Progress
from protgen.sampling.guidance import ClashGuidance
from protgen.sampling.manifest import ManifestRow, write_manifest
from protgen.sampling.motif import (
    Layout,
    Motif,
    conditioned_state,
    draw_layout,
    parse_contig,
    read_motif,
)
from protgen.sampling.self_conditioning import SelfConditioned
from protgen.sampling.ss_condition import ClassifierFreeGuidance, ss_codes
from protgen.training import checkpoint
from protgen.training.checkpoint import TrainedModel
from protgen.workers import threaded_worker, worker_threads

__all__ = [
    "SampleConfig",
    "check_sample_config",
    "sample_backbones",
    "sample_to_directory",
    "parse_lengths",
    "sample_seed",
    "sample_states",
    "unconditioned_state",
    "MAX_LENGTH",
]

MAX_LENGTH = 1000


@dataclass(frozen=True)
class SampleConfig:
    """What ``protgen sample`` makes."""

    lengths: tuple[int, ...] = (100,)  # residues of each requested backbone length
    num: int = 10  # samples per length
    seed: int = 0  # base seed; sample (L, i) uses its own seed derived from (seed, L, i)
    batch_size: int = 8  # samples of equal length simulated together
    fmt: str = "pdb"  # "pdb" or "cif"
    trajectory: bool = False  # also write the path as a multi-model file
    self_condition: bool = True  # feed x̂_1 of the previous step (if the model was trained with it)
    simulation: SimulationConfig = SimulationConfig()
    motif_file: str | None = None  # motif scaffolding: the structure file holding the motif
    contig: str | None = None  # motif scaffolding: RFdiffusion contig, e.g. "5-20,A16-35,10-25"
    total_length: str | None = None  # motif scaffolding: bounds of the whole length, "60-80"
    # insertion models: samples shorter than this are drawn again (rejection = conditioning on
    # length)
    min_length: int = 1
    max_length: int = MAX_LENGTH  # insertion models: likewise for longer samples
    # insertion models: draws per sample before giving up on the length bounds
    max_attempts: int = 20
    # η of sampling.guidance.ClashGuidance (Å² per unit penalty); 0 = off
    clash_guidance: float = 0.0
    # secondary-structure condition, one character per residue (H, E, L; ? or - unconstrained):
    # the length is the string's; needs a model trained with ss_condition
    ss: str | None = None
    ss_source: str | None = (
        None  # where the string came from (--ss-from FILE[:CHAIN]), for the manifest
    )
    # classifier-free guidance weight w: 0 unconditional, 1 conditional, > 1 guided
    guidance: float = 1.0


def _finite(value, at_least: float = 0.0) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= at_least
    )


def _count(value, at_least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= at_least


def check_sample_config(config: SampleConfig) -> None:
    """Refuse a SampleConfig that cannot work or holds a setting that would do nothing, before a
    model is loaded: one validation for ``protgen sample`` and ``protgen.sample``. Raises
    ConfigError naming the flag (the API's argument of the same name)."""
    sim = config.simulation
    for name, value in (
        ("num", config.num),
        ("steps", sim.steps),
        ("batch-size", config.batch_size),
    ):
        if not _count(value, 1):
            raise ConfigError(
                f"--{name} {value!r}: --num, --steps and --batch-size must be positive"
            )
    for n in config.lengths:
        if not _count(n, 3) or n > MAX_LENGTH:
            raise ConfigError(f"length {n!r} is outside 3..{MAX_LENGTH} residues")
    if sim.rot_rate is not None and not _finite(sim.rot_rate):
        raise ConfigError(
            f"--rot-rate must be ≥ 0 (0 = the learned rotation rate), got {sim.rot_rate}"
        )
    if not (_finite(sim.langevin) and _finite(sim.noise_scale)):
        raise ConfigError(
            f"--langevin and --noise-scale must be ≥ 0, got {sim.langevin} and {sim.noise_scale}"
        )
    if sim.langevin > sim.steps:
        raise ConfigError(
            f"--langevin {sim.langevin} with --steps {sim.steps}: need κ ≤ steps "
            "(κ·Δt ≤ 1, else the step overshoots)"
        )
    if sim.noise_scale != 1.0 and sim.langevin == 0:
        raise ConfigError(
            f"--noise-scale {sim.noise_scale} scales the noise of --langevin κ > 0; without it "
            "sampling is the deterministic ODE and the flag would do nothing"
        )
    if not _finite(config.clash_guidance):
        raise ConfigError(f"--clash-guidance must be ≥ 0, got {config.clash_guidance}")
    if config.fmt not in ("pdb", "cif"):
        raise ConfigError(f"--format {config.fmt!r}: use pdb or cif")
    if (config.motif_file is None) != (config.contig is None):
        raise ConfigError("motif scaffolding needs both --motif FILE and --contig")
    if config.total_length is not None and config.contig is None:
        raise ConfigError(
            "--total-length bounds a motif scaffold's length; without --motif/--contig use --length"
        )
    if config.contig is not None:  # a malformed contig is named before any model is loaded
        parse_contig(config.contig, config.total_length)
    if not _finite(config.guidance):
        raise ConfigError(f"--guidance must be ≥ 0, got {config.guidance}")
    if config.ss is None and config.guidance != 1.0:
        raise ConfigError(
            f"--guidance {config.guidance} weighs a secondary-structure condition; without --ss "
            "or --ss-from it would do nothing"
        )
    if config.ss is not None:
        codes = ss_codes(config.ss)
        if config.contig is not None:
            raise ConfigError("--ss with --motif is not supported: condition on one or the other")
        if config.lengths != (len(codes),):
            raise ConfigError(
                f"--ss gives the length ({len(codes)} residues); drop --length/--lengths "
                f"(asked {','.join(map(str, config.lengths))})"
            )
        if not 3 <= len(codes) <= MAX_LENGTH:
            raise ConfigError(f"--ss: {len(codes)} residues is outside 3..{MAX_LENGTH}")
    if not 1 <= config.min_length <= config.max_length:
        raise ConfigError(
            f"need 1 ≤ --min-length ≤ --max-length, got {config.min_length} and {config.max_length}"
        )


def default_rot_rate(process: LatentProcess) -> float | None:
    """The rotation schedule (``SimulationConfig.rot_rate``) used when the user names none: c = 5
    for fixed-length and motif models (chosen on secondary structure, README's model card); the
    learned rate (None) where the length emerges, since the gap head reads the state — the schedule
    moves the state off the path the model learned and biases the emerging lengths (README:
    variable length)."""
    return None if process.emerging_length else SimulationConfig().rot_rate


def parse_lengths(text: str) -> tuple[int, ...]:
    """'100', '60,80,120' or 'start:stop:step' (stop included) → lengths."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop, step = (parts + [1])[:3] if len(parts) == 2 else parts
            if step <= 0:
                raise ValueError
            lengths = tuple(range(start, stop + 1, step))
        else:
            lengths = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read lengths {text!r}: use 100, 60,80,120 or start:stop:step (e.g. 60:200:20)"
        ) from None
    if not lengths:
        raise ConfigError(f"lengths {text!r} select no length")
    for n in lengths:
        if n < 3 or n > MAX_LENGTH:
            raise ConfigError(f"length {n} is outside 3..{MAX_LENGTH} residues")
    return lengths


def sample_seed(seed: int, length: int, index: int) -> int:
    return (
        int.from_bytes(hashlib.sha256(f"{seed}:{length}:{index}".encode()).digest()[:8], "big") >> 1
    )


def unconditioned_state(length: int, count: int = 1) -> WorldState:
    """A template world state of ``count`` chains of ``length`` residues, nothing fixed."""
    return WorldState.of(
        Rigid(torch.eye(3).expand(count, length, 3, 3), torch.zeros(count, length, 3))
    )


@torch.no_grad()
def sample_states(
    trained: TrainedModel,
    template: WorldState,
    seeds: list[int],
    config: SampleConfig,
    device="cpu",
    on_step: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, list[int], list[torch.Tensor]]:
    """Backbones (len(seeds), N, 4, 3) in Å, their lengths (padding follows), and, if
    config.trajectory, the atoms at every step; from the template's residues (mask, numbering,
    fixed motif frames) — or, for an insertion model, from its one-residue prior, the length
    emerging.

    Each sample's prior draw (and its insertions) is seeded by its own seed alone; the simulation
    then runs them as one batch (batched matrix products may differ from single ones in the last
    float bits).
    """
    priors = [
        trained.process.world_prior(template[k : k + 1], torch.Generator().manual_seed(s))
        for k, s in enumerate(seeds)
    ]
    fixed = None if priors[0].fixed is None else torch.cat([p.fixed for p in priors])
    ss = None if priors[0].ss is None else torch.cat([p.ss for p in priors])
    x_0 = WorldState(
        Rigid.cat([p.frames for p in priors]),
        torch.cat([p.mask for p in priors]),
        torch.cat([p.index for p in priors]),
        fixed,
        ss=ss,
    ).to(device)
    self_conditioned = SelfConditioned(trained.model, config.self_condition)
    predict = self_conditioned
    if ss is not None and config.guidance == 0:  # the unconditional generator alone
        x_0 = replace(x_0, ss=None)
    elif ss is not None and config.guidance != 1:  # w = 1: the conditional generator alone
        unconditional = SelfConditioned(trained.model, config.self_condition)
        predict = ClassifierFreeGuidance(self_conditioned, unconditional, config.guidance)
    jump = None
    if trained.process.emerging_length:  # a JumpProcess
        rngs = [torch.Generator().manual_seed(s + 1) for s in seeds]

        def jump(x: WorldState, counts: torch.Tensor, t: float, dt: float) -> WorldState:
            grown = trained.process.insert(x, counts, t, dt, rngs)
            # newborns carry the step's end time t + dt, older residues ≤ t; a process that
            # records no insertion times restarts self-conditioning instead
            if grown is not x and grown.birth is not None:
                self_conditioned.carry(grown, grown.birth > t + dt / 2)
            return grown

    if config.clash_guidance > 0:
        predict = ClashGuidance(predict, config.clash_guidance)
    noise_rngs = None
    if config.simulation.langevin > 0:
        if not trained.process.gaussian_positions:
            raise ConfigError(
                "stochastic translations (--langevin) need a model whose positions follow a "
                f"Gaussian path (Process 1, frames), not {trained.config.process.name!r}: "
                "the score is read off x̂_1 as for a Gaussian path"
            )
        noise_rngs = [torch.Generator().manual_seed(s + 2) for s in seeds]
    x_1, path = simulate(
        predict,
        x_0,
        trained.process.start_time,
        config.simulation,
        config.trajectory,
        on_step,
        jump,
        trained.process.config.sigma,
        noise_rngs,
    )
    atoms = frames_to_backbone(x_1.frames, x_1.mask, index=x_1.index).cpu()
    return (
        atoms,
        x_1.mask.sum(-1).tolist(),
        [frames_to_backbone(x.frames, x.mask, index=x.index).cpu() for x in path],
    )


def sample_backbones(
    trained: TrainedModel,
    length: int,
    seeds: list[int],
    config: SampleConfig,
    device="cpu",
    on_step: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Unconditional backbones of one length: (len(seeds), L, 4, 3), Å (see sample_states)."""
    atoms, _, path = sample_states(
        trained, unconditioned_state(length, len(seeds)), seeds, config, device, on_step
    )
    return atoms, path


def _write_manifest(out: Path, rows: list[ManifestRow]) -> None:
    write_manifest(out / "manifest.csv", rows)


def _previous_outputs(out: Path, jobs: list["_Job"]) -> list[str]:
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


@dataclass(frozen=True)
class _Job:
    """One backbone to make: its file name, index, seed and, for motif scaffolding, its layout."""

    name: str
    length: int
    index: int
    seed: int
    layout: Layout | None = None


def _jobs(config: SampleConfig, suffix: str, emerging: bool) -> tuple[list[_Job], Motif | None]:
    if emerging:  # the length emerges: every sample starts from the one-residue prior
        return [
            _Job(f"ins_{i:04d}.{suffix}", 1, i, sample_seed(config.seed, 0, i))
            for i in range(config.num)
        ], None
    if config.contig is None:
        jobs = [
            _Job(f"len{n:04d}_{i:04d}.{suffix}", n, i, sample_seed(config.seed, n, i))
            for n in config.lengths
            for i in range(config.num)
        ]
        return jobs, None
    contig = parse_contig(config.contig, config.total_length)
    motif = read_motif(config.motif_file, contig)
    stem = Path(config.motif_file).name.split(".")[0]
    jobs = []
    for i in range(config.num):
        seed = sample_seed(config.seed, 0, i)
        layout = draw_layout(contig, motif, np.random.default_rng(seed))
        if len(layout) > MAX_LENGTH:
            raise ConfigError(f"the contig gives {len(layout)} residues, more than {MAX_LENGTH}")
        jobs.append(_Job(f"{stem}_{i:04d}.{suffix}", len(layout), i, seed, layout))
    return jobs, motif


def _batches(jobs: list[_Job], size: int) -> list[list[_Job]]:
    """Consecutive jobs of equal length, at most ``size`` at a time."""
    batches: list[list[_Job]] = []
    for job in jobs:
        if batches and len(batches[-1]) < size and batches[-1][0].length == job.length:
            batches[-1].append(job)
        else:
            batches.append([job])
    return batches


def _template(batch: list[_Job], config: SampleConfig) -> WorldState:
    if batch[0].layout is not None:
        return conditioned_state([job.layout for job in batch])
    state = unconditioned_state(batch[0].length, len(batch))
    if config.ss is None:
        return state
    return replace(state, ss=ss_codes(config.ss).expand(len(batch), -1).clone())


def _finish(
    job: _Job, atoms: np.ndarray, motif_file: str | None, out: Path
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, dict]:
    """Atoms to write, B-factors, chain IDs and the manifest's motif columns of one job. Motif
    residues are written with the motif file's own atoms, moved as the sample placed them; the
    motif file is named relative to the output folder (the pair can move together)."""
    if job.layout is None:
        return atoms, None, None, {}
    layout = job.layout
    true = layout.motif_atoms[layout.fixed]
    centre = true[:, 1].mean(0)
    atoms = atoms.copy()
    # the frames were fixed: a pure translation
    atoms[layout.fixed] = true - centre + atoms[layout.fixed][:, 1].mean(0)
    columns = {
        "motif_file": _relative(Path(motif_file), out),
        "contig": layout.description,
        "motif_positions": layout.motif_positions,
        "motif_residues": layout.motif_residues,
    }
    return atoms, layout.fixed.astype(float), layout.chain, columns


def _refuse_overwrite(out: Path, jobs: list["_Job"]) -> None:
    clash = [name for name in [*(j.name for j in jobs), "manifest.csv"] if (out / name).exists()]
    if clash:
        raise ProtgenError(
            f"{out / clash[0]} exists ({len(clash)} output(s) would be overwritten); pass --force "
            "(the earlier files are moved into a replaced-… subfolder) or choose another --out"
        )


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (absolute only where no relative path exists)."""
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive
        return str(path.resolve())


def _prepare(out: Path, jobs: list["_Job"], force: bool) -> None:
    """Check the output folder before the model runs: not a file, writable, and — without
    ``force`` — holding none of this run's outputs."""
    if out.exists() and not out.is_dir():
        raise ProtgenError(f"--out {out} is a file, not a directory")
    if not force and out.is_dir():
        _refuse_overwrite(out, jobs)
    writable_folder(out)


def _replace_previous(out: Path, jobs: list["_Job"], force: bool) -> None:
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


def _redraws(
    batch: list[_Job], lengths: list[int], config: SampleConfig, attempts: dict[int, int]
) -> list[_Job]:
    """Insertion samples whose length fell outside the bounds, with their next seeds. Drawing again
    until the length is in bounds samples the model conditioned on them."""
    again = []
    for job, n in zip(batch, lengths):
        if config.min_length <= n <= config.max_length:
            continue
        attempts[job.index] += 1
        if attempts[job.index] > config.max_attempts:
            raise ProtgenError(
                f"sample {job.index}: no length within {config.min_length}..{config.max_length} "
                f"in {config.max_attempts} draws; widen --min-length/--max-length"
            )
        again.append(
            _Job(
                job.name, 1, job.index, sample_seed(config.seed, attempts[job.index] - 1, job.index)
            )
        )
    return again


def sample_to_directory(
    checkpoint_path: str | Path,
    out: str | Path,
    config: SampleConfig,
    device="cpu",
    force: bool = False,
    trained: TrainedModel | None = None,
    workers: int = 1,
) -> list[ManifestRow]:
    """Sample config.num backbones per length — or config.num scaffolds of a motif, or config.num
    chains of emerging length — with the model of ``checkpoint_path`` into ``out``.

    Returns this run's manifest rows, which manifest.csv lists. Existing outputs are refused
    unless ``force``; with it, the files of the previous run (those its manifest lists and those
    this run writes, with the manifest) are moved into ``out/replaced-YYYYMMDD-HHMMSS/``, so the
    folder holds one run. One run at a time may write to ``out`` (a second is refused).
    ``trained``: the checkpoint's model, if the caller has loaded it. ``workers`` > 1: batches run
    in that many processes (CPU) dividing this process's threads, rows in job order.
    """
    out = Path(out)
    check_sample_config(config)
    trained = trained or checkpoint.load_model(checkpoint_path, device)
    if config.contig is not None and not (
        trained.config.network.motif and trained.process.supports_motif
    ):
        raise ConfigError(
            f"{checkpoint_path} was not trained for motif scaffolding (its network has no motif "
            "flags, or its process keeps no motif); use a motif model (the shipped one is used "
            "when --checkpoint is not given)"
        )
    if config.ss is not None and not trained.config.network.ss_condition:
        raise ConfigError(
            f"{checkpoint_path} was not trained with a secondary-structure condition (its network "
            "has no ss_condition); use an ss model (the shipped one is used when --checkpoint is "
            "not given)"
        )
    emerging = trained.process.emerging_length
    if emerging and (config.contig is not None or config.trajectory or config.ss is not None):
        raise ConfigError(
            "an insertion model makes unconditional samples of emerging length: no --motif, no "
            "--ss, no --trajectory"
        )
    fingerprint = checkpoint.fingerprint(checkpoint_path)
    jobs, _ = _jobs(config, "cif" if config.fmt == "cif" else "pdb", emerging)
    _prepare(out, jobs, force)
    with folder_lock(out):
        _replace_previous(out, jobs, force)
        writer = _Writer(out, config, fingerprint, [j.name for j in jobs])
        _run_jobs(trained, checkpoint_path, jobs, config, device, workers, emerging, writer)
    return writer.rows


def _run_jobs(trained, checkpoint_path, jobs, config, device, workers, emerging, writer) -> None:
    """Simulate every job's batch (in a pool when workers > 1) and write each as it ends."""
    queue = _batches(jobs, config.batch_size)
    progress = Progress(len(queue) * config.simulation.steps, "sampling", unit="steps")
    attempts = {job.index: 1 for job in jobs}

    def finished(batch: list[_Job], atoms, lengths, path, seconds) -> list[_Job]:
        """Write a batch's samples; return the insertion samples to draw again."""
        again = _redraws(batch, lengths, config, attempts) if emerging else []
        progress.total += config.simulation.steps if again else 0
        redrawn = {j.index for j in again}
        # emerged lengths
        done = [
            (k, replace(job, length=lengths[k]))
            for k, job in enumerate(batch)
            if job.index not in redrawn
        ]
        writer.write(done, atoms, path, seconds)
        progress.update(0, extra=f"{len(writer.rows)}/{len(jobs)} written")
        return again

    if workers > 1 and len(queue) > 1:
        _sample_in_pool(
            checkpoint.resolve(checkpoint_path), queue, config, device, workers, progress, finished
        )
    while queue:
        batch = queue.pop(0)
        again = finished(
            batch,
            *_sample_batch(
                trained,
                batch,
                config,
                device,
                on_step=lambda: progress.update(1, extra=f"{len(writer.rows)}/{len(jobs)} written"),
            ),
        )
        if again:
            queue.append(again)
    progress.close()


_WORKER: dict = {}


def _worker_start(path: Path, device: str, threads: int) -> None:
    threaded_worker(threads)
    _WORKER["trained"] = checkpoint.load_model(path, device)


def _sample_batch(
    trained: TrainedModel, batch: list["_Job"], config: SampleConfig, device, on_step=None
):
    """One batch's atoms, lengths and path (sample_states) and the seconds per sample."""
    began = time.perf_counter()
    atoms, lengths, path = sample_states(
        trained, _template(batch, config), [j.seed for j in batch], config, device, on_step
    )
    return atoms, lengths, path, (time.perf_counter() - began) / len(batch)


def _worker_batch(args: tuple[list["_Job"], SampleConfig, str]):
    batch, config, device = args
    return _sample_batch(_WORKER["trained"], batch, config, device)


def _sample_in_pool(
    path: Path,
    queue: list[list["_Job"]],
    config: SampleConfig,
    device: str,
    workers: int,
    progress: Progress,
    finished: Callable,
) -> None:
    """Run the batches of ``queue`` (emptied) in ``workers`` processes that divide this process's
    threads, each with its own copy of the model; ``finished`` writes each batch as it comes back
    (and returns insertion samples to draw again, which go back into the pool). A batch's samples
    are the ones a single process makes: seeds are per sample and the batches are the same.
    Leaving the pool (an error, Ctrl-C) terminates the workers at once."""
    results: SimpleQueue = SimpleQueue()

    def submit(pool, batch):
        pool.apply_async(
            _worker_batch,
            ((batch, config, device),),
            callback=lambda r: results.put((batch, r, None)),
            error_callback=lambda e: results.put((batch, None, e)),
        )

    with get_context("spawn").Pool(
        workers, initializer=_worker_start, initargs=(path, device, worker_threads(workers))
    ) as pool:
        for batch in queue:
            submit(pool, batch)
        running = len(queue)
        queue.clear()
        while running:
            batch, result, error = results.get()
            running -= 1
            if error is not None:
                raise error
            progress.update(config.simulation.steps)
            again = finished(batch, *result)
            if again:
                submit(pool, again)
                running += 1


class _Writer:
    """Backbone files and the manifest (rewritten after every batch, so it always lists what is on
    disk); a full disk or another write error ends the run with what was kept."""

    def __init__(
        self,
        out: Path,
        config: SampleConfig,
        fingerprint: str,
        order: list[str],
    ):
        self.out, self.config, self.fingerprint = out, config, fingerprint
        # rows are listed in job order, whichever batch ends first
        self.order = {name: k for k, name in enumerate(order)}
        self.rows: list[ManifestRow] = []
        self.listed = 0

    def write(
        self,
        done: list[tuple[int, _Job]],
        atoms: torch.Tensor,
        path: list[torch.Tensor],
        seconds: float,
    ) -> None:
        """Jobs k of the batch (with their final lengths) from atoms (B, N, 4, 3) and the path."""
        config, suffix = self.config, "cif" if self.config.fmt == "cif" else "pdb"
        try:
            for k, job in done:
                final, b_factors, chains, columns = _finish(
                    job, atoms[k, : job.length].numpy(), config.motif_file, self.out
                )
                write_backbone(
                    self.out / job.name, final, b_factors, fmt=config.fmt, chain_ids=chains
                )
                if config.trajectory:
                    traj = torch.stack([p[k] for p in path]).numpy()
                    write_backbone(
                        self.out / job.name.replace(f".{suffix}", f"_traj.{suffix}"),
                        traj,
                        b_factors,
                        fmt=config.fmt,
                        chain_ids=chains,
                    )
                self.rows.append(
                    ManifestRow(
                        file=job.name,
                        length=job.length,
                        index=job.index,
                        seed=job.seed,
                        steps=config.simulation.steps,
                        rot_rate=config.simulation.rot_rate,
                        checkpoint=self.fingerprint,
                        seconds=seconds,
                        clash_guidance=config.clash_guidance,
                        langevin=config.simulation.langevin,
                        noise_scale=config.simulation.noise_scale,
                        **columns,
                        **(
                            {}
                            if config.ss is None
                            else {
                                "ss": codes_to_ss(ss_codes(config.ss)),
                                "ss_source": config.ss_source or "",
                                "guidance": config.guidance,
                            }
                        ),
                    )
                )
            self.rows.sort(key=lambda row: self.order[row.file])
            _write_manifest(self.out, self.rows)
            self.listed = len(self.rows)
        except OSError as error:
            # the failed file's temporary copy is gone, so the small manifest usually still fits
            try:
                _write_manifest(self.out, self.rows)
                self.listed = len(self.rows)
            except OSError:
                pass
            kept = (
                f"{len(self.rows)} backbone(s) written so far are kept, {self.listed} of them "
                "listed in manifest.csv"
            )
            if error.errno == errno.ENOSPC:
                raise ProtgenError(
                    f"the disk is full while writing to {self.out}; {kept}"
                ) from None
            raise ProtgenError(
                f"cannot write to {self.out} ({error.strerror or error}); {kept}"
            ) from None
