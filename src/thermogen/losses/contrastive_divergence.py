"""The contrastive-divergence loss of an energy-based model, with the book's energy regulariser.

Notation: ``E`` is the energy (lower = more likely, see :mod:`thermogen.interfaces`),
``x+`` a batch of real samples and ``x-`` a batch of samples drawn from the model
(e.g. by a short Langevin chain). The loss (Du & Mordatch 2019, arXiv:1903.08689: the
contrastive loss with its L2 energy regulariser; Generative Deep Learning, 2nd ed., ch. 7)::

    cdiv = mean_i E(x+_i) - mean_i E(x-_i)
    reg  = alpha * mean_i (E(x+_i)^2 + E(x-_i)^2)
    loss = cdiv + reg

Minimising ``cdiv`` lowers the energy of real data and raises that of the model's
samples; ``reg`` keeps the energies near 0 so they cannot drift apart without
bound. The book's network outputs ``f = -E``; its ``fake - real`` loss on f is
this ``cdiv``. The generated samples carry no gradient to the sampler: pass the
energies of detached samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class ContrastiveDivergence:
    """The loss and its terms, all 0-dim tensors (``loss`` carries the graph; log the others detached).

    Attributes:
        loss: ``cdiv + reg``, what the optimizer minimises.
        cdiv: ``mean E(real) - mean E(fake)`` (negative once the model tells them apart).
        reg: ``alpha * mean(E(real)^2 + E(fake)^2)``.
        real_energy: ``mean E(real)``.
        fake_energy: ``mean E(fake)``.

    Example::

        terms = contrastive_divergence_loss(real_energy, fake_energy, alpha=0.1)
        terms.loss.backward()
        log = {"cdiv": terms.cdiv.item(), "reg": terms.reg.item()}
    """

    loss: Tensor
    cdiv: Tensor
    reg: Tensor
    real_energy: Tensor
    fake_energy: Tensor


def contrastive_divergence_loss(real_energy: Tensor, fake_energy: Tensor, alpha: float = 0.1) -> ContrastiveDivergence:
    """The loss of the module docstring from energies ``real_energy`` and ``fake_energy``, each (B,).

    Args:
        real_energy: E of a batch of real samples, shape (B,).
        fake_energy: E of as many generated samples, shape (B,) (paired with the real ones in ``reg``).
        alpha: weight of the energy regulariser (the book's 0.1); 0 leaves plain contrastive divergence.

    Example::

        real_energy, fake_energy = model(torch.cat([real, fake.detach()])).chunk(2)   # one forward pass
        terms = contrastive_divergence_loss(real_energy, fake_energy, alpha=0.1)
        terms.loss.backward()
    """
    if real_energy.ndim != 1 or real_energy.shape != fake_energy.shape:
        raise ValueError(
            f"real energies have shape {tuple(real_energy.shape)} and fake energies {tuple(fake_energy.shape)}; "
            "expected two (B,) tensors of one size"
        )
    if not alpha >= 0:
        raise ValueError(f"alpha={alpha!r}; expected a regulariser weight >= 0")
    real_mean, fake_mean = real_energy.mean(), fake_energy.mean()
    cdiv = real_mean - fake_mean
    reg = alpha * (real_energy**2 + fake_energy**2).mean()
    return ContrastiveDivergence(cdiv + reg, cdiv, reg, real_mean, fake_mean)
