"""Process pools: how their worker processes start, and how many torch threads each gets."""

__all__ = ["threaded_worker", "worker_threads"]


def worker_threads(workers: int) -> int:
    """Torch threads per worker process: this process's threads (``--threads``, else the usable
    cores) divided among the workers, at least one."""
    import torch

    return max(1, torch.get_num_threads() // max(1, workers))


def threaded_worker(threads: int) -> None:
    """Pool initializer: ``threads`` torch threads per worker (workers that together ask for more
    threads than there are cores slow each other down badly), and Ctrl-C left to the parent,
    which stops the pool."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
