"""The worker pool of ``protgen sample --workers``: batches simulated in processes that divide this
process's threads, each with its own copy of the model."""

from multiprocessing import get_context
from pathlib import Path
from queue import SimpleQueue
from typing import Callable

from protgen.progress import Progress
from protgen.sampling.config import SampleConfig
from protgen.sampling.jobs import Job, sample_batch
from protgen.training import checkpoint
from protgen.workers import threaded_worker, worker_threads

__all__ = ["sample_in_pool"]


_WORKER: dict = {}


def _worker_start(path: Path, device: str, threads: int) -> None:
    threaded_worker(threads)
    _WORKER["trained"] = checkpoint.load_model(path, device)


def _worker_batch(args: tuple[list["Job"], SampleConfig, str]):
    batch, config, device = args
    return sample_batch(_WORKER["trained"], batch, config, device)


def sample_in_pool(
    path: Path,
    queue: list[list["Job"]],
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
