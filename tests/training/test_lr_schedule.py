"""The learning-rate schedule against its closed form, and its errors."""

from __future__ import annotations

import math

import pytest

from thermogen.training.diffusion import DiffusionTrainingConfig
from thermogen.training.lr_schedule import LearningRateSchedule


def test_constant_by_default() -> None:
    schedule = LearningRateSchedule(base=0.1, total_steps=10)
    assert [schedule.rate(step) for step in range(12)] == [0.1] * 12


@pytest.mark.parametrize("final_ratio", [0.0, 0.2])
def test_cosine_decay_matches_the_closed_form(final_ratio: float) -> None:
    schedule = LearningRateSchedule(base=2.0, total_steps=110, decay="cosine", decay_start=10, final_ratio=final_ratio)
    for step in (0, 9, 10, 35, 60, 85, 110, 200):
        progress = min(1.0, max(0.0, (step - 10) / 100))
        expected = 2.0 * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
        assert schedule.rate(step) == pytest.approx(expected, abs=1e-12), step


def test_linear_decay_and_warmup() -> None:
    schedule = LearningRateSchedule(base=1.0, total_steps=10, decay="linear", decay_start=0, warmup_steps=4)
    assert [schedule.rate(step) for step in range(4)] == pytest.approx([0.25 * 1.0, 0.5 * 0.9, 0.75 * 0.8, 0.7])
    assert schedule.rate(5) == pytest.approx(0.5)
    assert schedule.rate(10) == 0.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lr_decay": "step"}, "lr_decay='step'; expected one of 'none', 'cosine', 'linear'"),
        ({"lr_decay": "cosine", "lr_decay_start": 100}, "lr_decay_start=100; expected an integer in [0, 100)"),
        ({"lr_final_ratio": 1.5}, "lr_final_ratio=1.5; expected a number in [0, 1]"),
        ({"lr_warmup_steps": -1}, "lr_warmup_steps=-1; expected an integer >= 0"),
        ({"learning_rate": 0.0}, "learning_rate=0.0; expected a positive finite number"),
    ],
)
def test_bad_fields_name_the_value_and_what_was_expected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        DiffusionTrainingConfig(steps=100, **fields)  # type: ignore[arg-type]
    assert message in str(raised.value)
