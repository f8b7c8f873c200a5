"""The pair track: invariant pair features of the world state over every residue pair (dense) or
each residue's neighbours (sparse), the linear layer of the large pair tensors, and the slabs the
dense pair tensors are computed by at inference on the CPU."""

import torch
from torch import nn

from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.network.config import NetworkConfig
from protgen.network.neighbours import Neighbours, gather

__all__ = ["PairFeatures", "PairLinear", "SLAB_FLOATS", "by_slabs", "slabs"]


class PairLinear(nn.Linear):
    """nn.Linear for the large (B, N, N, c) pair tensors: with autograd, the product, then the
    bias (on the CPU F.linear's fused bias is slower forward and backward at these shapes); without,
    F.linear (there the fused bias is ~15 % faster). The parameters and state-dict names are
    nn.Linear's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return nn.functional.linear(x, self.weight, self.bias)
        out = torch.matmul(x, self.weight.t())
        return out if self.bias is None else out + self.bias


# Inference on the CPU runs the dense pair track one slab of rows at a time, about this many floats
# a slab per thread, so that a slab's intermediates (layer norm, hidden layer, bias) stay in the
# cores' caches instead of streaming whole (B, N, N, c) tensors through memory: the same arithmetic
# per pair, ~1.5× faster at batch 1 and ~2.5× at batch 8 (L = 300). Training keeps whole tensors
# (autograd would store every slab's intermediates anyway), and so do GPUs, which prefer one large
# kernel. 0 turns slabs off (the benchmark's whole-tensor rows).
SLAB_FLOATS = 1 << 16


def by_slabs(z: torch.Tensor) -> bool:
    """Whether the dense pair track of this pass runs by slabs: CPU, autograd off,
    SLAB_FLOATS > 0."""
    return SLAB_FLOATS > 0 and z.device.type == "cpu" and not torch.is_grad_enabled()


def slabs(batch: int, rows: int, width: int) -> list[tuple[int, slice]]:
    """(batch element, row slice) pairs covering a (batch, rows, …) pair tensor whose rows hold
    ``width`` floats each, ~SLAB_FLOATS floats a slab per thread."""
    step = max(1, SLAB_FLOATS * torch.get_num_threads() // width)
    return [
        (k, slice(start, min(rows, start + step)))
        for k in range(batch)
        for start in range(0, rows, step)
    ]


def _pair_geometry(frames: Rigid) -> tuple[torch.Tensor, torch.Tensor]:
    """Invariants of every residue pair (i, j) of frames (B, N): the CA distance ‖p_j − p_i‖
    (B, N, N) and [R_iᵀR_j, R_iᵀ(p_j − p_i)/‖p_j − p_i‖] flattened, (B, N, N, 12). Two matrix
    products over all pairs, not B·N² 3×3 products."""
    b, n = frames.shape
    ca = frames.trans
    dist = torch.cdist(ca, ca, compute_mode="donot_use_mm_for_euclid_dist")
    rt = frames.rots.transpose(-1, -2)  # (B, N, 3, 3)
    rt_flat = rt.reshape(b, n * 3, 3)
    local = (rt_flat @ ca.transpose(-1, -2)).view(b, n, 3, n).transpose(-1, -2) - (
        rt @ ca[..., None]
    ).transpose(-1, -2)
    rel_rot = (
        (rt_flat @ frames.rots.transpose(-1, -2).reshape(b, n * 3, 3).transpose(-1, -2))
        .view(b, n, 3, n, 3)
        .permute(0, 1, 3, 2, 4)
    )
    return dist, torch.cat([rel_rot.reshape(b, n, n, 9), local / (dist[..., None] + 1e-6)], -1)


def _pair_geometry_sparse(frames: Rigid, nbr: "Neighbours") -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_pair_geometry` over each residue's neighbours: (B, N, K) and (B, N, K, 12)."""
    rt = frames.rots.transpose(-1, -2)[:, :, None]  # (B, N, 1, 3, 3)
    diff = gather(frames.trans, nbr.index) - frames.trans[:, :, None]  # p_j − p_i, (B, N, K, 3)
    dist = diff.norm(dim=-1)
    local = (rt @ diff[..., None])[..., 0]
    rel_rot = rt @ gather(frames.rots, nbr.index)
    return dist, torch.cat([rel_rot.flatten(-2), local / (dist[..., None] + 1e-6)], -1)


def _rbf(d: torch.Tensor, n: int, d_max: float = 20.0) -> torch.Tensor:
    centres = torch.linspace(0.0, d_max, n, device=d.device, dtype=d.dtype)
    width = d_max / n
    # The exponent is capped at 80 (e^-80 ≈ 2e-35, zero beside the other O(1) features): below
    # ~-87 float32 exp underflows and the CPU kernel leaves its vector path, ~10× slower, and far
    # pairs put most of the (B, N, N, rbf) exponents there.
    return torch.exp(-(((d[..., None] - centres) / width).square().clamp_max(80.0)))


class PairFeatures(nn.Module):
    """Invariant pair features of the world state: CA distances, relative rotations, directions of
    j in i's frame, clipped sequence offsets, and the self-conditioning x̂_1's CA distances (and,
    with ``self_condition_frames``, its relative rotations and directions)."""

    def __init__(self, c: NetworkConfig):
        super().__init__()
        self.c = c
        inputs = c.rbf + 9 + 3 + (c.rbf if c.self_condition else 0)
        self.linear = PairLinear(inputs, c.pair_dim)
        self.offset = nn.Embedding(2 * c.max_offset + 1, c.pair_dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(c.pair_dim),
            PairLinear(c.pair_dim, c.pair_dim),
            nn.ReLU(),
            PairLinear(c.pair_dim, c.pair_dim),
        )
        self.frames_linear = None
        if c.self_condition and c.self_condition_frames:
            self.frames_linear = PairLinear(12, c.pair_dim, bias=False)
            nn.init.zeros_(self.frames_linear.weight)

    def forward(
        self, x: WorldState, self_cond: Rigid | torch.Tensor | None, nbr: Neighbours | None = None
    ) -> torch.Tensor:
        """(B, N, N, c_z) dense pair features, or (B, N, K, c_z) over the neighbours ``nbr``.
        self_cond: the previous x̂_1 as frames (Å) or as CA positions (Å, (B, N, 3)), or None."""
        c = self.c
        sc_frames = self_cond if isinstance(self_cond, Rigid) else None
        sc_ca = self_cond.trans if sc_frames is not None else self_cond
        sc_frames = sc_frames if self.frames_linear is not None else None  # no read-in: not needed
        if nbr is None:
            dist, geometry = _pair_geometry(x.frames)
            offset = x.index[:, None, :] - x.index[:, :, None]
            sc_dist = None if sc_ca is None else (sc_ca[:, None] - sc_ca[:, :, None]).norm(dim=-1)
            sc_geometry = None if sc_frames is None else _pair_geometry(sc_frames)[1]
            pair_mask = None if bool(x.mask.all()) else x.mask[:, :, None] & x.mask[:, None, :]
        else:
            dist, geometry = _pair_geometry_sparse(x.frames, nbr)
            offset = gather(x.index, nbr.index) - x.index[:, :, None]
            sc_dist = (
                None
                if sc_ca is None
                else (gather(sc_ca, nbr.index) - sc_ca[:, :, None]).norm(dim=-1)
            )
            sc_geometry = None if sc_frames is None else _pair_geometry_sparse(sc_frames, nbr)[1]
            pair_mask = nbr.mask
        invariants = (dist, geometry, offset, sc_dist, sc_geometry, pair_mask)
        if nbr is not None or not by_slabs(dist):
            return self._features(*invariants)
        b, n, m = dist.shape
        z = dist.new_empty(b, n, m, c.pair_dim)
        for k, rows in slabs(b, n, m * c.pair_dim):
            self._features(*(None if a is None else a[k, rows] for a in invariants), out=z[k, rows])
        return z

    def _features(
        self, dist, geometry, offset, sc_dist, sc_geometry, pair_mask, out=None
    ) -> torch.Tensor:
        """Pair features (..., c_z) from the pair invariants of any leading shape (...): CA distance
        (Å), the 12 frame invariants, sequence offset, x̂_1's CA distance and frame invariants
        (or None) and the pair mask (None: every pair real); written into ``out`` if given
        (no autograd)."""
        c = self.c
        feats = [_rbf(dist, c.rbf), geometry]
        if c.self_condition:
            feats.append(torch.zeros_like(feats[0]) if sc_dist is None else _rbf(sc_dist, c.rbf))
        z = self.linear(torch.cat(feats, -1)) + self.offset(
            offset.clamp(-c.max_offset, c.max_offset) + c.max_offset
        )
        if sc_geometry is not None:  # no x̂_1 frames: zero features, zero read-in
            z = z + self.frames_linear(sc_geometry)
        z = torch.add(z, self.mlp(z), out=out)
        if pair_mask is None:
            return z
        return (
            z * pair_mask[..., None].to(z.dtype)
            if out is None
            else z.mul_(pair_mask[..., None].to(z.dtype))
        )
