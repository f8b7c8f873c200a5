"""Simulating a generator on the world state: Euler steps from the prior at t_min to t = 1."""

from dataclasses import dataclass
from typing import Callable

import torch

from protgen.generator import FrameVelocity, euler_step
from protgen.rigid import Rigid

__all__ = ["SamplerConfig", "simulate"]


@dataclass(frozen=True)
class SamplerConfig:
    """How the learned generator is simulated."""

    steps: int = 100  # Euler steps on the uniform grid t_min → 1
    t_min: float = 0.01  # first time (the network is trained on t ≥ t_min)
    rot_rate: float | None = 10.0  # FrameFlow's trick: ω ← c·(1 − t)·ω̂ (rotations settle early); None = exact ω̂


def simulate(
    predict: Callable[[torch.Tensor, Rigid], FrameVelocity],
    x_0: Rigid,
    mask: torch.Tensor,
    config: SamplerConfig = SamplerConfig(),
    trajectory: bool = False,
) -> tuple[Rigid, list[Rigid]]:
    """Integrate dX = F_t(X) dt with ``predict(t, x_t)`` → FrameVelocity.

    x_0: Rigid (B, N) prior draw; mask: (B, N) bool. Returns the frames at t = 1 and, if asked,
    the states at every grid time (t_min first).
    """
    ts = torch.linspace(config.t_min, 1.0, config.steps + 1, dtype=x_0.trans.dtype, device=x_0.trans.device)
    x, path = x_0, [x_0] if trajectory else []
    for k in range(config.steps):
        t, dt = ts[k], float(ts[k + 1] - ts[k])
        velocity = predict(t.expand(mask.shape[0]), x)
        if config.rot_rate is not None:
            velocity = FrameVelocity(config.rot_rate * (1 - t) * velocity.omega, velocity.v, velocity.insertion_rate)
        x = euler_step(x, velocity, dt, mask)
        if trajectory:
            path.append(x)
    return x, path
