"""One block of the network's trunk: invariant point attention, a transition, an optional sequence
transformer and pair update, then a frame update."""

import torch
from torch import nn

from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.network.attention import InvariantPointAttention
from protgen.network.config import NetworkConfig
from protgen.network.neighbours import Neighbours, gather
from protgen.network.pairs import PairLinear, by_slabs, slabs

__all__ = ["Block"]


def _mask_pairs(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the pairs that involve a padded residue; a batch without padding is returned as is
    (the product would cost a pass over the (B, N, N, c_z) tensor forward and backward)."""
    if bool(mask.all()):
        return z
    return z * (mask[:, :, None] & mask[:, None, :])[..., None].to(z.dtype)


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
        (inference on the CPU; see pairs.SLAB_FLOATS). z: (B, N, N, c_z); p: (B, N, c_z);
        mask: (B, N)."""
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
