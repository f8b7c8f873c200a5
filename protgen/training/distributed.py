"""Devices and processes: one process, or several under ``torchrun`` (gloo on CPU, NCCL on GPU)."""

import os
import signal

import torch
import torch.distributed as dist

from protgen.errors import ConfigError

__all__ = ["resolve_device", "setup", "any_rank", "StopRequest"]


def resolve_device(name: str) -> torch.device:
    """The device a --device value names: "auto" is CUDA when available, else the CPU; a name
    that is not a device, or CUDA where there is none, raises ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"--device {name}: not a device name (use auto, cpu, cuda or cuda:N)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    return device


def setup(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process; initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def any_rank(flag: bool, world: int, device) -> bool:
    """True on every rank if the flag is set on any."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks, so the run can checkpoint and leave."""

    def __init__(self):
        self.requested = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        self.requested = True

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
