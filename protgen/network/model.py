"""The learned generator F_t^θ: the network's x̂_1 displacement turned into world-frame velocities.

This module and the network know nothing of latent processes or losses: they see (t, x_t) and
return a :class:`Prediction`. Which process a model was trained for is the checkpoint's business.
"""

from dataclasses import dataclass

import torch
from torch import nn

from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity, Prediction, displacement_to_velocity
from protgen.network.ipa import FrameNetwork, NetworkConfig

__all__ = ["GeneratorModel", "SelfConditioned"]


class GeneratorModel(nn.Module):
    """F_t^θ(x): the network's output mapped to a FrameVelocity by the x̂_1 parametrisation
    (protgen.method.generator.displacement_to_velocity), exact for every frame process."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.network = FrameNetwork(config)

    def forward(
        self, t: torch.Tensor, x_t: WorldState, self_cond: Rigid | torch.Tensor | None = None
    ) -> Prediction:
        """t: (B,); x_t: world state; self_cond: the previous x̂_1, frames (Å) or CA positions
        (Å, (B, N, 3))."""
        out = self.network(t, x_t, self_cond)
        velocity = displacement_to_velocity(x_t.frames, out.rotvec, out.trans, t)
        return Prediction(FrameVelocity(velocity.omega, velocity.v, out.gap_counts), out.x1_hat)


@dataclass
class SelfConditioned:
    """``predict(t, x_t)`` for the sampler: calls the model with the previous step's x̂_1 (when the
    network takes it and ``enabled``) and keeps the new one. The residues come from each x_t, so
    they may change between steps; when any chain's residues change (an insertion), the previous
    x̂_1 no longer lines up with them and self-conditioning restarts."""

    model: GeneratorModel
    enabled: bool = True
    # the last x̂_1's CA positions, Å, (B, N, 3) (clash guidance reads them)
    x1_hat: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    x1_frames: Rigid | None = None  # the last x̂_1, fed back to the network

    def __call__(self, t: torch.Tensor, x_t: WorldState) -> FrameVelocity:
        # x̂_1 lines up with x_t while the residues stay the same (torch.equal: False on a new shape)
        use = (
            self.enabled
            and self.model.config.self_condition
            and self.mask is not None
            and torch.equal(self.mask, x_t.mask)
        )
        prediction = self.model(t, x_t, self.x1_frames if use else None)
        self.x1_frames, self.x1_hat, self.mask = (
            prediction.x1_hat,
            prediction.x1_hat.trans,
            x_t.mask,
        )
        return prediction.velocity
