"""Generators on the world state (residue frames): their parameters and one Euler step.

The parameter of a flow generator on SE(3)^N is a velocity per residue: a body angular velocity
ω (Ṙ = R·hat(ω)) and a world translational velocity v (ṗ = v). Process 3 adds a jump part: per gap
between visible residues (and at each chain end) the expected number of residues still hidden
there; times the process's insertion hazard h(t) it is the insertion rate (protgen/THEORY.md §10).
"""

from dataclasses import dataclass

import torch

from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState

__all__ = ["FrameVelocity", "Prediction", "euler_step", "displacement_to_velocity"]


@dataclass(frozen=True)
class FrameVelocity:
    """Generator parameter of a flow on frames.

    omega: body angular velocity, rad per unit time, (B, N, 3);
    v: world translational velocity, Å per unit time, (B, N, 3);
    gap_counts: expected hidden residues per gap, (B, N + 1) — gap g lies before residue g, gap N
    after the last — or None (no jumps). The insertion rate of a gap is h(t)·gap_counts.
    """

    omega: torch.Tensor
    v: torch.Tensor
    gap_counts: torch.Tensor | None = None


@dataclass(frozen=True)
class Prediction:
    """What a model predicts at (t, x_t): its generator parameter and, for models parametrised by
    the clean state, that estimate x̂_1 (Rigid (B, N), Å), used by auxiliary losses and
    self-conditioning."""

    velocity: FrameVelocity
    x1_hat: Rigid | None = None


def displacement_to_velocity(
    x_t: Rigid, rotvec: torch.Tensor, trans: torch.Tensor, t: torch.Tensor
) -> FrameVelocity:
    """Velocity that reaches x_t ∘ (exp(rotvec), trans) at t = 1 in a straight line and geodesic.

    This is the x̂_1 parametrisation: ω = rotvec/(1 − t), v = R_t·trans/(1 − t). rotvec: rad,
    (B, N, 3) body; trans: Å, (B, N, 3) in the local frame; t: (B,). Since rotvec and trans range
    over all of R³, every velocity field is representable: the parametrisation is exact.
    """
    scale = 1.0 / (1.0 - t)[:, None, None]
    return FrameVelocity(rotvec * scale, (x_t.rots @ trans[..., None])[..., 0] * scale)


def euler_step(x: WorldState, velocity: FrameVelocity, dt: float) -> WorldState:
    """R ← R·exp(dt·ω), p ← p + dt·v on generated residues; padded and fixed ones stay put."""
    m = x.generated[..., None].to(x.frames.trans.dtype)
    rots = x.frames.rots @ so3.exp(dt * velocity.omega * m)
    return x.with_frames(Rigid(rots, x.frames.trans + dt * velocity.v * m))
