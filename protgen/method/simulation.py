"""Simulating a generator on the world state: Euler steps from the prior at t_0 (the process's
start time) to t = 1."""

from dataclasses import dataclass
from typing import Callable

import torch

from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity, euler_step

__all__ = ["SimulationConfig", "simulate"]


@dataclass(frozen=True)
class SimulationConfig:
    """How the learned generator is simulated."""

    # Euler steps on the uniform grid t_0 → 1 (t_0: the process's start_time — t_min for Processes 1
    # and 2, 0 for Process 3)
    steps: int = 100
    # FrameFlow's trick: ω ← c·(1 − t)·ω̂ (rotations settle early); None = exact ω̂. c = 5 came
    # closest to real chains' helix/strand fractions among the rates that keep CA–CA(next) ≥ 97 % in
    # range and Ramachandran ≥ 95 % allowed (scripts/choose_sampler.py, README's model card). A
    # residue inserted at τ (Process 3) runs the same schedule on its own clock (t − τ)/(1 − τ).
    rot_rate: float | None = 5.0
    # Stochastic translations (Process 1): Euler–Maruyama for dp = [v̂ + ½g²∇log p_t] dt + η g dW
    # with g(t)² = 2κ(1 − t)²σ², the score read off x̂_1 as for a Gaussian path,
    # −(p − t p̂_1)/((1 − t)σ)². κ = 0: the ODE. η = 1 keeps the marginals (exactly for the
    # independent coupling; the Kabsch coupling's path is not Gaussian given x_1, so there it is an
    # approximation); η < 1 lowers the temperature (FrameDiff's, Genie 2's noise scale).
    langevin: float = 0.0  # κ, per unit time
    noise_scale: float = 1.0  # η


def _langevin_step(
    x: WorldState,
    velocity: FrameVelocity,
    t: torch.Tensor,
    dt: float,
    config: SimulationConfig,
    sigma: float,
    rngs: list[torch.Generator],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The score drift (B, N, 3) and the noise increment (B, N, 3) of one step, in Å per unit time
    and Å. The score drift ½g²∇log p_t = −κ(p − t p̂_1) with p̂_1 = p + (1 − t)v̂ stays bounded as
    t → 1 (κ·dt ≤ 1 keeps the step stable). Noise is drawn per sample from its own generator (a
    sample does not depend on its batch), on generated residues only, centred as the prior is."""
    p = x.frames.trans
    p_hat = p + (1 - t) * velocity.v
    drift = -config.langevin * (p - t * p_hat)
    m = x.generated[..., None].to(p.dtype)
    xi = (
        torch.stack([torch.randn(p.shape[1:], generator=g, dtype=p.dtype) for g in rngs]).to(
            p.device
        )
        * m
    )
    xi = (xi - xi.sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1)) * m
    g = (2 * config.langevin) ** 0.5 * (1 - t) * sigma
    return drift, config.noise_scale * g * dt**0.5 * xi


def _rotation_scale(
    c: float, t: torch.Tensor, dt: float, birth: torch.Tensor | None
) -> torch.Tensor:
    """The factor on ω̂ = log(R_tᵀR̂_1)/(1 − t) of the rotation schedule: c·(1 − t), so rotations
    close the fraction c·dt of their remaining geodesic per step, capped at 1 (a step never passes
    x̂_1). A residue born at τ (Process 3) runs it on its own clock s = (t − τ)/(1 − τ) —
    c·(1 − t)/(1 − τ) — so a late residue settles as fully as the seed does (exp(−c) of its birth
    rotation left). birth: (B, N) or None → a scalar or (B, N, 1)."""
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
    sigma: float = 10.0,
    rngs: list[torch.Generator] | None = None,
) -> tuple[WorldState, list[WorldState]]:
    """Integrate dX = F_t(X) dt with ``predict(t, x_t)`` → FrameVelocity from X_{t_0} = x_0.

    t_0: the first time, the latent process's ``start_time``: where its prior is the law of the
    world state (t_min for Processes 1 and 2, whose networks are trained on t ≥ t_min; 0 for
    Process 3, whose one-residue prior is the law at t = 0 only).
    Returns the state at t = 1 and, if asked, the states at every grid time (t_0 first). Each
    step reads the mask and numbering from the state, so a step may change the residues.
    ``on_step()`` is called after every step (progress). ``jump(x, gap_counts, t, dt)``, for a
    generator with a jump part (Process 3), applies that part after each flow step: Euler for the
    flow, Poisson draws for the insertions. With config.langevin > 0 the translations take the
    stochastic step (σ: the prior's scale, Å; rngs: one generator per sample).
    """
    if config.langevin > 0 and (rngs is None or len(rngs) != x_0.mask.shape[0]):
        raise ValueError("stochastic sampling needs one generator per sample")
    ts = torch.linspace(
        t_0, 1.0, config.steps + 1, dtype=x_0.frames.trans.dtype, device=x_0.mask.device
    )
    x, path = x_0, [x_0] if trajectory else []
    for k in range(config.steps):
        t, dt = ts[k], float(ts[k + 1] - ts[k])
        velocity = predict(t.expand(x.mask.shape[0]), x)
        if config.rot_rate is not None:
            velocity = FrameVelocity(
                _rotation_scale(config.rot_rate, t, dt, x.birth) * velocity.omega,
                velocity.v,
                velocity.gap_counts,
            )
        if config.langevin > 0:
            drift, noise = _langevin_step(x, velocity, t, dt, config, sigma, rngs)
            x = euler_step(
                x, FrameVelocity(velocity.omega, velocity.v + drift, velocity.gap_counts), dt
            )
            x = x.with_frames(Rigid(x.frames.rots, x.frames.trans + noise))
        else:
            x = euler_step(x, velocity, dt)
        if jump is not None and velocity.gap_counts is not None:
            x = jump(x, velocity.gap_counts, float(t), dt)
        if trajectory:
            path.append(x)
        if on_step is not None:
            on_step()
    return x, path
