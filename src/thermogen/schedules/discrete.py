"""Discrete DDPM-style schedules (beta_1..beta_T) on thermogen's continuous time axis.

A discrete schedule is a list of per-step noise variances ``betas`` of length
``T = num_train_timesteps`` (Ho et al. 2020). Its cumulative signal variance is

    alpha_bar_i = prod_{j <= i} (1 - beta_j),   i = 0..T-1,

and step ``i`` sits at continuous time ``t = (i + 1) / T``, with ``alpha_bar(0) = 1``:

    alpha_bar((i + 1) / T) = alphas_cumprod[i]   (exactly, to float64 rounding).

Between the knots ``t = k / T`` (k = 0..T) ``log alpha_bar`` is interpolated
linearly in ``t``: each step multiplies the signal variance by the same factor
per unit of time, so the curve is continuous and strictly decreasing (not
differentiable at the knots). One exception: with a zero terminal SNR
(``alpha_bar(1) = 0``, where the log is -inf) the last segment interpolates the
*signal rate* linearly down to 0 instead, so the schedule stays continuous.

Rates are computed from the interpolated log as
``signal = exp(log_alpha_bar / 2)`` and ``noise = sqrt(-expm1(log_alpha_bar))``,
which keeps the noise rate accurate near t = 0 where alpha_bar is close to 1.

Zero terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample
Steps are Flawed", arXiv:2305.08891, Algorithm 1): shift sqrt(alpha_bar) so its
last value is 0 and scale it so its first value is unchanged, then recover the
betas. Then ``signal_rate(1) = 0``, ``noise_rate(1) = 1`` and ``log_snr(1) = -inf``;
an epsilon-predicting sampler cannot start at t = 1 (it divides by the signal
rate), so pair it with v-prediction as the paper does.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor

from thermogen.checks import check_bool, check_int
from thermogen.errors import ConfigError
from thermogen.interfaces import NoiseSchedule


class DiscreteSchedule(NoiseSchedule):
    """Base class of beta-based schedules over ``num_train_timesteps`` steps.

    Subclasses implement :meth:`make_betas` and set whatever it reads *before*
    calling ``super().__init__``, which builds the tables once (float64, on the
    CPU; a copy per device is cached on first use).

    Args:
        num_train_timesteps: T, the number of discrete steps (>= 2).
        rescale_betas_zero_snr: rescale the betas so that the terminal SNR is
            zero (Lin et al. 2023); then ``noise_rate(1) == 1``.

    Example::

        class ConstantBetas(DiscreteSchedule):               # beta_i = beta for every step
            def __init__(self, beta: float = 0.01, num_train_timesteps: int = 1000) -> None:
                self.beta = beta                             # make_betas reads it: set before super().__init__
                super().__init__(num_train_timesteps)

            def make_betas(self) -> Tensor:
                return torch.full((self.num_train_timesteps,), self.beta, dtype=torch.float64)
    """

    def __init__(self, num_train_timesteps: int = 1000, rescale_betas_zero_snr: bool = False) -> None:
        self.num_train_timesteps = check_int("num_train_timesteps", num_train_timesteps, low=2)
        self.rescale_betas_zero_snr = check_bool("rescale_betas_zero_snr", rescale_betas_zero_snr)

        betas = self.make_betas().to(torch.float64)
        if betas.shape != (num_train_timesteps,):
            raise ValueError(
                f"{type(self).__name__}.make_betas returned shape {tuple(betas.shape)}; "
                f"expected ({num_train_timesteps},)"
            )
        if not bool(torch.all((betas > 0) & (betas < 1))):
            bad = betas[~((betas > 0) & (betas < 1))][0].item()
            raise ConfigError(f"{type(self).__name__} has beta={bad!r}; every beta must lie in (0, 1)")
        if rescale_betas_zero_snr:
            betas = rescale_zero_terminal_snr(betas)

        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self._betas = betas
        self._alphas_cumprod = alphas_cumprod
        # A zero terminal alpha_bar is known here, once, so rates64 can branch on a Python bool.
        self._zero_terminal_snr = bool(alphas_cumprod[-1] == 0)
        # Knots of log alpha_bar at t = k / T, k = 0..T. A -inf last knot is replaced by
        # the previous value; rates64 handles that segment separately.
        log_knots = torch.cat([torch.zeros(1, dtype=torch.float64), torch.log(alphas_cumprod)])
        if self._zero_terminal_snr:
            log_knots[-1] = log_knots[-2]
        self._log_knots = log_knots
        self._log_knots_on: dict[torch.device, Tensor] = {log_knots.device: log_knots}

    @abstractmethod
    def make_betas(self) -> Tensor:
        """The schedule's betas before any zero-SNR rescaling: float64, shape (T,), each in (0, 1)."""

    # -- interop -------------------------------------------------------------------

    @property
    def betas(self) -> Tensor:
        """Per-step noise variances beta_i, float64, shape (T,) (a copy; after zero-SNR rescaling if enabled)."""
        return self._betas.clone()

    @property
    def alphas_cumprod(self) -> Tensor:
        """``alpha_bar_i = prod_{j<=i} (1 - beta_j)``, float64, shape (T,), = ``alpha_bar((i + 1) / T)`` (a copy)."""
        return self._alphas_cumprod.clone()

    def timestep_to_time(self, timestep: Tensor) -> Tensor:
        """Integer step ``k`` in 0..T-1 -> continuous time ``(k + 1) / T`` (float64, same shape)."""
        return (timestep.to(torch.float64) + 1.0) / self.num_train_timesteps

    # -- the schedule ------------------------------------------------------------

    def _knots(self, device: torch.device) -> Tensor:
        knots = self._log_knots_on.get(device)
        if knots is None:
            knots = self._log_knots.to(device)
            self._log_knots_on[device] = knots
        return knots

    def log_alpha_bar64(self, t: Tensor) -> Tensor:
        """Interpolated ``log alpha_bar(t)`` for float64 ``t`` (clamped to [0, 1]); in [-inf, 0], same shape.

        Values outside [0, 1] are clamped rather than checked, which would need a host sync.
        """
        knots = self._knots(t.device)
        steps = self.num_train_timesteps
        position = t.clamp(0.0, 1.0) * steps
        k = position.floor().clamp(max=steps - 1)
        frac = position - k
        k = k.long()
        left = knots[k]
        log_alpha_bar = left + frac * (knots[k + 1] - left)
        if self._zero_terminal_snr:
            # Last segment: the signal rate falls linearly from its value at t = (T-1)/T to 0 at t = 1.
            last = left + 2.0 * torch.log1p(-frac)
            log_alpha_bar = torch.where(k == steps - 1, last, log_alpha_bar)
        return log_alpha_bar

    def rates64(self, t: Tensor) -> tuple[Tensor, Tensor]:
        log_alpha_bar = self.log_alpha_bar64(t)
        # abs: -expm1(0) is -0.0, whose sqrt would print as a negative zero.
        return torch.exp(0.5 * log_alpha_bar), torch.sqrt(torch.expm1(log_alpha_bar).abs())


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Lin et al. 2023, Algorithm 1: betas (T,) -> betas (T,) whose alpha_bar ends at exactly 0.

    ``s = sqrt(cumprod(1 - beta))``; ``s <- (s - s_T) * s_1 / (s_1 - s_T)``;
    ``alpha_bar = s**2``; ``alpha_i = alpha_bar_i / alpha_bar_{i-1}`` (``alpha_1 = alpha_bar_1``);
    ``beta = 1 - alpha``. The last beta becomes 1. Computed in the input's dtype (use float64).
    """
    root = torch.sqrt(torch.cumprod(1.0 - betas, dim=0))
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    alpha_bar = root**2
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return 1.0 - alphas
