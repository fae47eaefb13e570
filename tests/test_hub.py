"""Hub I/O with the real huggingface_hub client against a local Hub server: push -> from_pretrained, offline errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thermogen.errors import PretrainedNotFoundError
from thermogen.hub import HubOptions, resolve_directory
from thermogen.interfaces import NoisePredictor, NoiseSchedule
from thermogen.models.unet import UNet
from thermogen.schedules.cosine import OffsetCosineSchedule


def tiny_model() -> UNet:
    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    torch.nn.init.normal_(model.head.weight)
    return model.eval()


def test_component_push_to_hub_then_from_pretrained(local_hub, tmp_path: Path) -> None:
    model = tiny_model()
    url = model.push_to_hub("org/tiny-unet", token=local_hub.token, commit_message="first")
    assert "org/tiny-unet" in url
    assert sorted(local_hub.list_files("org/tiny-unet")) == ["config.json", "model.safetensors"]
    loaded = NoisePredictor.from_pretrained("org/tiny-unet", cache_dir=tmp_path / "cache")
    x = torch.randn(2, 1, 8, 8)
    level = torch.tensor([0.3, 0.9])
    assert torch.equal(loaded(x, level), model(x, level))


def test_revisions_and_subfolders(local_hub, tmp_path: Path) -> None:
    OffsetCosineSchedule(0.9, 0.1).push_to_hub("org/schedule", token=local_hub.token)
    first_sha = local_hub.hub.repos[("model", "org/schedule")].branches["main"]
    OffsetCosineSchedule(0.8, 0.2).push_to_hub("org/schedule", token=local_hub.token)
    latest = NoiseSchedule.from_pretrained("org/schedule", cache_dir=tmp_path / "c")
    assert latest.config == {"max_signal_rate": 0.8, "min_signal_rate": 0.2}
    old = NoiseSchedule.from_pretrained("org/schedule", revision=first_sha, cache_dir=tmp_path / "c")
    assert old.config["max_signal_rate"] == 0.9
    with pytest.raises(PretrainedNotFoundError, match="revision not found"):
        resolve_directory("org/schedule", HubOptions(revision="no-such-branch", cache_dir=tmp_path / "c"))
    with pytest.raises(PretrainedNotFoundError, match="has no folder 'missing'"):
        resolve_directory("org/schedule", HubOptions(subfolder="missing", cache_dir=tmp_path / "c"))


def test_repo_not_found(local_hub, tmp_path: Path) -> None:
    with pytest.raises(PretrainedNotFoundError, match="repo not found") as info:
        resolve_directory("org/does-not-exist", HubOptions(cache_dir=tmp_path / "c"))
    assert isinstance(info.value, OSError)


def test_offline_uses_the_cache_and_names_what_is_missing(local_hub, tmp_path: Path) -> None:
    OffsetCosineSchedule(0.9, 0.1).push_to_hub("org/cached", token=local_hub.token)
    cache = tmp_path / "cache"
    NoiseSchedule.from_pretrained("org/cached", cache_dir=cache)
    local_hub.go_offline()
    again = NoiseSchedule.from_pretrained("org/cached", cache_dir=cache)
    assert again.config["max_signal_rate"] == 0.9
    with pytest.raises(PretrainedNotFoundError, match="not in cache and offline"):
        NoiseSchedule.from_pretrained("org/never-downloaded", cache_dir=cache)


def test_local_files_only_without_cache(local_hub, tmp_path: Path) -> None:
    with pytest.raises(PretrainedNotFoundError, match="not in cache and offline"):
        resolve_directory("org/anything", HubOptions(local_files_only=True, cache_dir=tmp_path / "empty"))


def test_nonsense_name_is_neither_path_nor_repo(tmp_path: Path) -> None:
    with pytest.raises(PretrainedNotFoundError, match="neither an existing local directory nor a Hub repo id"):
        resolve_directory(str(tmp_path / "no" / "such" / "dir"))


def test_local_directory_is_used_as_is(tmp_path: Path) -> None:
    OffsetCosineSchedule().save_pretrained(tmp_path / "s")
    assert resolve_directory(tmp_path / "s") == tmp_path / "s"


def test_pipeline_push_to_hub_then_from_pretrained_gives_the_same_images(local_hub, tmp_path: Path) -> None:
    from thermogen.normalizer import Normalizer
    from thermogen.pipelines.base import Pipeline
    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.samplers.diffusion.ddim import DDIMSampler

    pipe = DiffusionPipeline(
        tiny_model(), OffsetCosineSchedule(), DDIMSampler(spacing="uniform"), Normalizer([0.2], [0.3])
    )
    pipe.progress = False
    pipe.push_to_hub("org/tiny-pipeline", token=local_hub.token)
    files = set(local_hub.list_files("org/tiny-pipeline"))
    assert {
        "model_index.json",
        "README.md",
        "model/config.json",
        "model/model.safetensors",
        "sampler/config.json",
    } <= files
    assert any("library_name: thermogen" in card for card in local_hub.hub.validated_cards)
    loaded = Pipeline.from_pretrained("org/tiny-pipeline", cache_dir=tmp_path / "cache")
    loaded.progress = False

    def generate(p: DiffusionPipeline) -> torch.Tensor:
        return p(
            batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="tensor"
        ).images

    assert torch.equal(generate(loaded), generate(pipe))


def test_a_push_leaves_the_repo_holding_exactly_what_a_save_writes_plus_user_files(local_hub, tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    from thermogen.buffers import ReplayBuffer
    from thermogen.models.energy_cnn import EnergyCNN
    from thermogen.pipelines.base import Pipeline
    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.samplers.energy.sgld import SGLDSampler

    repo = "org/reused"
    tiny_model().push_to_hub(repo, token=local_hub.token)
    HfApi(token=local_hub.token).upload_file(
        path_or_fileobj=b"my notes", path_in_repo="notes.md", repo_id=repo, commit_message="notes"
    )
    OffsetCosineSchedule().push_to_hub(repo, token=local_hub.token)
    assert sorted(local_hub.list_files(repo)) == ["config.json", "notes.md"]  # no stale model.safetensors

    from thermogen.normalizer import Normalizer
    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.samplers.diffusion.ddim import DDIMSampler

    diffusion = DiffusionPipeline(tiny_model(), OffsetCosineSchedule(), DDIMSampler(), Normalizer())
    diffusion.push_to_hub(repo, token=local_hub.token)
    ebm = EBMPipeline(EnergyCNN(1, 8, widths=(4, 8), hidden=8), SGLDSampler(), ReplayBuffer(sample_shape=(1, 8, 8)))
    ebm.push_to_hub(repo, token=local_hub.token)
    saved = tmp_path / "saved"
    ebm.save_pretrained(saved)
    written = sorted(str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file())
    assert sorted(local_hub.list_files(repo)) == sorted([*written, "notes.md"])
    assert isinstance(Pipeline.from_pretrained(repo, cache_dir=tmp_path / "cache"), EBMPipeline)


def test_push_private_makes_a_private_repo_that_needs_the_token(local_hub, tmp_path: Path) -> None:
    model = tiny_model()
    model.push_to_hub("org/secret-unet", private=True, token=local_hub.token)
    model.push_to_hub("org/public-unet", token=local_hub.token)
    assert local_hub.hub.is_private("org/secret-unet") and not local_hub.hub.is_private("org/public-unet")
    x, level = torch.randn(2, 1, 8, 8), torch.tensor([0.3, 0.9])
    with_token = NoisePredictor.from_pretrained("org/secret-unet", cache_dir=tmp_path / "a", token=local_hub.token)
    assert torch.equal(with_token(x, level), model(x, level))
    with pytest.raises(PretrainedNotFoundError):
        NoisePredictor.from_pretrained("org/secret-unet", cache_dir=tmp_path / "b", token=False)
    public = NoisePredictor.from_pretrained("org/public-unet", cache_dir=tmp_path / "c", token=False)
    assert torch.equal(public(x, level), model(x, level))
