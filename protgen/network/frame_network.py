"""An SE(3)-equivariant network on residue frames: invariant point attention (IPA) with pair
features.

Input: the world state only — residue frames (from the backbone) at time t, a residue mask and,
optionally, the previous prediction of the clean CA positions (self-conditioning). Output, per
residue: a displacement (rotvec, trans) in the residue's own frame that moves x_t to the network's
estimate x̂_1 = x_t ∘ (exp(rotvec), trans). Inputs enter only through invariants (distances,
relative frames, directions in local frames) and points moved by the frames, so the outputs are
invariant and x̂_1 is equivariant under global rotations and translations.

Cost: pair features are computed once per forward from the world state; each block adds a
pair bias and a pair-value read-out (both linear in L²·c_z) and, optionally, a light pair update.
With ``neighbours = k`` every pair quantity is kept only for each residue's k nearest residues
(by CA distance in x_t), so the cost grows as L·k instead of L² (scripts/bench_sample.py).
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.geometry.secondary import SS_STATES
from protgen.geometry.units import ANGSTROM_PER_NM
from protgen.geometry.world import WorldState
from protgen.network.block import Block
from protgen.network.config import NetworkConfig
from protgen.network.gap_head import GapHead
from protgen.network.neighbours import Neighbours
from protgen.network.pairs import PairFeatures

__all__ = ["FrameNetwork", "NetworkOutput"]


@dataclass(frozen=True)
class NetworkOutput:
    """rotvec: rad, (B, N, 3) body; trans: Å, (B, N, 3) local; x1_hat: Rigid (B, N), the estimate of
    x_1; gap_counts: (B, N + 1) ≥ 0, expected hidden residues per gap (insertion) or None."""

    rotvec: torch.Tensor
    trans: torch.Tensor
    x1_hat: Rigid
    gap_counts: torch.Tensor | None = None


def _sinusoid(x: torch.Tensor, dim: int, max_period: float, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal embedding of x (...,) → (..., dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=dtype, device=x.device) / half
    )
    angles = x[..., None].to(dtype) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


def _birth_clock(t: torch.Tensor, x_t: WorldState) -> torch.Tensor:
    """(B, N, 2): each residue's own clock (t − τ)/(1 − τ) and its age t − τ since its insertion
    time τ (x_t.birth; 0 for every residue of a state without insertions)."""
    t = t[:, None].to(x_t.frames.trans.dtype)
    tau = torch.zeros_like(x_t.mask, dtype=t.dtype) if x_t.birth is None else x_t.birth.to(t.dtype)
    age = (t - tau).clamp_min(0)
    return torch.stack([age / (1 - tau).clamp_min(1e-6), age], -1) * x_t.mask[..., None]


class FrameNetwork(nn.Module):
    """Predicts x̂_1 from (t, x_t). Sees only the world frames, the time, the mask and x̂_1 of the
    previous pass; knows nothing of the latent process."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        c = self.config = config
        self.node_in = nn.Sequential(
            nn.Linear(2 * c.node_dim, c.node_dim),
            nn.ReLU(),
            nn.Linear(c.node_dim, c.node_dim),
            nn.LayerNorm(c.node_dim),
        )
        self.pairs = PairFeatures(c)
        self.blocks = nn.ModuleList(Block(c, last=k == c.blocks - 1) for k in range(c.blocks))
        # zero-initialised, so a conditional model fine-tuned from an unconditional one starts equal
        # to it
        if c.motif:
            self.fixed_embedding = nn.Parameter(torch.zeros(c.node_dim))
        self.gaps = GapHead(c) if c.insertion else None
        if c.ss_condition:  # zero-initialised, like the fixed flag
            self.ss_embedding = nn.Embedding(SS_STATES, c.node_dim)
            nn.init.zeros_(self.ss_embedding.weight)
        if c.birth_clock:  # zero-initialised, like the fixed flag
            self.birth_embedding = nn.Linear(2, c.node_dim)
            nn.init.zeros_(self.birth_embedding.weight)
            nn.init.zeros_(self.birth_embedding.bias)
        self.rot_residual = nn.Linear(c.node_dim, 3)
        nn.init.zeros_(self.rot_residual.weight)
        nn.init.zeros_(self.rot_residual.bias)

    def forward(
        self, t: torch.Tensor, x_t: WorldState, self_cond: Rigid | torch.Tensor | None = None
    ) -> NetworkOutput:
        """t: (B,); x_t: the world state (frames in Å, mask, numbering); self_cond: the previous
        x̂_1 as frames (Å, (B, N)) or as CA positions (Å, (B, N, 3); its frame features then read
        zero)."""
        c = self.config
        mask = x_t.mask
        b, n = mask.shape
        x = x_t.frames
        x_nm = Rigid(x.rots, x.trans / ANGSTROM_PER_NM)  # frames inside the network are in nm
        s = self.node_in(
            torch.cat(
                [
                    self._position(x_t, t.dtype),
                    _sinusoid(t * 1000, c.node_dim, 10000.0, t.dtype)[:, None].expand(b, n, -1),
                ],
                -1,
            )
        )
        if c.motif and x_t.fixed is not None:
            s = s + x_t.fixed[..., None].to(s.dtype) * self.fixed_embedding
        if c.birth_clock:
            s = s + self.birth_embedding(_birth_clock(t, x_t))
        if c.ss_condition:  # no condition reads as "unknown" at every residue
            s = s + self.ss_embedding(torch.zeros_like(x_t.index) if x_t.ss is None else x_t.ss)
        s = s * mask[..., None]
        nbr = (
            Neighbours.nearest(x.trans, mask, c.neighbours, x_t.index, c.chain_neighbours)
            if c.neighbours > 0
            else None
        )
        z = self.pairs(x_t, self_cond, nbr)
        frames = x_nm
        # Fixed (motif) residues are given, not estimated: no block moves their frames (later blocks
        # attend to the motif as it is) and their x̂_1 is x_t.
        moving = x_t.generated
        for block in self.blocks:
            s, z, frames = block(s, z, frames, mask, nbr, moving)
        rel = x_nm.invert().compose(frames)  # x̂_1 relative to x_t, in x_t's local frames
        m = moving[..., None].to(s.dtype)
        rotvec = (so3.log(rel.rots) + self.rot_residual(s)) * m
        trans = rel.trans * ANGSTROM_PER_NM * m
        x1_hat = Rigid(x.rots @ so3.exp(rotvec), x.trans + (x.rots @ trans[..., None])[..., 0])
        return NetworkOutput(
            rotvec, trans, x1_hat, None if self.gaps is None else self.gaps(s, mask, t)
        )

    def _position(self, x_t: WorldState, dtype: torch.dtype) -> torch.Tensor:
        """Per-residue position features, (B, N, node_dim). "ends": sinusoids of the distances to
        the first and last real residue's numbers, clipped at max_offset, so a residue deep inside
        a chain looks the same at every length (the network never sees an index beyond its
        training crop). "absolute": a sinusoid of the residue number (protgen 0.1 models)."""
        c = self.config
        index = x_t.index
        if c.position == "absolute":
            return _sinusoid(index, c.node_dim, 2056.0, dtype)
        big = torch.iinfo(index.dtype).max
        first = torch.where(x_t.mask, index, big).min(-1, keepdim=True).values
        last = torch.where(x_t.mask, index, -big).max(-1, keepdim=True).values
        half = c.node_dim // 2
        from_start = _sinusoid(
            (index - first).clamp(0, c.max_offset), half, 4.0 * c.max_offset, dtype
        )
        from_end = _sinusoid(
            (last - index).clamp(0, c.max_offset), c.node_dim - half, 4.0 * c.max_offset, dtype
        )
        return torch.cat([from_start, from_end], -1)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
