"""Linear-beta schedules: DDPM's ``linear`` and latent diffusion's ``scaled_linear``.

Rates versus the book: the book's ``linear_diffusion_schedule`` (Generative Deep
Learning, ch. 8) returns ``alpha_bar`` and ``1 - alpha_bar`` as its "signal rate"
and "noise rate" and plots those (Figure 8-4). In thermogen the *rates* are
their square roots, ``signal_rate = sqrt(alpha_bar)`` and
``noise_rate = sqrt(1 - alpha_bar)``, so that ``x_t = signal_rate * x_0 +
noise_rate * eps`` and signal² + noise² = 1; ``alpha_bar(t)`` gives the book's
curves. The book also builds its betas as ``1e-4 + t * (0.02 - 1e-4)`` on the
grid ``t = i / 1000, i = 0..999`` (so its last beta is 0.01998, not 0.02) and has
``alpha_bar(0) = 1 - beta_0``; here the betas are diffusers' ``linspace`` and
``alpha_bar(0) = 1`` (see :mod:`thermogen.schedules.discrete` for the time axis).
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermogen.checks import check_number
from thermogen.schedules.discrete import DiscreteSchedule


class LinearSchedule(DiscreteSchedule):
    """DDPM (Ho et al. 2020): ``beta_i = linspace(beta_start, beta_end, T)[i]``.

    With the defaults alpha_bar(1) ≈ 4.0e-5 (signal rate ≈ 0.0064), the
    non-zero terminal SNR that Lin et al. 2023 criticise; see
    ``rescale_betas_zero_snr``. Equals diffusers' ``beta_schedule="linear"``
    (computed in float64 here, float32 there).

    Args:
        beta_start: first beta, in (0, beta_end].
        beta_end: last beta, in [beta_start, 1).
        num_train_timesteps: T (>= 2).
        rescale_betas_zero_snr: rescale to zero terminal SNR (Lin et al. 2023).

    Example::

        schedule = LinearSchedule()                          # DDPM: betas 1e-4 .. 0.02 over 1000 steps
        schedule.alphas_cumprod[-1]                          # about 4.0e-5, = alpha_bar(1.0)
        schedule.timestep_to_time(torch.tensor([0, 999]))    # t = 0.001 and 1.0
    """

    def __init__(
        self,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        num_train_timesteps: int = 1000,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        self.beta_end = check_number("beta_end", beta_end, 0, 1, low_inclusive=False, high_inclusive=False)
        self.beta_start = check_number("beta_start", beta_start, 0, self.beta_end, low_inclusive=False)
        super().__init__(num_train_timesteps, rescale_betas_zero_snr)

    def make_betas(self) -> Tensor:
        return torch.linspace(self.beta_start, self.beta_end, self.num_train_timesteps, dtype=torch.float64)


class ScaledLinearSchedule(LinearSchedule):
    """Latent diffusion / Stable Diffusion: ``beta_i = linspace(sqrt(beta_start), sqrt(beta_end), T)[i] ** 2``.

    Equals diffusers' ``beta_schedule="scaled_linear"``. With the defaults
    alpha_bar(1) ≈ 4.7e-3 (signal rate ≈ 0.068): far from pure noise at t = 1.
    The arguments are those of :class:`LinearSchedule`, with other defaults;
    only the betas differ (linear in ``sqrt(beta)`` instead of ``beta``).

    Example::

        ScaledLinearSchedule().signal_rate(1.0)              # about 0.068: not pure noise at t = 1
        ScaledLinearSchedule(rescale_betas_zero_snr=True).rates(1.0)   # (0, 1): pair with v-prediction
    """

    def __init__(
        self,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        num_train_timesteps: int = 1000,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        super().__init__(beta_start, beta_end, num_train_timesteps, rescale_betas_zero_snr)

    def make_betas(self) -> Tensor:
        roots = torch.linspace(self.beta_start**0.5, self.beta_end**0.5, self.num_train_timesteps, dtype=torch.float64)
        return roots**2
