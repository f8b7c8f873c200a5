"""Process 3's gap head: the expected hidden residues in every gap and at both chain ends."""

import torch
from torch import nn

from protgen.network.config import NetworkConfig

__all__ = ["GapHead"]


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
