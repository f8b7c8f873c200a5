"""The world state X_t = Φ(Y_t): what the network, the loss and the sampler see.

A batch of backbones as residue frames, with everything that says which residues exist and how
they are numbered, so no consumer has to capture a mask from elsewhere and the number of residues
may change from one sampler step to the next (insertions).
"""

from dataclasses import dataclass, replace

import torch

from protgen.geometry.rigid import Rigid

__all__ = ["WorldState"]


@dataclass(frozen=True)
class WorldState:
    """Residue frames of a padded batch.

    frames: Rigid (B, N), Å; mask: (B, N) bool, True for real residues; index: (B, N) int, residue
    numbers along each chain (relative offsets and distances to the chain ends are read from
    them; a gap in the numbering is a gap in the chain); fixed: (B, N) bool or None, residues whose
    frames are given by a condition (motif) rather than generated; birth: (B, N) float or None, the
    time each residue was inserted (Process 3: Φ keeps the latent's insertion times, the sampler
    tracks them; the rotation schedule and networks with ``birth_clock`` read them), None when
    every residue was there from the start; ss: (B, N) long or None, the secondary-structure
    condition per residue (protgen.geometry.secondary codes: 0 unknown, 1 helix, 2 strand, 3 loop),
    read by networks with ``ss_condition``; None when there is no condition.
    """

    frames: Rigid
    mask: torch.Tensor
    index: torch.Tensor
    fixed: torch.Tensor | None = None
    birth: torch.Tensor | None = None
    ss: torch.Tensor | None = None

    @staticmethod
    def of(
        frames: Rigid, mask: torch.Tensor | None = None, fixed: torch.Tensor | None = None
    ) -> "WorldState":
        """A state numbered 0..N−1 along each chain; mask defaults to all residues."""
        batch, n = frames.shape
        if mask is None:
            mask = torch.ones(batch, n, dtype=torch.bool, device=frames.trans.device)
        index = torch.arange(n, device=mask.device).expand(batch, n)
        return WorldState(frames, mask, index, fixed)

    @property
    def shape(self) -> torch.Size:
        return self.mask.shape

    @property
    def generated(self) -> torch.Tensor:
        """(B, N) bool: real residues that are not fixed by a condition."""
        return self.mask if self.fixed is None else self.mask & ~self.fixed

    def __getitem__(self, items) -> "WorldState":
        """Chains ``items`` of the batch (an index, slice or mask over the first axis)."""
        if isinstance(items, int):
            items = slice(items, items + 1)
        fixed = None if self.fixed is None else self.fixed[items]
        birth = None if self.birth is None else self.birth[items]
        ss = None if self.ss is None else self.ss[items]
        return WorldState(self.frames[items], self.mask[items], self.index[items], fixed, birth, ss)

    def with_frames(self, frames: Rigid) -> "WorldState":
        """The same residues at other positions."""
        return replace(self, frames=frames)

    def to(self, *args, **kwargs) -> "WorldState":
        fixed = None if self.fixed is None else self.fixed.to(*args, **kwargs)
        birth = None if self.birth is None else self.birth.to(*args, **kwargs)
        # the condition's codes stay integers whatever dtype the frames move to
        ss = None if self.ss is None else self.ss.to(device=self.mask.to(*args, **kwargs).device)
        return WorldState(
            self.frames.to(*args, **kwargs),
            self.mask.to(*args, **kwargs),
            self.index.to(*args, **kwargs),
            fixed,
            birth,
            ss,
        )
