"""The learned generator F_t^θ: the network's x̂_1 displacement turned into world-frame velocities.

This module and the network know nothing of latent processes or losses: they see (t, x_t) and
return a :class:`Prediction`. Which process a model was trained for is the checkpoint's business.
"""

import torch
from torch import nn

from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity, Prediction, displacement_to_velocity
from protgen.network.config import NetworkConfig
from protgen.network.frame_network import FrameNetwork

__all__ = ["GeneratorModel"]


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
