"""Rules shared by the multistep samplers (DPM-Solver++, UniPC, iPNDM, DEIS).

A multistep sampler of order k extrapolates from the model outputs of the last
k steps. Three things lower the order of a step, all decided on the host:

* warm-up: the first steps have fewer than k outputs to use;
* the step to sigma = 0 (t = 0 of a schedule with alpha_bar(0) = 1) is always
  first order: its result is the latest x_0 estimate itself (the limit of every
  such solver; a log-SNR gap there is infinite);
* ``lower_order_final``: with fewer than ``below`` steps in the loop, the last
  steps count down: the last step is 1st order, the one before at most 2nd,
  and so on (DPM-Solver's code calls this "a key to stabilizing the sampling
  ... with very few steps (especially for steps <= 10)"; diffusers applies it
  below 15 steps for DPM-Solver and DEIS, and at any number of steps for UniPC).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

LOWER_ORDER_FINAL_BELOW = 15
"""With ``lower_order_final``, grids of fewer steps than this lower the order of the last steps (as diffusers)."""


def step_order(
    max_order: int,
    available: int,
    steps_left: int,
    num_steps: int,
    lower_order_final: bool,
    below: float = LOWER_ORDER_FINAL_BELOW,
) -> int:
    """The order of one step.

    Args:
        max_order: the solver's order.
        available: how many model outputs the step can use (the new one included).
        steps_left: steps from this one to the end of the loop, this one included (1 on the last).
        num_steps: steps in the loop.
        lower_order_final: whether the last steps count down to 1st order.
        below: ``lower_order_final`` applies to loops of fewer steps than this.
    """
    order = min(max_order, available)
    if lower_order_final and num_steps < below:
        order = min(order, steps_left)
    return max(order, 1)


def is_finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def linear_combination(terms: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """``sum_i weights_i terms_i`` as a new tensor, in one pass per term (one allocation, in-place adds).

    The one fused form of the multistep samplers: their updates combine up to five tensors, and
    on large batches the temporaries of ``w_1 t_1 + w_2 t_2 + ...`` cost as much as the sums.
    """
    out = terms[0] * weights[0]
    for term, weight in zip(terms[1:], weights[1:]):
        out.add_(term, alpha=weight)
    return out
