"""Simulating a generator on the world state: Euler steps from the prior at t_0 to t = 1."""

from dataclasses import dataclass
from typing import Callable

import torch

from protgen.method.generator import FrameVelocity, euler_step
from protgen.geometry.world import WorldState

__all__ = ["SimulationConfig", "simulate"]


@dataclass(frozen=True)
class SimulationConfig:
    """How the learned generator is simulated."""

    steps: int = 100  # Euler steps on the uniform grid t_0 → 1 (t_0: the process's t_min)
    # FrameFlow's trick: ω ← c·(1 − t)·ω̂ (rotations settle early); None = exact ω̂. c = 5 came closest
    # to real chains' helix/strand fractions among the rates that keep CA–CA(next) ≥ 97 % in range
    # and Ramachandran ≥ 95 % allowed (scripts/choose_rot_rate.py, README's model card). A residue
    # inserted at τ (Process 3) runs the same schedule on its own clock (t − τ)/(1 − τ).
    rot_rate: float | None = 5.0


def _rotation_scale(c: float, t: torch.Tensor, dt: float, birth: torch.Tensor | None) -> torch.Tensor:
    """The factor on ω̂ = log(R_tᵀR̂_1)/(1 − t) of the rotation schedule: c·(1 − t), so rotations close
    the fraction c·dt of their remaining geodesic per step, capped at 1 (a step never passes x̂_1).
    A residue born at τ (Process 3) runs it on its own clock s = (t − τ)/(1 − τ) — c·(1 − t)/(1 − τ)
    — so a late residue settles as fully as the seed does (exp(−c) of its birth rotation left).
    birth: (B, N) or None → a scalar or (B, N, 1)."""
    cap = (1 - t) / dt
    if birth is None:
        return torch.minimum(c * (1 - t), cap)
    return torch.minimum(c * (1 - t) / (1 - birth).clamp_min(1e-6), cap)[..., None]


def simulate(
    predict: Callable[[torch.Tensor, WorldState], FrameVelocity],
    x_0: WorldState,
    t_0: float,
    config: SimulationConfig = SimulationConfig(),
    trajectory: bool = False,
    on_step: Callable[[], None] | None = None,
    jump: Callable[[WorldState, torch.Tensor, float, float], WorldState] | None = None,
) -> tuple[WorldState, list[WorldState]]:
    """Integrate dX = F_t(X) dt with ``predict(t, x_t)`` → FrameVelocity from X_{t_0} = x_0.

    t_0: the first time, the latent process's t_min (the network is trained on t ≥ t_min).
    Returns the state at t = 1 and, if asked, the states at every grid time (t_0 first). Each
    step reads the mask and numbering from the state, so a step may change the residues.
    ``on_step()`` is called after every step (progress). ``jump(x, gap_counts, t, dt)``, for a
    generator with a jump part (Process 3), applies that part after each flow step: Euler for the
    flow, Poisson draws for the insertions.
    """
    ts = torch.linspace(t_0, 1.0, config.steps + 1, dtype=x_0.frames.trans.dtype, device=x_0.mask.device)
    x, path = x_0, [x_0] if trajectory else []
    for k in range(config.steps):
        t, dt = ts[k], float(ts[k + 1] - ts[k])
        velocity = predict(t.expand(x.mask.shape[0]), x)
        if config.rot_rate is not None:
            velocity = FrameVelocity(_rotation_scale(config.rot_rate, t, dt, x.birth) * velocity.omega, velocity.v, velocity.gap_counts)
        x = euler_step(x, velocity, dt)
        if jump is not None and velocity.gap_counts is not None:
            x = jump(x, velocity.gap_counts, float(t), dt)
        if trajectory:
            path.append(x)
        if on_step is not None:
            on_step()
    return x, path
