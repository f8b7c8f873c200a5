"""Starting a new run from another run's weights (``--init-from``): the network fields a fine-tune
may change, and how the parameters it adds start so that the new network computes what its
source did."""

from dataclasses import asdict
from pathlib import Path

from protgen.errors import ConfigError
from protgen.network.model import GeneratorModel
from protgen.training.checkpoint import TrainedModel
from protgen.training.config import ModelConfig

__all__ = ["initialise_from"]


def initialise_from(
    module: GeneratorModel, source: TrainedModel, path: Path, model_config: ModelConfig
) -> None:
    """Load the (EMA) network weights of another run (``source``, read from ``path``) into a new
    one. The architectures must match, except for capabilities switched on and
    sequence-transformer layers added (``node_layers`` grown): their new parameters start so that
    the new network computes what the source did."""
    a, b = asdict(source.config.network), asdict(model_config.network)
    grown = b["node_layers"] > a["node_layers"]
    diff = ", ".join(
        f"{k} {a[k]} vs {b[k]}"
        for k in a
        if a[k] != b[k] and k not in _ADDED_CAPABILITIES and not (k == "node_layers" and grown)
    )
    if diff:
        raise ConfigError(
            f"--init-from {path}: its network differs from this run's ({diff}); use its "
            "preset/config"
        )
    missing, unexpected = module.network.load_state_dict(
        source.model.network.state_dict(), strict=False
    )
    new = {
        name
        for name in missing
        if name.startswith(_ADDED_PARAMETERS) or _added_layer(name, a["node_layers"])
    }
    if unexpected or set(missing) - new:
        raise ConfigError(
            f"--init-from {path}: weights do not fit this network (missing "
            f"{sorted(set(missing) - new)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    if grown:
        for block in module.network.blocks:
            block.silence_sequence_layers(a["node_layers"])


# Network fields a fine-tune may change: capabilities switched on (their new heads start at zero)
# and the pair selection (``neighbours``: dense or k nearest; the same parameters either way).
_ADDED_CAPABILITIES = {
    "motif",
    "insertion",
    "self_condition_frames",
    "neighbours",
    "insertion_end",
    "birth_clock",
    "ss_condition",
}


# their parameters (names start so)
_ADDED_PARAMETERS = (
    "fixed_embedding",
    "gaps.",
    "pairs.frames_linear.",
    "birth_embedding.",
    "ss_embedding.",
)


def _added_layer(name: str, source_layers: int) -> bool:
    """Whether a parameter belongs to a sequence-transformer layer the source network lacks
    (``blocks.K.seq.layers.J.…`` with J ≥ the source's node_layers)."""
    parts = name.split(".")
    return (
        len(parts) > 4
        and parts[0] == "blocks"
        and parts[2:4] == ["seq", "layers"]
        and int(parts[4]) >= source_layers
    )
