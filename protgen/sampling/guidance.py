"""Clash guidance: an optional nudge of the learned velocity, late in the path, away from x̂_1
backbones whose CA atoms overlap or whose CA–CA(next) distances leave 3.8 Å.

The penalty on x̂_1's CA positions q (Å) is

    P(q) = Σ_{|i−j|≥2} relu(r_0 − ‖q_i − q_j‖)² + Σ_i (‖q_{i+1} − q_i‖ − 3.8)²,   r_0 = 4 Å,

with i, j residue numbers (the second sum over residues followed by the next number: a chain
break is not a bond).

and for t ≥ t_start the translational velocity becomes v − η ∇P(q)/(1 − t): the velocity that
reaches x̂_1 − η∇P instead of x̂_1. P is invariant under rigid motions, so the nudge is
equivariant. This changes the sampled law (it is not part of the learned generator): it is off
by default and measured in the README before and after.
"""

from dataclasses import dataclass

import torch

from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity

__all__ = ["clash_penalty", "ClashGuidance"]

CLASH_RADIUS = 4.0  # Å; CA atoms of residues two or more apart closer than this overlap
CA_CA = 3.8  # Å; consecutive CA atoms of a trans peptide


def clash_penalty(
    ca: torch.Tensor, mask: torch.Tensor, index: torch.Tensor | None = None
) -> torch.Tensor:
    """P of every chain: ca Å (B, N, 3), mask (B, N), index (B, N) residue numbers
    (None: consecutive) → (B,). Sequence separations and CA–CA(next) bonds are read from the residue
    numbers: residues on either side of a chain break (a jump in the numbering) are not bonded."""
    d = torch.cdist(ca, ca, compute_mode="donot_use_mm_for_euclid_dist")
    if index is None:
        index = torch.arange(ca.shape[1], device=ca.device).expand(ca.shape[:2])
    offset = (index[:, None, :] - index[:, :, None]).abs()
    pairs = (offset >= 2) & mask[:, :, None] & mask[:, None, :]
    overlap = (torch.relu(CLASH_RADIUS - d) ** 2 * pairs).sum((-1, -2)) / 2
    bonds = (ca[:, 1:] - ca[:, :-1]).norm(dim=-1) - CA_CA
    bonded = mask[:, 1:] & mask[:, :-1] & (index[:, 1:] == index[:, :-1] + 1)
    return overlap + (bonds**2 * bonded).sum(-1)


@dataclass
class ClashGuidance:
    """Wraps a predictor that keeps its last x̂_1 CA positions (``SelfConditioned``) and nudges
    the velocity it returns. strength: η, Å² per unit penalty; t_start: where guidance begins."""

    predict: object
    strength: float = 0.1
    t_start: float = 0.6

    def __call__(self, t: torch.Tensor, x_t: WorldState) -> FrameVelocity:
        velocity = self.predict(t, x_t)
        if self.strength <= 0 or float(t[0]) < self.t_start:
            return velocity
        with torch.enable_grad():
            q = self.predict.x1_hat.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(clash_penalty(q, x_t.mask, x_t.index).sum(), q)
        nudge = (
            self.strength * grad * x_t.generated[..., None].to(grad.dtype) / (1 - t)[:, None, None]
        )
        return FrameVelocity(velocity.omega, velocity.v - nudge, velocity.gap_counts)
