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

__all__ = [
    "NetworkConfig",
    "PRESETS",
    "PRESET_PARAMETERS",
    "FrameNetwork",
    "NetworkOutput",
    "Neighbours",
]


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the IPA network (stored in checkpoints)."""

    node_dim: int = 128  # c_s, per-residue features
    pair_dim: int = 32  # c_z, per-pair features
    blocks: int = 4  # IPA blocks, each followed by a frame update
    heads: int = 4  # attention heads
    head_dim: int = 16  # scalar query/key/value width per head
    query_points: int = 4  # 3-D query/key points per head
    value_points: int = 8  # 3-D value points per head
    rbf: int = 16  # radial basis functions for CA–CA distances, 0–20 Å
    max_offset: int = 32  # relative sequence offsets are clipped to ±max_offset
    pair_update: bool = True  # light per-block pair update (two linear layers over c_z)
    node_layers: int = 1  # transformer layers over the sequence per block (FrameFlow-style)
    # accept the previous x̂_1 as input (its CA distances, as pair features)
    self_condition: bool = True
    # also x̂_1's relative rotations and directions (pair features; a zero-initialised read-in, so a
    # fine-tune from a model without it starts equal to that model)
    self_condition_frames: bool = False
    # conditional on fixed (motif) residues: a learned embedding of the fixed flag
    motif: bool = False
    # 0: every residue pair (dense); k > 0: each residue's k nearest residues by CA distance
    # (sparse, long chains)
    neighbours: int = 0
    # sparse only: residues within this many positions along the chain are always among the k (early
    # in the path x_t is mostly noise, and its nearest residues in space need not include the
    # chain's)
    chain_neighbours: int = 8
    # Process 3: a head for the expected hidden residues in every gap and chain end
    insertion: bool = False
    # residue position feature: "ends" (distances to both chain ends, clipped at max_offset: the
    # same at every length) or "absolute" (sinusoid of the index; protgen 0.1 models)
    position: str = "ends"
    # Process 3: the insertion end T of the process; > 0: the gap head reads the insertion clock
    # κ(t) = min(1, t/T) directly (zero-initialised), so the counts can follow time where the
    # trunk's features barely change (the first steps); 0: it does not (protgen 0.2's insertion
    # models)
    insertion_end: float = 0.0
    # Process 3: each residue's own clock (t − τ)/(1 − τ) and age t − τ since its insertion time τ
    # (WorldState.birth) as node features (zero-initialised), so newborn residues are recognisable
    birth_clock: bool = False
    # conditional on a per-residue secondary structure (WorldState.ss: unknown, helix, strand,
    # loop): a learned embedding of the state, zero-initialised, so a fine-tune from an
    # unconditional model starts equal to it; "unknown" everywhere is the unconditional mode
    ss_condition: bool = False


PRESETS = {
    "tiny": NetworkConfig(
        node_dim=32,
        pair_dim=16,
        blocks=2,
        heads=2,
        head_dim=8,
        query_points=2,
        value_points=4,
        rbf=8,
        max_offset=16,
        node_layers=0,
    ),
    "small": NetworkConfig(),
    "base": NetworkConfig(
        node_dim=256,
        pair_dim=128,
        blocks=6,
        heads=8,
        head_dim=24,
        query_points=8,
        value_points=12,
        rbf=32,
        node_layers=3,
    ),
}
# Parameter counts of the presets, for --help without building networks (a test keeps them true).
PRESET_PARAMETERS = {"tiny": 22_435, "small": 1_104_843, "base": 15_263_255}


@dataclass(frozen=True)
class NetworkOutput:
    """rotvec: rad, (B, N, 3) body; trans: Å, (B, N, 3) local; x1_hat: Rigid (B, N), the estimate of
    x_1; gap_counts: (B, N + 1) ≥ 0, expected hidden residues per gap (insertion) or None."""

    rotvec: torch.Tensor
    trans: torch.Tensor
    x1_hat: Rigid
    gap_counts: torch.Tensor | None = None


class GapHead(nn.Module):
    """Expected hidden residues in each gap: a softplus MLP of the node features on either side
    (learned end features at the chain ends). Invariant, like the node features."""

    def __init__(self, c: NetworkConfig):
        super().__init__()
        self.insertion_end = c.insertion_end
        self.ends = nn.Parameter(torch.zeros(2, c.node_dim))
        self.mlp = nn.Sequential(
            nn.Linear(2 * c.node_dim, c.node_dim), nn.ReLU(), nn.Linear(c.node_dim, 1)
        )
        self.clock = None
        if c.insertion_end > 0:  # zero-initialised: a fine-tune starts as the head it extends
            self.clock = nn.Linear(2, c.node_dim)
            nn.init.zeros_(self.clock.weight)
            nn.init.zeros_(self.clock.bias)

    def forward(self, s: torch.Tensor, mask: torch.Tensor, t: torch.Tensor | None = None):
        """s: (B, N, C); mask: (B, N); t: (B,), read by a head with a clock → (B, N + 1): gap g
        lies before residue g, gap n after the last."""
        b, n, c = s.shape
        gap = torch.arange(n + 1, device=s.device)[None]
        count = mask.sum(-1, keepdim=True)
        left = torch.cat([self.ends[0].expand(b, 1, c), s], 1)
        right = torch.cat([s, self.ends[1].expand(b, 1, c)], 1)
        right = torch.where((gap < count)[..., None], right, self.ends[1])
        first, relu, last = self.mlp
        hidden = first(torch.cat([left, right], -1))
        if self.clock is not None:
            kappa = (t / self.insertion_end).clamp(0, 1).to(s.dtype)
            features = torch.stack([kappa, torch.log(1 - kappa + 0.01)], -1)  # (B, 2)
            hidden = hidden + self.clock(features)[:, None]
        counts = nn.functional.softplus(last(relu(hidden))[..., 0])
        return counts * (gap <= count).to(s.dtype)


def _sinusoid(x: torch.Tensor, dim: int, max_period: float, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal embedding of x (...,) → (..., dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=dtype, device=x.device) / half
    )
    angles = x[..., None].to(dtype) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


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


def _mask_pairs(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the pairs that involve a padded residue; a batch without padding is returned as is
    (the product would cost a pass over the (B, N, N, c_z) tensor forward and backward)."""
    if bool(mask.all()):
        return z
    return z * (mask[:, :, None] & mask[:, None, :])[..., None].to(z.dtype)


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


class Block(nn.Module):
    """IPA → LayerNorm → transition MLP → optional sequence transformer → optional pair
    update → frame update."""

    def __init__(self, c: NetworkConfig, last: bool = False):
        super().__init__()
        self.ipa = InvariantPointAttention(c)
        self.norm1 = nn.LayerNorm(c.node_dim)
        self.transition = nn.Sequential(
            nn.Linear(c.node_dim, c.node_dim), nn.ReLU(), nn.Linear(c.node_dim, c.node_dim)
        )
        self.norm2 = nn.LayerNorm(c.node_dim)
        self.seq = None
        if c.node_layers:
            layer = nn.TransformerEncoderLayer(
                c.node_dim, 4, 2 * c.node_dim, dropout=0.0, batch_first=True, norm_first=True
            )
            self.seq = nn.TransformerEncoder(layer, c.node_layers, enable_nested_tensor=False)
        self.pair = None
        if c.pair_update and not last:  # the last block's pair features would go unused
            self.pair_in = nn.Linear(c.node_dim, c.pair_dim)
            self.pair = nn.Sequential(
                nn.LayerNorm(c.pair_dim),
                PairLinear(c.pair_dim, c.pair_dim),
                nn.ReLU(),
                PairLinear(c.pair_dim, c.pair_dim),
            )
        self.update = nn.Linear(c.node_dim, 6)
        nn.init.zeros_(self.update.weight)
        nn.init.zeros_(self.update.bias)

    def silence_sequence_layers(self, start: int) -> None:
        """Zero the residual outputs (attention out-projection, second feed-forward linear) of the
        sequence-transformer layers from ``start`` on: pre-norm layers x + f(LN(x)) then compute
        the identity, so a network grown by ``node_layers`` starts as the one it grew from."""
        for layer in list(self.seq.layers)[start:] if self.seq is not None else []:
            for linear in (layer.self_attn.out_proj, layer.linear2):
                nn.init.zeros_(linear.weight)
                nn.init.zeros_(linear.bias)

    def _pair_update_by_slabs(
        self, z: torch.Tensor, p: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The dense pair update z + MLP(z + p_i + p_j) (pairs with padding unchanged), slab by slab
        (inference on the CPU; see SLAB_FLOATS). z: (B, N, N, c_z); p: (B, N, c_z); mask: (B, N)."""
        b, n = mask.shape
        pair_mask = (
            None
            if bool(mask.all())
            else (mask[:, :, None] & mask[:, None, :])[..., None].to(z.dtype)
        )
        out = torch.empty_like(z)
        for k, rows in slabs(b, n, n * z.shape[-1]):
            delta = self.pair(z[k, rows] + p[k, rows, None] + p[k, None, :])
            torch.add(
                z[k, rows],
                delta if pair_mask is None else delta * pair_mask[k, rows],
                out=out[k, rows],
            )
        return out

    def forward(self, s, z, frames: Rigid, mask, nbr: Neighbours | None = None, moving=None):
        """moving: (B, N) bool, the residues whose frames the block may update (default: mask);
        fixed (motif) residues keep their given frames through the whole trunk."""
        m = mask[..., None].to(s.dtype)
        s = self.norm1(s + self.ipa(s, z, frames, mask, nbr)) * m
        s = self.norm2(s + self.transition(s)) * m
        if self.seq is not None:
            # Without padding no key mask: PyTorch's masked softmax is ~5× slower than its plain one
            # (at 1,000 residues a sequence layer takes 57 ms with an all-False mask, 12 ms without)
            s = self.seq(s, src_key_padding_mask=None if bool(mask.all()) else ~mask) * m
        if self.pair is not None:
            p = self.pair_in(s)
            if nbr is None and by_slabs(z):
                z = self._pair_update_by_slabs(z, p, mask)
            elif nbr is None:
                z = z + _mask_pairs(self.pair(z + p[:, :, None] + p[:, None, :]), mask)
            else:
                z = z + self.pair(z + p[:, :, None] + gather(p, nbr.index)) * nbr.mask[
                    ..., None
                ].to(z.dtype)
        u = self.update(s) * (m if moving is None else moving[..., None].to(s.dtype))
        quat = torch.cat([torch.ones_like(u[..., :1]), u[..., :3]], -1)
        # frames inside the network are in nm
        step = Rigid(so3.quaternion_to_matrix(quat), u[..., 3:])
        return s, z, frames.compose(step)


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
