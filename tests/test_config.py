"""Configs: recording, round trips, unknown / missing / mistyped keys, from_config by name."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import thermogen
from thermogen import registry
from thermogen.config import Configurable
from thermogen.config_files import read_config
from thermogen.errors import ConfigError, PluginError
from thermogen.interfaces import NoiseSchedule
from thermogen.normalizer import Normalizer
from thermogen.schedules.cosine import CosineSchedule, OffsetCosineSchedule


def test_constructor_arguments_become_the_config_with_defaults_filled_in() -> None:
    schedule = OffsetCosineSchedule(min_signal_rate=0.05)
    config = schedule.to_config()
    assert config == {
        "_class_name": "offset_cosine",
        "_thermogen_version": thermogen.__version__,
        "max_signal_rate": 0.95,
        "min_signal_rate": 0.05,
    }


def test_from_config_on_the_base_class_builds_the_named_class() -> None:
    rebuilt = NoiseSchedule.from_config(OffsetCosineSchedule(0.9, 0.1).to_config())
    assert isinstance(rebuilt, OffsetCosineSchedule)
    assert rebuilt.config == {"max_signal_rate": 0.9, "min_signal_rate": 0.1}


def test_top_level_from_config_finds_the_kind_by_name() -> None:
    built = thermogen.from_config({"_class_name": "normalizer", "mean": [0.1], "std": [0.2]})
    assert isinstance(built, Normalizer) and built.mean == [0.1]


def test_overrides_win_over_the_config() -> None:
    built = NoiseSchedule.from_config(OffsetCosineSchedule().to_config(), min_signal_rate=0.3)
    assert built.config["min_signal_rate"] == 0.3


def test_unknown_keys_warn_and_are_ignored() -> None:
    with pytest.warns(UserWarning, match=r"unknown keys \['colour'\]"):
        built = NoiseSchedule.from_config({"_class_name": "offset_cosine", "colour": "red"})
    assert isinstance(built, OffsetCosineSchedule)


def test_missing_required_key_names_the_key() -> None:
    @registry.register("components", "needs_width")
    class NeedsWidth(Configurable):
        registry_kind = "components"

        def __init__(self, width: int) -> None:
            self.width = width

    try:
        with pytest.raises(ConfigError, match=r"missing required keys \['width'\]"):
            thermogen.from_config({"_class_name": "needs_width"})
        assert thermogen.from_config({"_class_name": "needs_width", "width": 3}).width == 3
    finally:
        registry.unregister("components", "needs_width")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("max_signal_rate", "high", "float"), ("min_signal_rate", [0.1], "float"), ("max_signal_rate", True, "float")],
)
def test_mistyped_value_names_key_value_and_expectation(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        NoiseSchedule.from_config({"_class_name": "offset_cosine", key: value})
    message = str(info.value)
    assert repr(key) in message and repr(value) in message and expected in message
    assert isinstance(info.value, ValueError)


def test_tuple_arguments_round_trip_through_json_lists() -> None:
    from thermogen.models.unet import UNet

    model = UNet(1, 16, widths=(4, 8), block_depth=1, embedding_dims=4)
    config = json.loads(json.dumps(model.to_config()))
    assert config["widths"] == [4, 8]
    rebuilt = thermogen.from_config(config)
    assert isinstance(rebuilt, UNet)
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in model.parameters())


def test_unknown_class_name_lists_the_registered_ones() -> None:
    with pytest.raises(PluginError, match="unknown schedule 'no_such'.*offset_cosine"):
        NoiseSchedule.from_config({"_class_name": "no_such"})


def test_class_name_of_the_wrong_kind_is_rejected() -> None:
    registry.register("schedules", "normalizer_posing_as_schedule")(Normalizer)
    try:
        with pytest.raises(ConfigError, match="not a NoiseSchedule"):
            NoiseSchedule.from_config({"_class_name": "normalizer_posing_as_schedule"})
    finally:
        registry.unregister("schedules", "normalizer_posing_as_schedule")
    assert Normalizer().to_config()["_class_name"] == "normalizer"


def test_save_pretrained_round_trip_for_a_stateless_component(tmp_path) -> None:
    CosineSchedule().save_pretrained(tmp_path / "schedule")
    assert sorted(p.name for p in (tmp_path / "schedule").iterdir()) == ["config.json"]
    loaded = NoiseSchedule.from_pretrained(tmp_path / "schedule")
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert torch.equal(loaded.signal_rate(t), CosineSchedule().signal_rate(t))


def test_save_pretrained_round_trip_for_a_model_with_weights(tmp_path) -> None:
    from thermogen.models.unet import UNet

    torch.manual_seed(0)
    model = UNet(1, 16, widths=(4, 8), block_depth=1, embedding_dims=4)
    torch.nn.init.normal_(model.head.weight)
    model.save_pretrained(tmp_path / "model")
    loaded = thermogen.NoisePredictor.from_pretrained(tmp_path / "model")
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert not loaded.training


def test_where_to_look_is_split_from_the_overrides_by_one_list_of_keywords(tmp_path) -> None:
    """HubOptions is the one list of from_pretrained's place keywords; components and pipelines both take it."""
    from dataclasses import fields

    from thermogen.hub import HubOptions
    from thermogen.models.unet import UNet
    from thermogen.pipelines import DiffusionPipeline

    keywords = {"subfolder": "s", "revision": "v1", "min_signal_rate": 0.1}
    assert HubOptions.take_from(keywords) == HubOptions(subfolder="s", revision="v1")
    assert keywords == {"min_signal_rate": 0.1}  # the rest are overrides
    assert [f.name for f in fields(HubOptions)] == ["subfolder", "revision", "local_files_only", "cache_dir", "token"]

    OffsetCosineSchedule(0.9, 0.1).save_pretrained(tmp_path / "repo" / "schedule")
    loaded = NoiseSchedule.from_pretrained(tmp_path / "repo", subfolder="schedule", min_signal_rate=0.2)
    assert loaded.config == {"max_signal_rate": 0.9, "min_signal_rate": 0.2}
    with pytest.raises(ConfigError, match="has no argument 'revison'"):  # a misspelt keyword is an unknown override
        NoiseSchedule.from_pretrained(tmp_path / "repo", subfolder="schedule", revison="v1")

    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    DiffusionPipeline(model, OffsetCosineSchedule(), registry.get("samplers", "ddim")()).save_pretrained(
        tmp_path / "repo" / "pipeline"
    )
    pipeline = DiffusionPipeline.from_pretrained(tmp_path / "repo", subfolder="pipeline", sampler="euler")
    assert type(pipeline.sampler).__name__ == "EulerSampler"


def test_read_config_errors_are_clear(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_config(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        read_config(tmp_path / "list.json")


def test_no_warning_for_a_clean_config() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NoiseSchedule.from_config(OffsetCosineSchedule().to_config())
