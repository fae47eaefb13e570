"""The shared argument checks: what each accepts (and returns), what it refuses, and that every
schedule and network refuses a bad constructor argument with ConfigError naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from thermogen.buffers import ReplayBuffer
from thermogen.checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_positive_int,
    check_positive_ints,
)
from thermogen.errors import ConfigError
from thermogen.models.ddpm_unet import DDPMUNet
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.schedules.improved_cosine import ImprovedCosineSchedule
from thermogen.schedules.linear import LinearSchedule, ScaledLinearSchedule


def test_accepted_values_come_back_as_plain_python_values() -> None:
    assert check_positive_int("n", np.int64(3)) == 3 and type(check_positive_int("n", np.int64(3))) is int
    assert check_int("n", 0, low=0) == 0
    assert check_int("n", 5, low=2, high=5) == 5
    assert check_number("x", np.float32(0.5), 0, 1) == 0.5 and type(check_number("x", np.float32(0.5))) is float
    assert check_number("x", 0, 0, 1) == 0.0  # bounds are inclusive unless told otherwise
    assert check_choice("mode", "b", ("a", "b")) == "b"
    assert check_bool("flag", False) is False
    assert check_positive_ints("widths", (np.int64(4), 8)) == [4, 8]


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: check_positive_int("steps", 0), "steps=0 of type int; expected a positive integer"),
        (lambda: check_positive_int("steps", 3.0), "steps=3.0 of type float; expected a positive integer"),
        (lambda: check_positive_int("steps", True), "steps=True of type bool; expected a positive integer"),
        (lambda: check_int("T", 1, low=2), r"T=1; expected an integer >= 2"),
        (lambda: check_int("order", 4, 1, 3), r"order=4; expected an integer in \[1, 3\]"),
        (lambda: check_int("order", "2", 1, 3), r"order='2' of type str; expected an integer in \[1, 3\]"),
        (lambda: check_number("p", 1.5, 0, 1), r"p=1.5; expected a finite number in \[0, 1\]"),
        (lambda: check_number("p", 1, 0, 1, high_inclusive=False), r"p=1; expected a finite number in \[0, 1\)"),
        (lambda: check_number("p", 0.0, low=0, low_inclusive=False), r"p=0.0; expected a finite number > 0"),
        (lambda: check_number("p", 2, high=1), r"p=2; expected a finite number <= 1"),
        (lambda: check_number("p", float("nan")), r"p=nan; expected a finite number$"),
        (lambda: check_number("p", float("inf"), low=0), r"p=inf; expected a finite number >= 0"),
        (lambda: check_number("p", True), "p=True of type bool; expected a finite number"),
        (lambda: check_number("p", "0.5"), "p='0.5' of type str; expected a finite number"),
        (lambda: check_choice("mode", "c", ("a", "b")), "mode='c'; expected one of 'a', 'b'"),
        (lambda: check_choice("order", True, (1, 2)), "order=True; expected one of 1, 2"),
        (lambda: check_bool("flag", 1), "flag=1 of type int; expected True or False"),
        (lambda: check_positive_ints("widths", []), r"widths=\[\]; expected one or more positive integers"),
        (lambda: check_positive_ints("widths", [8, 0]), r"widths=\[8, 0\]; expected one or more positive"),
        (lambda: check_positive_ints("widths", [8.0]), r"widths=\[8.0\]; expected one or more positive"),
        (lambda: check_positive_ints("widths", 8), "widths=8 of type int; expected one or more positive"),
        (lambda: check_positive_ints("widths", [8], min_length=2), r"widths=\[8\]; expected at least two"),
        (lambda: check_positive_ints("w", [1, 2, 3], 1, 2), r"w=\[1, 2, 3\]; expected 1 to 2 positive integers"),
    ],
)
def test_refused_values_raise_config_error_naming_value_and_expectation(check: Callable[[], Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LinearSchedule(beta_start=0.03, beta_end=0.02), r"beta_start=0.03; expected .* in \(0, 0.02\]"),
        (lambda: ScaledLinearSchedule(beta_end=1.0), r"beta_end=1.0; expected a finite number in \(0, 1\)"),
        (lambda: LinearSchedule(num_train_timesteps=1), "num_train_timesteps=1; expected an integer >= 2"),
        (lambda: LinearSchedule(rescale_betas_zero_snr=1), "rescale_betas_zero_snr=1 of type int"),
        (lambda: ImprovedCosineSchedule(s=-0.1), "s=-0.1; expected a finite number >= 0"),
        (lambda: ImprovedCosineSchedule(max_beta=1.0), r"max_beta=1.0; expected a finite number in \(0, 1\)"),
        (lambda: OffsetCosineSchedule(0.5, 0.6), r"min_signal_rate=0.6; expected a finite number in \[0, 0.5\)"),
        (lambda: OffsetCosineSchedule(1.1, 0.6), r"max_signal_rate=1.1; expected a finite number in \(0, 1\]"),
        (lambda: UNet(1, 8, widths=(8,)), r"widths=\[8\]; expected at least two positive integers"),
        (lambda: UNet(1, 8, widths=(8.0, 16)), r"widths=\[8.0, 16\]"),
        (lambda: UNet(0, 8, widths=(4, 8)), "in_channels=0"),
        (lambda: UNet(1, 8, widths=(4, 8), block_depth=0), "block_depth=0"),
        (lambda: UNet(1, 6, widths=(4, 8, 8)), "image_size=6 must be a positive multiple of 4"),
        (lambda: UNet(1, 8, widths=(4, 8), embedding_dims=5), "embedding_dims=5; expected a positive even number"),
        (lambda: UNet(1, 8, widths=(4, 8), norm="layer"), "norm='layer'; expected one of 'batch', 'group'"),
        (lambda: UNet(1, 8, widths=(4, 8), embedding_max_frequency=0.0), "embedding_max_frequency=0.0"),
        (lambda: UNet(1, 8, widths=(8, 100_000)), "widest convolution weight .* would allocate"),
        (lambda: DDPMUNet(1, 8, widths=(4, 8), dropout=1.0), r"dropout=1.0; expected a finite number in \[0, 1\)"),
        (lambda: DDPMUNet(1, 8, widths=(4, 8), attention="yes"), "attention='yes' of type str"),
        (lambda: EnergyCNN(1, 8, widths=()), r"widths=\[\]; expected one or more positive integers"),
        (lambda: EnergyCNN(1, 0), "image_size=0"),
        (lambda: EnergyCNN(1, 8, hidden=2.5), "hidden=2.5"),
        (lambda: EnergyCNN(1, 2**20), "EnergyCNN dense weight .* would allocate"),
        (lambda: ReplayBuffer(capacity=0), "capacity=0"),
        (lambda: ReplayBuffer(reinit_prob=1.5), r"reinit_prob=1.5; expected a finite number in \[0, 1\]"),
        (lambda: ReplayBuffer(sample_shape=(1, 0, 4)), r"sample_shape=\[1, 0, 4\]"),
        (lambda: ReplayBuffer(init="zeros"), "init='zeros'; expected one of 'uniform', 'gaussian'"),
    ],
)
def test_schedules_networks_and_buffers_refuse_bad_arguments_with_config_error(
    build: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build()
