"""Bregman divergences and the conditional generator matching loss of LPGM.

L_cgm(θ) = E_{t, Y_t} w(t)·D(F_t^{Y_t}(Φ(Y_t)), F_t^θ(t, Φ(Y_t))). For velocities D is the
squared error (rotations in rad², translations in nm); for rates it is the Poisson divergence.
Both have the conditional expectation as minimiser, which makes the loss exact (protgen/THEORY.md).
The divergence is chosen by the type of the generator parameter, so any latent process whose
targets are FrameVelocity (or plain tensors, for toy processes) goes through the same pipeline.
"""

from dataclasses import dataclass, fields, replace

import torch

from protgen.geometry.backbone import IDEAL_C, IDEAL_N
from protgen.geometry.rigid import Rigid
from protgen.geometry.units import ANGSTROM_PER_NM
from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity

__all__ = [
    "LossConfig",
    "LossTerms",
    "TERM_NAMES",
    "time_weight",
    "squared_divergence",
    "poisson_divergence",
    "frame_velocity_loss",
    "gap_count_loss",
    "training_times",
    "backbone_aux_loss",
    "generator_matching_loss",
]


@dataclass(frozen=True)
class LossConfig:
    """Weights of the conditional generator matching loss (stored in checkpoints)."""

    # w(t) = min(1, (1 − t)²/(1 − weight_clip)²), FrameFlow's clipped 1/(1 − t)
    weight_clip: float = 0.9
    rot_weight: float = 0.5  # weight of the rotational term (rad²)
    trans_weight: float = 1.0  # weight of the translational term (nm²)
    # weight of FrameFlow's auxiliary backbone-atom and pair-distance losses on x̂_1 (nm²); not a
    # Bregman divergence of the generator: biases the marginal (protgen/THEORY.md); 0 = off
    aux_weight: float = 0.0
    # the auxiliary losses apply only for t > aux_t_min, where the bias is small
    aux_t_min: float = 0.75
    # weight of the Poisson divergence of insertion counts per gap (Process 3)
    rate_weight: float = 1.0
    # law of the training times on [t_min, t_max]: "uniform", or "mid" (half of them from Beta(3,
    # 3): more of the batch where x̂_1 is neither settled nor pure noise); the minimiser at every t
    # is unchanged (protgen/THEORY.md §6)
    time_density: str = "uniform"

    def __post_init__(self):
        if self.time_density not in TIME_DENSITIES:
            raise ValueError(
                f"time_density {self.time_density!r}: choose one of {', '.join(TIME_DENSITIES)}"
            )


TIME_DENSITIES = ("uniform", "mid")


@dataclass(frozen=True)
class LossTerms:
    """total: the weighted scalar to minimise; then each component's w(t)-weighted mean divergence
    (before its term weight), detached, for reporting — None where the loss has no such term."""

    total: torch.Tensor
    rot: torch.Tensor | None = None  # rotations, rad² per unit time²
    trans: torch.Tensor | None = None  # translations, nm² per unit time²
    rate: torch.Tensor | None = None  # Poisson divergence of the gap counts (Process 3)
    aux_atom: torch.Tensor | None = None  # auxiliary backbone-atom loss, nm²
    aux_pair: torch.Tensor | None = None  # auxiliary pair-distance loss, nm²
    flow: torch.Tensor | None = None  # a toy's plain velocity

    @property
    def terms(self) -> dict[str, torch.Tensor]:
        """The components present, by name (metrics.csv's columns), in TERM_NAMES order."""
        return {name: getattr(self, name) for name in TERM_NAMES if getattr(self, name) is not None}


TERM_NAMES = tuple(f.name for f in fields(LossTerms) if f.name != "total")


def squared_divergence(target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """Bregman divergence of ½‖·‖² times 2: ‖a − b‖² over the last axis. (..., D) → (...)."""
    return ((target - prediction) ** 2).sum(-1)


def poisson_divergence(
    target: torch.Tensor, prediction: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """Generalised KL a·log(a/b) − a + b of rates a (target) ≥ 0, b (prediction) > 0, each."""
    a, b = target, prediction.clamp_min(eps)
    return torch.xlogy(a, a) - a * torch.log(b) - a + b


def training_times(
    process, batch: int, density: str, rng: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Training times (batch,) on the process's [t_min, t_max]. "uniform": the process's own law.
    "mid": each time is, with probability ½, the median of five of the process's uniform draws —
    t_min + (t_max − t_min)·Beta(3, 3), mean ½, sd 0.19 of the interval — and otherwise a uniform
    draw, so density 0.5 + 0.5·30 u²(1 − u)² in the interval's coordinate u. Every t keeps a
    positive density, so the loss's minimiser E[F | x_t, t] is the same at each t; only the share
    of the batch (capacity, gradient noise) moves towards mid t."""
    t = process.sample_time(batch, rng, device)
    if density == "uniform":
        return t
    five = torch.stack([process.sample_time(batch, rng, device) for _ in range(5)]).median(0).values
    take = torch.rand(batch, generator=rng, device=device) < 0.5
    return torch.where(take, five, t)


def time_weight(t: torch.Tensor, clip: float) -> torch.Tensor:
    """Positive time weight (1 − t)²/max(1 − t, 1 − clip)²: 1 up to t = clip, then → 0. t: (B,).

    On velocities of the x̂_1 parametrisation this is FrameFlow's loss ‖x̂_1 − x_1‖²/(1 − t)²
    with 1/(1 − t) clipped at t = clip.
    """
    one_minus = 1 - t
    return (one_minus / one_minus.clamp_min(1 - clip)) ** 2


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real residues of each item. x, mask: (B, N) → (B,)."""
    m = mask.to(x.dtype)
    return (x * m).sum(-1) / m.sum(-1).clamp_min(1)


def frame_velocity_loss(
    target: FrameVelocity,
    prediction: FrameVelocity,
    t: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig = LossConfig(),
) -> LossTerms:
    """w(t)-weighted squared velocity errors, averaged over real residues, then over the batch.

    omega in rad per unit time; v in Å per unit time, scored in nm; t: (B,); mask: (B, N).
    """
    w = time_weight(t, config.weight_clip)
    rot = (w * _masked_mean(squared_divergence(target.omega, prediction.omega), mask)).mean()
    trans = (
        w
        * _masked_mean(
            squared_divergence(target.v / ANGSTROM_PER_NM, prediction.v / ANGSTROM_PER_NM), mask
        )
    ).mean()
    return LossTerms(
        config.rot_weight * rot + config.trans_weight * trans,
        rot=rot.detach(),
        trans=trans.detach(),
    )


def backbone_aux_loss(
    x1_hat: Rigid,
    x_1: Rigid,
    t: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig = LossConfig(),
    real: torch.Tensor | None = None,
) -> LossTerms:
    """FrameFlow's auxiliary losses on the estimate x̂_1, for t > aux_t_min only: squared error of
    the N, CA, C atoms, and of backbone-atom pair distances below 6 Å in x_1 — in nm and divided
    by max(1 − t, 1 − weight_clip) like the velocities, so they are on the scale of the flow loss.

    Not a Bregman divergence of the generator: its minimiser is E[a(X_1) | x_t] for non-affine a,
    so it biases the learned generator (protgen/THEORY.md §8).
    x1_hat, x_1: Rigid (B, N), Å; t: (B,); mask: (B, N) bool, the generated residues (the atom
    term); real: (B, N) bool, every residue present (default: mask). The pair term counts every
    pair of real residues with at least one generated, so a scaffold is scored against the motif
    it must join (fixed residues' x̂_1 is their given frame, the data).
    """
    local = torch.tensor(
        [IDEAL_N, (0.0, 0.0, 0.0), IDEAL_C], dtype=x_1.trans.dtype, device=mask.device
    )

    def atoms(frames: Rigid) -> torch.Tensor:  # (B, 3N, 3) in nm
        return (
            Rigid(frames.rots[..., None, :, :], frames.trans[..., None, :])
            .apply(local)
            .flatten(-3, -2)
            / ANGSTROM_PER_NM
        )

    pred, true = atoms(x1_hat), atoms(x_1)
    atom_mask = mask.repeat_interleave(3, -1)
    on = (t > config.aux_t_min).to(true.dtype) / (1 - t).clamp_min(1 - config.weight_clip) ** 2
    atom = on * _masked_mean(squared_divergence(true, pred), atom_mask)
    d_true, d_pred = torch.cdist(true, true), torch.cdist(pred, pred)
    present = atom_mask if real is None else real.repeat_interleave(3, -1)
    pairs = (
        present[:, :, None] & present[:, None, :] & (atom_mask[:, :, None] | atom_mask[:, None, :])
    )
    near = (d_true < 0.6) & pairs
    near = near & ~torch.eye(near.shape[-1], dtype=torch.bool, device=near.device)
    pair = on * ((d_true - d_pred) ** 2 * near).sum((-1, -2)) / near.sum((-1, -2)).clamp_min(1)
    return LossTerms(
        atom.mean() + pair.mean(),
        aux_atom=atom.mean().detach(),
        aux_pair=pair.mean().detach(),
    )


def gap_count_loss(
    target: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Poisson divergence of expected hidden residues per gap, averaged over each chain's n + 1
    real gaps, then over the batch. target, prediction: (B, G); mask: (B, N) of the visible
    residues (gap g is real for g ≤ n)."""
    gaps = torch.arange(target.shape[-1], device=mask.device)[None] <= mask.sum(-1, keepdim=True)
    d = poisson_divergence(target, prediction) * gaps
    return (d.sum(-1) / gaps.sum(-1).clamp_min(1)).mean()


def _divergence(target, prediction, t: torch.Tensor, mask, config: LossConfig) -> LossTerms:
    """The Bregman divergence that fits the generator parameter's type."""
    if isinstance(target, FrameVelocity):
        flow = frame_velocity_loss(target, prediction, t, mask, config)
        if target.gap_counts is None or prediction.gap_counts is None:
            return flow
        rate = gap_count_loss(target.gap_counts, prediction.gap_counts, mask)
        return replace(flow, total=flow.total + config.rate_weight * rate, rate=rate.detach())
    # a plain velocity (toys)
    d = (time_weight(t, config.weight_clip) * squared_divergence(target, prediction)).mean()
    return LossTerms(d, flow=d.detach())


def generator_matching_loss(
    process,
    predict,
    x_1,
    rng: torch.Generator | None = None,
    t: torch.Tensor | None = None,
    config: LossConfig = LossConfig(),
) -> LossTerms:
    """One Monte-Carlo estimate of L_cgm on a batch of data x_1 (a WorldState, or a toy's tensor).

    ``process``: any latent process (sample_time, sample_path, phi, target).
    ``predict(t, x_t)`` → :class:`Prediction`: the model's generator parameter; it receives only
    the time and the world state Φ(Y_t), never the latent, by construction. ``t`` (B,) fixes the
    times (validation); by default they are drawn from the process's time law. With
    config.aux_weight > 0 the biased auxiliary term on x̂_1 is added. Training and validation
    both call this function.
    """
    batch = x_1.mask.shape[0] if isinstance(x_1, WorldState) else x_1.shape[0]
    device = x_1.mask.device if isinstance(x_1, WorldState) else x_1.device
    if t is None:
        t = training_times(process, batch, config.time_density, rng, device)
    path = process.sample_path(x_1, t, rng)
    x_t = process.phi(path.y_t)
    prediction = predict(t, x_t)
    # fixed (motif) residues are given, not learned
    mask = x_t.generated if isinstance(x_t, WorldState) else None
    loss = _divergence(process.target(path), prediction.velocity, t, mask, config)
    if config.aux_weight > 0 and prediction.x1_hat is not None:
        # the data frames of the residues in x_t (Process 3 shows only the inserted ones)
        clean = process.clean_frames(path, x_1)
        extra = backbone_aux_loss(prediction.x1_hat, clean, t, mask, config, real=x_t.mask)
        loss = replace(
            loss,
            total=loss.total + config.aux_weight * extra.total,
            aux_atom=extra.aux_atom,
            aux_pair=extra.aux_pair,
        )
    return loss
