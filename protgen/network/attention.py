"""Invariant point attention (AlphaFold 2, Alg. 22) over every residue (dense) or each residue's
neighbours (sparse)."""

import math

import torch
from torch import nn

from protgen.geometry.rigid import Rigid
from protgen.network.config import NetworkConfig
from protgen.network.neighbours import Neighbours, gather

__all__ = ["InvariantPointAttention"]


def _apply(frames: Rigid, points: torch.Tensor) -> torch.Tensor:
    """World coordinates of per-residue local points: frames (B, N), points (B, N, ..., 3)."""
    b, n = frames.shape
    flat = points.reshape(b * n, -1, 3)
    world = torch.bmm(flat, frames.rots.reshape(b * n, 3, 3).transpose(-1, -2)).view(points.shape)
    return world + frames.trans.view(b, n, *([1] * (points.dim() - 3)), 3)


def _apply_inverse(frames: Rigid, points: torch.Tensor) -> torch.Tensor:
    """Local coordinates of per-residue world points: frames (B, N), points (B, N, ..., 3)."""
    b, n = frames.shape
    shifted = points - frames.trans.view(b, n, *([1] * (points.dim() - 3)), 3)
    return torch.bmm(shifted.reshape(b * n, -1, 3), frames.rots.reshape(b * n, 3, 3)).view(
        points.shape
    )


class InvariantPointAttention(nn.Module):
    """IPA (AlphaFold 2, Alg. 22) with scalar, point and pair terms."""

    def __init__(self, c: NetworkConfig):
        super().__init__()
        self.c = c
        h, d, pq, pv = c.heads, c.head_dim, c.query_points, c.value_points
        self.q, self.k, self.v = (
            nn.Linear(c.node_dim, h * d),
            nn.Linear(c.node_dim, h * d),
            nn.Linear(c.node_dim, h * d),
        )
        self.q_pts, self.k_pts = (
            nn.Linear(c.node_dim, h * pq * 3),
            nn.Linear(c.node_dim, h * pq * 3),
        )
        self.v_pts = nn.Linear(c.node_dim, h * pv * 3)
        self.pair_bias = nn.Linear(c.pair_dim, h, bias=False)
        self.head_weight = nn.Parameter(torch.full((h,), math.log(math.e - 1)))  # softplus → 1
        self.out = nn.Linear(h * (d + c.pair_dim + pv * 4), c.node_dim)

    def forward(
        self,
        s: torch.Tensor,
        z: torch.Tensor,
        frames: Rigid,
        mask: torch.Tensor,
        nbr: Neighbours | None = None,
    ) -> torch.Tensor:
        c = self.c
        b, n = s.shape[:2]
        h, d, pq, pv = c.heads, c.head_dim, c.query_points, c.value_points
        q, k, v = (f(s).view(b, n, h, d) for f in (self.q, self.k, self.v))

        def points(linear, p):  # local points → world points, (B, N, H, P, 3)
            return _apply(frames, linear(s).view(b, n, h, p, 3))

        qp, kp, vp = points(self.q_pts, pq), points(self.k_pts, pq), points(self.v_pts, pv)
        gamma = nn.functional.softplus(self.head_weight) * math.sqrt(2 / (9 * pq))
        if nbr is not None:
            return self._sparse(q, k, v, qp, kp, vp, z, frames, nbr, gamma)
        # −γ/2 Σ_p ‖q_ip − k_jp‖² = −γ/2 (‖q_i‖² + ‖k_j‖²) + γ q_i·k_j. The ‖q_i‖² term is the same
        # for every j and cancels in the softmax over j, so the scalar and point terms are one
        # product [q/√d, γ q_pts]·[k, k_pts] and a per-key term: no (B, H, N, N) sums beside it.
        qe = torch.cat([q / math.sqrt(d), gamma[:, None] * qp.reshape(b, n, h, pq * 3)], -1)
        ke = torch.cat([k, kp.reshape(b, n, h, pq * 3)], -1)
        key_term = 0.5 * gamma * kp.square().sum((-1, -2))  # (B, N, H)
        logits = torch.einsum("bihe,bjhe->bhij", qe, ke) - key_term.permute(0, 2, 1)[:, :, None, :]
        logits = math.sqrt(1 / 3) * (logits + self.pair_bias(z).permute(0, 3, 1, 2))
        logits = logits.masked_fill(~mask[:, None, None, :], torch.finfo(logits.dtype).min)
        attn = torch.softmax(logits, -1)  # (B, H, N, N)
        o = torch.einsum("bhij,bjhd->bihd", attn, v).reshape(b, n, h * d)
        o_pair = torch.einsum("bhij,bijc->bihc", attn, z).reshape(b, n, h * c.pair_dim)
        o_pts_world = torch.einsum("bhij,bjhpx->bihpx", attn, vp)
        return self._output(o, o_pair, o_pts_world, frames)

    def _output(self, o, o_pair, o_pts_world, frames: Rigid) -> torch.Tensor:
        b, n = o.shape[:2]
        o_pts = _apply_inverse(frames, o_pts_world)
        o_norm = (o_pts.square().sum(-1) + 1e-8).sqrt()
        return self.out(
            torch.cat([o, o_pair, o_pts.reshape(b, n, -1), o_norm.reshape(b, n, -1)], -1)
        )

    def _sparse(
        self, q, k, v, qp, kp, vp, z, frames: Rigid, nbr: Neighbours, gamma
    ) -> torch.Tensor:
        """The same attention over each residue's K neighbours: logits (B, H, N, K)."""
        c = self.c
        b, n = q.shape[:2]
        scalar = torch.einsum("bihd,bikhd->bhik", q, gather(k, nbr.index)) / math.sqrt(c.head_dim)
        # (B, H, N, K)
        dist2 = (qp[:, :, None] - gather(kp, nbr.index)).square().sum((-1, -2)).permute(0, 3, 1, 2)
        logits = math.sqrt(1 / 3) * (
            scalar + self.pair_bias(z).permute(0, 3, 1, 2) - 0.5 * gamma[:, None, None] * dist2
        )
        logits = logits.masked_fill(~nbr.mask[:, None], torch.finfo(logits.dtype).min)
        attn = torch.softmax(logits, -1)
        o = torch.einsum("bhik,bikhd->bihd", attn, gather(v, nbr.index)).reshape(b, n, -1)
        o_pair = torch.einsum("bhik,bikc->bihc", attn, z).reshape(b, n, -1)
        o_pts_world = torch.einsum("bhik,bikhpx->bihpx", attn, gather(vp, nbr.index))
        return self._output(o, o_pair, o_pts_world, frames)
