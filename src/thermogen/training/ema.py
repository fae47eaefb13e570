"""Exponential moving average of a model's weights *and* buffers (the book's EMA network)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``ema <- decay * ema + (1 - decay) * model`` after every optimizer step.

    Floating-point parameters and buffers (BatchNorm running statistics
    included, as in the book) are averaged; integer buffers are copied. The
    averaged copy is what the pipeline samples with.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay={decay}; expected a value in [0, 1)")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_float, new_float = [], []
        for ema_t, new_t in zip(self.model.state_dict().values(), model.state_dict().values()):
            if ema_t.is_floating_point():
                ema_float.append(ema_t)
                new_float.append(new_t.detach())
            else:
                ema_t.copy_(new_t)
        torch._foreach_lerp_(ema_float, new_float, 1.0 - self.decay)
