"""Shared equivariance checks (e3nn's habit: float64, a random rotation, tolerances by dtype).

A global motion T = (Q, c) moves every frame to T ∘ frame: positions to Q p + c, rotations to
Q R. Body quantities (a displacement in a residue's own frame, a body angular velocity) are
invariant; world quantities (positions, world velocities) move with it.
"""

import torch

from protgen.geometry import so3
from protgen.geometry.rigid import Rigid

__all__ = ["random_motion", "move", "TOLERANCE", "assert_network_equivariant"]

# absolute tolerances for values of order 1–10 after a network's or a process's arithmetic
TOLERANCE = {torch.float64: 1e-8, torch.float32: 1e-4}


def random_motion(seed: int, dtype=torch.float64, scale: float = 20.0) -> Rigid:
    """A Haar-random rotation and a Gaussian translation of ``scale`` Å: Rigid of shape ()."""
    g = torch.Generator().manual_seed(seed)
    return Rigid(
        so3.uniform((), dtype, generator=g), scale * torch.randn(3, generator=g, dtype=dtype)
    )


def move(frames: Rigid, motion: Rigid) -> Rigid:
    """motion ∘ frames, for frames of any leading shape."""
    return Rigid(motion.rots.expand_as(frames.rots), motion.trans.expand_as(frames.trans)).compose(
        frames
    )


def assert_network_equivariant(out, moved, motion: Rigid, mask: torch.Tensor) -> None:
    """A NetworkOutput against the output for the moved input: the displacement (rotvec, trans)
    and the gap counts invariant, x̂_1 moved by the motion, on the real residues."""
    atol = TOLERANCE[out.trans.dtype]
    assert torch.allclose(moved.rotvec[mask], out.rotvec[mask], atol=atol), "rotvec invariant"
    assert torch.allclose(moved.trans[mask], out.trans[mask], atol=atol), "trans invariant"
    x1, x1_moved = move(out.x1_hat, motion), moved.x1_hat
    assert torch.allclose(x1_moved.trans[mask], x1.trans[mask], atol=atol), "x̂_1 positions move"
    assert torch.allclose(x1_moved.rots[mask], x1.rots[mask], atol=atol), "x̂_1 rotations move"
    if out.gap_counts is not None:
        assert torch.allclose(moved.gap_counts, out.gap_counts, atol=atol), "gap counts invariant"
