"""Process pools: how their worker processes start."""

__all__ = ["one_thread_worker"]


def one_thread_worker() -> None:
    """Pool initializer: one torch thread per worker (several busy processes on few cores slow
    each other down badly otherwise), and Ctrl-C left to the parent, which stops the pool."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
