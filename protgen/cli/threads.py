"""``--threads``: how many CPU threads torch may use in a command that computes.

The default is every core this process may run on (its CPU affinity), divided among the processes
of a torchrun job (``LOCAL_WORLD_SIZE``); ``OMP_NUM_THREADS`` overrides it and ``--threads``
overrides both. Worker pools (``--workers``) divide the process's threads among their workers.
Asking for more threads than cores is allowed but warned about: the threads then take turns on
the cores and every step waits for the slowest.
"""

import os
import sys

__all__ = ["usable_cores", "default_threads", "add_threads_flag", "set_threads"]


def usable_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads() -> int:
    """The usable cores divided among the processes of a torchrun job, at least one."""
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, usable_cores() // max(1, ranks))


def add_threads_flag(parser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: OMP_NUM_THREADS if set, else the usable cores "
        f"divided among torchrun's processes, here {default_threads()})",
    )


def set_threads(threads: int | None) -> int:
    """Apply --threads, else OMP_NUM_THREADS if set, else the default; warn when the processes
    of this job would ask for more threads than there are cores. Returns the count."""
    from protgen.errors import ConfigError

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    source = "--threads"
    if threads is None:
        omp = os.environ.get("OMP_NUM_THREADS", "")
        threads, source = (
            (int(omp), "OMP_NUM_THREADS")
            if omp.isdigit() and int(omp) > 0
            else (
                default_threads(),
                "",
            )
        )
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    cores = usable_cores()
    if source and threads * ranks > cores and os.environ.get("RANK", "0") == "0":
        per = f" × {ranks} processes" if ranks > 1 else ""
        print(
            f"protgen: warning: {source} {threads}{per} asks for more threads than the {cores} "
            "usable cores; they will take turns and run slower (leave it out for the default)",
            file=sys.stderr,
            flush=True,
        )
    import torch

    torch.set_num_threads(threads)
    return threads
