"""An isotropic Gaussian mixture and its exact diffusion quantities: ground truth for samplers.

    p(x) = sum_k w_k N(x; mu_k, std_k^2 I),   x in R^D.

Under the variance-preserving forward process ``x_t = a x_0 + s eps`` with
``a = sqrt(1 - s^2)`` (s = noise level), the noisy marginal is again a mixture:

    p_s(x) = sum_k w_k N(x; a mu_k, v_k I),   v_k = a^2 std_k^2 + s^2,

so everything a perfect denoiser would output is closed form. With the
responsibilities ``r_k(x) = w_k N(x; a mu_k, v_k I) / p_s(x)``:

    score     grad log p_s(x) = sum_k r_k (a mu_k - x) / v_k
    epsilon   E[eps | x_t]    = -s grad log p_s(x) = s sum_k r_k (x - a mu_k) / v_k
    x_0       E[x_0 | x_t]    = sum_k r_k (mu_k + (a std_k^2 / v_k) (x - a mu_k))
    v         a eps - s x_0

All of them are finite at both ends (s = 0: data; s = 1: pure noise) as long as
every std_k > 0. They are computed in float64 and cast to the input's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.interfaces import EnergyModel, NoisePredictor
from thermogen.registry import register

ArrayLike = Tensor | Sequence[Any]


class GaussianMixture:
    """``sum_k w_k N(mu_k, std_k^2 I)`` in D dimensions.

    Args:
        means: (K, D) component means.
        stds: (K,) component standard deviations, each > 0.
        weights: (K,) mixture weights, each > 0 (normalised to sum 1); None: uniform.

    Example::

        mixture = GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], stds=[0.5, 0.5])   # two equal modes in 2-D
        x = mixture.sample(1000, generator=torch.Generator().manual_seed(0))   # (1000, 2)
        mixture.log_prob(x), mixture.component_of(x)         # (1000,) each
    """

    def __init__(self, means: ArrayLike, stds: ArrayLike, weights: ArrayLike | None = None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64).detach().cpu()
        self.stds = torch.as_tensor(stds, dtype=torch.float64).detach().cpu()
        k = self.means.shape[0] if self.means.ndim == 2 else -1
        if self.means.ndim != 2 or k < 1:
            raise ValueError(f"means has shape {tuple(self.means.shape)}; expected (K, D) with K >= 1")
        if self.stds.shape != (k,) or not bool(torch.all(self.stds > 0)):
            raise ValueError(f"stds {self.stds.tolist()} (shape {tuple(self.stds.shape)}); expected ({k},) values > 0")
        w = torch.ones(k) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        w = w.to(torch.float64).detach().cpu()
        if w.shape != (k,) or not bool(torch.all(w > 0)):
            raise ValueError(f"weights {w.tolist()} (shape {tuple(w.shape)}); expected ({k},) values > 0")
        self.weights = w / w.sum()

    @property
    def num_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.num_components}, D={self.dim})"

    # -- serialisation ---------------------------------------------------------------

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON form: ``{"means": [[...]], "stds": [...], "weights": [...]}``."""
        return {"means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GaussianMixture:
        missing = [key for key in ("means", "stds", "weights") if key not in data]
        if missing:
            raise ConfigError(f"Gaussian mixture dict is missing keys {missing}; expected means, stds, weights")
        return cls(data["means"], data["stds"], data["weights"])

    # -- the distribution ------------------------------------------------------------

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """``n`` samples, (n, D), on the CPU."""
        return self.sample_with_components(n, generator, dtype)[0]

    def sample_with_components(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[Tensor, Tensor]:
        """``n`` samples (n, D) and the index of the component each came from (n,), int64."""
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[component] + self.stds[component, None] * noise
        return x.to(dtype), component

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` for x (B, D) -> (B,), in x's dtype."""
        return _log_prob(x, self.means, self.stds, self.weights)

    def component_of(self, x: Tensor) -> Tensor:
        """The most responsible component of each row of x (B, D) -> (B,) int64."""
        return _log_joint(x.to(torch.float64), self.means, self.stds, self.weights).argmax(dim=1)

    def noised(self, noise_level: float) -> GaussianMixture:
        """The law of ``a x_0 + s eps`` (s = noise_level, a = sqrt(1 - s²)): means a mu_k, stds sqrt(a² std_k² + s²)."""
        if not 0.0 <= noise_level <= 1.0:
            raise ValueError(f"noise_level={noise_level!r}; expected a number in [0, 1]")
        a = math.sqrt(1.0 - noise_level**2)
        return GaussianMixture(a * self.means, torch.sqrt(a**2 * self.stds**2 + noise_level**2), self.weights)


# -- closed forms on float64 tensors ----------------------------------------------------


def _log_joint(x: Tensor, means: Tensor, scales: Tensor, weights: Tensor, is_variance: bool = False) -> Tensor:
    """``log w_k + log N(x; mean_k, var_k I)``: x (B, D), means (B, K, D) or (K, D), scales = stds or variances."""
    var = scales if is_variance else scales**2
    diff = x[:, None, :] - means
    d = x.shape[1]
    return torch.log(weights) - 0.5 * (diff.pow(2).sum(-1) / var + d * torch.log(2 * math.pi * var))


def _responsibilities(log_joint: Tensor) -> Tensor:
    """softmax over the components (B, K) -> (B, K)."""
    return torch.exp(log_joint - _logsumexp(log_joint))


def _logsumexp(log_joint: Tensor) -> Tensor:
    """``log sum_k exp`` over the components (B, K) -> (B, 1), written out: torch.softmax, logsumexp
    and max(dim) over a short last dim of many rows take milliseconds with 2 threads on a busy CPU."""
    top = log_joint.amax(dim=1, keepdim=True)
    return top + torch.log(torch.exp(log_joint - top).sum(dim=1, keepdim=True))


def _log_prob(x: Tensor, means: Tensor, stds: Tensor, weights: Tensor) -> Tensor:
    x64 = x.reshape(x.shape[0], -1).to(torch.float64)
    return _logsumexp(_log_joint(x64, means, stds, weights))[:, 0].to(x.dtype)


def _noisy_posterior(
    x: Tensor, noise_level: Tensor, means: Tensor, stds: Tensor, weights: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """For x (B, D) and s (B,): responsibilities r (B, K), a (B, 1, 1), centred x - a mu (B, K, D), v (B, K)."""
    s = noise_level.reshape(-1, 1)
    a = torch.sqrt((1.0 - s**2).clamp(min=0.0))
    v = a**2 * stds**2 + s**2  # (B, K)
    centred_means = a[:, :, None] * means  # (B, K, D)
    r = _responsibilities(_log_joint(x, centred_means, v, weights, is_variance=True))
    return r, a[:, :, None], x[:, None, :] - centred_means, v


def exact_prediction(
    x: Tensor, noise_level: Tensor, means: Tensor, stds: Tensor, weights: Tensor, prediction_type: str
) -> Tensor:
    """The exact ``epsilon``, ``sample`` (E[x_0 | x_t]) or ``v`` for x (B, D) at noise levels (B,), float64."""
    r, a, centred, v = _noisy_posterior(x, noise_level, means, stds, weights)
    s = noise_level.reshape(-1, 1)
    # broadcast-and-sum rather than einsum: no BLAS call (and no BLAS thread pool) for tiny matrices
    eps = s * ((r / v)[:, :, None] * centred).sum(1)
    if prediction_type == "epsilon":
        return eps
    x0 = (r[:, :, None] * (means + (a * stds[:, None] ** 2 / v[:, :, None]) * centred)).sum(1)
    if prediction_type == "sample":
        return x0
    return a[:, :, 0] * eps - s * x0


@register("models", "gaussian_mixture_predictor")
class NoisyMixturePredictor(NoisePredictor):
    """The exact denoiser of a :class:`GaussianMixture` under the VP forward process (no parameters).

    ``forward(noisy (B, ...), noise_level (B,))`` flattens each sample to D
    values and returns the exact prediction in ``noisy``'s dtype and shape.

    Args:
        mixture: the clean data distribution (a GaussianMixture or its ``to_dict()``).
        prediction_type: "epsilon" (default), "sample" (E[x_0 | x_t]) or "v".

    Example::

        model = NoisyMixturePredictor(mixture)               # the perfect denoiser: sampler error only
        sampler = DDIMSampler()
        out = sampler.sample(model, torch.randn(1000, 2), sampler.grid(LinearSchedule(), 50))
        # out.sample is (1000, 2), close in law to mixture.sample(1000)
    """

    means: Tensor
    stds: Tensor
    weights: Tensor

    def __init__(self, mixture: GaussianMixture | dict[str, Any], prediction_type: str = "epsilon") -> None:
        super().__init__()
        mix = mixture if isinstance(mixture, GaussianMixture) else GaussianMixture.from_dict(mixture)
        self.__dict__["_config"]["mixture"] = mix.to_dict()  # record the mixture itself as JSON
        self.mixture = mix
        self.set_prediction_type(prediction_type)
        self.register_buffer("means", mix.means.clone(), persistent=False)
        self.register_buffer("stds", mix.stds.clone(), persistent=False)
        self.register_buffer("weights", mix.weights.clone(), persistent=False)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """``(D,)``: one point of the mixture."""
        return (self.mixture.dim,)

    def forward(self, noisy: Tensor, noise_level: Tensor) -> Tensor:
        x = noisy.reshape(noisy.shape[0], -1).to(torch.float64)
        if x.shape[1] != self.mixture.dim:
            raise ValueError(f"sample has {x.shape[1]} values per item; the mixture has D = {self.mixture.dim}")
        s = noise_level.to(device=x.device, dtype=torch.float64).reshape(-1).expand(x.shape[0])
        out = exact_prediction(x, s, self.means, self.stds, self.weights, self.prediction_type)
        return out.to(noisy.dtype).reshape(noisy.shape)


@register("models", "gaussian_mixture_energy")
class GaussianMixtureEnergy(EnergyModel):
    """``E(x) = -log p(x)`` of a :class:`GaussianMixture`, with the closed-form score.

    ``score(x) = grad log p(x) = sum_k r_k(x) (mu_k - x) / std_k^2``. Inputs (B, *sample_shape)
    are flattened to (B, D); outputs are in the input's dtype.

    Args:
        mixture: the distribution (a GaussianMixture or its ``to_dict()``).
        sample_shape: the shape one sample is seen in, e.g. (1, 4, 4) to treat D = 16 values as a
            1 x 4 x 4 image; None = (D,).

    Example::

        energy = GaussianMixtureEnergy(GaussianMixture([[-1.0, 0.0], [1.0, 0.0]], [0.5, 0.5]))
        out = MALASampler(step_size=0.1).sample(energy, torch.zeros(1000, 2), num_steps=300)
        # out.sample is (1000, 2), drawn from the mixture up to the chain's mixing
    """

    means: Tensor
    stds: Tensor
    weights: Tensor

    def __init__(self, mixture: GaussianMixture | dict[str, Any], sample_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        mix = mixture if isinstance(mixture, GaussianMixture) else GaussianMixture.from_dict(mixture)
        self.__dict__["_config"]["mixture"] = mix.to_dict()
        shape = (mix.dim,) if sample_shape is None else tuple(int(n) for n in sample_shape)
        if not shape or math.prod(shape) != mix.dim or min(shape) < 1:
            raise ConfigError(
                f"sample_shape={sample_shape!r} holds {math.prod(shape)} values; the mixture has D = {mix.dim}"
            )
        self._sample_shape = shape
        self.mixture = mix
        self.register_buffer("means", mix.means.clone(), persistent=False)
        self.register_buffer("stds", mix.stds.clone(), persistent=False)
        self.register_buffer("weights", mix.weights.clone(), persistent=False)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """(D,), or the shape given to the constructor."""
        return self._sample_shape

    def _flat(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        if flat.shape[1] != self.mixture.dim:
            raise ValueError(f"sample has {flat.shape[1]} values per item; the mixture has D = {self.mixture.dim}")
        return flat

    def forward(self, x: Tensor) -> Tensor:
        return -_log_prob(self._flat(x), self.means, self.stds, self.weights).to(x.dtype)

    def energy_and_score(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = self._flat(x)
        log_joint = _log_joint(flat, self.means, self.stds, self.weights)
        r = _responsibilities(log_joint)
        score = ((r / self.stds**2)[:, :, None] * (self.means - flat[:, None, :])).sum(1)
        energy = -_logsumexp(log_joint)[:, 0]
        return energy.to(x.dtype), score.to(x.dtype).reshape(x.shape)
