"""The jobs of a sampling run: one per backbone to make (its file name, seed and, for a motif
scaffold, its layout), simulated in batches of equal length; insertion samples outside the length
bounds are drawn again."""

import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from protgen.errors import ConfigError, ProtgenError
from protgen.geometry.world import WorldState
from protgen.sampling.config import MAX_LENGTH, SampleConfig, sample_seed
from protgen.sampling.motif import (
    Layout,
    Motif,
    conditioned_state,
    draw_layout,
    parse_contig,
    read_motif,
)
from protgen.sampling.sampler import sample_states, unconditioned_state
from protgen.sampling.ss_condition import ss_codes
from protgen.training.checkpoint import TrainedModel

__all__ = ["Job", "plan_jobs", "job_batches", "batch_template", "redraws", "sample_batch"]


@dataclass(frozen=True)
class Job:
    """One backbone to make: its file name, index, seed and, for motif scaffolding, its layout."""

    name: str
    length: int
    index: int
    seed: int
    layout: Layout | None = None


def plan_jobs(config: SampleConfig, suffix: str, emerging: bool) -> tuple[list[Job], Motif | None]:
    if emerging:  # the length emerges: every sample starts from the one-residue prior
        return [
            Job(f"ins_{i:04d}.{suffix}", 1, i, sample_seed(config.seed, 0, i))
            for i in range(config.num)
        ], None
    if config.contig is None:
        # a length listed k times gets k·num samples, numbered on (one file each)
        repeats = Counter(config.lengths)
        jobs = [
            Job(f"len{n:04d}_{i:04d}.{suffix}", n, i, sample_seed(config.seed, n, i))
            for n in dict.fromkeys(config.lengths)
            for i in range(repeats[n] * config.num)
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
        jobs.append(Job(f"{stem}_{i:04d}.{suffix}", len(layout), i, seed, layout))
    return jobs, motif


def job_batches(jobs: list[Job], size: int) -> list[list[Job]]:
    """Consecutive jobs of equal length, at most ``size`` at a time."""
    batches: list[list[Job]] = []
    for job in jobs:
        if batches and len(batches[-1]) < size and batches[-1][0].length == job.length:
            batches[-1].append(job)
        else:
            batches.append([job])
    return batches


def batch_template(batch: list[Job], config: SampleConfig) -> WorldState:
    if batch[0].layout is not None:
        return conditioned_state([job.layout for job in batch])
    state = unconditioned_state(batch[0].length, len(batch))
    if config.ss is None:
        return state
    return replace(state, ss=ss_codes(config.ss).expand(len(batch), -1).clone())


def redraws(
    batch: list[Job], lengths: list[int], config: SampleConfig, attempts: dict[int, int]
) -> list[Job]:
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
            Job(
                job.name, 1, job.index, sample_seed(config.seed, attempts[job.index] - 1, job.index)
            )
        )
    return again


def sample_batch(
    trained: TrainedModel, batch: list["Job"], config: SampleConfig, device, on_step=None
):
    """One batch's atoms, lengths and path (sample_states) and the seconds per sample."""
    began = time.perf_counter()
    atoms, lengths, path = sample_states(
        trained, batch_template(batch, config), [j.seed for j in batch], config, device, on_step
    )
    return atoms, lengths, path, (time.perf_counter() - began) / len(batch)
