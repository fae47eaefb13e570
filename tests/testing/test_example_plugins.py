"""The example plugin packages (examples/plugin_*), pip-installed for real, pass the conformance kit."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from locations import ROOT
from test_registry import pip_install_target

from thermogen import registry
from thermogen.testing.conformance import distribution_components, format_table, run_checks

EXAMPLES = {  # example folder -> (distribution, its components as (registry kind, name))
    "plugin_schedule": ("thermogen-sigmoid", [("schedules", "sigmoid")]),
    "plugin_sampler": ("thermogen-midpoint", [("samplers", "midpoint")]),
    "plugin_energy_sampler": ("thermogen-rwm", [("samplers", "rwm")]),
    "plugin_model": ("thermogen-mlp", [("models", "mlp_denoiser")]),
    "plugin_pipeline": ("thermogen-sdedit", [("pipelines", "sdedit")]),
}
MODULES = ("thermogen_sigmoid", "thermogen_midpoint", "thermogen_rwm", "thermogen_mlp", "thermogen_sdedit")


@pytest.fixture(scope="module")
def installed_examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """Every example plugin pip-installed into one target on sys.path; yields (target, source copies)."""
    target, sources = tmp_path_factory.mktemp("examples_site"), tmp_path_factory.mktemp("examples_src")
    for folder in EXAMPLES:  # build outside examples/: no artefacts there
        shutil.copytree(
            ROOT / "examples" / folder,
            sources / folder,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
        pip_install_target(sources / folder, target)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    registry.refresh()
    yield target, sources
    sys.path.remove(str(target))
    for module in MODULES:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()
    registry.refresh()


@pytest.mark.parametrize("folder", sorted(EXAMPLES))
def test_example_plugin_passes_the_kit(folder: str, installed_examples: tuple[Path, Path]) -> None:
    distribution, components = EXAMPLES[folder]
    assert list(distribution_components(distribution)) == components
    results = [result for _, name in components for result in run_checks(name)]
    assert results and all(result.passed for result in results), format_table(results)
    assert not [r for r in results if r.verdict == "skip"], format_table(results)  # every check applies


def test_example_plugin_tests_and_the_pytest_plugin(installed_examples: tuple[Path, Path]) -> None:
    """An example's own tests, and ``pytest --thermogen-conformance`` (default: the project under test), pass."""
    target, sources = installed_examples
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--thermogen-conformance"],
        cwd=sources / "plugin_sampler",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and "18 passed" in result.stdout, result.stdout + result.stderr
