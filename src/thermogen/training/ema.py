"""Exponential moving average of a model's weights *and* buffers (the book's EMA network)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class EMA:
    """``ema <- d * ema + (1 - d) * model`` after every optimizer step.

    Floating-point parameters and buffers (BatchNorm running statistics
    included, as in the book) are averaged; integer buffers are copied. The
    averaged copy is what the pipeline samples with.

    With ``warmup`` the decay of update n (counting from 0) is
    ``min(decay, (1 + n) / (10 + n))`` (TensorFlow's ``num_updates`` rule): the
    average forgets the untrained initial weights quickly, which matters for
    short runs; a constant 0.999 keeps 13 % of the initialisation after 2,000 steps.

    Example::

        ema = EMA(model, decay=0.999)                        # a frozen deep copy, in eval mode
        for step in range(steps):
            ...                                              # loss.backward(); optimizer.step()
            ema.update(model, update=step)
        averaged = ema.model                                 # what the pipeline samples with
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not (isinstance(decay, (int, float)) and 0.0 <= decay < 1.0):
            raise ValueError(f"EMA decay={decay}; expected a value in [0, 1)")
        self.decay = decay
        self.warmup = warmup
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)

    def decay_at(self, update: int) -> float:
        """The decay used by update number ``update`` (0-based)."""
        return min(self.decay, (1 + update) / (10 + update)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, update: int = 0) -> None:
        """Average ``model`` into the EMA copy; ``update`` is the 0-based update count (for warmup)."""
        decay = self.decay_at(update)
        ema_float, new_float = [], []
        for ema_t, new_t in zip(self.model.state_dict().values(), model.state_dict().values()):
            if ema_t.is_floating_point():
                ema_float.append(ema_t)
                new_float.append(new_t.detach())
            else:
                ema_t.copy_(new_t)
        torch._foreach_lerp_(ema_float, new_float, 1.0 - decay)


class PowerEMA(EMA):
    """Power-function EMA (Karras et al. 2024, "Analyzing and Improving the Training Dynamics of
    Diffusion Models", eq. 4): update n (0-based, t = n + 1 images-steps seen) uses

        decay_t = (1 - 1 / t) ** (gamma + 1),

    which averages the whole run with weights growing like ``t ** gamma``: the horizon grows
    with the run (its relative width ``sigma_rel`` is fixed), so the same ``gamma`` suits a
    short and a long run, and the untrained initialisation is forgotten at once
    (``decay_1 = 0``). ``gamma = 6.94`` gives ``sigma_rel = 0.10``, ``16.97`` gives 0.05.

    Example::

        ema = PowerEMA(model, gamma=6.94)                    # PowerEMA.relative_width(6.94) = 0.10
        ema.update(model, update=step)                       # after every optimizer step; update 0 copies the model
    """

    def __init__(self, model: nn.Module, gamma: float = 6.94) -> None:
        if not (isinstance(gamma, (int, float)) and gamma > 0.0 and math.isfinite(gamma)):
            raise ValueError(f"EMA power gamma={gamma!r}; expected a positive finite number")
        super().__init__(model, decay=0.0, warmup=False)
        self.gamma = float(gamma)

    def decay_at(self, update: int) -> float:
        """``(1 - 1 / (update + 1)) ** (gamma + 1)``: 0 for the first update."""
        return (1.0 - 1.0 / (update + 1)) ** (self.gamma + 1.0)

    @staticmethod
    def relative_width(gamma: float) -> float:
        """``sigma_rel = sqrt(gamma + 1) / ((gamma + 2) * sqrt(gamma + 3))`` (Karras et al. 2024, eq. 3)."""
        return math.sqrt(gamma + 1.0) / ((gamma + 2.0) * math.sqrt(gamma + 3.0))
