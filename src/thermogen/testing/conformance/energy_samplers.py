"""Conformance checks for energy samplers (:class:`thermogen.samplers.EnergySampler`).

Ground truth is :data:`MIXTURE`, a 2-D Gaussian mixture with overlapping modes, whose exact
energy ``-log p`` and score are :class:`~thermogen.testing.GaussianMixtureEnergy`. Every chain
starts in the 0.3-weight mode, so a sampler must cross between modes to pass. A sampler
states the configuration and chain length that reach the target in its class's
``conformance`` dict (``"config"``, and ``"steps"``: the chain length, default the sampler's ``num_steps``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.base import EnergySampler
from thermogen.testing.conformance.components import claims, configuration_only_result, rebuilt_from_config, resolve
from thermogen.testing.conformance.mixture import mixture_mismatches
from thermogen.testing.conformance.report import CheckResult, passed, require
from thermogen.testing.gaussian_mixture import GaussianMixture, GaussianMixtureEnergy

MIXTURE = GaussianMixture([[-1.3, 0.0], [1.3, 0.0], [0.0, 1.6]], [0.7, 0.7, 0.7], [0.5, 0.3, 0.2])
CHAINS = 4000
"""Chains in the mixture check: power to reject weights (0.45, 0.33, 0.22) and means shrunk 10 %."""
EXACT_BIAS, UNADJUSTED_BIAS = 0.02, 0.1
"""Allowances of the mixture rule (stds in a mean, relative in a std): Metropolis-corrected samplers
(those reporting an acceptance rate) have no discretisation bias; unadjusted Langevin has some."""


def _sampler(sampler: Any) -> EnergySampler:
    return resolve(sampler, "samplers")


def _start(n: int) -> Tensor:
    return torch.tensor([[1.3, 0.0]], dtype=torch.float64).repeat(n, 1)  # every chain in the 0.3-weight mode


def check_recovers_mixture(sampler: Any, num_steps: int | None = None, bias: float | None = None) -> CheckResult:
    """4,000 chains from one mode reach the mixture's label shares, per-mode means and stds.

    Samplers that report an acceptance rate (Metropolis-corrected: MALA, HMC) are held to
    0.02 (stds in a mean, relative in a std) beyond the sampling error; the others to 0.1.
    ``bias`` overrides that allowance. The acceptance rate, when reported, must lie in (0.5, 0.999).
    """
    s = _sampler(sampler)
    budget = num_steps or int(claims(s).get("steps", s.num_steps))
    model = GaussianMixtureEnergy(MIXTURE).double()
    out = s.sample(model, _start(CHAINS), num_steps=budget, generator=torch.Generator().manual_seed(1))
    rate = out.acceptance_rate
    if bias is None:
        bias = EXACT_BIAS if rate is not None else UNADJUSTED_BIAS
    where = f"{budget} steps, {'Metropolis-corrected' if rate is not None else 'unadjusted'} rule ({bias})"
    require(bool(out.sample.isfinite().all()), "recovers_mixture", where, "non-finite samples")
    problems = mixture_mismatches(out.sample, MIXTURE, mean_bias=bias, std_bias=bias)
    require(not problems, "recovers_mixture", f"chains do not reach the mixture ({where})", "; ".join(problems))
    if rate is not None:
        require(0.5 < rate < 0.999, "recovers_mixture", "acceptance rate outside (0.5, 0.999)", f"{rate:.3f}")
    shares = torch.bincount(MIXTURE.component_of(out.sample), minlength=3).double() / CHAINS
    accepted = "none reported" if rate is None else f"{rate:.3f}"
    return passed("recovers_mixture", f"mode shares {[round(x, 3) for x in shares.tolist()]}, acceptance {accepted}")


class _WatchedEnergy(EnergyModel):
    """The mixture energy times a learnable scale (1.0), recording the parameter's state at each call."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = GaussianMixtureEnergy(MIXTURE)
        self.scale = torch.nn.Parameter(torch.ones((), dtype=torch.float64))
        self.seen: list[tuple[bool, bool]] = []

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.inner.sample_shape

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append((self.scale.requires_grad, self.training))
        return self.scale * self.inner(x)


def check_parameters_frozen(sampler: Any) -> CheckResult:
    """While sampling, no parameter requires grad and the model is in eval mode; afterwards both are restored,
    the parameter is unchanged and has no gradient."""
    s = _sampler(sampler)
    model = _WatchedEnergy().train()
    out = s.sample(model, _start(8), num_steps=3, generator=torch.Generator().manual_seed(0))
    require(bool(model.seen), "parameters_frozen", "the sampler never called the energy model", "0 calls")
    leaked = [state for state in model.seen if state != (False, False)]
    require(
        not leaked,
        "parameters_frozen",
        "during sampling, parameters need grad or the model is in train mode",
        f"{len(leaked)} of {len(model.seen)} calls saw (requires_grad, training) = {leaked[0] if leaked else ''}",
    )
    restored = model.scale.requires_grad and model.training
    require(
        restored,
        "parameters_frozen",
        "after sampling, requires_grad and train mode are restored",
        f"requires_grad {model.scale.requires_grad}, training {model.training}",
    )
    require(
        model.scale.grad is None and float(model.scale.detach()) == 1.0,
        "parameters_frozen",
        "sampling changed the parameter or left a gradient",
        f"value {float(model.scale.detach())}, grad {model.scale.grad}",
    )
    require(
        out.sample.requires_grad is False,
        "parameters_frozen",
        "the samples carry an autograd graph",
        "requires_grad True",
    )
    return passed("parameters_frozen", f"{len(model.seen)} energy calls, frozen and restored")


def check_deterministic_under_generator(sampler: Any) -> CheckResult:
    """Two chains with one seed give the same samples; the global RNG is not touched."""
    s = _sampler(sampler)
    model = GaussianMixtureEnergy(MIXTURE).double()
    state = torch.get_rng_state()
    first, again = (
        s.sample(model, _start(32), num_steps=5, generator=torch.Generator().manual_seed(3)).sample for _ in range(2)
    )
    touched = not torch.equal(state, torch.get_rng_state())
    torch.set_rng_state(state)
    difference = float((first - again).abs().max())
    require(
        difference == 0.0,
        "deterministic_under_generator",
        "two runs with torch.Generator().manual_seed(3) differ: the sampler ignores its generator",
        f"max |difference| {difference:.3g}",
    )
    require(
        not touched,
        "deterministic_under_generator",
        "the sampler draws from the global RNG",
        "torch.get_rng_state() changed",
    )
    return passed("deterministic_under_generator", "same seed, same samples")


def check_dtype_kept(sampler: Any) -> CheckResult:
    """A float32 chain stays float32 and finite."""
    s = _sampler(sampler)
    out = s.sample(GaussianMixtureEnergy(MIXTURE), _start(16).float(), num_steps=5, generator=torch.Generator())
    require(out.sample.dtype == torch.float32, "dtype_kept", "float32 start", f"dtype {out.sample.dtype}")
    require(bool(out.sample.isfinite().all()), "dtype_kept", "float32 start", "non-finite samples")
    return passed("dtype_kept", "float32")


def check_config_round_trip(sampler: Any) -> CheckResult:
    """``from_config(json(to_config()))`` is the same class with the same config."""
    config, _ = rebuilt_from_config(_sampler(sampler), "samplers")
    return passed("config_round_trip", config["_class_name"])


def check_configuration_only(sampler: Any) -> CheckResult:
    """The sampler is configuration only: two chains run interleaved on one object each equal the chain run
    alone (bitwise), and sampling leaves the object's attributes unchanged."""
    s = _sampler(sampler)
    model = GaussianMixtureEnergy(MIXTURE).double()
    before = repr(s.__dict__)
    starts = [_start(16), _start(16) + 0.5]
    lengths = (6, 4)
    alone = [
        s.sample(model, x, num_steps=n, generator=torch.Generator().manual_seed(20 + k)).sample
        for k, (x, n) in enumerate(zip(starts, lengths))
    ]
    xs = list(starts)
    states = [s.initial_state(model, x, n) for x, n in zip(starts, lengths)]
    generators = [torch.Generator().manual_seed(20 + k) for k in range(2)]
    with s.frozen(model):
        for i in range(max(lengths)):
            for k, n in enumerate(lengths):
                if i < n:
                    out = s.step(model, xs[k], states[k], generator=generators[k])
                    xs[k], states[k] = out.sample, out.state
    return configuration_only_result(xs, alone, before, s, "chain")


CHECKS = (
    check_recovers_mixture,
    check_parameters_frozen,
    check_deterministic_under_generator,
    check_configuration_only,
    check_dtype_kept,
    check_config_round_trip,
)
"""Every energy-sampler check, in the order :func:`~thermogen.testing.conformance.run_checks` runs them."""
