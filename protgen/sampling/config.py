"""What ``protgen sample`` makes (:class:`SampleConfig`) and its validation, the lengths it reads
and the seed of each sample."""

import hashlib
import math
import numbers
from dataclasses import dataclass

from protgen.errors import ConfigError
from protgen.method.simulation import SimulationConfig
from protgen.sampling.motif import parse_contig
from protgen.sampling.ss_condition import ss_codes
from protgen.training.checkpoint import TrainedModel

__all__ = [
    "SampleConfig",
    "check_sample_config",
    "default_rot_rate",
    "parse_lengths",
    "sample_seed",
    "MAX_LENGTH",
    "DEFAULT_GUIDANCE",
]


MAX_LENGTH = 1000
# classifier-free guidance weight for a secondary-structure condition: 1, the exact conditional
# generator (one network pass a step). The README's *Secondary-structure control*: the shipped
# ss.pt on validation strings, agreement 70 % at w = 1 and 73 % at w = 2, but w = 2 breaks local
# geometry (CA–CA(next) in range 99 → 92 %, geometry OK 12.5 → 0 %)
DEFAULT_GUIDANCE = 1.0


@dataclass(frozen=True)
class SampleConfig:
    """What ``protgen sample`` makes."""

    lengths: tuple[int, ...] = (100,)  # residues of each requested backbone length
    num: int = 10  # samples per length
    seed: int = 0  # base seed; sample (L, i) uses its own seed derived from (seed, L, i)
    batch_size: int = 8  # samples of equal length simulated together
    fmt: str = "pdb"  # "pdb" or "cif"
    trajectory: bool = False  # also write the path as a multi-model file
    self_condition: bool = True  # feed x̂_1 of the previous step (if the model was trained with it)
    simulation: SimulationConfig = SimulationConfig()
    motif_file: str | None = None  # motif scaffolding: the structure file holding the motif
    contig: str | None = None  # motif scaffolding: RFdiffusion contig, e.g. "5-20,A16-35,10-25"
    total_length: str | None = None  # motif scaffolding: bounds of the whole length, "60-80"
    # insertion models: samples shorter than this are drawn again (rejection = conditioning on
    # length)
    min_length: int = 1
    max_length: int = MAX_LENGTH  # insertion models: likewise for longer samples
    # insertion models: draws per sample before giving up on the length bounds
    max_attempts: int = 20
    # η of sampling.guidance.ClashGuidance (Å² per unit penalty); 0 = off
    clash_guidance: float = 0.0
    # secondary-structure condition, one character per residue (H, E, L; ? or - unconstrained):
    # the length is the string's; needs a model trained with ss_condition
    ss: str | None = None
    ss_source: str | None = (
        None  # where the string came from (--ss-from FILE[:CHAIN]), for the manifest
    )
    # classifier-free guidance weight w: 0 unconditional, 1 conditional, > 1 guided; None: the
    # default (DEFAULT_GUIDANCE) with a condition, and a weight given without one is refused
    guidance: float | None = None

    @property
    def guidance_weight(self) -> float:
        """w as sampled: the given weight, else DEFAULT_GUIDANCE."""
        return DEFAULT_GUIDANCE if self.guidance is None else self.guidance


def _finite(value, at_least: float = 0.0) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= at_least
    )


def _count(value, at_least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= at_least


def check_sample_config(config: SampleConfig) -> None:
    """Refuse a SampleConfig that cannot work or holds a setting that would do nothing, before a
    model is loaded: one validation for ``protgen sample`` and ``protgen.sample``. Raises
    ConfigError naming the flag (the API's argument of the same name)."""
    sim = config.simulation
    for name, value in (
        ("num", config.num),
        ("steps", sim.steps),
        ("batch-size", config.batch_size),
    ):
        if not _count(value, 1):
            raise ConfigError(
                f"--{name} {value!r}: --num, --steps and --batch-size must be positive"
            )
    for n in config.lengths:
        if not _count(n, 3) or n > MAX_LENGTH:
            raise ConfigError(f"length {n!r} is outside 3..{MAX_LENGTH} residues")
    if sim.rot_rate is not None and not _finite(sim.rot_rate):
        raise ConfigError(
            f"--rot-rate must be ≥ 0 (0 = the learned rotation rate), got {sim.rot_rate}"
        )
    if not (_finite(sim.langevin) and _finite(sim.noise_scale)):
        raise ConfigError(
            f"--langevin and --noise-scale must be ≥ 0, got {sim.langevin} and {sim.noise_scale}"
        )
    if sim.langevin > sim.steps:
        raise ConfigError(
            f"--langevin {sim.langevin} with --steps {sim.steps}: need κ ≤ steps "
            "(κ·Δt ≤ 1, else the step overshoots)"
        )
    if sim.noise_scale != 1.0 and sim.langevin == 0:
        raise ConfigError(
            f"--noise-scale {sim.noise_scale} scales the noise of --langevin κ > 0; without it "
            "sampling is the deterministic ODE and the flag would do nothing"
        )
    if not _finite(config.clash_guidance):
        raise ConfigError(f"--clash-guidance must be ≥ 0, got {config.clash_guidance}")
    if config.fmt not in ("pdb", "cif"):
        raise ConfigError(f"--format {config.fmt!r}: use pdb or cif")
    if (config.motif_file is None) != (config.contig is None):
        raise ConfigError("motif scaffolding needs both --motif FILE and --contig")
    if config.total_length is not None and config.contig is None:
        raise ConfigError(
            "--total-length bounds a motif scaffold's length; without --motif/--contig use --length"
        )
    if config.contig is not None:  # a malformed contig is named before any model is loaded
        parse_contig(config.contig, config.total_length)
    if config.guidance is not None and not _finite(config.guidance):
        raise ConfigError(f"--guidance must be ≥ 0, got {config.guidance}")
    if config.ss is None and config.guidance is not None:
        raise ConfigError(
            f"--guidance {config.guidance} weighs a secondary-structure condition; without --ss "
            "or --ss-from it would do nothing"
        )
    if config.ss is not None:
        codes = ss_codes(config.ss)
        if config.contig is not None:
            raise ConfigError("--ss with --motif is not supported: condition on one or the other")
        if config.lengths != (len(codes),):
            raise ConfigError(
                f"--ss gives the length ({len(codes)} residues); drop --length/--lengths "
                f"(asked {','.join(map(str, config.lengths))})"
            )
        if not 3 <= len(codes) <= MAX_LENGTH:
            raise ConfigError(f"--ss: {len(codes)} residues is outside 3..{MAX_LENGTH}")
    if not 1 <= config.min_length <= config.max_length:
        raise ConfigError(
            f"need 1 ≤ --min-length ≤ --max-length, got {config.min_length} and {config.max_length}"
        )


def default_rot_rate(trained: TrainedModel) -> float | None:
    """The rotation schedule (``SimulationConfig.rot_rate``) used when the user names none: the
    rate stored with the weights (``Serving.rot_rate``, chosen for that model on the short-chain
    panel; 0 = the learned rate) where there is one; else c = 5 for fixed-length and motif models
    (chosen on secondary structure, README's model card) and the learned rate (None) where the
    length emerges, since the gap head reads the state — the schedule moves the state off the path
    the model learned and biases the emerging lengths (README: variable length)."""
    serving = trained.checkpoint.serving
    if serving is not None and serving.rot_rate is not None:
        return serving.rot_rate or None
    return None if trained.process.emerging_length else SimulationConfig().rot_rate


def parse_lengths(text: str) -> tuple[int, ...]:
    """'100', '60,80,120' or 'start:stop:step' (stop included) → lengths."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop, step = (parts + [1])[:3] if len(parts) == 2 else parts
            if step <= 0:
                raise ValueError
            lengths = tuple(range(start, stop + 1, step))
        else:
            lengths = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read lengths {text!r}: use 100, 60,80,120 or start:stop:step (e.g. 60:200:20)"
        ) from None
    if not lengths:
        raise ConfigError(f"lengths {text!r} select no length")
    for n in lengths:
        if n < 3 or n > MAX_LENGTH:
            raise ConfigError(f"length {n} is outside 3..{MAX_LENGTH} residues")
    return lengths


def sample_seed(seed: int, length: int, index: int) -> int:
    return (
        int.from_bytes(hashlib.sha256(f"{seed}:{length}:{index}".encode()).digest()[:8], "big") >> 1
    )
