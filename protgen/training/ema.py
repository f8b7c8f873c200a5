"""Exponential moving average of a network's weights (what sampling uses)."""

import torch

__all__ = ["EMA"]


class EMA:
    """Exponential moving average of a module's floating-point state, with warm-up: the decay at
    update n is min(decay, (1 + n)/(10 + n)), so early averages do not keep the initial weights
    (an average of the initial and trained weights is a different, poor network)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), 1 - decay)
            else:
                self.shadow[k].copy_(v)
