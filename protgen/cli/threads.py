"""``--threads``: how many CPU threads torch may use in a command that computes.

torch's default (one thread per core) is fast on an idle machine and very slow on a busy one:
spinning OpenMP threads compete with every other process. The default here is half the cores this
process may run on (at least one), divided among the processes of a torchrun job.
"""

import os

__all__ = ["default_threads", "add_threads_flag", "set_threads"]


def default_threads() -> int:
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, cores // (2 * ranks))


def add_threads_flag(parser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: half the cores per process, here "
        f"{default_threads()}; OMP_NUM_THREADS also works)",
    )


def set_threads(threads: int | None) -> None:
    """Apply --threads, else OMP_NUM_THREADS if set, else the default."""
    from protgen.errors import ConfigError

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if threads is None:
        threads = (
            int(os.environ["OMP_NUM_THREADS"])
            if os.environ.get("OMP_NUM_THREADS", "").isdigit()
            else default_threads()
        )
    import torch

    torch.set_num_threads(threads)
