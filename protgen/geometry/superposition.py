"""Optimal superposition of point sets (Kabsch): the rotation, the superposed copy and the RMSD."""

import torch

__all__ = ["kabsch_rotation", "superpose", "kabsch_rmsd"]


def kabsch_rotation(
    x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The rotation Q minimising Σ_i ‖Q x_i − y_i‖² over real points (both sets already centred).

    x, y: Å, (..., N, 3); mask: (..., N) bool or None → Q: (..., 3, 3), a proper rotation (det +1).
    """
    m = torch.ones_like(x[..., 0]) if mask is None else mask.to(x.dtype)
    h = ((y * m[..., None]).transpose(-1, -2) @ (x * m[..., None])).double()  # Σ y_i x_iᵀ
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(u @ vt))
    flip = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return (u @ flip @ vt).to(x.dtype)


def superpose(mobile: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mobile moved onto target by the rotation and translation minimising RMSD.

    mobile, target: Å, (..., N, 3) → (..., N, 3).
    """
    mc, tc = mobile.mean(-2, keepdim=True), target.mean(-2, keepdim=True)
    q = kabsch_rotation(mobile - mc, target - tc)
    return (mobile - mc) @ q.transpose(-1, -2) + tc


def kabsch_rmsd(mobile, target) -> torch.Tensor:
    """RMSD after optimal superposition, Å. mobile, target: (..., N, 3) arrays or
    tensors → (...)."""
    mobile, target = (
        torch.as_tensor(mobile, dtype=torch.float64),
        torch.as_tensor(target, dtype=torch.float64),
    )
    return (superpose(mobile, target) - target).square().sum(-1).mean(-1).sqrt()
