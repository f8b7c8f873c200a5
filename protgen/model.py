"""The learned generator: the network's x̂_1 displacement turned into world-frame velocities."""

from dataclasses import dataclass, field

import torch
from torch import nn

from protgen.generator import FrameVelocity, Prediction, displacement_to_velocity
from protgen.network import PRESETS, FrameNetwork, NetworkConfig
from protgen.process import ProcessConfig, make_process
from protgen.rigid import Rigid

__all__ = ["ModelConfig", "GeneratorModel"]


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes and latent process: what a checkpoint needs to rebuild the model."""

    network: NetworkConfig = field(default_factory=lambda: PRESETS["small"])
    process: ProcessConfig = field(default_factory=ProcessConfig)


class GeneratorModel(nn.Module):
    """F_t^θ(x): the network's output mapped to a FrameVelocity by the x̂_1 parametrisation
    (protgen.generator.displacement_to_velocity), exact for both processes."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.network = FrameNetwork(config.network)
        self.process = make_process(config.process)

    def forward(self, t: torch.Tensor, x_t: Rigid, mask: torch.Tensor, self_cond: torch.Tensor | None = None) -> Prediction:
        out = self.network(t, x_t, mask, self_cond)
        return Prediction(displacement_to_velocity(x_t, out.rotvec, out.trans, t), out.x1_hat)

    def predictor(self, mask: torch.Tensor, self_condition: bool):
        """``predict(t, x_t)`` for the sampler; carries x̂_1 from step to step when self-conditioning."""
        state = {"x1": None}

        def predict(t: torch.Tensor, x_t: Rigid) -> FrameVelocity:
            prediction = self(t, x_t, mask, state["x1"] if self_condition else None)
            state["x1"] = prediction.x1_hat.trans
            return prediction.velocity

        return predict
