"""Diffusion training: loss falls, exact resume, divergence stops cleanly, image folders, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from thermogen.cli import main
from thermogen.errors import TrainingDivergedError
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig


class Blobs(torch.utils.data.Dataset):
    """64 deterministic 8x8 images in [0, 1]: a bright square at one of four places."""

    def __init__(self) -> None:
        images = torch.zeros(64, 1, 8, 8)
        for i in range(64):
            r, c = divmod(i % 4, 2)
            images[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] = 1.0
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def make_pipeline(dataset: Blobs) -> DiffusionPipeline:
    torch.manual_seed(0)
    model = UNet(1, 8, widths=(8, 16), block_depth=1, embedding_dims=8)
    return DiffusionPipeline(
        model, OffsetCosineSchedule(), DDIMSampler(spacing="uniform"), Normalizer.fit(dataset.images)
    )


def config(steps: int, **overrides: object) -> DiffusionTrainingConfig:
    return DiffusionTrainingConfig(
        steps=steps,
        batch_size=16,
        log_every=2,
        checkpoint_every=3,
        sample_every=100,
        sample_images=4,
        sample_steps=2,
        **overrides,  # type: ignore[arg-type]
    )


def test_n_steps_straight_equals_half_plus_resume_plus_half(tmp_path: Path) -> None:
    data = Blobs()
    straight = DiffusionTrainer(make_pipeline(data), data, tmp_path / "a", config(6))
    straight.train(progress=False)

    first = DiffusionTrainer(make_pipeline(data), data, tmp_path / "b", config(3))
    first.train(progress=False)
    resumed = DiffusionTrainer(
        Pipeline.from_pretrained(tmp_path / "b" / "checkpoint" / "pipeline"), data, tmp_path / "b", config(6)
    )
    with open(tmp_path / "b" / "log.jsonl", "a") as log:  # written after the checkpoint, then the run died
        log.write(json.dumps({"step": 5, "loss": 1.0}) + "\n")
    resumed.load_checkpoint()
    assert resumed.step == 3
    assert [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()] == [2, 3]
    resumed.train(progress=False)

    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    for (name, a), b in zip(straight.ema.model.state_dict().items(), resumed.ema.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_loss_falls_below_the_zero_prediction_value(tmp_path: Path) -> None:
    data = Blobs()
    trainer = DiffusionTrainer(
        make_pipeline(data),
        data,
        tmp_path,
        DiffusionTrainingConfig(
            steps=60, batch_size=16, log_every=10, checkpoint_every=60, sample_every=60, sample_images=4, sample_steps=3
        ),
    )
    trainer.train(progress=False)
    losses = [entry["loss"] for entry in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines())]
    assert losses[0] == pytest.approx(0.798, abs=0.03)  # MAE of predicting zero noise: sqrt(2/pi)
    assert losses[-1] < 0.6
    assert (tmp_path / "samples" / "step_000060.png").is_file()


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    data = Blobs()
    trainer = DiffusionTrainer(make_pipeline(data), data, tmp_path, config(3))
    trainer.train(progress=False)
    good = (tmp_path / "checkpoint" / "trainer_state.json").read_text()
    trainer.config.steps = 8
    with torch.no_grad():
        trainer.model.head.weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="loss became nan at step 4.*last good checkpoint"):
        trainer.train(progress=False)
    assert (tmp_path / "checkpoint" / "trainer_state.json").read_text() == good


def test_cli_trains_on_an_image_folder_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "images" / "nested"
    folder.mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (20, 12), (i * 20, 255 - i * 20, 128)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    common = [
        "train",
        "diffusion",
        "--dataset",
        "folder",
        "--data-dir",
        str(tmp_path / "images"),
        "--image-size",
        "8",
        "--batch-size",
        "4",
        "--widths",
        "4,8",
        "--block-depth",
        "1",
        "--out",
        str(out),
        "--log-every",
        "1",
        "--sample-every",
        "100",
        "--checkpoint-every",
        "2",
        "--no-progress",
    ]
    assert main([*common, "--steps", "2"]) == 0
    assert main([*common, "--steps", "3", "--resume"]) == 0
    loaded = Pipeline.from_pretrained(out / "checkpoint" / "pipeline")
    assert loaded.sample_shape() == (3, 8, 8)
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_cli_reports_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "diffusion", "--dataset", "folder", "--out", str(tmp_path)])
    assert code == 2
    assert "--dataset folder needs --data-dir" in capsys.readouterr().err


def test_ema_warmup_forgets_the_initialisation() -> None:
    from thermogen.training.ema import EMA

    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    warm, constant = EMA(model, 0.999, warmup=True), EMA(model, 0.999, warmup=False)
    assert warm.decay_at(0) == pytest.approx(0.1) and warm.decay_at(10**6) == 0.999
    with torch.no_grad():
        model.weight.fill_(1.0)
    for update in range(200):
        warm.update(model, update)
        constant.update(model, update)
    assert float(warm.model.weight) > 0.99  # the average has caught up with the new weights
    assert float(constant.model.weight) == pytest.approx(1 - 0.999**200, rel=1e-4)


def test_a_decay_started_at_the_resume_step_equals_one_run_with_that_schedule(tmp_path: Path) -> None:
    data = Blobs()
    decaying = {"lr_decay": "cosine", "lr_decay_start": 3, "lr_final_ratio": 0.1}
    straight = DiffusionTrainer(make_pipeline(data), data, tmp_path / "a", config(6, **decaying))
    straight.train(progress=False)
    constant = DiffusionTrainer(make_pipeline(data), data, tmp_path / "c", config(6))
    constant.train(progress=False)

    DiffusionTrainer(make_pipeline(data), data, tmp_path / "b", config(3)).train(progress=False)
    checkpoint = Pipeline.from_pretrained(tmp_path / "b" / "checkpoint" / "pipeline")
    resumed = DiffusionTrainer(checkpoint, data, tmp_path / "b", config(6, **decaying))
    resumed.load_checkpoint()
    resumed.train(progress=False)

    rates = [json.loads(line)["lr"] for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    # steps 0-3 at 1e-3; then cos falls to 0.75 and 0.25 of the way: 0.1 + 0.9 * that (means over 2 steps)
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3 * (0.1 + 0.9 * (0.75 + 0.25) / 2)])
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    changed = [
        not torch.allclose(a.float(), b.float(), atol=1e-6)
        for a, b in zip(straight.model.state_dict().values(), constant.model.state_dict().values())
    ]
    assert any(changed)
