"""Random motifs for conditional training: which residues of a training chain are given.

Following FrameFlow's and Genie 2's motif amortisation, a training chain gets, with probability
``prob``, a motif of one to three contiguous segments (each ≥ 3 residues) covering 5–30 % of its
residues. The motif's frames are part of the world state at every t (fixed flags), and the chain
is re-centred at the motif's CA centroid — at sampling time the scaffold's centre is unknown, the
motif's is not, so training and sampling use the same origin.
"""

from dataclasses import replace

import torch

from protgen.data.loader import Batch
from protgen.geometry.rigid import Rigid

__all__ = ["random_motif", "with_random_motifs", "centre_on_motif"]


def random_motif(
    length: int, rng: torch.Generator, min_fraction: float = 0.05, max_fraction: float = 0.3
) -> torch.Tensor:
    """A motif of 1–3 non-overlapping contiguous segments of ≥ 3 residues: (length,) bool."""
    fixed = torch.zeros(length, dtype=torch.bool)
    target = int(
        length
        * (min_fraction + (max_fraction - min_fraction) * torch.rand((), generator=rng).item())
    )
    segments = int(torch.randint(1, 4, (), generator=rng))
    sizes = [max(3, target // segments)] * segments
    for size in sizes:
        for _ in range(20):  # a few tries to find a free stretch
            start = int(torch.randint(0, max(1, length - size + 1), (), generator=rng))
            if not fixed[max(0, start - 1) : start + size + 1].any():
                fixed[start : start + size] = True
                break
    return fixed


def centre_on_motif(frames: Rigid, fixed: torch.Tensor, mask: torch.Tensor) -> Rigid:
    """Frames translated so the CA centroid of the fixed residues is the origin (items without a
    motif are left centred as they were). frames: Rigid (B, N); fixed, mask: (B, N) bool."""
    m = (fixed & mask).to(frames.trans.dtype)[..., None]
    count = m.sum(-2, keepdim=True)
    centre = torch.where(
        count > 0,
        (frames.trans * m).sum(-2, keepdim=True) / count.clamp_min(1),
        torch.zeros_like(count),
    )
    return Rigid(frames.rots, (frames.trans - centre) * mask[..., None].to(frames.trans.dtype))


def with_random_motifs(batch: Batch, prob: float, rng: torch.Generator) -> Batch:
    """The batch with a random motif on each chain with probability ``prob`` (fixed flags set,
    frames and atoms re-centred on the motif); the other chains have no fixed residue."""
    b, n = batch.mask.shape
    fixed = torch.zeros(b, n, dtype=torch.bool)
    for k, length in enumerate(batch.mask.sum(-1).tolist()):
        if torch.rand((), generator=rng).item() < prob:
            fixed[k, :length] = random_motif(length, rng)
    fixed = fixed.to(batch.mask.device)
    frames = centre_on_motif(batch.x_1.frames, fixed, batch.mask)
    # per-chain translation, the same for every residue
    shift = frames.trans - batch.x_1.frames.trans
    atoms = batch.atoms + shift[..., None, :] * batch.mask[..., None, None].to(batch.atoms.dtype)
    return Batch(atoms, replace(batch.x_1, frames=frames, fixed=fixed), batch.ids)
