"""The path geometry the latent processes share: the geodesic SE(3) path between frames, its body
velocity toward the endpoint, the centred Gaussian prior of positions and the uniform time law.

Process 1 runs these on every residue frame, Process 2 on the chain frame and the residue frames,
Process 3 on each residue from its birth (protgen/THEORY.md §3, §4, §10).
"""

import torch

from protgen.geometry import so3
from protgen.geometry.rigid import Rigid

__all__ = ["interpolate", "velocity", "centred_gaussian", "uniform_times"]


def interpolate(y_0: Rigid, y_1: Rigid, t: torch.Tensor) -> Rigid:
    """Geodesic on SO(3) and straight line on R³. t broadcasts against y's leading shape."""
    return Rigid(
        so3.geodesic(y_0.rots, y_1.rots, t), y_0.trans + t[..., None] * (y_1.trans - y_0.trans)
    )


def velocity(y_t: Rigid, y_1: Rigid, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Body angular and translational velocity of the path toward y_1: log(R_tᵀR_1)/(1 − t) in
    rad per unit time, (p_1 − p_t)/(1 − t) in Å per unit time.

    t: shaped to broadcast against (..., 3), e.g. (B, 1, 1) for residue frames (B, N).
    """
    scale = 1 / (1 - t)
    return so3.log(y_t.rots.transpose(-1, -2) @ y_1.rots) * scale, (y_1.trans - y_t.trans) * scale


def centred_gaussian(mask: torch.Tensor, sigma: float, rng, dtype) -> torch.Tensor:
    """σ(ε − ε̄) on the residues of ``mask`` (B, N), ε ~ N(0, I₃), ε̄ their mean: Å, (B, N, 3),
    zero elsewhere."""
    eps = torch.randn(*mask.shape, 3, generator=rng, dtype=dtype, device=mask.device)
    m = mask[..., None].to(dtype)
    mean = (eps * m).sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp_min(1)
    return sigma * (eps - mean) * m


def uniform_times(
    t_min: float, t_max: float, batch: int, rng: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Training times uniform on [t_min, t_max]: (batch,)."""
    return t_min + (t_max - t_min) * torch.rand(batch, generator=rng, device=device)
