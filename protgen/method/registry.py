"""The latent processes by name: what a checkpoint's ``ProcessConfig.name`` makes.

A new process registers here (or, from outside the package, with :func:`register_process`);
training, validation and sampling then take it from the checkpoint's config and ask it for its
capabilities (``LatentProcess.emerging_length``, ``supports_motif``, ``gaussian_positions``).
"""

from collections.abc import Callable

from protgen.errors import ConfigError
from protgen.method.insertion import InsertionProcess
from protgen.method.process import ChainFrameFlow, LatentProcess, ProcessConfig, ResidueFrameFlow

__all__ = ["PROCESSES", "make_process", "register_process"]

# name → constructor taking the ProcessConfig
PROCESSES: dict[str, Callable[[ProcessConfig], LatentProcess]] = {
    "frames": ResidueFrameFlow,
    "chain": ChainFrameFlow,
    "insertion": InsertionProcess,
}


def register_process(name: str, factory: Callable[[ProcessConfig], LatentProcess]) -> None:
    """Make ``ProcessConfig(name=name)`` build ``factory(config)``."""
    PROCESSES[name] = factory


def make_process(config: ProcessConfig) -> LatentProcess:
    """The latent process a config names."""
    factory = PROCESSES.get(config.name)
    if factory is None:
        raise ConfigError(f"unknown process {config.name!r}; choose one of {', '.join(PROCESSES)}")
    return factory(config)
