"""The Langevin samplers' state: where the chain is, which sets the annealed noise.

With ``final_noise_scale = k < 1`` the noise of step i of an n-step chain is
multiplied by ``k ** (i / (n - 1))``, decaying geometrically from 1 at the first
step to k at the last (cooling the chain towards a mode); ``k = 1`` is no
annealing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChainPosition:
    """``step`` steps taken of the ``num_steps`` planned (the state of ``sgld`` and ``ula``).

    Example::

        state = ULASampler(final_noise_scale=0.1).initial_state(model, x, 100)   # ChainPosition(0, 100)
        noise_scale(0.1, state.advanced())                                    # 0.1 ** (1 / 99)
    """

    step: int
    num_steps: int

    def advanced(self) -> ChainPosition:
        """The position after one more step."""
        return ChainPosition(self.step + 1, self.num_steps)


def noise_scale(final_noise_scale: float, position: ChainPosition) -> float:
    """``k ** (i / (n - 1))`` at step i of n (clamped to k past the last step); exactly 1.0 for k = 1."""
    if final_noise_scale == 1.0:
        return 1.0
    fraction = min(position.step / max(position.num_steps - 1, 1), 1.0)
    return final_noise_scale**fraction
