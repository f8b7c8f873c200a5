"""The IPA network's configuration: its sizes and capabilities (stored in checkpoints) and the
size presets."""

from dataclasses import dataclass

__all__ = ["NetworkConfig", "PRESETS", "PRESET_PARAMETERS"]


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the IPA network (stored in checkpoints)."""

    node_dim: int = 128  # c_s, per-residue features
    pair_dim: int = 32  # c_z, per-pair features
    blocks: int = 4  # IPA blocks, each followed by a frame update
    heads: int = 4  # attention heads
    head_dim: int = 16  # scalar query/key/value width per head
    query_points: int = 4  # 3-D query/key points per head
    value_points: int = 8  # 3-D value points per head
    rbf: int = 16  # radial basis functions for CA–CA distances, 0–20 Å
    max_offset: int = 32  # relative sequence offsets are clipped to ±max_offset
    pair_update: bool = True  # light per-block pair update (two linear layers over c_z)
    node_layers: int = 1  # transformer layers over the sequence per block (FrameFlow-style)
    # accept the previous x̂_1 as input (its CA distances, as pair features)
    self_condition: bool = True
    # also x̂_1's relative rotations and directions (pair features; a zero-initialised read-in, so a
    # fine-tune from a model without it starts equal to that model)
    self_condition_frames: bool = False
    # conditional on fixed (motif) residues: a learned embedding of the fixed flag
    motif: bool = False
    # 0: every residue pair (dense); k > 0: each residue's k nearest residues by CA distance
    # (sparse, long chains)
    neighbours: int = 0
    # sparse only: residues within this many positions along the chain are always among the k (early
    # in the path x_t is mostly noise, and its nearest residues in space need not include the
    # chain's)
    chain_neighbours: int = 8
    # Process 3: a head for the expected hidden residues in every gap and chain end
    insertion: bool = False
    # residue position feature: "ends" (distances to both chain ends, clipped at max_offset: the
    # same at every length) or "absolute" (sinusoid of the index; protgen 0.1 models)
    position: str = "ends"
    # Process 3: the insertion end T of the process; > 0: the gap head reads the insertion clock
    # κ(t) = min(1, t/T) directly (zero-initialised), so the counts can follow time where the
    # trunk's features barely change (the first steps); 0: it does not (protgen 0.2's insertion
    # models)
    insertion_end: float = 0.0
    # Process 3: each residue's own clock (t − τ)/(1 − τ) and age t − τ since its insertion time τ
    # (WorldState.birth) as node features (zero-initialised), so newborn residues are recognisable
    birth_clock: bool = False
    # conditional on a per-residue secondary structure (WorldState.ss: unknown, helix, strand,
    # loop): a learned embedding of the state, zero-initialised, so a fine-tune from an
    # unconditional model starts equal to it; "unknown" everywhere is the unconditional mode
    ss_condition: bool = False


PRESETS = {
    "tiny": NetworkConfig(
        node_dim=32,
        pair_dim=16,
        blocks=2,
        heads=2,
        head_dim=8,
        query_points=2,
        value_points=4,
        rbf=8,
        max_offset=16,
        node_layers=0,
    ),
    "small": NetworkConfig(),
    "base": NetworkConfig(
        node_dim=256,
        pair_dim=128,
        blocks=6,
        heads=8,
        head_dim=24,
        query_points=8,
        value_points=12,
        rbf=32,
        node_layers=3,
    ),
}
# Parameter counts of the presets, for --help without building networks (a test keeps them true).
PRESET_PARAMETERS = {"tiny": 22_435, "small": 1_104_843, "base": 15_263_255}
