"""Self-conditioning state of the sampler: the previous step's x̂_1, fed back to the network.

The network takes x̂_1 of the previous step as an input (protgen/THEORY.md §6); this is a function
of x_t and of the network's own earlier output, not of the latent. When residues are inserted
(Process 3) the previous x̂_1 is carried over per chain: existing residues keep theirs and a
newborn takes its birth frame, so self-conditioning never restarts mid-path.
"""

from dataclasses import dataclass

import torch

from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity
from protgen.network.model import GeneratorModel

__all__ = ["SelfConditioned"]


@dataclass
class SelfConditioned:
    """``predict(t, x_t)`` for the sampler: calls the model with the previous step's x̂_1 (when the
    network takes it and ``enabled``) and keeps the new one. If the residues change between steps
    without :meth:`carry` (a state from elsewhere), the previous x̂_1 no longer lines up with them
    and self-conditioning restarts."""

    model: GeneratorModel
    enabled: bool = True
    # the last x̂_1's CA positions, Å, (B, N, 3) (clash guidance reads them)
    x1_hat: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    x1_frames: Rigid | None = None  # the last x̂_1, fed back to the network

    def __call__(self, t: torch.Tensor, x_t: WorldState) -> FrameVelocity:
        # x̂_1 lines up with x_t only while the residues stay the same (False on a new shape)
        use = (
            self.enabled
            and self.model.config.self_condition
            and self.mask is not None
            and torch.equal(self.mask, x_t.mask)
        )
        prediction = self.model(t, x_t, self.x1_frames if use else None)
        self.x1_frames, self.x1_hat = prediction.x1_hat, prediction.x1_hat.trans
        self.mask = x_t.mask
        return prediction.velocity

    def carry(self, grown: WorldState, newborn: torch.Tensor) -> None:
        """Line the kept x̂_1 up with ``grown``, the state after an insertion step: per chain, the
        residues that are not ``newborn`` (B, N') keep their x̂_1 in order; a newborn's x̂_1 is its
        birth frame (its frame in ``grown``)."""
        if self.x1_frames is None or torch.equal(self.mask, grown.mask):
            return
        old = grown.mask & ~newborn
        rots, trans = grown.frames.rots.clone(), grown.frames.trans.clone()
        for k in range(grown.mask.shape[0]):
            kept = self.mask[k]
            if int(old[k].sum()) != int(kept.sum()):
                raise ValueError(
                    f"chain {k}: {int(old[k].sum())} old residues, {int(kept.sum())} before"
                )
            rots[k, old[k]] = self.x1_frames.rots[k, kept]
            trans[k, old[k]] = self.x1_frames.trans[k, kept]
        self.x1_frames, self.x1_hat, self.mask = Rigid(rots, trans), trans, grown.mask
