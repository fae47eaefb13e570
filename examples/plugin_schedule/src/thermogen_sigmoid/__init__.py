"""The sigmoid noise schedule as a thermogen plugin.

alpha_bar(t) = (sigmoid(end / tau) - sigmoid((start + t (end - start)) / tau))
               / (sigmoid(end / tau) - sigmoid(start / tau))

so alpha_bar(0) = 1 and alpha_bar(1) = 0 (zero terminal SNR).
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermogen import NoiseSchedule


class SigmoidSchedule(NoiseSchedule):
    """Sigmoid schedule (Chen 2023). Larger ``tau`` makes it closer to linear in t."""

    def __init__(self, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> None:
        if not start < end:
            raise ValueError(f"sigmoid schedule needs start < end; got start={start}, end={end}")
        if tau <= 0:
            raise ValueError(f"tau={tau}; expected a positive number")
        self.start, self.end, self.tau = start, end, tau

    def rates64(self, t: Tensor) -> tuple[Tensor, Tensor]:
        lo = torch.sigmoid(torch.tensor(self.start / self.tau, dtype=torch.float64))
        hi = torch.sigmoid(torch.tensor(self.end / self.tau, dtype=torch.float64))
        value = torch.sigmoid((self.start + t * (self.end - self.start)) / self.tau)
        alpha_bar = ((hi - value) / (hi - lo)).clamp(0.0, 1.0)
        return alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()
