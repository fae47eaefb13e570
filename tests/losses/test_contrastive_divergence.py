"""The contrastive-divergence loss against values and gradients computed by hand.

loss = mean E(real) - mean E(fake) + alpha * mean(E(real)^2 + E(fake)^2).
"""

from __future__ import annotations

import pytest
import torch

from thermogen.losses import contrastive_divergence_loss


def test_terms_match_the_hand_computed_values() -> None:
    # real [1, 2], fake [3, -1], alpha 0.1:
    # cdiv = 1.5 - 1 = 0.5; reg = 0.1 * mean(1 + 9, 4 + 1) = 0.75; loss = 1.25
    terms = contrastive_divergence_loss(torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]), alpha=0.1)
    assert float(terms.cdiv) == pytest.approx(0.5)
    assert float(terms.reg) == pytest.approx(0.75)
    assert float(terms.loss) == pytest.approx(1.25)
    assert float(terms.real_energy) == pytest.approx(1.5) and float(terms.fake_energy) == pytest.approx(1.0)


def test_gradient_lowers_real_and_raises_fake_energies() -> None:
    """d loss / d E(real)_i = 1/B + 2 alpha E(real)_i / B; d loss / d E(fake)_i = -1/B + 2 alpha E(fake)_i / B."""
    real = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    fake = torch.tensor([3.0, -1.0], dtype=torch.float64, requires_grad=True)
    contrastive_divergence_loss(real, fake, alpha=0.1).loss.backward()
    assert real.grad is not None and fake.grad is not None
    torch.testing.assert_close(real.grad, torch.tensor([0.6, 0.7], dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(fake.grad, torch.tensor([-0.2, -0.6], dtype=torch.float64), rtol=0, atol=1e-15)


def test_alpha_zero_is_plain_contrastive_divergence() -> None:
    terms = contrastive_divergence_loss(torch.tensor([-2.0, 0.0, 5.0]), torch.tensor([4.0, 4.0, 4.0]), alpha=0.0)
    assert float(terms.reg) == 0.0 and float(terms.loss) == pytest.approx(1.0 - 4.0)


@pytest.mark.parametrize(
    ("real", "fake", "alpha", "message"),
    [
        (torch.zeros(3), torch.zeros(2), 0.1, r"real energies have shape \(3,\) and fake energies \(2,\)"),
        (torch.zeros(2, 1), torch.zeros(2, 1), 0.1, r"expected two \(B,\) tensors"),
        (torch.zeros(2), torch.zeros(2), -0.1, "alpha=-0.1; expected a regulariser weight >= 0"),
    ],
)
def test_bad_inputs_are_named(real: torch.Tensor, fake: torch.Tensor, alpha: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        contrastive_divergence_loss(real, fake, alpha=alpha)
