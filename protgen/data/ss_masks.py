"""Secondary-structure conditions for training: how much of a chain's own DSSP string is given.

One model samples unconditionally, with a full string or with a partial one (classifier-free
guidance needs both of the first two; users write partial strings with ``?``): with probability
``drop`` a training chain's whole condition is unknown, with probability ``partial`` (of the
others) one to three random spans covering 10–70 % of it are unknown, and otherwise it is given
in full.
"""

from dataclasses import replace

import torch

from protgen.data.loader import Batch
from protgen.geometry.secondary import UNKNOWN

__all__ = ["masked_ss", "with_ss_condition"]


def masked_ss(codes: torch.Tensor, length: int, drop: float, partial: float, rng) -> torch.Tensor:
    """One chain's condition (length,) long with nothing, spans or all of it made unknown."""
    out = codes.clone()
    draw = torch.rand((), generator=rng).item()
    if draw < drop:
        return torch.full_like(out, UNKNOWN)
    if draw < drop + (1 - drop) * partial:
        target = int(length * (0.1 + 0.6 * torch.rand((), generator=rng).item()))
        spans = int(torch.randint(1, 4, (), generator=rng))
        size = max(1, target // spans)
        for _ in range(spans):
            start = int(torch.randint(0, max(1, length - size + 1), (), generator=rng))
            out[start : start + size] = UNKNOWN
    return out


def with_ss_condition(batch: Batch, drop: float, partial: float, rng: torch.Generator) -> Batch:
    """The batch with each chain's secondary-structure condition dropped, partly masked or kept
    (see the module docstring); padding stays unknown."""
    x_1 = batch.x_1
    if x_1.ss is None:
        return batch
    lengths = x_1.mask.sum(-1).tolist()
    codes = torch.stack(
        [masked_ss(x_1.ss[k], n, drop, partial, rng) for k, n in enumerate(lengths)]
    )
    return replace(batch, x_1=replace(x_1, ss=codes))
