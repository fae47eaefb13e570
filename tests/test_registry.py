"""The registry: built-ins through entry points, a real installed third-party plugin, a broken one, clashes."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import thermogen
from thermogen import registry
from thermogen.errors import PluginError
from thermogen.testing.conformance.mixture import mixture_mismatches

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCE = ROOT / "examples" / "plugin_schedule"
# The plugin-schedule loop: 5,000 samples; allowances for 50 deterministic DDIM steps (measured: means off by
# up to 0.08 stds, stds 10 % small)
PLUGIN_LOOP_N, PLUGIN_LOOP_BIAS = 5000, {"mean_bias": 0.15, "std_bias": 0.15}


def pip_install_target(source: Path, target: Path) -> None:
    """A real ``pip install`` of a package directory into ``target`` (no network, no dependencies)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """thermogen-sigmoid (from examples/) and a deliberately broken plugin, pip-installed onto sys.path."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("plugin_src") / "plugin_schedule"  # build outside examples/: no artefacts there
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip_install_target(source, target)
    broken = tmp_path_factory.mktemp("broken_src")
    (broken / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "thermogen-broken"
        version = "0.0.1"
        [project.entry-points."thermogen.schedules"]
        broken = "thermogen_broken:Broken"
        [project.entry-points."thermogen.samplers"]
        ddim = "thermogen_broken:Broken"
        [tool.setuptools]
        py-modules = ["thermogen_broken"]
    """)
    )
    (broken / "thermogen_broken.py").write_text("raise ImportError('needs libfoo 9')\n")
    pip_install_target(broken, target)
    assert any(p.name.endswith(".dist-info") for p in target.iterdir())
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    registry.refresh()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("thermogen_sigmoid", None)
    importlib.invalidate_caches()
    registry.refresh()


@pytest.fixture
def reexporting_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """thermogen-halfangle, pip-installed onto sys.path: its entry point ``thermogen_halfangle:HalfAngleSchedule``
    names the package, which re-exports the class defined in ``thermogen_halfangle.schedule``."""
    source = tmp_path_factory.mktemp("halfangle_src")
    (source / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "thermogen-halfangle"
        version = "0.0.1"
        [project.entry-points."thermogen.schedules"]
        half_angle = "thermogen_halfangle:HalfAngleSchedule"
        [tool.setuptools]
        packages = ["thermogen_halfangle"]
    """)
    )
    (source / "thermogen_halfangle").mkdir()
    (source / "thermogen_halfangle" / "__init__.py").write_text(
        "from thermogen_halfangle.schedule import HalfAngleSchedule\n"
    )
    (source / "thermogen_halfangle" / "schedule.py").write_text(
        textwrap.dedent("""
        import math

        import torch

        from thermogen import NoiseSchedule


        class HalfAngleSchedule(NoiseSchedule):
            def rates64(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                angle = t * (math.pi / 4)
                return torch.cos(angle), torch.sin(angle)
    """)
    )
    target = tmp_path_factory.mktemp("halfangle_site")
    pip_install_target(source, target)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    registry.refresh()
    yield target
    sys.path.remove(str(target))
    for module in ("thermogen_halfangle", "thermogen_halfangle.schedule"):
        sys.modules.pop(module, None)
    importlib.invalidate_caches()
    registry.refresh()


def test_builtins_are_listed_without_importing_them() -> None:
    name = "thermogen.schedules.improved_cosine"
    registry.refresh()
    saved = sys.modules.pop(name, None)
    try:
        assert {"linear", "cosine", "offset_cosine", "improved_cosine", "scaled_linear"} <= set(
            registry.names("schedules")
        )
        assert name not in sys.modules
    finally:  # put the original module back: a second copy would hold a second ImprovedCosineSchedule class
        if saved is not None:
            sys.modules[name] = saved
        else:
            sys.modules.pop(name, None)
        registry.refresh()


def test_listing_leaves_one_copy_of_each_builtin_module() -> None:
    from thermogen.schedules import improved_cosine

    test_builtins_are_listed_without_importing_them()
    assert sys.modules["thermogen.schedules.improved_cosine"] is improved_cosine
    assert registry.get("schedules", "improved_cosine") is improved_cosine.ImprovedCosineSchedule


def test_builtins_come_from_the_projects_own_entry_points() -> None:
    assert registry.name_of("schedules", registry.get("schedules", "cosine")) == "cosine"


def test_installed_plugin_is_listed_built_saved_and_reloaded(installed_plugins: Path, tmp_path: Path) -> None:
    assert "sigmoid" in registry.names("schedules")
    schedule = thermogen.NoiseSchedule.from_config({"_class_name": "sigmoid", "tau": 0.5})
    assert type(schedule).__module__ == "thermogen_sigmoid"
    assert str(installed_plugins) in sys.modules["thermogen_sigmoid"].__file__
    schedule.save_pretrained(tmp_path / "schedule")
    reloaded = thermogen.NoiseSchedule.from_pretrained(tmp_path / "schedule")
    assert reloaded.to_config() == schedule.to_config() and reloaded.to_config()["_class_name"] == "sigmoid"
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    assert torch.allclose(
        reloaded.signal_rate(t) ** 2 + reloaded.noise_rate(t) ** 2, torch.ones(5, dtype=torch.float64)
    )


@pytest.mark.filterwarnings("ignore:samplers name 'ddim' is provided by several packages")  # the broken plugin
def test_a_re_exported_plugin_class_is_saved_without_being_looked_up_first(
    installed_plugins: Path, reexporting_plugin: Path, tmp_path: Path
) -> None:
    """The entry point's ``module:qualname`` string (``thermogen_halfangle:HalfAngleSchedule``) differs from the
    class's own (``thermogen_halfangle.schedule:HalfAngleSchedule``): the registry compares the classes."""
    from thermogen_halfangle import HalfAngleSchedule

    from thermogen.models.unet import UNet
    from thermogen.pipelines import DiffusionPipeline
    from thermogen.samplers import DDIMSampler

    assert HalfAngleSchedule.__module__ == "thermogen_halfangle.schedule"
    assert "_registered_names" not in HalfAngleSchedule.__dict__  # the registry has never handed it out
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    pipeline = DiffusionPipeline(model, HalfAngleSchedule(), DDIMSampler())
    with pytest.warns(UserWarning, match="'broken'.*needs libfoo 9"):  # a failing plugin is reported, skipped
        pipeline.save_pretrained(tmp_path / "pipeline")
    index = json.loads((tmp_path / "pipeline" / "model_index.json").read_text())
    assert index["schedule"] == "half_angle"
    assert json.loads((tmp_path / "pipeline" / "schedule" / "config.json").read_text())["_class_name"] == "half_angle"
    reloaded = DiffusionPipeline.from_pretrained(tmp_path / "pipeline")
    assert type(reloaded.schedule) is HalfAngleSchedule
    assert registry.name_of("schedules", HalfAngleSchedule) == "half_angle"


def test_broken_plugin_warns_when_listing_and_errors_when_asked_for(installed_plugins: Path) -> None:
    assert "broken" in registry.names("schedules")  # listing names imports nothing
    with pytest.warns(UserWarning, match="'broken'.*needs libfoo 9"):
        loaded = registry.load_all("schedules")
    assert "broken" not in loaded and "sigmoid" in loaded
    with pytest.raises(PluginError, match="thermogen-broken.*failed to import") as info:
        registry.get("schedules", "broken")
    assert isinstance(info.value.__cause__, ImportError)


def test_name_clash_warns_and_the_builtin_wins(installed_plugins: Path) -> None:
    registry.refresh()
    with pytest.warns(UserWarning, match="'ddim' is provided by several packages.*using thermogen"):
        provider = registry.get("samplers", "ddim") if "ddim" in registry.names("samplers") else None
    assert provider is not None and provider.__module__.startswith("thermogen.")


def test_in_process_registration_takes_precedence_and_can_be_removed() -> None:
    @registry.register("schedules", "cosine")
    class Shadow(thermogen.NoiseSchedule):
        def rates64(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.cos(t), torch.sin(t)

    try:
        assert registry.get("schedules", "cosine") is Shadow
    finally:
        registry.unregister("schedules", "cosine")
    assert registry.get("schedules", "cosine") is not Shadow


def test_unknown_kind_and_name() -> None:
    with pytest.raises(PluginError, match="unknown component kind 'colours'"):
        registry.names("colours")
    with pytest.raises(PluginError, match="unknown sampler 'nope'"):
        registry.get("samplers", "nope")
    assert isinstance(PluginError("x"), LookupError)


def test_installed_plugin_schedule_drives_a_sampler_loop(installed_plugins: Path) -> None:
    from thermogen.samplers import DDIMSampler
    from thermogen.testing import GaussianMixture, NoisyMixturePredictor

    mixture = GaussianMixture(
        torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), torch.tensor([0.3, 0.3]), torch.tensor([0.5, 0.5])
    )
    schedule = thermogen.NoiseSchedule.from_config({"_class_name": "sigmoid"})
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn(PLUGIN_LOOP_N, 2, generator=generator, dtype=torch.float64)
    sampler = DDIMSampler(spacing="uniform")
    out = sampler.sample(NoisyMixturePredictor(mixture), x_T, sampler.grid(schedule, 50), generator=generator)
    samples = out.pred_original_sample
    assert torch.isfinite(samples).all()
    # both modes in the right proportion, at the right places, with the right spread: the rule rejects weights
    # (0.55, 0.45) or (0.45, 0.55), means shrunk 5 % and stds x1.3 at this N (tests/testing/test_statistical_power.py)
    problems = mixture_mismatches(samples, mixture, **PLUGIN_LOOP_BIAS)
    assert not problems, problems
