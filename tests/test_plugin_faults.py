"""A broken plugin is reported and skipped, whatever it does at import."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from thermogen import registry
from thermogen.cli import main
from thermogen.errors import PluginError
from thermogen.interfaces import NoiseSchedule

PLUGINS = {
    "exits": ("raise SystemExit(3)\n", "SystemExit: 3"),
    "interrupts": ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    "a_function": ("def Thing():\n    return 1\n", "is a function, not a class"),
}


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Three schedule plugins from a fake distribution: one exits, one raises Ctrl-C, one registers a function."""
    for name, (source, _) in PLUGINS.items():
        module = f"thermogen_fault_{name}"
        (tmp_path / f"{module}.py").write_text(source)
        sys.modules.pop(module, None)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    providers = dict(registry._entry_points("schedules"))
    for name in PLUGINS:
        entry = EntryPoint(name, f"thermogen_fault_{name}:Thing", "thermogen.schedules")
        providers[name] = registry._Provider(entry, "thermogen-faulty")
    monkeypatch.setitem(registry._entry_point_cache, "schedules", providers)
    yield
    registry.refresh()


def test_get_turns_anything_a_plugin_raises_into_a_plugin_error(broken_plugins: None) -> None:
    for name, (_, message) in PLUGINS.items():
        with pytest.raises(PluginError, match=f"'{name}' from package 'thermogen-faulty'.*{message}"):
            registry.get("schedules", name)


def test_list_reports_and_skips_broken_plugins(broken_plugins: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(UserWarning) as caught:
        assert main(["list", "schedules"]) == 0
    out = capsys.readouterr().out
    assert "offset_cosine" in out and not any(f"  {name} " in out for name in PLUGINS)
    warned = " ".join(str(w.message) for w in caught)
    assert all(message in warned for _, message in PLUGINS.values())


def test_loading_a_folder_that_names_a_broken_plugin_is_a_plugin_error(broken_plugins: None, tmp_path: Path) -> None:
    from thermogen.schedules.cosine import OffsetCosineSchedule

    OffsetCosineSchedule().save_pretrained(tmp_path / "s")
    config = tmp_path / "s" / "config.json"
    config.write_text(config.read_text().replace('"offset_cosine"', '"exits"'))
    with pytest.raises(PluginError, match="SystemExit"):
        NoiseSchedule.from_pretrained(tmp_path / "s")


def test_registering_a_function_in_process_is_refused() -> None:
    with pytest.raises(PluginError, match="not a class"):
        registry.register("schedules", "oops")(lambda t: t)
