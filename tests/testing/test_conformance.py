"""The conformance kit catches deliberate faults with a message naming them; its runners (table, CLI, pytest plugin).

The kit's checks on thermogen's own built-ins run in test_schedules.py, test_samplers.py,
tests/samplers/energy/test_energy_samplers.py and below (models, pipelines).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from thermogen import registry
from thermogen.cli import main
from thermogen.interfaces import NoiseSchedule
from thermogen.samplers import DDPMSampler, Denoiser, DiffusionStepOutput, HeunSampler, TimeGrid
from thermogen.testing.conformance import (
    ConformanceError,
    diffusion_samplers,
    energy_samplers,
    format_table,
    models,
    pipelines,
    run_checks,
    schedules,
)


class LeakyCosine(NoiseSchedule):
    """Cosine rates whose noise rate grows 10 % too large near t = 1: signal² + noise² != 1 there."""

    def rates64(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angle = t * math.pi / 2
        return torch.cos(angle), torch.sin(angle) * (1 + 0.1 * t**20)


class EulerClaimingSecondOrder(HeunSampler):
    """Heun's grid and name, but a plain Euler step (first order) while claiming order 2."""

    conformance = {"order": 2.0, "steps": 20}  # noqa: RUF012

    def solve_step(
        self, denoiser: Denoiser, grid: TimeGrid, i: int, sample: torch.Tensor, state: Any = None, generator: Any = None
    ) -> DiffusionStepOutput:
        """One Euler step (one denoiser call) from times[i] to times[i + 1]."""
        denoised = denoiser(sample, *grid.rates(i))
        a, s = grid.rates(i + 1)
        return DiffusionStepOutput(prev_sample=a * denoised.x0 + s * denoised.eps, pred_original_sample=denoised.x0)


class GlobalNoiseDDPM(DDPMSampler):
    """DDPM drawing its noise from the global RNG: ignores the generator it is given."""

    @staticmethod
    def randn_like(sample: torch.Tensor, generator: object) -> torch.Tensor:
        return torch.randn_like(sample)


def test_a_schedule_that_is_not_variance_preserving_near_t1_is_caught() -> None:
    with pytest.raises(ConformanceError, match=r"variance_preserving: signal² \+ noise² != 1 at t = 1") as info:
        schedules.check_variance_preserving(LeakyCosine())
    assert isinstance(info.value, AssertionError) and "signal² + noise² = 1.21" in str(info.value)
    results = {r.name: r for r in run_checks(LeakyCosine(), kind="schedules")}
    assert results["variance_preserving"].verdict == "fail" and results["monotone"].verdict == "pass"
    assert results["rates_in_unit_interval"].verdict == "fail"  # the noise rate exceeds 1 as well


def test_a_first_order_step_claiming_second_order_is_caught() -> None:
    with pytest.raises(ConformanceError, match=r"convergence_order: stated order 2 .*measured: order 1\.0"):
        diffusion_samplers.check_convergence_order(EulerClaimingSecondOrder())
    assert diffusion_samplers.check_convergence_order(HeunSampler()).verdict == "pass"


def test_a_sampler_that_ignores_its_generator_is_caught() -> None:
    state = torch.get_rng_state()
    with pytest.raises(ConformanceError, match="deterministic_under_generator: .*ignores its generator"):
        diffusion_samplers.check_deterministic_under_generator(GlobalNoiseDDPM())
    torch.set_rng_state(state)
    results = {r.name: r for r in run_checks(GlobalNoiseDDPM())}
    assert results["deterministic_under_generator"].verdict == "fail"
    assert results["batch_independence"].verdict == "fail"  # per-sample generators are ignored too
    assert results["reproduces_mixture"].verdict == "pass"  # the distribution itself is right


def test_an_energy_sampler_that_trains_the_model_is_caught() -> None:
    from thermogen.samplers import SGLDSampler

    class Unfrozen(SGLDSampler):
        @staticmethod
        def frozen(model: torch.nn.Module):  # type: ignore[override]
            import contextlib

            return contextlib.nullcontext()

    with pytest.raises(ConformanceError, match="parameters_frozen: during sampling, parameters need grad"):
        energy_samplers.check_parameters_frozen(Unfrozen())


@pytest.mark.parametrize("name", ["unet", "ddpm_unet", "energy_cnn"])
def test_builtin_models_conform(name: str) -> None:
    failures = [r for r in run_checks(name, kind="models") if not r.passed]
    assert not failures, failures


@pytest.mark.parametrize("name", ["diffusion", "ebm"])
def test_builtin_pipelines_conform(name: str) -> None:
    for check in pipelines.CHECKS:
        assert check(name).verdict == "pass"


def test_a_model_without_the_sample_shape_contract_is_caught() -> None:
    from thermogen.models.unet import UNet

    model = UNet(**UNet.conformance["config"])
    model.image_size = "8"  # type: ignore[assignment]
    with pytest.raises(ConformanceError, match=r"sample_shape_contract: UNet.sample_shape must be a tuple of positive"):
        models.check_sample_shape_contract(model)


def test_results_tabulate_and_the_cli_fails_on_a_broken_component(capsys: pytest.CaptureFixture[str]) -> None:
    registry.register("schedules", "leaky_cosine")(LeakyCosine)
    try:
        results = run_checks("leaky_cosine")
        table = format_table(results)
        assert "variance_preserving" in table and "FAIL" in table and "2 failed" in table.splitlines()[-1]
        assert main(["check", "leaky_cosine"]) == 1
        out = capsys.readouterr().out
        assert "leaky_cosine" in out and "signal² + noise² = 1.21" in out
        assert main(["check", "cosine", "--kind", "schedules"]) == 0
    finally:
        registry.unregister("schedules", "leaky_cosine")


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "", "HOME": str(directory)},
        timeout=300,
    )


def test_pytest_plugin_is_inert_without_the_option(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent("""
        import sys

        def test_nothing_heavy_was_imported(pytestconfig):
            assert "torch" not in sys.modules and "thermogen" not in sys.modules
            assert pytestconfig.pluginmanager.has_plugin("thermogen")  # loaded through pytest11
    """)
    )
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pytest_plugin_collects_one_item_per_check_and_component(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "--thermogen-conformance=thermogen", "-k", "offset_cosine", "-vv")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "thermogen-conformance::variance_preserving[offset_cosine] PASSED" in result.stdout
    assert f"{len(schedules.CHECKS)} passed" in result.stdout


def test_an_energy_model_without_a_tuple_sample_shape_is_caught() -> None:
    from thermogen.testing import GaussianMixture, GaussianMixtureEnergy

    class ListShaped(GaussianMixtureEnergy):
        @property
        def sample_shape(self) -> tuple[int, ...]:
            return [2]  # type: ignore[return-value]

    with pytest.raises(ConformanceError, match=r"ListShaped.sample_shape must be a tuple of positive ints"):
        models.check_sample_shape_contract(ListShaped(GaussianMixture([[0.0, 0.0]], [1.0])))
    assert models.check_sample_shape_contract(GaussianMixtureEnergy(GaussianMixture([[0.0, 0.0]], [1.0]))).passed
