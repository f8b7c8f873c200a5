"""SE(3) frames as the product SO(3) × R³: compose, invert, apply.

A frame T = (R, p) maps local coordinates x to world coordinates R·x + p. The product (not the
screw) structure is the one protgen/THEORY.md fixes: paths and velocities act on R and p separately.
"""

from dataclasses import dataclass

import torch

__all__ = ["Rigid"]


@dataclass(frozen=True)
class Rigid:
    """A batch of frames.

    rots: rotation matrices, (..., 3, 3); trans: origins in Å, (..., 3).
    """

    rots: torch.Tensor
    trans: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        return self.trans.shape[:-1]

    def compose(self, other: "Rigid") -> "Rigid":
        """self ∘ other = (R_a R_b, R_a p_b + p_a)."""
        return Rigid(self.rots @ other.rots, self.apply(other.trans))

    def invert(self) -> "Rigid":
        """T⁻¹ = (Rᵀ, −Rᵀp)."""
        rt = self.rots.transpose(-1, -2)
        return Rigid(rt, -(rt @ self.trans[..., None])[..., 0])

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """World coordinates of local points. x: (..., 3) broadcast against the frames."""
        return (self.rots @ x[..., None])[..., 0] + self.trans

    def to(self, *args, **kwargs) -> "Rigid":
        return Rigid(self.rots.to(*args, **kwargs), self.trans.to(*args, **kwargs))

    def __getitem__(self, index) -> "Rigid":
        return Rigid(self.rots[index], self.trans[index])

    @staticmethod
    def cat(frames: list["Rigid"], dim: int = 0) -> "Rigid":
        return Rigid(
            torch.cat([f.rots for f in frames], dim if dim >= 0 else dim - 2),
            torch.cat([f.trans for f in frames], dim if dim >= 0 else dim - 1),
        )
