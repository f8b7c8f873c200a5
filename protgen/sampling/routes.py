"""Which model samples which lengths of a run: a :class:`Route` per model, and the routing of the
shipped unconditional models by length (``short.pt`` for the lengths its weights serve,
``default.pt`` for the rest)."""

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from protgen.method.simulation import SimulationConfig
from protgen.training import checkpoint
from protgen.training.checkpoint import TrainedModel

__all__ = [
    "Route",
    "SHIPPED_FIXED_LENGTH",
    "model_name",
    "shipped_checkpoint_for",
    "shipped_routes",
]

# the shipped unconditional fixed-length models, most specific first: a length goes to the first
# whose weights serve it (Serving.lengths; a model without that serves every length)
SHIPPED_FIXED_LENGTH = ("short", "default")


@dataclass(frozen=True)
class Route:
    """One model of a sampling run and the lengths it samples."""

    checkpoint: Path  # its checkpoint or weights file
    name: str  # the manifest's ``model`` column: a shipped model's name, else the path given
    lengths: tuple[int, ...] | None  # residues it samples; None: all of the run's
    # how its samples are simulated (the run's settings, with this model's rotation rate where the
    # user named none); None: the run's SampleConfig.simulation
    simulation: SimulationConfig | None = None
    trained: TrainedModel | None = None  # the loaded model, if the caller has it


@lru_cache(maxsize=16)
def _served(path: Path, modified: float) -> checkpoint.Serving | None:
    """A weights file's Serving record (read once per file version)."""
    return checkpoint.load(path).serving


def shipped_checkpoint_for(length: int) -> tuple[str, Path]:
    """The shipped unconditional model for ``length`` residues: (its name, its file)."""
    *specific, general = SHIPPED_FIXED_LENGTH
    for name in specific:
        path = checkpoint.default_checkpoint(name)
        serving = _served(path, path.stat().st_mtime)
        if serving is None or serving.covers(length):
            return name, path
    return general, checkpoint.default_checkpoint(general)


def shipped_routes(lengths: tuple[int, ...]) -> list[Route]:
    """The run's lengths grouped by the shipped unconditional model that samples them (in the
    order the lengths first ask for each model); ``sample_to_directory`` loads the models."""
    grouped: dict[str, list[int]] = {}
    paths: dict[str, Path] = {}
    for n in lengths:
        name, path = shipped_checkpoint_for(n)
        grouped.setdefault(name, []).append(n)
        paths[name] = path
    return [Route(paths[name], name, tuple(ns)) for name, ns in grouped.items()]


def model_name(path: str | Path) -> str:
    """How the manifest names a checkpoint: a file shipped in the package by its name (``motif``),
    any other by the path as given."""
    shipped = Path(str(resources.files("protgen") / "weights"))
    given = Path(path)
    try:
        inside = given.resolve().parent == shipped.resolve()
    except OSError:
        inside = False
    return given.stem if inside and given.suffix == ".pt" else str(path)
