"""Bregman divergences and the conditional generator matching loss of LPGM.

L_cgm(θ) = E_{t, Y_t} w(t)·D(F_t^{Y_t}(Φ(Y_t)), F_t^θ(t, Φ(Y_t))). For velocities D is the
squared error (rotations in rad², translations in nm); for rates it is the Poisson divergence.
Both have the conditional expectation as minimiser, which makes the loss exact (THEORY.md).
"""

from dataclasses import dataclass

import torch

from protgen.generator import FrameVelocity

__all__ = ["time_weight", "LossTerms", "squared_divergence", "poisson_divergence", "frame_velocity_loss", "generator_matching_loss"]

ANGSTROM_PER_NM = 10.0


@dataclass(frozen=True)
class LossTerms:
    """total: the weighted scalar to minimise; terms: each generator component's w(t)-weighted
    mean divergence (before its term weight), detached, for reporting."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


def squared_divergence(target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """Bregman divergence of ½‖·‖² times 2: ‖a − b‖² over the last axis. (..., D) → (...)."""
    return ((target - prediction) ** 2).sum(-1)


def poisson_divergence(target: torch.Tensor, prediction: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Generalised KL a·log(a/b) − a + b for rates a (target) ≥ 0, b (prediction) > 0, elementwise."""
    a, b = target, prediction.clamp_min(eps)
    return torch.xlogy(a, a) - a * torch.log(b) - a + b


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
    rot_weight: float = 0.5,
    trans_weight: float = 1.0,
    weight_clip: float = 0.9,
) -> LossTerms:
    """w(t)-weighted squared velocity errors, averaged over real residues, then over the batch.

    omega in rad per unit time; v in Å per unit time, scored in nm; t: (B,); mask: (B, N).
    """
    w = time_weight(t, weight_clip)
    rot = (w * _masked_mean(squared_divergence(target.omega, prediction.omega), mask)).mean()
    trans = (w * _masked_mean(squared_divergence(target.v / ANGSTROM_PER_NM, prediction.v / ANGSTROM_PER_NM), mask)).mean()
    return LossTerms(rot_weight * rot + trans_weight * trans, {"rot": rot.detach(), "trans": trans.detach()})


def generator_matching_loss(process, predict, x_1, mask: torch.Tensor, generator=None) -> LossTerms:
    """One Monte-Carlo estimate of L_cgm on a batch of data x_1 (e.g. world frames, Rigid (B, N)).

    ``process`` is any latent process (sample_time, sample_path, phi, target, loss).
    ``predict(t, x_t)`` is the model's generator parameter; it receives only the time and the
    world state Φ(Y_t), never the latent, by construction.
    """
    t = process.sample_time(mask.shape[0], generator, mask.device)
    path = process.sample_path(x_1, mask, t, generator)
    x_t = process.phi(path.y_t)
    return process.loss(process.target(path), predict(t, x_t), t, mask)
