"""The sparse pair list (``NetworkConfig.neighbours = k``): each residue's k nearest residues, so
that every pair quantity costs L·k instead of L²."""

from dataclasses import dataclass

import torch

__all__ = ["Neighbours", "gather"]


@dataclass(frozen=True)
class Neighbours:
    """The sparse pair list: index (B, N, K) of each residue's K nearest residues (by CA distance
    in x_t, itself included; the residues within ``window`` positions along the chain first) and
    mask (B, N, K), False where a neighbour is padding. The set is invariant under global motions,
    so equivariance is kept; its order does not matter (every use sums or softmaxes over K)."""

    index: torch.Tensor
    mask: torch.Tensor

    @staticmethod
    def nearest(
        ca: torch.Tensor,
        mask: torch.Tensor,
        k: int,
        index: torch.Tensor | None = None,
        window: int = 0,
    ) -> "Neighbours":
        """ca: Å, (B, N, 3); mask: (B, N) bool; index: (B, N) residue numbers (the chain window)."""
        dist = torch.cdist(ca, ca, compute_mode="donot_use_mm_for_euclid_dist")
        # chain neighbours rank before every residue in space, nearest in sequence
        if index is not None and window > 0:
            # first (ties broken: j before i first)
            offset = (index[:, None, :] - index[:, :, None]).to(dist.dtype)
            rank = offset.abs() - window - 1 + 0.5 * (offset < 0).to(dist.dtype)
            dist = torch.where(offset.abs() <= window, rank, dist)
        dist = dist.masked_fill(~mask[:, None, :], float("inf"))
        k = min(k, ca.shape[1])
        index = dist.topk(k, dim=-1, largest=False).indices
        return Neighbours(index, gather(mask, index) & mask[..., None])


def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, ...) at neighbour indices (B, N, K) → (B, N, K, ...)."""
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return x[batch, index]
