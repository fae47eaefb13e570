"""BatchNorm recalibration: running statistics become the plain average over noisy training batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from thermogen.cli import main
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.batch_norm import batch_norm_layers, recalibrate_batch_norm


def make_pipeline(norm: str = "batch") -> tuple[DiffusionPipeline, torch.Tensor]:
    torch.manual_seed(0)
    images = torch.rand(256, 1, 8, 8) ** 3
    model = UNet(1, 8, widths=(8, 16), block_depth=1, embedding_dims=8, norm=norm)  # type: ignore[arg-type]
    torch.nn.init.normal_(model.head.weight)  # the zero-initialised head would hide every difference
    pipeline = DiffusionPipeline(model, OffsetCosineSchedule(), DDIMSampler(), Normalizer.fit(images))
    return pipeline, images


def test_running_statistics_are_the_average_of_the_batch_statistics() -> None:
    pipeline, images = make_pipeline()
    model = pipeline.model
    layers = batch_norm_layers(model)
    momenta = [layer.momentum for layer in layers]
    for layer in layers:  # stale statistics, far from anything the data produces
        layer.running_mean.fill_(5.0)  # type: ignore[union-attr]
        layer.running_var.fill_(50.0)  # type: ignore[union-attr]
    seen: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {i: [] for i in range(len(layers))}

    def recorder(index: int):  # type: ignore[no-untyped-def]
        def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor]) -> None:
            x = inputs[0].transpose(0, 1).flatten(1)
            seen[index].append((x.mean(1), x.var(1, unbiased=True)))

        return hook

    handles = [layer.register_forward_pre_hook(recorder(i)) for i, layer in enumerate(layers)]
    parameters = {name: p.clone() for name, p in model.named_parameters()}
    assert recalibrate_batch_norm(pipeline, TensorDataset(images), batches=5, batch_size=32) == len(layers)
    for handle in handles:
        handle.remove()

    for index, layer in enumerate(layers):
        means, variances = zip(*seen[index])
        assert len(means) == 5
        torch.testing.assert_close(layer.running_mean, torch.stack(means).mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(layer.running_var, torch.stack(variances).mean(0), rtol=1e-5, atol=1e-6)
        assert layer.momentum == momenta[index]
    assert not model.training
    for name, p in model.named_parameters():
        assert torch.equal(p, parameters[name]), name


def test_after_recalibration_eval_mode_matches_large_batch_train_mode() -> None:
    pipeline, images = make_pipeline()
    for layer in batch_norm_layers(pipeline.model):
        layer.running_mean.add_(3.0)  # type: ignore[union-attr]
    generator = torch.Generator().manual_seed(7)
    x0 = pipeline.normalizer.normalize(images)
    t = torch.rand(len(x0), generator=generator, dtype=torch.float64)
    signal, noise_rate = pipeline.schedule.rates(t, like=x0)
    noisy = signal * x0 + noise_rate * torch.randn(x0.shape, generator=generator)

    def gap() -> float:
        model = pipeline.model
        with torch.no_grad():
            model.eval()
            evaluated = model(noisy, noise_rate.flatten())
            model.train()
            batch_stats = model(noisy, noise_rate.flatten())
            model.eval()
        return float((evaluated - batch_stats).abs().mean() / batch_stats.abs().mean())

    before = gap()
    recalibrate_batch_norm(pipeline, TensorDataset(images), batches=40, batch_size=64)
    after = gap()
    assert after < 0.05 < before


def test_group_norm_models_are_left_alone_and_bad_counts_are_named() -> None:
    pipeline, images = make_pipeline(norm="group")
    state = {k: v.clone() for k, v in pipeline.model.state_dict().items()}
    assert recalibrate_batch_norm(pipeline, TensorDataset(images)) == 0
    assert all(torch.equal(v, state[k]) for k, v in pipeline.model.state_dict().items())
    with pytest.raises(ValueError, match="batches=0; expected a positive integer"):
        recalibrate_batch_norm(pipeline, TensorDataset(images), batches=0)


def test_cli_writes_a_recalibrated_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline, images = make_pipeline()
    pipeline.save_pretrained(tmp_path / "trained")
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(images[:32]):
        Image.fromarray((image[0].numpy() * 255).astype("uint8"), mode="L").save(folder / f"{i}.png")
    args = ["recalibrate-bn", str(tmp_path / "trained"), "--out", str(tmp_path / "recalibrated")]
    data = ["--dataset", "folder", "--data-dir", str(folder), "--image-size", "8", "--channels", "1"]
    assert main([*args, *data, "--batches", "3", "--batch-size", "8"]) == 0
    assert "recalibrated" in capsys.readouterr().out
    before = Pipeline.from_pretrained(tmp_path / "trained")
    after = Pipeline.from_pretrained(tmp_path / "recalibrated")
    assert isinstance(after, DiffusionPipeline)
    changed = [
        name
        for name, value in after.model.state_dict().items()
        if not torch.equal(value, before.model.state_dict()[name])
    ]
    assert changed and all("running" in name or "num_batches" in name for name in changed)
